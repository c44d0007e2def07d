"""The task: the unit of a run.

A run trains one network on a list of tasks. Each task names its head and the head's output
size, computes its loss from the head's output and a ``Batch``, declares the batch fields it
reads and the metrics it is scored by (each higher- or lower-is-better), and says whether it is
primary. The trainer builds one head per task, hands the tasks' losses (in task order) to
``auxbench.weighting``, scores every evaluated task on the validation and test splits, and
selects the model on the primary tasks' first metric. Classification tasks are in
``auxbench.tasks.classification``; a new kind of task (dense prediction, an RL auxiliary task)
is a new subclass, and the training loop does not change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

import torch


@dataclass
class Batch:
    """One batch: the network's input (``images``), the target fields by name (``label``, the
    primary labels; ``aux_label``, human auxiliary labels; dense tasks' maps ...) and the
    examples' positions in their split (``index``)."""

    images: torch.Tensor
    targets: dict[str, torch.Tensor] = field(default_factory=dict)
    index: torch.Tensor | slice | None = None

    def __getitem__(self, name: str) -> torch.Tensor:
        if name == "index":
            return self.index
        return self.targets[name]

    @property
    def labels(self) -> torch.Tensor:
        """The primary labels (field ``label``)."""
        return self.targets["label"]

    @property
    def aux_labels(self) -> torch.Tensor | None:
        """The human auxiliary labels (field ``aux_label``), or None."""
        return self.targets.get("aux_label")


@dataclass(frozen=True)
class Metric:
    """A score of a task: its column name and whether higher is better."""

    name: str
    higher_is_better: bool = True


class Evaluator:
    """Accumulates a task's metrics over the batches of a split (on the device: no host sync per
    batch) and returns them by name."""

    def update(self, output: torch.Tensor, batch: Batch) -> None:
        raise NotImplementedError

    def summary(self) -> dict[str, float]:
        raise NotImplementedError


class Task:
    """A task of a run (see the module doc). Subclasses set the class attributes and implement
    ``loss`` and, when they have ``metrics``, ``evaluator``.

    - ``name``: the head's (and the history columns') name;
    - ``outputs``: the head's number of outputs;
    - ``primary``: whether the task is primary (scored, selects the model, weight 1 under fixed
      weights) or auxiliary;
    - ``reads``: the batch fields the loss reads (``index`` is the examples' positions);
    - ``metrics``: how the task is scored on validation and test; the first one selects the model;
    - ``weight``: its fixed weight under ``fixed`` weighting (None: 1 if primary, else λ);
    - ``evaluated``: whether the trainer scores it on the validation and test splits (default:
      primary tasks with metrics).
    """

    metrics: ClassVar[tuple[Metric, ...]] = ()

    def __init__(
        self,
        name: str,
        outputs: int,
        *,
        primary: bool = False,
        reads: Iterable[str] = (),
        weight: float | None = None,
        evaluated: bool | None = None,
    ):
        self.name = name
        self.outputs = outputs
        self.primary = primary
        self.reads = tuple(reads)
        self.weight = weight
        self.evaluated = (primary if evaluated is None else evaluated) and bool(self.metrics)

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The task's unweighted scalar loss for the head's ``output`` on ``batch``."""
        raise NotImplementedError

    def evaluator(self, device: torch.device) -> Evaluator:
        """A fresh accumulator of this task's ``metrics``."""
        raise NotImplementedError(f"task {self.name!r} has no metrics")

    def fixed_weight(self, lam: float) -> float:
        """The task's weight under fixed weighting: ``weight``, else 1 (primary) or ``lam``."""
        if self.weight is not None:
            return self.weight
        return 1.0 if self.primary else lam

    def __repr__(self) -> str:
        kind = "primary" if self.primary else "auxiliary"
        return f"{type(self).__name__}({self.name!r}, {self.outputs} outputs, {kind})"


def selection_metric(tasks: Iterable[Task]) -> Metric:
    """The metric that selects the model: the first metric of the primary tasks (their mean on the
    validation split is compared). Every evaluated task must have it first, since the history has
    a column of it per evaluated task."""
    firsts = {task.metrics[0] for task in tasks if task.evaluated}
    if len(firsts) != 1:
        names = sorted(m.name for m in firsts)
        raise ValueError(f"the evaluated tasks must share one selection metric, got {names}")
    return firsts.pop()
