"""The trainer: owns the loop, evaluation, model selection, logging and result files.

A method (``auxbench.methods``) contributes only its extra heads and losses; everything else is here.
``TrainingLoop`` and the module's helpers (device splits, batches, weighting, optimiser and
schedule, look-ahead view) are what ``Trainer`` shares with the multi-domain trainer
(``auxbench.training.multidomain``); ``train`` runs either, by the dataset's kind.
"""

from __future__ import annotations

import csv
import io
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.func import functional_call
from tqdm import tqdm

from auxbench import weighting
from auxbench.config import TrainConfig
from auxbench.data import DATASETS, Dataset, MultiDomainDataset, Split, augment, load, normalize
from auxbench.foundations import atomic
from auxbench.foundations.errors import ConfigError
from auxbench.foundations.losses import classification_loss
from auxbench.foundations.metrics import ConfusionMatrix
from auxbench.methods import Batch, check_method, create_method
from auxbench.models import build_model
from auxbench.tasks.noise import NAME as NOISE
from auxbench.tasks.noise import NoiseTask
from auxbench.training.checkpoint import (
    CHECKPOINT_NAME,
    NonFiniteLoss,
    Preempted,
    inject_fault,
    load_checkpoint,
    preemption_requests,
    rng_state,
    set_rng_state,
)
from auxbench.weighting import MetaStep, Weighting, settings_for

log = logging.getLogger(__name__)

LAST_EPOCHS_AVERAGED = 15

AuxiliaryLosses = Callable[[Batch, dict[str, torch.Tensor]], dict[str, torch.Tensor]]


@dataclass
class StepResult:
    """One optimiser step: the weighted total loss and the unweighted task losses (detached),
    and the heads' outputs."""

    total: torch.Tensor
    outputs: dict[str, torch.Tensor]
    losses: list[torch.Tensor]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU; other names are taken as they are."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TensorSplit:
    """A split held on the training device as normalised float images."""

    images: torch.Tensor
    labels: torch.Tensor
    aux_labels: torch.Tensor | None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def on_device(
    split: Split, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> TensorSplit:
    """``split`` normalised with ``mean`` / ``std`` into float images on ``device``."""
    images = normalize(split.images.to(device), mean, std)
    aux = None if split.aux_labels is None else split.aux_labels.to(device)
    return TensorSplit(images, split.labels.to(device), aux)


EVALUATION_SUBSET_SEED = 0  # every run with an ``eval_limit`` scores the same images


def limited(split: Split, limit: int | None, seed: int = EVALUATION_SUBSET_SEED) -> Split:
    """A seeded random subset of ``limit`` examples of ``split`` (all of it when None or more)."""
    if limit is None or limit >= len(split):
        return split
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    return split.subset(order[:limit])


def split_batches(
    split: TensorSplit,
    batch_size: int,
    shuffle: torch.Generator,
    augment_with: torch.Generator,
    crop_padding: int = 0,
    horizontal_flip: bool = False,
) -> Iterator[Batch]:
    """One epoch of ``split`` in batches, in an order drawn from ``shuffle``, each batch randomly
    cropped (``crop_padding``) and flipped (``horizontal_flip``) with ``augment_with``; no
    augmentation (and no draws from ``augment_with``) when both are off."""
    order = torch.randperm(len(split), generator=shuffle).to(split.images.device)
    for start in range(0, len(split), batch_size):
        index = order[start : start + batch_size]
        images = augment(split.images[index], crop_padding, horizontal_flip, augment_with)
        aux = None if split.aux_labels is None else split.aux_labels[index]
        yield Batch(images, split.labels[index], aux, index)


def create_weighting(
    config: TrainConfig, n_tasks: int, primary: list[int], fixed_weights: list[float]
) -> Weighting:
    """The configured weighting of ``n_tasks`` losses (``primary``: the primary tasks' indices),
    with its settings from ``weighting_params`` (``settings_for``); ``fixed`` takes
    ``fixed_weights`` unless the settings give ``weights``."""
    params = settings_for(config.weighting, config.weighting_params)
    if config.weighting == "fixed" and "weights" not in params:
        params["weights"] = fixed_weights
    try:
        return weighting.create(
            config.weighting,
            n_tasks,
            primary=primary,
            gradient=config.gradient,
            gradient_params=config.gradient_params,
            **params,
        )
    except (TypeError, ValueError) as error:
        raise ConfigError(f"weighting {config.weighting!r}: {error}") from error


def create_optimizer(
    model: torch.nn.Module, task_weighting: Weighting, config: TrainConfig
) -> torch.optim.SGD:
    """SGD with the config's lr, momentum and weight decay on the model's parameters, plus the
    weighting's learnable weights (Uncertainty) without weight decay."""
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    if task_weighting.parameters():
        optimizer.add_param_group({"params": task_weighting.parameters(), "weight_decay": 0})
    return optimizer


def create_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler:
    """The config's lr schedule, stepped once per epoch: ``step`` (StepLR(lr_step, lr_gamma)) or
    ``cosine`` (from lr to 0 over ``epochs``: lr·(1 + cos(π·e / epochs)) / 2 in epoch e + 1)."""
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=config.lr_step, gamma=config.lr_gamma
    )


