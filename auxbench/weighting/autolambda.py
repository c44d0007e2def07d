"""Auto-λ (Liu, James, Davison & Johns, 2022, "Auto-λ: Disentangling Dynamic Task
Relationships"): task weights λ meta-learned so that one look-ahead step lowers the primary loss.

Bi-level problem (§4, Eq. 3): min_λ Σ_{i∈P} Lᵢ(θ*(λ), meta batch) with θ* trained on Σᵢ λᵢ Lᵢ.
Each step, before the network's own update (Eqs. 4–6):

1. virtual step with the caller's SGD settings (``MetaStep.sgd``: lr, momentum, weight decay,
   momentum buffers; a missing buffer means no momentum term, as on SGD's first step;
   ``auxbench.foundations.lookahead.virtual_step``)::

       θ' = θ − lr · (momentum · buf + ∇θ Σᵢ λᵢ Lᵢ(θ, batch) + wd · θ)

2. meta loss Σ_{i∈P} Lᵢ(θ', meta batch), unweighted (weighting it would make λ = 0 trivial, §4);
3. hypergradient by central finite difference (Eq. 7; ``lookahead.central_difference``): with
   d = ∇θ' meta loss and ε = ``fd_scale`` / ‖d‖, ::

       ∂ meta loss / ∂λᵢ = −lr ∇θ Lᵢ(θ, batch) · d
                         ≈ −lr (Lᵢ(θ + εd, batch) − Lᵢ(θ − εd, batch)) / 2ε

   (λ enters θ' only through the gradient term, so momentum and weight decay change d but not
   this formula);
4. one Adam step on λ (lr ``lr``), then the usual backward of Σᵢ λᵢ Lᵢ with the new λ.

Paper choices: every task's weight starts at 0.1 (``init``, §5) and every task's weight is
learned, primary ones included: Eq. 3 optimises all of λ₁..λ_K, and in the auxiliary-learning
setting the primary tasks' weights move too (Table 4, Auto-λ [3 Tasks]: 1.11, 1.06, 1.26 from
0.1). The weights are "unbounded" (§2; bounded weights are listed as future work in §8), so
nothing keeps them non-negative. Eq. 5 is written as a plain gradient step and the paper does not
name the optimiser of λ; Adam is this project's choice, with the paper's default rate 1e-4
(NYUv2; 3e-5 for CityScapes and RLBench, 3e-4 for CIFAR-100, Appendix A). Momentum dampening and
Nesterov are not modelled (``MetaStep`` does not carry them). With a gradient method
(``gradient=``) only the real step's shared gradient is combined by it; the virtual step keeps the
plain gradient of Σᵢ λᵢ Lᵢ of Eq. 4.

Meta batch: the paper's default ("swapping training data", §4) evaluates the meta loss on a
different batch of the training set, e.g. the next training batch; a held-out batch is the
validation formulation of Eq. 3, which the paper found to learn similar weights. Which one is the
caller's choice through ``MetaStep.meta_batch``; passing the step's own batch is the slightly worse
"No swapping" ablation of Table 4.

Extra cost per step: a backward of all tasks at θ on the batch (the virtual step's gradient, on the
step's own forward), a forward and backward of the primary tasks at θ' on the meta batch, and two
forwards at θ ± εd, these through ``MetaStep.task_losses``, which must therefore have no side
effects (e.g. copy BatchNorm buffers).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch

from auxbench.foundations.lookahead import central_difference, gradients, virtual_step
from auxbench.foundations.passes import Passes
from auxbench.weighting.base import GradientMethod, MetaStep, Params, Weighting, register


@register
class AutoLambda(Weighting):
    """Auto-λ: every task weight is updated each step by Adam on a finite-difference look-ahead
    hypergradient of the primary loss (see the module doc)."""

    name = "autolambda"
    description = "Auto-λ: task weights meta-learned on the primary loss after a look-ahead step"
    needs_meta = True

    def __init__(
        self,
        n_tasks: int,
        primary: Sequence[int] = (0,),
        gradient: GradientMethod | None = None,
        init: float = 0.1,
        lr: float = 1e-4,
        fd_scale: float = 0.01,
    ):
        if not (math.isfinite(init) and init >= 0):
            raise ValueError(f"autolambda: init must be a finite number >= 0, got {init}")
        if not lr > 0:
            raise ValueError(f"autolambda: lr must be > 0, got {lr}")
        if not fd_scale > 0:
            raise ValueError(f"autolambda: fd_scale must be > 0, got {fd_scale}")
        self.init, self.lr, self.fd_scale = float(init), float(lr), float(fd_scale)
        super().__init__(n_tasks, primary, gradient)
        self.optimizer = torch.optim.Adam([self.weights], lr=self.lr)
        self.meta_loss = torch.tensor(math.nan)

    def initial_weights(self) -> torch.Tensor:
        return torch.full((self.n_tasks,), self.init)

    def update(
        self,
        losses: Sequence[torch.Tensor],
        shared_params: Sequence[torch.Tensor],
        meta: MetaStep | None,
    ) -> None:
        """One Adam step on λ along ``hypergradient(meta, losses)``."""
        self.weights.grad = self.hypergradient(meta, losses).to(self.weights)
        self.optimizer.step()
        self.weights.grad = None

    def hypergradient(
        self, meta: MetaStep, losses: Sequence[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """∂/∂λ of the primary meta loss after the virtual step, by central finite difference
        (one value per task, on the parameters' device and dtype); records ``meta_loss``.
        ``losses``: the step's task losses at θ on ``meta.batch``, if already computed (see
        ``virtual_step``)."""
        trainable = _trainable(meta)
        ahead = self.virtual_step(meta, losses)
        for name in trainable:
            ahead[name].requires_grad_()
        ahead_losses = self._task_losses(meta, ahead, meta.meta_batch)  # once, not per primary task
        meta_loss = sum(ahead_losses[i] for i in self.primary)
        direction = gradients(meta_loss, {name: ahead[name] for name in trainable})
        theta = {name: p.detach() for name, p in meta.params.items()}

        def task_losses(params: Params) -> torch.Tensor:
            with torch.no_grad():
                return torch.stack(self._task_losses(meta, params, meta.batch))

        self.meta_loss = meta_loss.detach()  # read in logs(): no host sync per step
        return central_difference(task_losses, theta, direction, self.fd_scale, meta.sgd.lr)

    def virtual_step(self, meta: MetaStep, losses: Sequence[torch.Tensor] | None = None) -> Params:
        """θ' = θ − lr (∇θ Σᵢ λᵢ Lᵢ(θ, batch) + wd · θ + momentum · buf), detached; parameters
        that do not require gradients stay where they are. The step's own ``losses`` (computed
        from ``meta.params`` on ``meta.batch``, their graph kept) save a forward pass; without
        them the losses are evaluated through ``meta.task_losses``."""
        trainable = _trainable(meta)
        if losses is None:
            params = {
                name: p.detach().requires_grad_(name in trainable)
                for name, p in meta.params.items()
            }
            losses = self._task_losses(meta, params, meta.batch)
        else:
            params = meta.params
        grads = gradients(
            self.weighted_total(losses),
            {name: params[name] for name in trainable},
            retain_graph=True,
        )
        return virtual_step({name: p.detach() for name, p in params.items()}, grads, meta.sgd)

    def minimum_passes(self) -> Passes:
        """The step's forward and backward, the virtual step's backward, a forward and backward at
        θ', two forwards at θ ± εd; a gradient method needs per-task backwards for the step."""
        look_ahead = Passes(forward=3, backward=2)
        return look_ahead + (
            Passes(forward=1, backward=1)
            if self.gradient is None
            else Passes(forward=1, task_backward=self.n_tasks)
        )

    def _task_losses(self, meta: MetaStep, params: Params, batch: Any) -> list[torch.Tensor]:
        losses = list(meta.task_losses(params, batch))
        if len(losses) != self.n_tasks:
            raise ValueError(
                f"autolambda: meta.task_losses gave {len(losses)} losses for {self.n_tasks} tasks"
            )
        return losses

    def logs(self) -> dict[str, float]:
        """The weights and the last primary meta loss (after the virtual step)."""
        return {**super().logs(), "meta_loss": float(self.meta_loss)}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["optimizer"] = copy.deepcopy(self.optimizer.state_dict())
        state["meta_loss"] = self.meta_loss.cpu()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.optimizer = torch.optim.Adam([self.weights], lr=self.lr)
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.meta_loss = torch.as_tensor(state["meta_loss"]).clone()


def _trainable(meta: MetaStep) -> list[str]:
    """Names of the parameters the optimiser moves (those that require gradients)."""
    return [name for name, p in meta.params.items() if p.requires_grad]
