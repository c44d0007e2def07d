"""MAXL (Liu, Davison & Johns, NeurIPS 2019): a label network meta-learns the auxiliary task.

The main network gets an ``aux`` head of C·ψ outputs trained (focal loss) on soft labels from a
``LabelNetwork``. The label network (φ) is trained so that the main network's primary loss after
one virtual SGD step on the total loss is low, plus a batch-entropy term that keeps every
auxiliary class in use::

    min_φ  L_pri(θ'(φ)) + 0.2 · Σₖ p̄ₖ log p̄ₖ,   θ'(φ) = θ − α (∇θ L_total(θ, φ) + wd·θ + μ·buf)

The virtual step θ' is the step the main network's optimiser takes (SGD with its momentum μ and
buffer, and its weight decay wd: ``auxbench.foundations.lookahead``), so the generator
differentiates through the update the network really makes. The MAXL paper writes the plain
step θ − α∇θ L; with momentum 0 and no weight decay the two agree.

Three registered variants share ``MaxlMethod``; they differ only in the hypergradient strategy
(``SecondOrder`` or ``FiniteDifference``) and in whether the label network also weights samples:

- ``maxl``: exact second-order hypergradient through the virtual step;
- ``maxl-fo``: its central finite-difference approximation (two extra forward passes);
- ``wa-maxl``: MAXL whose label network also outputs per-sample weights ``2^(10w − 5)``
  (RL-AUX, "Weight-Adjusted Approaches"), meta-learned by the same objective.

``config.method_params`` (every key optional): ``psi`` (auxiliary classes per primary class: the
dataset's class hierarchy's where it has one, else 5),
``interleave`` (``"epoch"``: one generator pass over the meta batches after each epoch of the main
network; ``"step"``: one generator step after each main step), ``meta_split`` (``"train"``, or
``"val"``: the validation split, which is then no longer fully held out, since it also selects
the model), ``gen_lr`` (1e-3), ``gen_weight_decay`` (5e-4), ``gen_lr_step`` (50),
``gen_lr_gamma`` (0.5), ``entropy_weight`` (0.2) and ``fd_scale`` (0.01, ``maxl-fo``'s ε·‖d‖).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.func import functional_call

from auxbench.foundations.hierarchy import negative_batch_entropy
from auxbench.foundations.lookahead import (
    Params,
    SGDSettings,
    central_difference,
    gradients,
    virtual_step,
)
from auxbench.foundations.passes import Passes
from auxbench.methods.base import TrainerView, endless, method_params, register
from auxbench.methods.labels import (
    AUX,
    DEFAULT_PSI,
    GeneratedLabelMethod,
    GeneratedLabels,
    LabelNetwork,
    with_hierarchy_psi,
)
from auxbench.tasks import Batch, GeneratedLabelTask, Task

log = logging.getLogger(__name__)

DEFAULT_PARAMS: dict[str, Any] = {
    "psi": DEFAULT_PSI,
    "interleave": "epoch",
    "meta_split": "train",
    "gen_lr": 1e-3,
    "gen_weight_decay": 5e-4,
    "gen_lr_step": 50,
    "gen_lr_gamma": 0.5,
    "entropy_weight": 0.2,
    "fd_scale": 0.01,
}
CHOICES = {"interleave": ("epoch", "step"), "meta_split": ("train", "val")}


@dataclass
class VirtualStep:
    """The main network on one meta batch, evaluated functionally at any parameters θ, and the
    optimiser step it would take there (``sgd``).

    BatchNorm: every pass runs in train mode (batch statistics) on fresh *copies* of the model's
    buffers, so the real running statistics are never updated by the generator's passes.
    """

    model: nn.Module
    batch: Batch
    sgd: SGDSettings
    primary_task: Task
    aux_task: GeneratedLabelTask
    aux_weight: float

    def parameters(self, requires_grad: bool = False) -> Params:
        """The current parameters θ, detached from the model (which is never modified)."""
        return {
            name: p.detach().requires_grad_(requires_grad)
            for name, p in self.model.named_parameters()
        }

    def outputs(self, params: Params) -> dict[str, torch.Tensor]:
        buffers = {name: b.clone() for name, b in self.model.named_buffers()}
        return functional_call(self.model, (params, buffers), (self.batch.images,))

    def training_loss(self, params: Params, generated: GeneratedLabels) -> torch.Tensor:
        """L_total(θ, φ) = L_pri + weight × L_aux against the generated labels."""
        outputs = self.outputs(params)
        primary = self.primary_task.loss(outputs[self.primary_task.name], self.batch)
        aux = self.aux_task.loss_with(outputs[AUX], generated.probs, generated.weights)
        return primary + self.aux_weight * aux

    def primary(self, params: Params) -> torch.Tensor:
        return self.primary_task.loss(self.outputs(params)[self.primary_task.name], self.batch)

    def updated(self, params: Params, grads: Params) -> Params:
        """θ', the optimiser's step from θ with gradient ``grads``."""
        return virtual_step(params, grads, self.sgd)


class SecondOrder:
    """Exact hypergradient: autograd differentiates through the virtual step (``create_graph``)."""

    def surrogate(
        self, step: VirtualStep, generated: GeneratedLabels
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A scalar whose φ-gradient is dL_pri(θ')/dφ, and L_pri(θ')."""
        params = step.parameters(requires_grad=True)
        grads = gradients(step.training_loss(params, generated), params, create_graph=True)
        meta = step.primary(step.updated(params, grads))
        return meta, meta.detach()


