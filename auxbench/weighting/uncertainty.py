"""Uncertainty weighting: Kendall, Gal & Cipolla, "Multi-task learning using uncertainty to weigh
losses for scene geometry and semantics" (CVPR 2018).

Each task i has a learnable log-variance sᵢ = log σᵢ², initialised to 0, and the total loss is

    Σᵢ ½·exp(−sᵢ)·Lᵢ + ½·sᵢ

which is the paper's regression form 1/(2σᵢ²)·Lᵢ + log σᵢ, used for every task. The paper's
classification form 1/σᵢ²·Lᵢ + log σᵢ = exp(−sᵢ)·Lᵢ + ½·sᵢ is the same function up to an additive
constant after the shift sᵢ → sᵢ + log 2, so the two forms differ only in where sᵢ starts. For a
fixed loss the total is smallest at exp(sᵢ) = Lᵢ: tasks with larger losses get smaller weights.
The sᵢ are updated by the caller's optimiser (``parameters()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from auxbench.weighting.base import Weighting, register


@register
class Uncertainty(Weighting):
    """Learned log-variances sᵢ (``log_variances``); ``weights`` are the current loss multipliers
    ½·exp(−sᵢ), and setting ``weights`` sets sᵢ = −log(2·wᵢ)."""

    name = "uncertainty"
    description = "learned task uncertainty: Σ ½·exp(−sᵢ)·Lᵢ + ½·sᵢ (Kendall et al. 2018)"

    def initial_weights(self) -> torch.Tensor:
        """Creates the log-variances at 0, i.e. multipliers ½."""
        self.log_variances = torch.zeros(self.n_tasks, requires_grad=True)
        return self.weights

    @property
    def weights(self) -> torch.Tensor:
        """The current multipliers ½·exp(−sᵢ) of the losses (detached)."""
        return self.loss_weights().detach()

    @weights.setter
    def weights(self, weights: torch.Tensor) -> None:
        if (weights <= 0).any():
            raise ValueError(f"uncertainty: weights must be > 0, got {weights.tolist()}")
        with torch.no_grad():  # in place, so the caller's optimiser keeps the same tensor
            self.log_variances.copy_(-torch.log(2 * weights))

    def parameters(self) -> list[torch.Tensor]:
        """The log-variances sᵢ, for the caller's optimiser."""
        return [self.log_variances]

    def loss_weights(self) -> torch.Tensor:
        """½·exp(−sᵢ), differentiable in sᵢ."""
        return 0.5 * torch.exp(-self.log_variances)

    def weighted_total(self, losses: Sequence[torch.Tensor]) -> torch.Tensor:
        """Σ ½·exp(−sᵢ)·Lᵢ + ½·sᵢ."""
        regulariser = 0.5 * self.log_variances.sum().to(losses[0].device)
        return super().weighted_total(losses) + regulariser

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "log_variances": self.log_variances.detach().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():  # exactly, rather than through exp and log
            self.log_variances.copy_(state["log_variances"])
