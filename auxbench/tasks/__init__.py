"""Tasks: the unit of a run (a head, its loss, its metrics, the batch fields it reads)."""
