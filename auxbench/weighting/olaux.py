"""OL-AUX (Lin, Baweja, Kantor & Held, 2019, "Adaptive Auxiliary Task Weighting for
Reinforcement Learning"): auxiliary weights follow the alignment of their gradients with the main
task's, accumulated over N steps (§4, Algorithm 1).

The network minimises, with primary weights fixed at 1 and auxiliary weights w (initially 1)::

    L = log L_main + Σᵢ wᵢ log L_aux,i        (log_losses=True, the paper's Algorithm 1)
    L = L_main + Σᵢ wᵢ log L_aux,i            (log_losses="auxiliary", for a main loss that can be
                                               <= 0 such as A2C's; the paper's §4 detail wraps
                                               "all the auxiliary task losses" in a log)
    L = L_main + Σᵢ wᵢ L_aux,i                (log_losses=False, as in the paper's §5.1 toy problem)

Several primary tasks each enter with weight 1 (Σ_p log L_p when logged) and L_main is their sum.
At each step the dot products ∇L_main·∇L_aux,i (of the possibly logged losses, on the shared
parameters) are added to a running sum; after every ``horizon`` (N) steps, once that step's
backward is done, ::

    wᵢ ← wᵢ + β Σ_{last N steps} ∇L_main·∇L_aux,i

and the sum restarts. ``beta`` is the paper's product α·β (network step size × weight step size).

Sign. The paper minimises V = L_main(θ_{t+1}) − L_main(θ_t), the change of the main loss over a
step (negative when it decreases). With Algorithm 1's descent step θ_{t+1} = θ_t − α∇L(θ_t), a
first-order expansion gives V ≈ −α ∇L_main·∇L = −α ∇L_main·(∇L_main + Σᵢ wᵢ ∇L_aux,i), so
∂V/∂wᵢ ≈ −α ∇L_main·∇L_aux,i, summed over the N steps when the effect of w on later θ is ignored
(Eq. 7). Descent on V, w ← w − β∇_w V, is then wᵢ ← wᵢ + αβ Σ ∇L_main·∇L_aux,i: a task whose
gradient agrees with the main task's gains weight. The printed Eq. 3 writes the step as
θ_t + α∇L, which drops that minus sign and carries ∇_w V = +α Σ … into Eqs. 4, 7 and Algorithm 1;
read literally with w ← w − β∇_w V, helpful tasks would lose weight, contradicting §5.1 (the
helpful task's weight first rises, the adversarial one's quickly falls). We use the consistent
sign.

No clamp: Algorithm 1 projects w nowhere, so a weight may become negative (the task's loss is then
ascended, which for §5.1's adversarial L₂ = −L₀ helps the main task). The paper gives no value for
β; the default 1e-3 is ours and should be tuned to the scale of the dot products.

Extra cost per step: one backward pass through the shared parameters per task instead of the
step's single backward; the step's shared gradient Σᵢ wᵢ∇Lᵢ is assembled from those per-task
gradients (``Weighting.shared_gradients``), so only the heads get one more, small, backward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from auxbench.foundations.passes import Passes
from auxbench.weighting.base import GradientMethod, MetaStep, Weighting, log_tasks, register


@register
class OlAux(Weighting):
    """OL-AUX: every ``horizon`` steps, auxiliary weights move by ``beta`` × the summed dot
    products of their gradients with the main task's (see the module doc)."""

    name = "olaux"
    description = (
        "OL-AUX: auxiliary weights follow their N-step gradient alignment with the main task"
    )

    def __init__(
        self,
        n_tasks: int,
        primary: Sequence[int] = (0,),
        gradient: GradientMethod | None = None,
        beta: float = 1e-3,
        horizon: int = 5,
        log_losses: bool | str = True,
    ):
        if not beta > 0:
            raise ValueError(f"olaux: beta must be > 0, got {beta}")
        if int(horizon) != horizon or horizon < 1:
            raise ValueError(f"olaux: horizon must be an integer >= 1, got {horizon}")
        self.beta, self.horizon = float(beta), int(horizon)
        super().__init__(n_tasks, primary, gradient)
        self.logged_tasks = log_tasks(log_losses, n_tasks, self.auxiliary)
        self.steps = 0
        self.alignment = torch.zeros(len(self.auxiliary), dtype=torch.float64)
        self.alignment_sum = torch.zeros(len(self.auxiliary), dtype=torch.float64)

    def backward(
        self,
        losses: Sequence[torch.Tensor],
        shared_params: Sequence[torch.Tensor],
        *,
        task_params: Sequence[torch.Tensor] | None = None,
        meta: MetaStep | None = None,
    ) -> torch.Tensor:
        """``Weighting.backward`` (on the losses logged as ``log_losses`` says); returns the
        weighted total of those. After every ``horizon``-th step's backward the auxiliary weights
        move."""
        total = super().backward(losses, shared_params, task_params=task_params, meta=meta)
        self.steps += 1
        if self.steps % self.horizon == 0:
            self.weights[list(self.auxiliary)] += self.beta * self.alignment_sum.cpu().float()
            self.alignment_sum = torch.zeros_like(self.alignment_sum)
        return total

    def update(
        self,
        losses: Sequence[torch.Tensor],
        shared_params: Sequence[torch.Tensor],
        meta: MetaStep | None,
    ) -> None:
        """Add this step's ∇L_main·∇L_aux,i (on the shared parameters) to the running sum."""
        grads = self.shared_gradients(losses, shared_params)
        main = grads[list(self.primary)].sum(dim=0)
        # summed on the gradients' device; read on the host only when the weights move
        self.alignment = (grads[list(self.auxiliary)] @ main).detach().to(torch.float64)
        self.alignment_sum = self.alignment_sum.to(self.alignment) + self.alignment

    def minimum_passes(self) -> Passes:
        """A forward and one task backward per task (the step reuses the per-task gradients)."""
        return Passes(forward=1, task_backward=self.n_tasks)

    def logs(self) -> dict[str, float]:
        """The weights and the last step's alignment ∇L_main·∇L_aux,i (``alignment_<i>``)."""
        logs = super().logs()
        for k, task in enumerate(self.auxiliary):
            logs[f"alignment_{task}"] = float(self.alignment[k])
        return logs

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["steps"] = self.steps
        state["alignment"] = self.alignment.cpu()
        state["alignment_sum"] = self.alignment_sum.cpu()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.steps = int(state["steps"])
        self.alignment = state["alignment"].clone()
        self.alignment_sum = state["alignment_sum"].clone()
