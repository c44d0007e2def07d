"""Experiments over many runs: the grid of a workflow config and the cost benchmark."""
