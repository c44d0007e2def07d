"""The bottom layer: errors, atomic files, validation helpers, the functional look-ahead step,
passes, losses, metrics and the label hierarchy. Nothing here imports any other part of auxbench."""
