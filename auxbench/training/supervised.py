"""The supervised trainer: one network, its tasks (the primary task, the method's auxiliary tasks,
Auto-λ's noise task), one batch stream of the training split.

A method (``auxbench.methods``) contributes its auxiliary tasks and its own per-step and
per-epoch work; the loop, evaluation, model selection, logging and result files are
``auxbench.training.loop``'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.func import functional_call

from auxbench.config import TrainConfig
from auxbench.data import Dataset, MultiDomainDataset
from auxbench.foundations.errors import ConfigError
from auxbench.methods import LossOverrides, create_method
from auxbench.models import build_model
from auxbench.tasks import Batch, ClassificationTask, NoiseTask, Task
from auxbench.training.loop import TrainingLoop, no_bad_loss, note_first_non_finite
from auxbench.training.optim import (
    buffer_copies,
    create_optimizer,
    create_scheduler,
    create_weighting,
    meta_step,
)
from auxbench.training.streams import (
    TensorSplit,
    limited,
    on_device,
    random_batch,
    split_batches,
)
from auxbench.weighting import MetaStep

PRIMARY = "primary"


@dataclass
class StepResult:
    """One optimiser step: the weighted total loss and the unweighted task losses (detached),
    and the heads' outputs."""

    total: torch.Tensor
    outputs: dict[str, torch.Tensor]
    losses: list[torch.Tensor]


class Trainer(TrainingLoop):
    """Trains one (dataset, method, weighting, λ, seed) run and writes its results."""

    def __init__(self, config: TrainConfig, dataset: Dataset | None = None):
        dataset = self.start(config, dataset)
        if isinstance(dataset, MultiDomainDataset):
            raise ConfigError(
                f"dataset {dataset.name!r} is multi-domain: train it with "
                "auxbench.training.MultiDomainTrainer (auxbench.training.train picks it)"
            )
        self.dataset = dataset
        self.train_split = self._on_device(limited(dataset.train, config.train_limit, config.seed))
        self.val_split = self._on_device(limited(dataset.val, config.eval_limit))
        self.test_split = self._on_device(limited(dataset.test, config.eval_limit))

        self.method = create_method(config.method, config, dataset)
        primary = ClassificationTask(
            PRIMARY,
            dataset.num_classes,
            loss=config.loss,
            gamma=config.focal_gamma,
            primary=True,
        )
        self.tasks: list[Task] = [primary, *self.method.tasks()]
        if config.noise_task:
            classes = config.noise_classes or dataset.num_classes
            self.tasks.append(
                NoiseTask(
                    len(self.train_split),
                    classes,
                    config.seed + 5,
                    self.device,
                    loss=config.loss,
                    gamma=config.focal_gamma,
                )
            )
        heads = {task.name: task.outputs for task in self.tasks}
        # The trunk, then the primary head: their initial weights depend on the seed alone,
        # whatever the method or weighting (the method's heads and networks come after).
        torch.manual_seed(config.seed)
        self.model = self.prepared(
            build_model(config.model, dataset.in_channels, heads, config.width, dataset.image_size)
        )
        self.shared_params = list(self.model.trunk.parameters())
        self.task_params = list(self.model.heads.parameters())
        self.weighting = create_weighting(config, self.tasks)
        self.optimizer = create_optimizer(self.model, self.weighting, config)
        self.scheduler = create_scheduler(self.optimizer, config)
        self.seed_batch_streams()
        self.history: list[dict[str, Any]] = []
        self.method.setup(self)

    def _on_device(self, split) -> TensorSplit:
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
        overrides: LossOverrides | None = None,
    ) -> list[torch.Tensor]:
        """Each task's unweighted loss, in task order; ``overrides`` replace a task's own loss
        (an environment that chooses the auxiliary labels itself)."""
        overrides = overrides or {}
        return [
            overrides.get(task.name, task.loss)(outputs[task.name], batch) for task in self.tasks
        ]

    def loss(
        self, batch: Batch, overrides: LossOverrides | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted total loss with the current task weights, and the heads' outputs."""
        with self.autocast():
            outputs = self.model(batch.images)
        losses = self.task_losses(batch, outputs, overrides)
        return self.weighting.weighted_total(losses), outputs

    def step(self, batch: Batch, overrides: LossOverrides | None = None) -> StepResult:
        """One optimiser step of the main network on ``batch``: the weighting turns the task
        losses into gradients (looking ahead on a meta batch when it needs to)."""
        with self.autocast():
            outputs = self.model(batch.images)
        losses = self.task_losses(batch, outputs, overrides)
        self.optimizer.zero_grad(set_to_none=True)
        meta = self._meta_step(batch, overrides) if self.weighting.needs_meta else None
        total = self.weighting.backward(
            losses, self.shared_params, task_params=self.task_params, meta=meta
        )
        self.optimizer.step()
        return StepResult(total, outputs, [loss.detach() for loss in losses])

    def _meta_step(self, batch: Batch, overrides: LossOverrides | None) -> MetaStep:
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
                return self.task_losses(on, outputs, overrides if on is batch else None)

        return meta_step(model, self.optimizer, task_losses, batch, self._meta_batch())

    def _meta_batch(self) -> Batch:
        """A random batch of the ``meta_split`` (no repeats within it), drawn from its own random
        streams, so look-ahead never disturbs the training batches and resumes exactly."""
        split = self.train_split if self.config.meta_split == "train" else self.val_split
        return random_batch(
            split,
            self.config.batch_size,
            self.meta_shuffle_generator,
            self.meta_augment_generator,
            **self.augmentation(self.dataset),
        )

    def generators(self) -> dict[str, torch.Generator]:
        return self.batch_stream_generators()

    def extra_state(self) -> dict[str, Any]:
        return {"method": self.method.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.method.load_state_dict(state["method"])

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training split; returns mean loss and primary accuracy."""
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        task_sums = torch.zeros(len(self.tasks), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        first_bad = no_bad_loss(self.device)
        for number, batch in enumerate(self.batches()):
            result = self.step(batch)
            self.method.after_step(batch)
            losses = torch.stack(result.losses).float()
            loss_sum += result.total * len(batch.labels)
            task_sums += losses * len(batch.labels)
            correct += (result.outputs[PRIMARY].argmax(dim=1) == batch.labels).sum()
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

    def score(self, split: str) -> dict[str, dict[str, float]]:
        """The evaluated tasks' metrics on the validation or test split."""
        evaluators = {
            task.name: task.evaluator(self.device) for task in self.tasks if task.evaluated
        }
        tensors = self.val_split if split == "val" else self.test_split
        return self.scored(tensors, evaluators, self.model)

    def split_sizes(self) -> dict[str, int]:
        return {
            "n_train": len(self.train_split),
            "n_val": len(self.val_split),
            "n_test": len(self.test_split),
        }

    def saved_model(self) -> dict[str, Any]:
        """The network's, the method's and the weighting's state."""
        return {**super().saved_model(), "method": self.method.state_dict()}

    def extra_metrics(self, best: dict[str, Any]) -> dict[str, Any]:
        """``method_settings``: the method's settings as it ran with them (``method_params``
        completed with its defaults, e.g. ψ taken from the dataset's class hierarchy)."""
        params = getattr(self.method, "params", None)
        return {"method_settings": dict(params)} if params else {}
