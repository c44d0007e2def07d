"""Gradient cosine similarity (GCS): Du, Czarnecki, Jayakumar, Farajtabar, Pascanu &
Lakshminarayanan, "Adapting auxiliary losses using gradient similarity" (2018).

On the shared parameters θ, an auxiliary task's gradient is used in a step only when it points
the same way as the primary gradient g = Σ_{p primary} ∇_θ L_p:

    ∇_θ = g + Σ_{a auxiliary} λ·[cos(g, ∇_θ L_a) > 0]·∇_θ L_a

(the paper's unweighted variant). A cosine that is not defined (a zero gradient) counts as 0, so
the auxiliary gradient is dropped. The weights stay λ; what GCS learns is which steps an auxiliary
task reaches the shared parameters in, logged per epoch as ``kept_<i>`` (the fraction of the
epoch's steps its gradient was kept: λ·kept is its mean effective weight) beside ``cosine_<i>``
(the epoch's mean cosine). Every other parameter (the task-specific heads) gets the plain
gradient of Σ_{p primary} L_p + λ·Σ_{a auxiliary} L_a. With a gradient method (``gradient=``), the
gated task gradients are combined by it instead of summed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.nn.functional import cosine_similarity

from auxbench.weighting.base import GradientMethod, register
from auxbench.weighting.fixed import Fixed


class CosineGate(GradientMethod):
    """Drops the auxiliary rows of the task gradients whose cosine with the primary gradient is not
    positive, then combines the rows with ``inner``. Sums each task's cosine and keep decision over
    a window of steps, which ``close_window()`` ends (the next step starts a new one)."""

    name = "gcs-gate"

    def __init__(self, primary: Sequence[int], auxiliary: Sequence[int], inner: GradientMethod):
        self.primary, self.auxiliary, self.inner = list(primary), list(auxiliary), inner
        self.cosine_sum = torch.zeros(len(self.primary) + len(self.auxiliary), dtype=torch.float64)
        self.kept_sum = torch.zeros_like(self.cosine_sum)
        self.steps = 0
        self.window_closed = False

    def combine(self, grads: torch.Tensor) -> torch.Tensor:
        """(tasks, n) weighted task gradients → the gated rows combined by ``inner``."""
        primary_grad = grads[self.primary].sum(dim=0, keepdim=True)
        cosines = cosine_similarity(grads, primary_grad, dim=1)
        keep = torch.ones_like(cosines)
        keep[self.auxiliary] = (cosines[self.auxiliary] > 0).to(keep.dtype)
        if self.window_closed:
            self.cosine_sum = torch.zeros_like(self.cosine_sum)
            self.kept_sum, self.steps = torch.zeros_like(self.kept_sum), 0
            self.window_closed = False
        # summed on the device: read in the logs, no host sync per step
        self.cosine_sum = self.cosine_sum.to(cosines.device) + cosines.detach()
        self.kept_sum = self.kept_sum.to(keep.device) + keep
        self.steps += 1
        return self.inner.combine(grads * keep.unsqueeze(1))

    def close_window(self) -> None:
        """End the current window: the means stay readable until the next step starts a new one."""
        self.window_closed = True

    def mean_cosines(self) -> torch.Tensor:
        """Each task's mean cosine over the window (NaN before any step)."""
        return (self.cosine_sum / (self.steps or float("nan"))).cpu()

    def kept_fractions(self) -> torch.Tensor:
        """The fraction of the window's steps each task was kept (NaN before any step)."""
        return (self.kept_sum / (self.steps or float("nan"))).cpu()

    def state_dict(self) -> dict[str, Any]:
        return {
            "inner": self.inner.state_dict(),
            "window": {
                "cosine_sum": self.cosine_sum.cpu(),
                "kept_sum": self.kept_sum.cpu(),
                "steps": self.steps,
                "closed": self.window_closed,
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state["inner"])
        window = state["window"]
        self.cosine_sum, self.kept_sum = window["cosine_sum"], window["kept_sum"]
        self.steps, self.window_closed = window["steps"], window["closed"]


@register
class GCS(Fixed):
    """Weight 1 for primary tasks and ``lam`` for auxiliary ones; an auxiliary task reaches the
    shared parameters only in steps where its gradient's cosine with the primary one is > 0."""

    name = "gcs"
    description = "gradient cosine similarity: drop auxiliary gradients opposing the primary one"

    def __init__(
        self,
        n_tasks: int,
        primary: Sequence[int] = (0,),
        gradient: GradientMethod | None = None,
        lam: float = 1.0,
    ):
        if not lam > 0:
            # (λ = 0 would leave no auxiliary gradient to measure the cosine of)
            raise ValueError(f"gcs: lam must be > 0, got {lam}")
        super().__init__(n_tasks, primary, gradient, lam=float(lam))
        # The gate needs every task's gradient, so the base backward always takes the
        # gradient-method path; the plain sum stands in when no method is given.
        self.gate = CosineGate(self.primary, self.auxiliary, gradient or GradientMethod())
        self.gradient = self.gate

    def epoch_end(self, mean_losses: Sequence[float]) -> None:
        """The epoch's steps form the window ``task_logs`` reports until the next step."""
        self.gate.close_window()

    def task_logs(self) -> dict[str, torch.Tensor]:
        """The weights and, per auxiliary task, the fraction of the window's steps (this epoch's,
        or the last one's after ``epoch_end``) its gradient was kept (``kept``; NaN for primary
        tasks, which are never gated)."""
        kept = self.gate.kept_fractions()  # a new tensor: safe to overwrite
        kept[list(self.primary)] = float("nan")
        return {**super().task_logs(), "kept": kept}

    def logs(self) -> dict[str, float]:
        """``task_logs`` per task and each auxiliary task's mean cosine over the window
        (``cosine_<i>``)."""
        cosines = self.gate.mean_cosines()
        return {**super().logs(), **{f"cosine_{i}": float(cosines[i]) for i in self.auxiliary}}