class FiniteDifference:
    """First-order hypergradient (``lookahead.central_difference``): with d = ∇θ' L_pri(θ') and
    ε = scale / ‖d‖, dL_pri(θ')/dφ ≈ −α (∇φ L_total(θ + εd, φ) − ∇φ L_total(θ − εd, φ)) / 2ε."""

    def __init__(self, scale: float = 0.01):
        self.scale = scale

    def surrogate(
        self, step: VirtualStep, generated: GeneratedLabels
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A scalar whose φ-gradient is the approximation (both ±ε losses in one backward)."""
        params = step.parameters(requires_grad=True)
        grads = gradients(step.training_loss(params, generated.detach()), params)
        updated = {k: p.detach().requires_grad_() for k, p in step.updated(params, grads).items()}
        meta = step.primary(updated)
        direction = gradients(meta, updated)
        surrogate = central_difference(
            lambda theta: step.training_loss(theta, generated),
            step.parameters(),
            direction,
            self.scale,
            step.sgd.lr,
        )
        return surrogate, meta.detach()


@contextmanager
def _train_mode(module: nn.Module):
    was_training = module.training
    module.train()
    try:
        yield
    finally:
        module.train(was_training)


class MaxlMethod(GeneratedLabelMethod):
    """Shared MAXL machinery; subclasses choose ``first_order`` and ``weighted``."""

    first_order: ClassVar[bool] = False
    weighted: ClassVar[bool] = False

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.params = method_params(
            config.method_params,
            with_hierarchy_psi(DEFAULT_PARAMS, dataset),
            self.name,
            choices=CHOICES,
            integers=("psi", "gen_lr_step"),
            positive=("gen_lr", "fd_scale"),
            non_negative=("gen_weight_decay", "entropy_weight"),
            unit_interval=("gen_lr_gamma",),
        )
        self.psi: int = self.params["psi"]
        self.entropy_weight: float = self.params["entropy_weight"]
        self.hypergradient = (
            FiniteDifference(self.params["fd_scale"]) if self.first_order else SecondOrder()
        )
        self.trainer: TrainerView | None = None

    def setup(self, trainer: TrainerView) -> None:
        self.trainer = trainer
        data, config = self.dataset, self.config
        self.label_net = trainer.placed(
            LabelNetwork.build(
                config.model,
                data.in_channels,
                data.num_classes,
                self.psi,
                self.weighted,
                config.width,
                data.image_size,
            )
        )
        self.optimizer = torch.optim.SGD(
            self.label_net.parameters(),
            lr=self.params["gen_lr"],
            weight_decay=self.params["gen_weight_decay"],
        )
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=self.params["gen_lr_step"], gamma=self.params["gen_lr_gamma"]
        )
        self._meta_shuffle = torch.Generator().manual_seed(config.seed + 2)
        self._meta_augment = torch.Generator(device=trainer.device).manual_seed(config.seed + 3)
        self._meta_stream: Iterator[Batch] | None = None
        if self.params["meta_split"] == "val":
            log.warning(
                "%s: the generator learns on the validation split, which also selects the model, "
                "so validation is no longer fully held out",
                self.name,
            )
        self._reset_epoch_stats()

    # --- the auxiliary task of the main network -------------------------------------------------

    def generate(self, images: torch.Tensor, labels: torch.Tensor) -> GeneratedLabels:
        """The label network's output. It always normalises with batch statistics (train mode),
        so the main network trains on labels computed exactly as in the generator objective."""
        self.label_net.train()
        return self.label_net(images, labels)

    def targets(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The label network's soft labels (and weights) for ``batch``, without gradients."""
        with torch.no_grad():
            generated = self.generate(batch.images, batch.labels)
            if self.recording:
                self._record(generated)
        return generated.probs, generated.weights

    # --- the generator ---------------------------------------------------------------------------

    def virtual_step(self, batch: Batch) -> VirtualStep:
        """The main network at its current θ on a meta batch, with its optimiser's current step."""
        model = self.trainer.model
        return VirtualStep(
            model,
            batch,
            SGDSettings.of(self.trainer.optimizer, dict(model.named_parameters())),
            self.trainer.tasks[0],
            self.aux_task,
            self.aux_weight,
        )

    def generator_gradients(self, batch: Batch) -> tuple[list[torch.Tensor], torch.Tensor]:
        """∇φ of the generator objective on one meta batch (by ``self.hypergradient``), and the
        primary loss after the virtual step. Neither network's parameters, gradients nor running
        statistics change."""
        step = self.virtual_step(batch)
        with _train_mode(self.trainer.model):
            generated = self.generate(batch.images, batch.labels)
            surrogate, meta = self.hypergradient.surrogate(step, generated)
            objective = surrogate + self.entropy_weight * negative_batch_entropy(generated.probs)
            grads = torch.autograd.grad(
                objective, list(self.label_net.parameters()), materialize_grads=True
            )
        return list(grads), meta

    def generator_step(self, batch: Batch) -> torch.Tensor:
        """One SGD step of the label network; returns the primary loss after the virtual step."""
        grads, meta = self.generator_gradients(batch)
        for param, grad in zip(self.label_net.parameters(), grads, strict=True):
            param.grad = grad
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._meta_sum += meta
        self._meta_steps += 1
        return meta

    def after_step(self, batch: Batch) -> None:
        if self.params["interleave"] != "step":
            return
        if self.params["meta_split"] == "train":
            self.generator_step(batch)
        else:
            if self._meta_stream is None:
                self._meta_stream = endless(self._meta_batches)
            self.generator_step(next(self._meta_stream))

    def after_epoch(self, epoch: int) -> dict[str, float]:
        if self.params["interleave"] == "epoch":
            for meta in self._meta_batches():
                self.generator_step(meta)
        self.scheduler.step()
        logs = self._epoch_logs()
        self._reset_epoch_stats()
        return logs

    def _meta_batches(self) -> Iterator[Batch]:
        """One epoch of meta batches from the configured split, shuffled and augmented from the
        method's own random streams: the generator's passes never shift the order or the
        augmentation of the main network's batches, so a run stays paired with its seed's runs
        of the other methods."""
        split = None if self.params["meta_split"] == "train" else self.trainer.val_split
        return self.trainer.batches(split, self._meta_shuffle, self._meta_augment)

    def minimum_passes(self, step: Passes) -> Passes:
        """The step, the label network's forward for its labels, and the generator's share: per
        generator step, the label network's forward and backward and, on the main network, a
        gradient with its graph (forward, backward), a forward and backward at θ' and either the
        double backward through the first gradient (exact) or two forwards at θ ± εd (first
        order). One generator step per training step, except a generator epoch over the validation
        split after each training epoch: len(val) / len(train) of one."""
        if self.first_order:
            generator = Passes(forward=5, backward=3)
        else:
            generator = Passes(forward=4, backward=4)
        share = 1.0
        if self.params["interleave"] == "epoch" and self.params["meta_split"] == "val":
            share = len(self.trainer.val_split) / len(self.trainer.train_split)
        return step + Passes(inference=1) + share * generator

    # --- per-epoch logs --------------------------------------------------------------------------

    def _reset_epoch_stats(self) -> None:
        device, k = self.trainer.device, self.dataset.num_classes * self.psi
        self._prob_sum = torch.zeros(k, dtype=torch.float64, device=device)
        self._class_counts = torch.zeros(k, dtype=torch.int64, device=device)
        self._weights: list[torch.Tensor] = []
        self._meta_sum = torch.zeros((), dtype=torch.float64, device=device)
        self._meta_steps = 0

    def _record(self, generated: GeneratedLabels) -> None:
        probs = generated.probs
        self._prob_sum += probs.sum(dim=0).double()
        self._class_counts += torch.bincount(probs.argmax(dim=1), minlength=probs.shape[1])
        if generated.weights is not None:
            self._weights.append(generated.weights.double())

    def _epoch_logs(self) -> dict[str, float]:
        """Entropy of the epoch's mean generated distribution, auxiliary classes used (argmax
        counts ≥ 1), mean post-step primary loss of the generator and, when weighted, the mean and
        std of the per-sample weights."""
        total = self._prob_sum.sum()
        mean = self._prob_sum / total if total > 0 else self._prob_sum
        entropy = -float(negative_batch_entropy(mean.unsqueeze(0)))
        logs = {
            "gen_entropy": entropy,
            "gen_classes_used": int((self._class_counts > 0).sum()),
            "gen_meta_loss": float(self._meta_sum) / max(self._meta_steps, 1),
        }
        if self.weighted:
            weights = torch.cat(self._weights) if self._weights else torch.full((1,), math.nan)
            logs["aux_weight_mean"] = float(weights.mean())
            logs["aux_weight_std"] = float(weights.std(correction=0))
        return logs

    # --- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "label_net": self.label_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "meta_shuffle": self._meta_shuffle.get_state(),
            "meta_augment": self._meta_augment.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the generator and its random streams. A per-step stream of validation meta
        batches (``interleave: step``, ``meta_split: val``) restarts with a fresh permutation."""
        self.label_net.load_state_dict(state["label_net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._meta_shuffle.set_state(state["meta_shuffle"])
        self._meta_augment.set_state(state["meta_augment"])
        self._meta_stream = None


@register
class Maxl(MaxlMethod):
    name = "maxl"
    description = "MAXL: meta-learned auxiliary labels, exact second-order hypergradient"
    uses_lambda = True


@register
class MaxlFirstOrder(MaxlMethod):
    name = "maxl-fo"
    description = "MAXL with a finite-difference (first-order) hypergradient"
    uses_lambda = True
    first_order = True


@register
class WeightAwareMaxl(MaxlMethod):
    name = "wa-maxl"
    description = (
        "weight-aware MAXL: meta-learned auxiliary labels and per-sample weights 2^(10w-5)"
    )
    uses_lambda = False
    weighted = True
