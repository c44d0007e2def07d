"""GradNorm: Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient normalization for
adaptive loss balancing in deep multitask networks" (ICML 2018).

The weights wᵢ (initialised to 1) are learned so that each task's weighted gradient norm on the
shared parameters W follows its relative training rate. In every step t:

    Gᵢ = ‖∇_W wᵢ·Lᵢ‖,   L̃ᵢ = Lᵢ(t) / Lᵢ(0),   rᵢ = L̃ᵢ / mean(L̃)
    L_grad = Σᵢ |Gᵢ − mean(G)·rᵢ^α|

with Lᵢ(0) the losses of the first step and the target mean(G)·rᵢ^α treated as a constant. The
method's own Adam optimiser (learning rate ``lr``) takes one step on L_grad, after which the
weights are renormalised so that Σ wᵢ = n_tasks. As in the paper's algorithm, the network update
of step t uses the weights wᵢ(t) from before that step's GradNorm update.

Adam can step a weight past zero, and a negative loss weight makes the network ascend that task's
loss (with a noise task in the mix, the primary weight crossed zero within 200 steps and the run
diverged), so every weight is first clamped at ``min_weight`` > 0: the weights stay positive, as
loss weights must.

The paper takes W to be the last shared layer, which keeps the per-task gradients cheap; here W is
whatever the caller passes as ``shared_params``, so callers choose (e.g. only the trunk's last
layer, or the whole trunk).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch

from auxbench.foundations.passes import Passes
from auxbench.weighting.base import GradientMethod, MetaStep, Weighting, register


@register
class GradNorm(Weighting):
    """Weights learned by Adam on the GradNorm loss (``alpha``: asymmetry, ``lr``: its step)."""

    name = "gradnorm"
    description = (
        "gradient normalisation: weights balancing the tasks' gradient norms (Chen et al.)"
    )

    def __init__(
        self,
        n_tasks: int,
        primary: Sequence[int] = (0,),
        gradient: GradientMethod | None = None,
        alpha: float = 1.5,
        lr: float = 0.025,
        min_weight: float = 1e-3,
    ):
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"gradnorm: alpha must be >= 0, got {alpha}")
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"gradnorm: lr must be > 0, got {lr}")
        if not (math.isfinite(min_weight) and 0 < min_weight < 1):
            raise ValueError(f"gradnorm: min_weight must be in (0, 1), got {min_weight}")
        self.alpha, self.min_weight = float(alpha), float(min_weight)
        super().__init__(n_tasks, primary, gradient)
        self.optimizer = torch.optim.Adam([self.weights], lr=lr)
        self.initial_losses: torch.Tensor | None = None  # Lᵢ(0), set by the first step
        self.step_weights = self.weights.clone()  # wᵢ(t), used by this step's backward

    def initial_weights(self) -> torch.Tensor:
        """Weights at 1; the method's optimiser updates this tensor in place."""
        return torch.ones(self.n_tasks)

    def update(
        self,
        losses: Sequence[torch.Tensor],
        shared_params: Sequence[torch.Tensor],
        meta: MetaStep | None,
    ) -> None:
        """Keep wᵢ(t) for this step's backward, then take one Adam step on L_grad, clamp at
        ``min_weight`` and renormalise."""
        self.step_weights = self.weights.clone()
        values = torch.stack([loss.detach() for loss in losses]).to(self.weights)
        if self.initial_losses is None:
            if not (values > 0).all():
                raise ValueError(
                    f"gradnorm needs losses > 0 in its first step (it divides by them), "
                    f"got {values.tolist()}"
                )
            self.initial_losses = values.clone()
        relative = values / self.initial_losses
        rates = relative / relative.mean()
        norms = self.shared_gradients(losses, shared_params).norm(dim=1).to(self.weights)
        weights = self.weights.detach().requires_grad_()  # shares memory with self.weights
        grad_norms = weights * norms  # ‖∇_W wᵢLᵢ‖ = wᵢ·‖∇_W Lᵢ‖, the weights being positive
        target = (grad_norms.mean() * rates**self.alpha).detach()
        (self.weights.grad,) = torch.autograd.grad((grad_norms - target).abs().sum(), weights)
        self.optimizer.step()
        with torch.no_grad():
            self.weights.clamp_(min=self.min_weight)
            self.weights.mul_(self.n_tasks / self.weights.sum())

    def minimum_passes(self) -> Passes:
        """A forward and one task backward per task (the norms need them; the step reuses them)."""
        return Passes(forward=1, task_backward=self.n_tasks)

    def loss_weights(self) -> torch.Tensor:
        """wᵢ(t): the weights from before this step's GradNorm update."""
        return self.step_weights

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "initial_losses": None if self.initial_losses is None else self.initial_losses.clone(),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        learned = self.weights
        super().load_state_dict(state)  # restores the gradient method and replaces self.weights
        with torch.no_grad():  # in place, so the optimiser keeps the same tensor
            learned.copy_(self.weights)
        self.weights = learned
        self.step_weights = learned.clone()
        initial = state["initial_losses"]
        self.initial_losses = None if initial is None else initial.clone()
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
