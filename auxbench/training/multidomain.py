"""Multi-domain training (Auto-λ §5.2): one classification task per domain, all trained together.

Every domain's batch goes through the shared convolutions with that domain's BatchNorm and head
(``auxbench.models.multidomain``). Each iteration draws one batch of ``batch_size`` images from
every domain (32 in the paper) and hands the domains' losses, in domain order, to the configured
weighting: the convolution weights are its shared parameters, each domain's BatchNorm and head
its task parameters; Auto-λ looks ahead on one batch per domain of the ``meta_split``.

- **Epochs.** An epoch is ``ceil(n / batch_size)`` iterations, ``n`` the largest domain's
  training split, so that domain is seen once per epoch. Each domain's batches come from its own
  endless stream of reshuffled passes over its split; a pass whose size is not a multiple of
  ``batch_size`` ends with a smaller batch, and a smaller domain starts its next pass within the
  epoch. The lr schedule (``schedule``: Auto-λ uses ``cosine``) steps once per epoch.
  ``train_limit`` limits every domain's training split. A resumed run (``auxbench.training.checkpoint``)
  restores the network, optimiser, schedule, weighting and global random streams exactly, but
  the domains' batch streams start afresh.
- **Modes.** ``primary_domains: null`` is multi-task learning, every domain primary;
  ``primary_domains: [i, ...]`` is auxiliary learning, those domains primary and the others
  auxiliary (the weighting is created with ``primary=`` accordingly, and ``fixed`` weighs the
  auxiliary domains by λ). Model selection is on ``val_acc``, the mean validation accuracy of the
  primary domains.
- **Columns.** Per epoch, ``val_acc_<domain>`` and ``test_acc_<domain>`` for every domain (names
  slugged: ``auxbench.data.domains.slug``), and ``val_acc``, ``val_precision``, ``val_recall``,
  ``val_f1`` (and ``test_*``): the means over the primary domains of each domain's accuracy and
  macro precision, recall and F1. ``train_acc`` is the accuracy over the primary domains'
  training batches. ``metrics.json`` has the single-task trainer's keys with these means, plus
  ``test_acc_per_domain_at_best_val`` and ``primary_domains`` (names).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.func import functional_call

from auxbench.config import TrainConfig
from auxbench.data import Dataset, MultiDomainDataset, Split
from auxbench.foundations.errors import ConfigError
from auxbench.methods.base import endless
from auxbench.models import build_multidomain_model
from auxbench.tasks import Batch, ClassificationTask
from auxbench.training.loop import TrainingLoop, no_bad_loss, note_first_non_finite
from auxbench.training.optim import (
    buffer_copies,
    create_optimizer,
    create_scheduler,
    create_weighting,
    meta_step,
)
from auxbench.training.streams import TensorSplit, limited, on_device, split_batches
from auxbench.weighting import MetaStep

Forward = Callable[[torch.Tensor, int], torch.Tensor]


class MultiDomainTrainer(TrainingLoop):
    """Trains one (multi-domain dataset, weighting, seed) run and writes its results (see the
    module doc)."""

    def __init__(self, config: TrainConfig, dataset: MultiDomainDataset | None = None):
        dataset = self.start(config, dataset)
        if not isinstance(dataset, MultiDomainDataset):
            raise ConfigError(
                f"dataset {dataset.name!r} has one task: train it with auxbench.training.Trainer"
            )
        self.dataset = dataset
        primary = self._primary_domains()
        self.tasks = [
            ClassificationTask(
                name,
                dataset.num_classes,
                loss=config.loss,
                gamma=config.focal_gamma,
                primary=domain in primary,
                evaluated=True,
            )
            for domain, name in enumerate(dataset.slugs)
        ]
        mean, std = dataset.domains[0].mean, dataset.domains[0].std

        def splits(pick: Callable[[Dataset], Split]) -> list[TensorSplit]:
            return [on_device(pick(domain), mean, std, self.device) for domain in dataset.domains]

        self.train_splits = splits(lambda d: limited(d.train, config.train_limit, config.seed))
        self.val_splits = splits(lambda d: limited(d.val, config.eval_limit))
        self.test_splits = splits(lambda d: limited(d.test, config.eval_limit))
        self.iterations = math.ceil(max(map(len, self.train_splits)) / config.batch_size)

        torch.manual_seed(config.seed)  # the initial weights depend on the seed alone
        self.model = self.prepared(
            build_multidomain_model(
                config.model,
                dataset.in_channels,
                len(dataset.domains),
                dataset.num_classes,
                config.width,
            )
        )
        self.shared_params = self.model.shared_parameters()
        self.task_params = self.model.domain_parameters()
        self.weighting = create_weighting(config, self.tasks)
        self.optimizer = create_optimizer(self.model, self.weighting, config)
        self.scheduler = create_scheduler(self.optimizer, config)
        self.train_batches = self._streams(self.train_splits, config.seed, config.seed + 1)
        split = self.train_splits if config.meta_split == "train" else self.val_splits
        self.meta_batches = self._streams(split, config.seed + 6, config.seed + 7)
        self.history: list[dict[str, Any]] = []

    def _primary_domains(self) -> list[int]:
        """The primary domains' indices: ``primary_domains``, or every domain."""
        count = len(self.dataset.domains)
        if self.config.primary_domains is None:
            return list(range(count))
        for index in self.config.primary_domains:
            if not 0 <= index < count:
                names = ", ".join(f"{i} {name}" for i, name in enumerate(self.dataset.slugs))
                raise ConfigError(
                    f"primary_domains: unknown domain index {index}; the domains are: {names}"
                )
        return list(self.config.primary_domains)

    def _streams(
        self, splits: list[TensorSplit], shuffle_seed: int, augment_seed: int
    ) -> Iterator[list[Batch]]:
        """Endless lists of one batch per domain; the domains' streams share two generators, which
        they draw from in domain order."""
        shuffle = torch.Generator().manual_seed(shuffle_seed)
        augment_with = torch.Generator(device=self.device).manual_seed(augment_seed)
        augmentation = self.augmentation(self.dataset.domains[0])

        def stream(split: TensorSplit) -> Iterator[Batch]:
            return endless(
                lambda: split_batches(
                    split, self.config.batch_size, shuffle, augment_with, **augmentation
                )
            )

        streams = [stream(split) for split in splits]
        while True:
            yield [next(domain) for domain in streams]

    def domain_losses(
        self, batches: list[Batch], forward: Forward | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Each domain's unweighted loss on its batch and its logits, through ``forward(images,
        domain)`` (default: the network)."""
        forward = self.model if forward is None else forward
        with self.autocast():
            logits = [forward(batch.images, domain) for domain, batch in enumerate(batches)]
        losses = [
            task.loss(out, batch)
            for task, out, batch in zip(self.tasks, logits, batches, strict=True)
        ]
        return losses, logits

    def step(
        self, batches: list[Batch]
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """One optimiser step on one batch per domain; returns the weighted total, the domains'
        losses (detached) and their logits."""
        losses, logits = self.domain_losses(batches)
        self.optimizer.zero_grad(set_to_none=True)
        meta = self._meta_step(batches) if self.weighting.needs_meta else None
        total = self.weighting.backward(
            losses, self.shared_params, task_params=self.task_params, meta=meta
        )
        self.optimizer.step()
        return total, [loss.detach() for loss in losses], logits

    def _meta_step(self, batches: list[Batch]) -> MetaStep:
        """The look-ahead view of this step (Auto-λ): every domain's loss at any parameters
        (BatchNorm on copies of the running statistics), the next batch per domain of the
        ``meta_split``, and the SGD step's settings."""
        model = self.model

        def task_losses(params: dict[str, torch.Tensor], on: list[Batch]) -> list[torch.Tensor]:
            buffers = buffer_copies(model)  # once per call: each domain touches only its own

            def forward(images: torch.Tensor, domain: int) -> torch.Tensor:
                return functional_call(model, (params, buffers), (images, domain))

            return self.domain_losses(on, forward)[0]

        return meta_step(model, self.optimizer, task_losses, batches, next(self.meta_batches))

    def train_epoch(self) -> dict[str, float]:
        """``iterations`` steps; returns the mean weighted loss and the primary domains' training
        accuracy."""
        self.model.train()
        total_sum = torch.zeros((), device=self.device)
        task_sums = torch.zeros(len(self.task_names), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        seen = 0
        first_bad = no_bad_loss(self.device)
        for iteration in range(self.iterations):
            batches = next(self.train_batches)
            total, losses, logits = self.step(batches)
            total_sum += total
            task_sums += torch.stack(losses).float()
            note_first_non_finite(first_bad, iteration, torch.stack(losses).float())
            for domain in self.primary:
                correct += (logits[domain].argmax(dim=1) == batches[domain].labels).sum()
                seen += len(batches[domain].labels)
        self.check_finite(first_bad)
        self.scheduler.step()
        self.weighting.epoch_end((task_sums / self.iterations).tolist())
        return {
            "train_loss": float(total_sum) / self.iterations,
            "train_acc": int(correct) / seen,
        }

    def run_epoch(self, epoch: int) -> dict[str, float]:
        """One training epoch; its logs and the task weights."""
        return {**self.train_epoch(), **self.weight_logs()}

    def score(self, split: str) -> dict[str, dict[str, float]]:
        """Every domain's metrics on its validation or test split."""
        splits = self.val_splits if split == "val" else self.test_splits
        scores = {}
        for domain, (task, tensors) in enumerate(zip(self.tasks, splits, strict=True)):
            scores[task.name] = self.scored(
                tensors,
                {task.name: task.evaluator(self.device)},
                lambda images, domain=domain, name=task.name: {name: self.model(images, domain)},
            )[task.name]
        return scores

    def split_sizes(self) -> dict[str, int]:
        """Images per split, summed over the domains."""
        return {
            f"n_{name}": sum(map(len, splits))
            for name, splits in (
                ("train", self.train_splits),
                ("val", self.val_splits),
                ("test", self.test_splits),
            )
        }

    def extra_metrics(self, best: dict[str, Any]) -> dict[str, Any]:
        """Every domain's test accuracy at the selected epoch, and the primary domains' names."""
        return {
            "test_acc_per_domain_at_best_val": {
                name: best[f"test_acc_{name}"] for name in self.task_names
            },
            "primary_domains": [self.task_names[d] for d in self.primary],
        }
