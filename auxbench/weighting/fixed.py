"""Fixed weights: 1 for the primary tasks, λ for each auxiliary task.

With ``log_losses`` the losses enter as logs (adaptive loss balancing, Hu et al. 2019): the
gradient of wᵢ log Lᵢ is wᵢ ∇Lᵢ / Lᵢ, so every logged task's gradient is scaled by its own loss.
OL-AUX's "gradient balancing" baseline is ``fixed`` with all weights 1 and ``log_losses`` as in
``olaux``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from auxbench.weighting.base import GradientMethod, Weighting, log_tasks, register


@register
class Fixed(Weighting):
    """Constant weights: ``weights`` (one per task) or 1 for primary tasks and ``lam`` for the
    auxiliary ones; ``log_losses`` (``base.log_tasks``) says which losses enter as logs."""

    name = "fixed"
    description = "fixed weights: 1 for primary tasks, λ for auxiliary tasks"

    def __init__(
        self,
        n_tasks: int,
        primary: Sequence[int] = (0,),
        gradient: GradientMethod | None = None,
        lam: float = 1.0,
        weights: Sequence[float] | None = None,
        log_losses: bool | str = False,
    ):
        if weights is not None and len(weights) != n_tasks:
            raise ValueError(f"fixed: {len(weights)} weights given for {n_tasks} tasks")
        self.lam, self.fixed = lam, weights
        super().__init__(n_tasks, primary, gradient)
        self.logged_tasks = log_tasks(log_losses, n_tasks, self.auxiliary)

    def initial_weights(self) -> torch.Tensor:
        if self.fixed is not None:
            return torch.tensor([float(w) for w in self.fixed])
        return torch.tensor([1.0 if i in self.primary else self.lam for i in range(self.n_tasks)])
