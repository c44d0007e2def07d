"""Dynamic Weight Average: Liu, Johns & Davison, "End-to-end multi-task learning with attention"
(CVPR 2019).

The weights of epoch t follow how fast each task's loss fell over the two previous epochs:

    wₖ(t) = K·exp(rₖ(t−1)/T) / Σᵢ exp(rᵢ(t−1)/T),    rₖ(t−1) = Lₖ(t−1) / Lₖ(t−2)

with K the number of tasks, T the temperature (2 in the paper; a larger T gives more even weights)
and Lₖ the epoch-mean training losses delivered by ``epoch_end``. The weights are 1 during the
first two epochs, before there are two epochs to compare.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from auxbench.weighting.base import GradientMethod, Weighting, register


@register
class DWA(Weighting):
    """Weights from the ratio of each task's last two epoch-mean losses, softened by
    ``temperature``."""

    name = "dwa"
    description = (
        "dynamic weight average: softmax of the epoch-to-epoch loss ratios (Liu et al. 2019)"
    )

    def __init__(
        self,
        n_tasks: int,
        primary: Sequence[int] = (0,),
        gradient: GradientMethod | None = None,
        temperature: float = 2.0,
    ):
        if not temperature > 0:
            raise ValueError(f"dwa: temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.history: list[list[float]] = []  # the last two epochs' mean losses, oldest first
        super().__init__(n_tasks, primary, gradient)

    def epoch_end(self, mean_losses: Sequence[float]) -> None:
        """Record the epoch's mean losses; from the second epoch on, set the next epoch's weights."""
        losses = [float(loss) for loss in mean_losses]
        if len(losses) != self.n_tasks:
            raise ValueError(f"dwa expects {self.n_tasks} mean losses, got {len(losses)}")
        if not all(math.isfinite(loss) and loss > 0 for loss in losses):
            raise ValueError(f"dwa needs finite mean losses > 0 (it divides by them), got {losses}")
        self.history = [*self.history, losses][-2:]
        if len(self.history) == 2:
            before, last = torch.tensor(self.history, dtype=torch.float64)
            ratios = last / before
            weights = self.n_tasks * torch.softmax(ratios / self.temperature, dim=0)
            self.weights = weights.to(torch.float32)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "history": [list(losses) for losses in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.history = [list(losses) for losses in state["history"]]
