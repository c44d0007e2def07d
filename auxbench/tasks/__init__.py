"""Tasks: the unit of a run (a head, its loss, its metrics, the batch fields it reads); see
``auxbench.tasks.base``."""

from auxbench.tasks.base import Batch, Evaluator, Metric, Task, selection_metric
from auxbench.tasks.classification import (
    NOISE,
    ClassificationTask,
    GeneratedLabelTask,
    NoiseTask,
)

__all__ = [
    "NOISE",
    "Batch",
    "ClassificationTask",
    "Evaluator",
    "GeneratedLabelTask",
    "Metric",
    "NoiseTask",
    "Task",
    "selection_metric",
]
