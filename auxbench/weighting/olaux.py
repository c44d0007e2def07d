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

**OL-AUX-5 (Ablation)** (§5.6, Fig. 6), ``mode="ablation"`` (the default ``mode="nstep"`` is the
above): θ is trained on the same loss every step, but w follows the one-step rule (Eq. 4) applied
only every N steps, on N times the step's data, with the same β::

    wᵢ ← wᵢ + β ∇L_main·∇L_aux,i      (the gradients at the current θ, on N batches at once)

This separates OL-AUX-N's two effects: it updates w as often, with as much data and as large a
step as OL-AUX-N, but without the long-term sum over N successive θ (the paper's "gradient
smoothing" is what remains). On the steps where w moves ((steps + 1) % N == 0),
``alignment_batches()`` returns N and ``backward`` needs ``extra_losses``: each task's loss at the
current parameters on N fresh batches taken together (logged as ``log_losses`` says, like the
step's losses); the dot products are taken on the shared parameters before the step's backward
(which still uses the old weights), and w moves after it, as in ``nstep`` mode. On the other
steps nothing is accumulated: the step is a plain backward of Σ wᵢLᵢ (1 forward + 1 backward), and
every N-th step adds a forward of N batches and one task backward per task on them: on average
1 forward + 1 task backward per task more per step (``minimum_passes``). ``alignment_<i>`` then
logs the last update's dot products. Scale: when the losses are means, the N batches' dot
product is one of batch-mean gradients, about the size of one of OL-AUX-N's N summed terms where
those agree (smaller where they are noisy), so at the same β w moves less than under OL-AUX-N.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from auxbench.foundations.passes import Passes
from auxbench.weighting.base import (
    GradientMethod,
    MetaStep,
    Weighting,
    log_tasks,
    logged,
    register,
    task_gradients,
)

MODES = ("nstep", "ablation")


@register
class OlAux(Weighting):
    """OL-AUX: every ``horizon`` steps, auxiliary weights move by ``beta`` × the summed dot
    products of their gradients with the main task's (``mode="nstep"``), or by ``beta`` × the dot
    products on ``horizon`` batches of extra data at that step (``mode="ablation"``, §5.6's
    OL-AUX-5 (Ablation)); see the module doc."""

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
        mode: str = "nstep",
    ):
        if not beta > 0:
            raise ValueError(f"olaux: beta must be > 0, got {beta}")
        if int(horizon) != horizon or horizon < 1:
            raise ValueError(f"olaux: horizon must be an integer >= 1, got {horizon}")
        if mode not in MODES:
            raise ValueError(
                f"olaux: mode must be 'nstep' (OL-AUX-N) or 'ablation' (OL-AUX-N (Ablation), "
                f"§5.6), got {mode!r}"
            )
        self.beta, self.horizon, self.mode = float(beta), int(horizon), mode
        super().__init__(n_tasks, primary, gradient)
        self.logged_tasks = log_tasks(log_losses, n_tasks, self.auxiliary)
        self.steps = 0
        self.alignment = torch.zeros(len(self.auxiliary), dtype=torch.float64)
        self.alignment_sum = torch.zeros(len(self.auxiliary), dtype=torch.float64)

    def moves_now(self) -> bool:
        """Whether the weights move after the coming step's backward."""
        return (self.steps + 1) % self.horizon == 0

    def alignment_batches(self) -> int:
        """``horizon`` before a step where the ablation's weights move (its ``extra_losses``);
        0 otherwise and always in ``nstep`` mode."""
        return self.horizon if self.mode == "ablation" and self.moves_now() else 0

    def backward(
        self,
        losses: Sequence[torch.Tensor],
        shared_params: Sequence[torch.Tensor],
        *,
        task_params: Sequence[torch.Tensor] | None = None,
        meta: MetaStep | None = None,
        extra_losses: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``Weighting.backward`` (on the losses logged as ``log_losses`` says); returns the
        weighted total of those. After every ``horizon``-th step's backward the auxiliary weights
        move; in ablation mode that step needs ``extra_losses`` (see the module doc)."""
        ablation_step = self.mode == "ablation" and self.moves_now()
        if ablation_step:
            if extra_losses is None:
                raise ValueError(
                    f"olaux (mode='ablation'): step {self.steps + 1} moves the weights and needs "
                    f"extra_losses (each task's loss on alignment_batches() = {self.horizon} "
                    "batches at the current parameters); the caller must ask "
                    "alignment_batches() before each step and pass them"
                )
            if len(extra_losses) != self.n_tasks:
                raise ValueError(
                    f"olaux expects {self.n_tasks} extra_losses (one per task, as losses), "
                    f"got {len(extra_losses)}"
                )
            shared = [p for p in shared_params if p.requires_grad]
            if shared:  # (none: the base class says so below)
                extra = list(extra_losses)
                if self.logged_tasks:
                    extra = logged(extra, self.logged_tasks, f"{self.name} extra_losses")
                # before the step's backward, which may free a graph the extra losses share
                self.alignment = self.dot_products(task_gradients(extra, shared))
        total = super().backward(
            losses, shared_params, task_params=task_params, meta=meta, extra_losses=extra_losses
        )
        self.steps += 1
        if self.steps % self.horizon == 0:
            moved = self.alignment if self.mode == "ablation" else self.alignment_sum
            self.weights[list(self.auxiliary)] += self.beta * moved.cpu().float()
            self.alignment_sum = torch.zeros_like(self.alignment_sum)
        return total

    def dot_products(self, grads: torch.Tensor) -> torch.Tensor:
        """∇L_main·∇L_aux,i from the (tasks, n) per-task gradients (L_main: the primary tasks'
        sum), in float64 on the gradients' device."""
        main = grads[list(self.primary)].sum(dim=0)
        return (grads[list(self.auxiliary)] @ main).detach().to(torch.float64)

    def update(
        self,
        losses: Sequence[torch.Tensor],
        shared_params: Sequence[torch.Tensor],
        meta: MetaStep | None,
    ) -> None:
        """``nstep``: add this step's ∇L_main·∇L_aux,i (on the shared parameters) to the running
        sum. ``ablation``: nothing (no per-task gradients on the step's own losses)."""
        if self.mode == "ablation":
            return
        # summed on the gradients' device; read on the host only when the weights move
        self.alignment = self.dot_products(self.shared_gradients(losses, shared_params))
        self.alignment_sum = self.alignment_sum.to(self.alignment) + self.alignment

    def minimum_passes(self) -> Passes:
        """``nstep``: a forward and one task backward per task (the step reuses the per-task
        gradients). ``ablation``: the plain step, plus on average per step (every ``horizon``-th
        step does ``horizon`` times this) a forward and one task backward per task of the extra
        data."""
        if self.mode == "ablation":
            return super().minimum_passes() + Passes(forward=1, task_backward=self.n_tasks)
        return Passes(forward=1, task_backward=self.n_tasks)

    def logs(self) -> dict[str, float]:
        """The weights and the last alignment ∇L_main·∇L_aux,i (``alignment_<i>``: the last
        step's in ``nstep`` mode, the last weight update's in ``ablation`` mode)."""
        logs = super().logs()
        for k, task in enumerate(self.auxiliary):
            logs[f"alignment_{task}"] = float(self.alignment[k])
        return logs

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["mode"] = self.mode
        state["steps"] = self.steps
        state["alignment"] = self.alignment.cpu()
        state["alignment_sum"] = self.alignment_sum.cpu()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned; the state must come from the same ``mode``
        (states saved before modes existed are ``nstep``)."""
        saved = state.get("mode", "nstep")
        if saved != self.mode:
            raise ValueError(
                f"olaux: the state is of mode {saved!r}, this method's is {self.mode!r}"
            )
        super().load_state_dict(state)
        self.steps = int(state["steps"])
        self.alignment = state["alignment"].clone()
        self.alignment_sum = state["alignment_sum"].clone()
