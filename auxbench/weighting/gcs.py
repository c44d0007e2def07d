"""Gradient cosine similarity (GCS): Du, Czarnecki, Jayakumar, Farajtabar, Pascanu &
Lakshminarayanan, "Adapting auxiliary losses using gradient similarity" (2018).

On the shared parameters θ, an auxiliary task's gradient is used in a step only when it points
the same way as the primary gradient g = Σ_{p primary} ∇_θ L_p:

    ∇_θ = g + Σ_{a auxiliary} λ·[cos(g, ∇_θ L_a) > 0]·∇_θ L_a

(the paper's unweighted variant). A cosine that is not defined (a zero gradient) counts as 0, so
the auxiliary gradient is dropped. Every other parameter (the task-specific heads) gets the plain
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
    positive, then combines the rows with ``inner``; keeps the last step's cosines."""

    name = "gcs-gate"

    def __init__(self, primary: Sequence[int], auxiliary: Sequence[int], inner: GradientMethod):
        self.primary, self.auxiliary, self.inner = list(primary), list(auxiliary), inner
        self.cosines = torch.full((len(primary) + len(auxiliary),), float("nan"))

    def combine(self, grads: torch.Tensor) -> torch.Tensor:
        """(tasks, n) weighted task gradients → the gated rows combined by ``inner``."""
        primary_grad = grads[self.primary].sum(dim=0, keepdim=True)
        cosines = cosine_similarity(grads, primary_grad, dim=1)
        keep = torch.ones_like(cosines)
        keep[self.auxiliary] = (cosines[self.auxiliary] > 0).to(keep.dtype)
        self.cosines = cosines.detach()  # on the device: read in logs(), no sync per step
        return self.inner.combine(grads * keep.unsqueeze(1))

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)


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

    def logs(self) -> dict[str, float]:
        """The weights and, per auxiliary task, the last step's cosine (``cosine_<i>``)."""
        cosines = {f"cosine_{i}": float(self.gate.cosines[i]) for i in self.auxiliary}
        return {**super().logs(), **cosines}
