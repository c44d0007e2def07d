"""Dense-prediction training (Auto-λ §5.1): one encoder shared by semantic segmentation, depth,
surface normals, ... (``auxbench.models.dense``: Split or MTAN), the tasks' losses weighted by any
``auxbench.weighting`` method, optionally with a gradient method on the shared parameters.

- **Data.** The dataset's ``train`` images are split into training and validation (a seeded
  ``val_fraction``, model selection only); its ``test`` split is the published evaluation split
  (NYUv2's 654 images). Images are mapped to [−1, 1]. Training batches are augmented on the
  device (``auxbench.data.dense_augment``: random scale, crop, flip).
- **Modes.** ``tasks`` are trained (default: all of the dataset's), ``primary_tasks`` are primary
  (default: all trained tasks, i.e. multi-task learning); the other tasks and, with
  ``noise_task``, Auto-λ's noise prediction are auxiliary (``fixed`` weighs them by λ). Auto-λ
  [3 Tasks] is every task primary plus the noise task; [1 Task] one primary task and the rest
  auxiliary; a single-task baseline ``tasks: [name]``.
- **Look-ahead.** Auto-λ's meta batches come from a second pass over the training images each
  epoch, shuffled and augmented by its own random streams (Auto-λ's "training data swapping");
  ``meta_split: val`` takes them from the validation split instead.
- **Columns.** Per epoch ``train_loss`` (weighted), ``train_loss_<task>``, and for every evaluated
  task (all but the noise task, primary or auxiliary) ``val_<metric>_<task>`` and
  ``test_<metric>_<task>`` for each of its metrics (``auxbench.tasks.dense``). ``val_score`` /
  ``test_score`` select the model: the mean over the primary tasks of the relative change (in %)
  of the task's first metric (mIoU, absolute error, mean angle; its sign by direction) against
  the same split's first epoch; with one primary task this orders epochs exactly as that metric
  does. ``metrics.json`` has ``test_<metric>_<task>_at_best_val`` and ``…_final`` for every
  evaluated task and metric, the tasks with their roles, and which metrics are lower-is-better,
  for Δ_MTL (``auxbench.report.dense``).
- **Resume.** A checkpoint restores the network, optimiser, schedule, weighting and every random
  stream at an epoch boundary, so a resumed run reproduces an uninterrupted one exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.func import functional_call

from auxbench.config import DenseConfig
from auxbench.data.dense import DenseDataset, DenseSplit
from auxbench.data.dense_augment import augment_dense
from auxbench.data.dense_sets import load_dense
from auxbench.foundations.errors import ConfigError
from auxbench.methods.base import endless
from auxbench.models.dense import build_dense_model
from auxbench.tasks import Batch, Metric, Task
from auxbench.tasks.dense import NoiseMapTask, dense_task
from auxbench.training.loop import TrainingLoop, no_bad_loss, note_first_non_finite
from auxbench.training.optim import (
    buffer_copies,
    create_optimizer,
    create_scheduler,
    create_weighting,
    meta_step,
)
from auxbench.training.streams import TensorSplit, limited
from auxbench.weighting import MetaStep

NOISE = "noise"
SCORE = Metric("score")


def hold_out(split: DenseSplit, fraction: float, seed: int) -> tuple[DenseSplit, DenseSplit]:
    """(training, validation) parts of ``split``: a seeded random ``fraction`` (at least one
    image) is validation."""
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    count = max(1, round(fraction * len(split)))
    if count >= len(split):
        raise ConfigError(
            f"val_fraction {fraction} leaves no training images of {len(split)}; lower it"
        )
    return split.subset(order[count:]), split.subset(order[:count])


class DenseTrainer(TrainingLoop):
    """Trains one (dense dataset, architecture, tasks, weighting, seed) run and writes its
    results (see the module doc)."""

    def __init__(self, config: DenseConfig, dataset: DenseDataset | None = None):
        self.begin(config.validate())
        if dataset is None:
            user = config.user()
            dataset = (
                user.read_dense()
                if user is not None
                else load_dense(config.dataset, config.data_root)
            )
        self.dataset = dataset
        # the augmentation treats each target by its task's kind, whatever the task's name
        self.kinds = {spec.name: spec.kind for spec in dataset.tasks}
        self.tasks = self._tasks()
        fields = [task.name for task in self.tasks if task.name != NOISE]
        train, val = hold_out(dataset.train, config.val_fraction, config.seed)
        train = limited(train, config.train_limit, config.seed)
        self.train_split = self._on_device(train, fields, noise_seed=config.seed + 5)
        self.val_split = self._on_device(limited(val, config.eval_limit), fields, config.seed + 8)
        self.test_split = self._on_device(limited(dataset.test, config.eval_limit), fields, None)

        torch.manual_seed(config.seed)  # the initial weights depend on the seed alone
        self.model = self.prepared(
            build_dense_model(
                config.architecture,
                config.backbone,
                int(dataset.train.images.shape[1]),
                {task.name: task.outputs for task in self.tasks},
                config.width,
            )
        )
        self.shared_params = self.model.shared_parameters()
        self.task_params = self.model.task_parameters()
        self.weighting = create_weighting(config, self.tasks)
        self.optimizer = create_optimizer(self.model, self.weighting, config)
        self.scheduler = create_scheduler(self.optimizer, config)
        self.seed_batch_streams()
        self.history: list[dict[str, Any]] = []

    # --- tasks and data ---------------------------------------------------------------------------

    def _tasks(self) -> list[Task]:
        """The trained tasks (``tasks``, default all of the dataset's), primary as
        ``primary_tasks`` says, and the noise task; unknown names are a ``ConfigError``."""
        config, specs = self.config, {spec.name: spec for spec in self.dataset.tasks}
        names = config.tasks or list(specs)
        primary = config.primary_tasks or names
        for key, chosen, among in (("tasks", names, specs), ("primary_tasks", primary, names)):
            unknown = [name for name in chosen if name not in among]
            if unknown:
                raise ConfigError(
                    f"{key}: unknown task(s) {', '.join(map(repr, unknown))}; "
                    f"{'dataset ' + repr(self.dataset.name) if key == 'tasks' else 'tasks'} "
                    f"has: {', '.join(among)}"
                )
        tasks: list[Task] = [
            dense_task(
                name,
                specs[name].kind,
                specs[name].classes,
                channels=specs[name].channels,
                primary=name in primary,
                normal_loss=config.normal_loss,
            )
            for name in names
        ]
        if config.noise_task:
            tasks.append(NoiseMapTask(NOISE))
        return tasks

    def _on_device(self, split: DenseSplit, fields: list[str], noise_seed: int | None):
        """``split``'s images in [−1, 1] and the trained tasks' target fields on the device, with
        a fixed uniform noise map per image (drawn from ``noise_seed``) for the noise task."""
        images = split.images.to(self.device, torch.float32) * 2 - 1
        targets = {name: split.targets[name].to(self.device) for name in fields}
        if self.config.noise_task and noise_seed is not None:
            count, _, height, width = images.shape
            noise = torch.rand(
                count, 1, height, width, generator=torch.Generator().manual_seed(noise_seed)
            )
            targets[NOISE] = noise.to(self.device)
        return TensorSplit(images, targets)

    def batches(
        self, split: TensorSplit, shuffle: torch.Generator, augment_with: torch.Generator
    ) -> Iterator[Batch]:
        """One pass over ``split`` in shuffled batches, augmented unless ``augment`` is off."""
        config = self.config
        order = torch.randperm(len(split), generator=shuffle).to(self.device)
        for start in range(0, len(split), config.batch_size):
            index = order[start : start + config.batch_size]
            images = split.images[index]
            targets = {name: values[index] for name, values in split.targets.items()}
            if config.augment:
                images, targets = augment_dense(
                    images,
                    targets,
                    augment_with,
                    size=config.crop,
                    scales=config.scales,
                    kinds=self.kinds,
                )
            yield Batch(images, targets, index)

    # --- a step -----------------------------------------------------------------------------------

    def task_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Each task's unweighted loss, in task order."""
        return [task.loss(outputs[task.name], batch) for task in self.tasks]

    def step(self, batch: Batch, meta_batches: Iterator[Batch]) -> tuple[torch.Tensor, list]:
        """One optimiser step on ``batch``; returns the weighted total and the task losses
        (detached)."""
        with self.autocast():
            outputs = self.model(batch.images)
        losses = self.task_losses(batch, outputs)
        self.optimizer.zero_grad(set_to_none=True)
        meta = self._meta_step(batch, next(meta_batches)) if self.weighting.needs_meta else None
        total = self.weighting.backward(
            losses, self.shared_params, task_params=self.task_params, meta=meta
        )
        self.optimizer.step()
        return total, [loss.detach() for loss in losses]

    def _meta_step(self, batch: Batch, meta_batch: Batch) -> MetaStep:
        """The look-ahead view of this step (Auto-λ): the task losses at any parameters
        (BatchNorm on copies of the running statistics), this batch and the meta batch."""
        model = self.model

        def task_losses(params: dict[str, torch.Tensor], on: Batch) -> list[torch.Tensor]:
            with self.autocast():
                outputs = functional_call(model, (params, buffer_copies(model)), (on.images,))
            return self.task_losses(on, outputs)

        return meta_step(model, self.optimizer, task_losses, batch, meta_batch)

    def _meta_batches(self) -> Iterator[Batch]:
        """This epoch's meta batches: a fresh pass over the ``meta_split`` (repeated when it is
        shorter than the epoch) from the look-ahead's own random streams."""
        split = self.train_split if self.config.meta_split == "train" else self.val_split
        return endless(
            lambda: self.batches(split, self.meta_shuffle_generator, self.meta_augment_generator)
        )

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training images; the mean weighted loss and each task's."""
        self.model.train()
        total_sum = torch.zeros((), device=self.device)
        task_sums = torch.zeros(len(self.tasks), device=self.device)
        first_bad = no_bad_loss(self.device)
        meta_batches = self._meta_batches()
        steps = 0
        for steps, batch in enumerate(
            self.batches(self.train_split, self.shuffle_generator, self.augment_generator), 1
        ):
            total, losses = self.step(batch, meta_batches)
            stacked = torch.stack(losses).float()
            total_sum += total.detach().float()
            task_sums += stacked
            note_first_non_finite(first_bad, steps - 1, stacked)
        self.check_finite(first_bad)
        self.scheduler.step()
        means = (task_sums / steps).tolist()
        self.weighting.epoch_end(means)
        return {
            "train_loss": float(total_sum) / steps,
            **{f"train_loss_{name}": value for name, value in zip(self.task_names, means)},
        }

    def run_epoch(self, epoch: int) -> dict[str, float]:
        return {**self.train_epoch(), **self.weight_logs()}

    # --- evaluation and model selection -----------------------------------------------------------

    @property
    def selection(self) -> Metric:
        return SCORE

    @property
    def evaluated(self) -> list[Task]:
        return [task for task in self.tasks if task.evaluated]

    def score(self, split: str) -> dict[str, dict[str, float]]:
        """Every evaluated task's metrics on the validation or test split."""
        tensors = self.val_split if split == "val" else self.test_split
        evaluators = {task.name: task.evaluator(self.device) for task in self.evaluated}
        return self.scored(tensors, evaluators, self.model)

    def evaluation(self) -> dict[str, float]:
        """Every evaluated task's metrics on both splits, and each split's ``score`` (see the
        module doc)."""
        row: dict[str, float] = {}
        for split in ("val", "test"):
            scores = self.score(split)
            for name, values in scores.items():
                row.update({f"{split}_{metric}_{name}": value for metric, value in values.items()})
            row[f"{split}_score"] = self._score(row, split)
        return row

    def _score(self, row: dict[str, float], split: str) -> float:
        """The mean over the primary tasks of the relative change in % of their first metric
        against the first epoch's (0 in the first epoch)."""
        first = self.history[0] if self.history else row
        changes = []
        for task in (self.tasks[i] for i in self.primary):
            metric = task.metrics[0]
            column = f"{split}_{metric.name}_{task.name}"
            reference = first[column]
            sign = 1.0 if metric.higher_is_better else -1.0
            changes.append(sign * 100 * (row[column] - reference) / abs(reference or 1.0))
        return sum(changes) / len(changes)

    def selected_metrics(self, best: dict[str, Any]) -> dict[str, float]:
        """Every evaluated task's test metrics at the selected epoch and at the last one."""
        final = self.history[-1]
        out = {}
        for task in self.evaluated:
            for metric in task.metrics:
                column = f"test_{metric.name}_{task.name}"
                out[f"{column}_at_best_val"] = best[column]
                out[f"{column}_final"] = final[column]
        return out

    def split_sizes(self) -> dict[str, int]:
        return {
            "n_train": len(self.train_split),
            "n_val": len(self.val_split),
            "n_test": len(self.test_split),
        }

    def extra_metrics(self, best: dict[str, Any]) -> dict[str, Any]:
        """The tasks (kind, role), the dataset and architecture, and each metric's direction."""
        kinds = {spec.name: spec.kind for spec in self.dataset.tasks}
        return {
            "dataset": self.dataset.name,
            "architecture": self.config.architecture,
            "backbone": self.config.backbone,
            "tasks": {
                task.name: {
                    "kind": kinds.get(task.name, "noise"),
                    "primary": task.primary,
                    "metric": task.metrics[0].name if task.metrics else None,
                }
                for task in self.tasks
            },
            "lower_is_better": {
                metric.name: not metric.higher_is_better
                for task in self.evaluated
                for metric in task.metrics
            },
        }

    # --- checkpoints ------------------------------------------------------------------------------

    def generators(self) -> dict[str, torch.Generator]:
        return self.batch_stream_generators()