def buffer_copies(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the model's buffers, for functional calls that must not move its BatchNorm
    statistics."""
    return {name: buffer.clone() for name, buffer in model.named_buffers()}


def look_ahead(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    task_losses: Callable[[dict[str, torch.Tensor], Any], list[torch.Tensor]],
    batch: Any,
    meta_batch: Any,
) -> MetaStep:
    """The ``MetaStep`` of one SGD step of ``model`` on ``batch`` for weightings that look ahead:
    its named parameters, ``task_losses(params, batch)`` (without side effects), the
    ``meta_batch``, and the optimiser's lr, momentum, weight decay and momentum buffers."""
    group, named = optimizer.param_groups[0], dict(model.named_parameters())
    return MetaStep(
        params=named,
        task_losses=task_losses,
        batch=batch,
        meta_batch=meta_batch,
        lr=group["lr"],
        momentum=group["momentum"],
        weight_decay=group["weight_decay"],
        momentum_buffers={
            name: optimizer.state.get(p, {}).get("momentum_buffer") for name, p in named.items()
        },
    )


class TrainingLoop:
    """The epochs, evaluation, model selection, early stopping and result files every trainer
    shares. A subclass sets ``config``, ``device``, ``dataset`` (with a ``source``), ``model``,
    ``optimizer``, ``weighting``, ``task_names`` and ``history = []``, and implements
    ``run_epoch`` (train one epoch, return its logs), ``evaluation`` (the ``val_*`` and
    ``test_*`` columns, among them ``val_acc``, the model-selection score, and ``test_acc``,
    ``test_f1``, ``test_precision``, ``test_recall``) and ``split_sizes``; ``extra_metrics`` and
    ``saved_model`` may add to ``metrics.json`` and ``model.pt``."""

    config: TrainConfig
    device: torch.device
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    weighting: Weighting
    task_names: list[str]
    history: list[dict[str, Any]]

    def start(self, config: TrainConfig, dataset: Any = None) -> Any:
        """Validate ``config``, pick the device, seed the global random streams, and return
        ``dataset`` or, when None, the configured dataset loaded."""
        self.config = check_method(config.validate())
        self.device = resolve_device(config.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its kernels
        seed_everything(config.seed)
        if dataset is not None:
            return dataset
        return load(
            config.dataset,
            root=config.data_root,
            val_fraction=config.val_fraction,
            seed=config.seed,
        )

    def run_epoch(self, epoch: int) -> dict[str, float]:
        raise NotImplementedError

    def evaluation(self) -> dict[str, float]:
        raise NotImplementedError

    def split_sizes(self) -> dict[str, int]:
        """``n_train``, ``n_val`` and ``n_test``: the number of images in each split."""
        raise NotImplementedError

    def extra_metrics(self, best: dict[str, Any]) -> dict[str, Any]:
        """Entries of ``metrics.json`` beyond the shared ones (``best``: the selected epoch)."""
        return {}

    def saved_model(self) -> dict[str, Any]:
        """What ``model.pt`` holds: the network's and the weighting's state."""
        return {"model": self.model.state_dict(), "weighting": self.weighting.state_dict()}

    def placed(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` on the training device, in channels-last format when the config asks (for
        the main network and the networks a method runs beside it)."""
        module = module.to(self.device)
        if self.config.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def prepared(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` on the device, in channels-last format and compiled when the config asks
        (compiling in place keeps its parameter names, so checkpoints and functional calls of
        the meta-steps see the same module)."""
        model = self.placed(model)
        if self.config.compile:
            backend = self.config.compile if isinstance(self.config.compile, str) else "inductor"
            model.compile(backend=backend)
        return model

    def autocast(self):
        """bf16 autocast on the training device when the config asks for it, else a no-op."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16)

    def augmentation(self, dataset: Dataset) -> dict[str, Any]:
        """``split_batches``'s augmentation settings: the dataset's, or none when ``augment`` is
        off."""
        if not self.config.augment:
            return {}
        return {"crop_padding": dataset.crop_padding, "horizontal_flip": dataset.horizontal_flip}

    @torch.no_grad()
    def classification_summary(
        self,
        split: TensorSplit,
        num_classes: int,
        logits_of: Callable[[torch.Tensor], torch.Tensor],
    ) -> dict[str, float]:
        """Accuracy and macro precision, recall and F1 of ``logits_of(images)`` on ``split``, in
        evaluation mode and batches of ``eval_batch_size``."""
        self.model.eval()
        matrix = ConfusionMatrix(num_classes, self.device)
        size = self.config.eval_batch_size
        for start in range(0, len(split), size):
            with self.autocast():
                logits = logits_of(split.images[start : start + size])
            matrix.update(logits, split.labels[start : start + size])
        return matrix.summary()

    def check_finite(self, first_bad: torch.Tensor) -> None:
        """Raise ``NonFiniteLoss`` naming the first batch and loss term that was NaN or ±inf in
        this epoch (tracked on the device by ``note_first_non_finite``, checked once an epoch, so
        the loop never waits for the device)."""
        batch, task = first_bad.tolist()
        if batch >= 0:
            raise NonFiniteLoss(
                f"epoch {len(self.history) + 1}, batch {batch}: the '{self.task_names[task]}' "
                "loss is not finite (NaN or inf); lower the learning rate or check the data. "
                "The run is marked failed: no metrics are written."
            )

    def weight_logs(self) -> dict[str, float]:
        """The weighting's ``task_logs`` as ``<name>_<task>`` (``weight_<task>``, GCS's
        ``kept_<task>``, ...), for weightings that change them (not ``fixed``)."""
        if self.config.weighting == "fixed":
            return {}
        return {
            f"{name}_{task}": value
            for name, values in self.weighting.task_logs().items()
            for task, value in zip(self.task_names, values.tolist(), strict=True)
        }

    def fit(self, out_dir: Path | None = None) -> dict[str, Any]:
        """Train for ``epochs`` (or until early stopping) and return the run's metrics.

        When ``out_dir`` is given, ``history.csv`` and ``checkpoint.pt`` are rewritten after every
        epoch, and ``metrics.json`` and ``model.pt`` written at the end (the checkpoint is then
        removed), each atomically. A checkpoint already there is resumed from (see
        ``auxbench.training.checkpoint``); SIGTERM/SIGUSR1 stop the run after the current epoch's
        checkpoint by raising ``Preempted``.
        """
        config = self.config
        out = Path(out_dir) if out_dir is not None else None
        checkpoint = out / CHECKPOINT_NAME if out is not None else None
        elapsed = 0.0
        if checkpoint is not None and checkpoint.exists():
            elapsed = self.load_state_dict(load_checkpoint(checkpoint, config.to_dict()))
            log.info("resuming %s after epoch %d", checkpoint, len(self.history))
        started = time.perf_counter() - elapsed
        epochs = tqdm(
            range(len(self.history) + 1, config.epochs + 1),
            desc=f"{config.method} {config.weighting} seed {config.seed}",
            disable=None,
            unit="epoch",
        )
        with preemption_requests() as stop:
            for epoch in epochs:
                if self._early_stopped():
                    break
                row = self._epoch(epoch)
                epochs.set_postfix(
                    val_acc=f"{row['val_acc']:.4f}", test_acc=f"{row['test_acc']:.4f}"
                )
                if out is not None:
                    atomic.write_text(out / "history.csv", _csv(self.history))
                    atomic.save_torch(checkpoint, self.state_dict(time.perf_counter() - started))
                    inject_fault(out, epoch)
                if stop:
                    raise Preempted(epoch, checkpoint)
        metrics = self._metrics(self.best(), time.perf_counter() - started)
        if out is not None:
            atomic.save_torch(out / "model.pt", self.saved_model())
            atomic.write_json(out / "metrics.json", metrics)
            checkpoint.unlink(missing_ok=True)
        return metrics

    def _epoch(self, epoch: int) -> dict[str, Any]:
        """Train and evaluate one epoch; append its row to the history and return it."""
        epoch_start = time.perf_counter()
        row: dict[str, Any] = {"epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"]}
        row.update(self.run_epoch(epoch))
        row.update(self.evaluation())
        row["epoch_time_s"] = time.perf_counter() - epoch_start
        self.history.append(row)
        log.info("epoch %d: %s", epoch, _brief(row))
        return row

    def best(self) -> dict[str, Any]:
        """The history row with the highest validation score (the first one on ties)."""
        return max(self.history, key=lambda row: row["val_acc"])

    def _early_stopped(self) -> bool:
        patience = self.config.patience
        if patience is None or not self.history:
            return False
        last = self.history[-1]["epoch"]
        if last - self.best()["epoch"] < patience:
            return False
        log.info("early stop after epoch %d: no validation gain for %d epochs", last, patience)
        return True

    def generators(self) -> dict[str, torch.Generator]:
        """The trainer's own random streams, saved in checkpoints (none by default)."""
        return {}

    def extra_state(self) -> dict[str, Any]:
        """State of the subclass's own parts (e.g. a method's) for checkpoints."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``extra_state`` returned."""

    def state_dict(self, elapsed: float = 0.0) -> dict[str, Any]:
        """Everything needed to continue the run (see ``auxbench.training.checkpoint``)."""
        return {
            "config": self.config.to_dict(),
            "history": self.history,
            "elapsed_s": elapsed,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "weighting": self.weighting.state_dict(),
            "extra": self.extra_state(),
            "generators": {name: g.get_state() for name, g in self.generators().items()},
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> float:
        """Restore what ``state_dict`` returned; returns the elapsed training time."""
        self.history = list(state["history"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.weighting.load_state_dict(state["weighting"])
        self.load_extra_state(state["extra"])
        for name, generator in self.generators().items():
            generator.set_state(state["generators"][name])
        set_rng_state(state["rng"])
        return float(state["elapsed_s"])

    def _metrics(self, best: dict[str, Any], wall_time: float) -> dict[str, Any]:
        last = self.history[-LAST_EPOCHS_AVERAGED:]
        final = self.history[-1]
        return {
            "test_acc_at_best_val": best["test_acc"],
            "test_f1_at_best_val": best["test_f1"],
            "test_precision_at_best_val": best["test_precision"],
            "test_recall_at_best_val": best["test_recall"],
            "best_epoch": best["epoch"],
            "val_acc_best": best["val_acc"],
            "test_acc_final": final["test_acc"],
            "test_acc_last15_mean": sum(r["test_acc"] for r in last) / len(last),
            "epochs_run": final["epoch"],
            "stopped_early": final["epoch"] < self.config.epochs,
            "wall_time_s": wall_time,
            "device": _device_name(self.device),
            "torch_version": torch.__version__,
            "dataset_source": self.dataset.source,
            **self.split_sizes(),
            **self.extra_metrics(best),
            "config": self.config.to_dict(),
        }


class Trainer(TrainingLoop):
    """Trains one (dataset, method, weighting, λ, seed) run and writes its results."""

    def __init__(self, config: TrainConfig, dataset: Dataset | None = None):
        dataset = self.start(config, dataset)
        if isinstance(dataset, MultiDomainDataset):
            raise ConfigError(
                f"dataset {dataset.name!r} is multi-domain: train it with "
                "auxbench.training.multidomain.MultiDomainTrainer (auxbench.training.supervised.train picks it)"
            )
        self.dataset = dataset
        self.train_split = self._on_device(limited(dataset.train, config.train_limit, config.seed))
        self.val_split = self._on_device(limited(dataset.val, config.eval_limit))
        self.test_split = self._on_device(limited(dataset.test, config.eval_limit))

        self.method = create_method(config.method, config, dataset)
        self.noise = None
        if config.noise_task:
            classes = config.noise_classes or dataset.num_classes
            self.noise = NoiseTask(len(self.train_split), classes, config.seed + 5, self.device)
        heads = {
            "primary": dataset.num_classes,
            **self.method.heads(),
            **({NOISE: self.noise.classes} if self.noise is not None else {}),
        }
        self.task_names = list(heads)
        self.model = self.prepared(
            build_model(config.model, dataset.in_channels, heads, config.width, dataset.image_size)
        )
        self.shared_params = list(self.model.trunk.parameters())
        self.task_params = list(self.model.heads.parameters())
        method_weights = self.method.loss_weights()
        self.weighting = create_weighting(
            config,
            len(self.task_names),
            primary=[0],
            fixed_weights=[
                1.0 if name == "primary" else method_weights.get(name, config.lam)
                for name in self.task_names
            ],
        )
        self.optimizer = create_optimizer(self.model, self.weighting, config)
        self.scheduler = create_scheduler(self.optimizer, config)
        self.shuffle_generator = torch.Generator().manual_seed(config.seed)
        self.augment_generator = torch.Generator(device=self.device).manual_seed(config.seed + 1)
        self.meta_shuffle_generator = torch.Generator().manual_seed(config.seed + 6)
        self.meta_augment_generator = torch.Generator(device=self.device).manual_seed(
            config.seed + 7
        )
        self.history: list[dict[str, Any]] = []
        self.method.setup(self)

    def _on_device(self, split: Split) -> TensorSplit:
        return on_device(split, self.dataset.mean, self.dataset.std, self.device)

    def batches(
        self,
        split: TensorSplit | None = None,
        shuffle: torch.Generator | None = None,
        augment_with: torch.Generator | None = None,
    ) -> Iterator[Batch]:
        """One epoch of shuffled, augmented batches of ``split`` (default: the training split).

        ``shuffle`` and ``augment_with`` are the random generators to draw from (default: the
        trainer's own), so a method can iterate another split without disturbing them.
        """
        return split_batches(
            self.train_split if split is None else split,
            self.config.batch_size,
            self.shuffle_generator if shuffle is None else shuffle,
            self.augment_generator if augment_with is None else augment_with,
            **self.augmentation(self.dataset),
        )

    def task_losses(
        self,
        batch: Batch,
        outputs: dict[str, torch.Tensor],
        auxiliary_losses: AuxiliaryLosses | None = None,
    ) -> list[torch.Tensor]:
        """Unweighted losses in the order of ``task_names``: primary, the method's auxiliary
        losses (``auxiliary_losses(batch, outputs)``, default: the method's own; an environment
        that chooses the auxiliary labels itself passes its own) and the noise task's."""
        auxiliary = (auxiliary_losses or self.method.auxiliary_losses)(batch, outputs)
        losses = [self.primary_loss(outputs["primary"], batch.labels)]
        losses += [auxiliary[name] for name in self.method.heads()]
        if self.noise is not None:
            losses.append(self.noise.loss(batch, outputs, self.primary_loss))
        return losses

    def loss(
        self, batch: Batch, auxiliary_losses: AuxiliaryLosses | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted total loss with the current task weights, and the heads' outputs."""
        with self.autocast():
            outputs = self.model(batch.images)
        losses = self.task_losses(batch, outputs, auxiliary_losses)
        return self.weighting.weighted_total(losses), outputs

    def step(self, batch: Batch, auxiliary_losses: AuxiliaryLosses | None = None) -> StepResult:
        """One optimiser step of the main network on ``batch``: the weighting turns the task
        losses into gradients (looking ahead on a meta batch when it needs to)."""
        with self.autocast():
            outputs = self.model(batch.images)
        losses = self.task_losses(batch, outputs, auxiliary_losses)
        self.optimizer.zero_grad(set_to_none=True)
        meta = self._meta_step(batch, auxiliary_losses) if self.weighting.needs_meta else None
        total = self.weighting.backward(
            losses, self.shared_params, task_params=self.task_params, meta=meta
        )
        self.optimizer.step()
        return StepResult(total, outputs, [loss.detach() for loss in losses])

    def _meta_step(self, batch: Batch, auxiliary_losses: AuxiliaryLosses | None) -> MetaStep:
        """The functional view of this step for weightings that look ahead (Auto-λ): the network's
        parameters, its task losses at any parameters (BatchNorm on copies of its buffers, so the
        look-ahead never changes the running statistics), this batch, the next batch of the
        ``meta_split`` stream, and the SGD step's settings and momentum buffers."""
        model = self.model

        def task_losses(params: dict[str, torch.Tensor], on: Batch) -> list[torch.Tensor]:
            with self.autocast():
                outputs = functional_call(model, (params, buffer_copies(model)), (on.images,))
            # The caller's auxiliary labels belong to ``batch``; other batches use the method's.
            with self.method.not_recording():
                return self.task_losses(on, outputs, auxiliary_losses if on is batch else None)

        return look_ahead(model, self.optimizer, task_losses, batch, self._meta_batch())

    def _meta_batch(self) -> Batch:
        """A random batch of the ``meta_split`` (no repeats within it), drawn from its own random
        streams, so look-ahead never disturbs the training batches and resumes exactly."""
        split = self.train_split if self.config.meta_split == "train" else self.val_split
        index = torch.randperm(len(split), generator=self.meta_shuffle_generator)
        index = index[: self.config.batch_size].to(self.device)
        augmentation = self.augmentation(self.dataset)
        images = augment(
            split.images[index],
            augmentation.get("crop_padding", 0),
            augmentation.get("horizontal_flip", False),
            generator=self.meta_augment_generator,
        )
        aux = None if split.aux_labels is None else split.aux_labels[index]
        return Batch(images, split.labels[index], aux, index)

    def generators(self) -> dict[str, torch.Generator]:
        return {
            "shuffle": self.shuffle_generator,
            "augment": self.augment_generator,
            "meta_shuffle": self.meta_shuffle_generator,
            "meta_augment": self.meta_augment_generator,
        }

    def extra_state(self) -> dict[str, Any]:
        return {"method": self.method.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.method.load_state_dict(state["method"])

    def primary_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The configured loss (focal or cross-entropy) of primary logits against labels."""
        return classification_loss(self.config.loss, logits, labels, self.config.focal_gamma)

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training split; returns mean loss and accuracy."""
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        task_sums = torch.zeros(len(self.task_names), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        first_bad = no_bad_loss(self.device)
        for number, batch in enumerate(self.batches()):
            result = self.step(batch)
            self.method.after_step(batch)
            losses = torch.stack(result.losses).float()
            loss_sum += result.total * len(batch.labels)
            task_sums += losses * len(batch.labels)
            correct += (result.outputs["primary"].argmax(dim=1) == batch.labels).sum()
            note_first_non_finite(first_bad, number, losses)
        self.check_finite(first_bad)
        self.scheduler.step()
        n = len(self.train_split)
        self.weighting.epoch_end((task_sums / n).tolist())
        return {"train_loss": float(loss_sum) / n, "train_acc": int(correct) / n}

    def run_epoch(self, epoch: int) -> dict[str, float]:
        """The method's ``before_epoch``, one training epoch, then its ``after_epoch``; returns
        their logs (no evaluation)."""
        row = dict(self.method.before_epoch(epoch))
        row.update(self.train_epoch())
        row.update(self.method.after_epoch(epoch))
        row.update(self.weight_logs())
        return row

    def evaluate(self, split: TensorSplit) -> dict[str, float]:
        """Primary-task accuracy and macro precision, recall and F1 on ``split``."""
        return self.classification_summary(
            split, self.dataset.num_classes, lambda images: self.model(images)["primary"]
        )

    def evaluation(self) -> dict[str, float]:
        """The primary task's ``val_*`` and ``test_*`` accuracy, precision, recall and F1."""
        return {
            **_prefixed("val", self.evaluate(self.val_split)),
            **_prefixed("test", self.evaluate(self.test_split)),
        }

    def split_sizes(self) -> dict[str, int]:
        return {
            "n_train": len(self.train_split),
            "n_val": len(self.val_split),
            "n_test": len(self.test_split),
        }

    def saved_model(self) -> dict[str, Any]:
        """The network's, the method's and the weighting's state."""
        return {**super().saved_model(), "method": self.method.state_dict()}


def train(config: TrainConfig, out_dir: Path | None = None) -> dict[str, Any]:
    """Train one run as configured and return its metrics (see ``TrainingLoop.fit``): with the
    multi-domain trainer for a multi-domain dataset, else with ``Trainer``."""
    if DATASETS[config.dataset].domains is not None:
        from auxbench.training.multidomain import MultiDomainTrainer

        return MultiDomainTrainer(config).fit(out_dir)
    return Trainer(config).fit(out_dir)


def no_bad_loss(device: torch.device) -> torch.Tensor:
    """The (batch, task) record of ``note_first_non_finite`` before any bad loss: (-1, -1)."""
    return torch.full((2,), -1, dtype=torch.int64, device=device)


def note_first_non_finite(first_bad: torch.Tensor, batch: int, losses: torch.Tensor) -> None:
    """Record (batch, task) of the first non-finite loss in ``first_bad``, on the device."""
    finite = torch.isfinite(losses)
    new = (first_bad[0] < 0) & ~finite.all()
    task = torch.argmin(finite.to(torch.int64))
    first_bad.copy_(torch.where(new, torch.stack([torch.full_like(task, batch), task]), first_bad))


def _prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{key}": value for key, value in values.items()}


def _brief(row: dict[str, Any]) -> str:
    keys = ("train_loss", "val_acc", "test_acc", "epoch_time_s")
    return " ".join(f"{key}={row[key]:.4f}" for key in keys)


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
