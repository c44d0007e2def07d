"""The weighting API: a method turns a list of scalar task losses into parameter gradients.

Usable inside the trainer and on its own, on any list of losses::

    from auxbench import weighting

    method = weighting.create("dwa", n_tasks=3, primary=[0])
    ...
    optimizer.zero_grad()
    losses = [primary_loss, aux_loss_1, aux_loss_2]
    method.backward(losses, shared_params=list(model.trunk.parameters()))
    optimizer.step()
    method.weights  # the current weight of each task

``backward`` accumulates into ``.grad`` like ``loss.backward()``: the shared parameters get the
method's combination of the tasks' gradients, every other parameter the losses depend on (the
task-specific heads) the gradient of Σ wᵢ Lᵢ. A gradient method (``pcgrad``, ``cagrad``,
``graddrop``) composes with any weighting: ``create("dwa", 3, gradient="pcgrad")`` combines the
weighted task gradients on the shared parameters with PCGrad instead of summing them.

What a method may need beyond the losses comes through documented arguments, never special cases
in the caller: ``parameters()`` are learnable weights the caller's optimiser must also update
(Uncertainty's log-variances); ``needs_meta`` methods (Auto-λ) need ``meta=MetaStep(...)``, a
functional view of the network with a second batch; ``epoch_end(mean_losses)`` is called once per
epoch with each task's mean loss (DWA); ``alignment_batches()`` says how many batches' worth of
extra data the coming step's ``backward`` wants as ``extra_losses`` (0 by default: none): a caller
that sees k > 0 computes each task's loss at the current parameters on k fresh batches taken
together (the same tasks in the same order as ``losses``) and passes that list as
``backward(..., extra_losses=...)`` (OL-AUX's ablation, ``olaux`` with ``mode="ablation"``). A
method that asked for nothing ignores ``extra_losses``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from auxbench.foundations.lookahead import Params, SGDSettings
from auxbench.foundations.passes import TRAINING_STEP, Passes


@dataclass
class MetaStep:
    """A functional view of one training step, for methods that look ahead (Auto-λ).

    ``task_losses(params, batch)`` evaluates every task's loss with the network at ``params``
    (e.g. through ``torch.func.functional_call``) and must have no side effects (BatchNorm on
    copies of the running statistics, no logging), since a method may call it several times per
    step; ``params`` are the network's current named parameters; ``batch`` is the step's batch and
    ``meta_batch`` a second one (the next training batch or a held-out batch). ``sgd`` describes
    the optimiser's step (lr, momentum, weight decay, momentum buffers by parameter name):
    ``SGDSettings.of(optimizer, params)``; see ``auxbench.foundations.lookahead``.
    """

    params: Params
    task_losses: Callable[[Params, Any], list[torch.Tensor]]
    batch: Any
    meta_batch: Any
    sgd: SGDSettings


def flatten(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """One flat vector of ``tensors`` (in order)."""
    return torch.cat([t.reshape(-1) for t in tensors])


def task_gradients(losses: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> torch.Tensor:
    """(tasks, n) matrix: row i is ∇ losses[i] with respect to ``params`` (flattened; zeros where a
    loss does not depend on a parameter). The graph is kept for later backward passes."""
    rows = []
    for loss in losses:
        grads = torch.autograd.grad(
            loss, list(params), retain_graph=True, allow_unused=True, materialize_grads=True
        )
        rows.append(flatten(grads))
    return torch.stack(rows)


def log_tasks(log_losses: bool | str, n_tasks: int, auxiliary: Sequence[int]) -> tuple[int, ...]:
    """The tasks whose losses adaptive loss balancing (Hu et al., 2019) wraps in a log: ``True``
    or ``"all"``: every task; ``"auxiliary"``: the auxiliary tasks only (for a primary loss that can
    be <= 0, such as an actor-critic loss); ``False`` or ``"none"``: none."""
    choices = {True: range(n_tasks), "all": range(n_tasks), "auxiliary": auxiliary}
    choices.update({False: (), "none": ()})
    if log_losses not in choices:
        raise ValueError(
            f"log_losses must be true, false, 'all', 'auxiliary' or 'none', got {log_losses!r}"
        )
    return tuple(choices[log_losses])


def logged(losses: Sequence[torch.Tensor], tasks: Sequence[int], name: str) -> list[torch.Tensor]:
    """``losses`` with those of ``tasks`` replaced by their log; each of those must be > 0 (one
    host sync for all of them)."""
    if not bool(torch.stack([losses[i].detach().float() for i in tasks]).gt(0).all()):
        bad = next(i for i in tasks if not losses[i].item() > 0)
        raise ValueError(
            f"{name}: log_losses needs positive losses, got {losses[bad].item()} for task {bad} "
            "(log only the losses that stay > 0, e.g. log_losses='auxiliary', or none)"
        )
    return [torch.log(loss) if i in tasks else loss for i, loss in enumerate(losses)]


def accumulate_gradient(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """Add the flat vector ``flat`` to the ``.grad`` of ``params`` (as ``backward`` would)."""
    offset = 0
    for param in params:
        size = param.numel()
        piece = flat[offset : offset + size].view_as(param).to(param.dtype)
        param.grad = piece.clone() if param.grad is None else param.grad + piece
        offset += size


class GradientMethod:
    """Combines the (weighted) task gradients on the shared parameters into one gradient."""

    name: ClassVar[str] = "sum"
    description: ClassVar[str] = "the plain sum of the task gradients"

    def combine(self, grads: torch.Tensor) -> torch.Tensor:
        """(tasks, n) weighted task gradients → (n,) update direction; the plain sum here."""
        return grads.sum(dim=0)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


class Weighting:
    """Base class: fixed weights (1 unless ``initial_weights`` says otherwise)."""

    name: ClassVar[str]
    description: ClassVar[str]
    needs_meta: ClassVar[bool] = False
    # Tasks whose losses ``backward`` replaces by their log before anything else (see ``log_tasks``)
    logged_tasks: tuple[int, ...] = ()

    def __init__(
        self,
        n_tasks: int,
        primary: Sequence[int] = (0,),
        gradient: GradientMethod | None = None,
    ):
        if n_tasks < 1:
            raise ValueError(f"n_tasks must be >= 1, got {n_tasks}")
        primary = tuple(int(i) for i in primary)
        if not primary or any(not 0 <= i < n_tasks for i in primary):
            raise ValueError(f"primary must name tasks in [0, {n_tasks}), got {list(primary)}")
        self.n_tasks = n_tasks
        self.primary = primary
        self.auxiliary = tuple(i for i in range(n_tasks) if i not in primary)
        self.gradient = gradient
        self.weights = self.initial_weights()
        self.step_gradients: torch.Tensor | None = None  # see ``shared_gradients``

    def initial_weights(self) -> torch.Tensor:
        """The weights before any update: one per task."""
        return torch.ones(self.n_tasks)

    def parameters(self) -> list[torch.Tensor]:
        """Learnable parameters the caller's optimiser must update too (none by default)."""
        return []

    def alignment_batches(self) -> int:
        """How many batches' worth of extra data the coming step's ``backward`` wants as
        ``extra_losses`` (0 by default: none; see the module doc). Ask before each step."""
        return 0

    def backward(
        self,
        losses: Sequence[torch.Tensor],
        shared_params: Sequence[torch.Tensor],
        *,
        task_params: Sequence[torch.Tensor] | None = None,
        meta: MetaStep | None = None,
        extra_losses: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Accumulate gradients of the tasks' ``losses`` (see the module doc; those of
        ``logged_tasks`` are first replaced by their log); return the weighted total, detached.
        ``task_params`` (the non-shared parameters) saves one pass through the shared ones when a
        gradient method is used; ``meta`` is required when ``needs_meta``; ``extra_losses`` (one
        per task, on the ``alignment_batches()`` batches of extra data) only when the method asked
        for them, and ignored here."""
        if len(losses) != self.n_tasks:
            raise ValueError(f"{self.name} expects {self.n_tasks} losses, got {len(losses)}")
        if extra_losses is not None and len(extra_losses) != self.n_tasks:
            raise ValueError(
                f"{self.name} expects {self.n_tasks} extra_losses (one per task, as losses), "
                f"got {len(extra_losses)}"
            )
        if self.needs_meta and meta is None:
            raise ValueError(f"{self.name} needs meta=MetaStep(...) (see auxbench.weighting)")
        shared = [p for p in shared_params if p.requires_grad]
        if not shared:
            raise ValueError(f"{self.name}: no trainable shared parameters were given")
        if self.logged_tasks:
            losses = logged(losses, self.logged_tasks, self.name)
        self.update(losses, shared, meta)
        return self.weighted_backward(losses, shared, task_params)

    def update(
        self,
        losses: Sequence[torch.Tensor],
        shared_params: Sequence[torch.Tensor],
        meta: MetaStep | None,
    ) -> None:
        """Update ``self.weights`` before this step's backward (nothing for fixed weights)."""

    def shared_gradients(
        self, losses: Sequence[torch.Tensor], shared: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        """``task_gradients(losses, shared)`` of this step's (unweighted) losses, kept so that
        the step's own backward combines them instead of running another pass through the shared
        parameters. For ``update`` implementations that need the per-task gradients."""
        self.step_gradients = task_gradients(losses, shared)
        return self.step_gradients

    def minimum_passes(self) -> Passes:
        """The least one step needs (``auxbench.foundations.passes``): a forward and a backward; one task
        backward per task when a gradient method combines the per-task gradients."""
        if self.gradient is None:
            return TRAINING_STEP
        return Passes(forward=1, task_backward=self.n_tasks)

    def loss_weights(self) -> torch.Tensor:
        """The factors the losses are multiplied by in this step's backward."""
        return self.weights

    def weighted_total(self, losses: Sequence[torch.Tensor]) -> torch.Tensor:
        """Σ wᵢ Lᵢ with this step's ``loss_weights``."""
        weights = self.loss_weights()
        return sum(weights[i].to(loss.device) * loss for i, loss in enumerate(losses))

    def weighted_backward(
        self,
        losses: Sequence[torch.Tensor],
        shared: Sequence[torch.Tensor],
        task_params: Sequence[torch.Tensor] | None,
    ) -> torch.Tensor:
        """Backward of Σ wᵢ Lᵢ, the shared parameters' part combined by the gradient method
        (summed without one), from the per-task gradients ``update`` kept when it did."""
        total = self.weighted_total(losses)
        grads, self.step_gradients = self.step_gradients, None
        if self.gradient is None and grads is None:
            total.backward()
            return total.detach()
        weights = self.loss_weights()
        if grads is None:
            weighted = [weights[i].to(loss.device) * loss for i, loss in enumerate(losses)]
            grads = task_gradients(weighted, shared)
        else:
            grads = grads * weights.detach().to(grads).unsqueeze(1)
        combined = grads.sum(dim=0) if self.gradient is None else self.gradient.combine(grads)
        if task_params is not None:
            others = [p for p in (*task_params, *self.parameters()) if p.requires_grad]
            if others:
                torch.autograd.backward(total, inputs=others)
        else:  # backward into everything, then put back the shared parameters' own gradients
            before = [None if p.grad is None else p.grad.clone() for p in shared]
            total.backward()
            for param, grad in zip(shared, before, strict=True):
                param.grad = grad
        accumulate_gradient(shared, combined)
        return total.detach()

    def epoch_end(self, mean_losses: Sequence[float]) -> None:
        """Called once per epoch with each task's mean training loss (nothing by default)."""

    def task_logs(self) -> dict[str, torch.Tensor]:
        """Per-task values worth recording every epoch, one entry per task (the trainer writes
        them as ``<name>_<task>``; NaN where a value does not apply): the weights."""
        return {"weight": self.weights.detach()}

    def logs(self) -> dict[str, float]:
        """Values to log: each of ``task_logs`` per task (``weight_<i>``, ...)."""
        return {
            f"{name}_{i}": float(value)
            for name, values in self.task_logs().items()
            for i, value in enumerate(values)
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: the weights, any learnable state, the gradient method."""
        state = {"weights": self.weights.clone()}
        if self.gradient is not None:
            state["gradient"] = self.gradient.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = state["weights"].clone()
        if self.gradient is not None:
            self.gradient.load_state_dict(state.get("gradient", {}))


WEIGHTINGS: dict[str, type[Weighting]] = {}
GRADIENTS: dict[str, type[GradientMethod]] = {}


def register(cls):
    """Class decorator adding a ``Weighting`` or ``GradientMethod`` to its registry by name."""
    registry = GRADIENTS if issubclass(cls, GradientMethod) else WEIGHTINGS
    if cls.name in registry:
        raise ValueError(f"{cls.name!r} is registered twice")
    registry[cls.name] = cls
    return cls


def settings_for(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Weighting ``name``'s settings from a config's ``weighting_params``: the plain entries,
    overridden by the entries of the mapping keyed by ``name`` itself; mappings keyed by other
    weightings' names are left out (so ``{"autolambda": {"lr": 3e-4}}`` reaches Auto-λ only)."""
    plain = {key: value for key, value in params.items() if key not in WEIGHTINGS}
    return {**plain, **params.get(name, {})}


def create(
    name: str,
    n_tasks: int,
    primary: Sequence[int] = (0,),
    gradient: str | None = None,
    gradient_params: dict[str, Any] | None = None,
    **params: Any,
) -> Weighting:
    """The weighting method ``name`` for ``n_tasks`` losses (``primary`` are the primary tasks'
    indices), its gradients on shared parameters combined by ``gradient`` (default: summed);
    ``params`` are the method's own settings, ``gradient_params`` the gradient method's."""
    if name not in WEIGHTINGS:
        raise ValueError(
            f"unknown weighting {name!r}; choose one of: {', '.join(sorted(WEIGHTINGS))}"
        )
    combiner = None
    if gradient is not None:
        if gradient not in GRADIENTS:
            raise ValueError(
                f"unknown gradient method {gradient!r}; choose one of: {', '.join(sorted(GRADIENTS))}"
            )
        combiner = GRADIENTS[gradient](**(gradient_params or {}))
    return WEIGHTINGS[name](n_tasks, primary, combiner, **params)
