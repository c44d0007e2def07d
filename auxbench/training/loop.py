"""The training loop every trainer shares: epochs, evaluation of the tasks, model selection on the
primary tasks' validation metric, early stopping, checkpoints and result files.

A trainer (``auxbench.training.supervised``, ``auxbench.training.multidomain``) builds its
tasks, network, optimiser and weighting and says how to train an epoch and how to score its tasks
on a split; the rest is here, so a new kind of task or trainer does not touch it.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from auxbench.config import TrainConfig
from auxbench.data import Dataset, load
from auxbench.foundations import atomic
from auxbench.methods import check_method
from auxbench.tasks import Evaluator, Metric, Task, selection_metric
from auxbench.training.checkpoint import (
    CHECKPOINT_NAME,
    NonFiniteLoss,
    Preempted,
    StoppedNow,
    inject_fault,
    load_checkpoint,
    preemption_requests,
    rng_state,
    set_rng_state,
)
from auxbench.training.streams import TensorSplit, resolve_device, seed_everything
from auxbench.weighting import Weighting

log = logging.getLogger(__name__)

LAST_EPOCHS_AVERAGED = 15
SPLITS = ("val", "test")


class TrainingLoop:
    """The epochs, evaluation, model selection, early stopping and result files every trainer
    shares. A subclass sets ``config``, ``device``, ``dataset`` (with a ``source``), ``tasks``,
    ``model``, ``optimizer``, ``scheduler``, ``weighting`` and ``history = []``, and implements
    ``run_epoch`` (train one epoch, return its logs), ``score`` (the evaluated tasks' metrics on
    the ``val`` or ``test`` split) and ``split_sizes``; ``extra_metrics`` and ``saved_model`` may
    add to ``metrics.json`` and ``model.pt``.

    Columns: for each metric of the primary tasks, ``val_<metric>`` and ``test_<metric>`` (the
    mean over the primary tasks), and with several evaluated tasks also ``<split>_<metric>_<task>``
    of the selection metric for each. The model is selected on ``val_<selection metric>``, the
    primary tasks' first metric (highest or lowest, as the metric says)."""

    config: TrainConfig
    device: torch.device
    dataset: Any
    tasks: list[Task]
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    weighting: Weighting
    history: list[dict[str, Any]]

    def start(self, config: TrainConfig, dataset: Any = None) -> Any:
        """Validate ``config``, pick the device, seed the global random streams, and return
        ``dataset`` or, when None, the configured dataset loaded."""
        self.begin(check_method(config.validate()))
        if dataset is not None:
            return dataset
        return load(
            config.dataset,
            root=config.data_root,
            val_fraction=config.val_fraction,
            seed=config.seed,
            user=config.user(),
        )

    def begin(self, config: Any) -> None:
        """Take the validated ``config``, pick the device and seed the global random streams."""
        self.config = config
        self.device = resolve_device(config.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its kernels
        seed_everything(config.seed)

    # --- tasks ------------------------------------------------------------------------------------

    @property
    def task_names(self) -> list[str]:
        return [task.name for task in self.tasks]

    @property
    def primary(self) -> list[int]:
        """The primary tasks' indices."""
        return [i for i, task in enumerate(self.tasks) if task.primary]

    @property
    def selection(self) -> Metric:
        """The metric that selects the model (see the class doc)."""
        return selection_metric(self.tasks)

    @property
    def selection_column(self) -> str:
        return f"val_{self.selection.name}"

    # --- what a trainer implements ----------------------------------------------------------------

    def run_epoch(self, epoch: int) -> dict[str, float]:
        raise NotImplementedError

    def score(self, split: str) -> dict[str, dict[str, float]]:
        """Each evaluated task's metrics on the ``val`` or ``test`` split, by task name."""
        raise NotImplementedError

    def split_sizes(self) -> dict[str, int]:
        """``n_train``, ``n_val`` and ``n_test``: the number of examples in each split."""
        raise NotImplementedError

    def extra_metrics(self, best: dict[str, Any]) -> dict[str, Any]:
        """Entries of ``metrics.json`` beyond the shared ones (``best``: the selected epoch)."""
        return {}

    def selected_metrics(self, best: dict[str, Any]) -> dict[str, float]:
        """The test metrics of ``metrics.json`` at the selected epoch ``best``: each metric of the
        primary tasks as ``test_<metric>_at_best_val``."""
        metrics = self.tasks[self.primary[0]].metrics
        return {f"test_{m.name}_at_best_val": best[f"test_{m.name}"] for m in metrics}

    def saved_model(self) -> dict[str, Any]:
        """What ``model.pt`` holds: the network's and the weighting's state."""
        return {"model": self.model.state_dict(), "weighting": self.weighting.state_dict()}

    # --- the network on the device ----------------------------------------------------------------

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

    # --- evaluation -------------------------------------------------------------------------------

    @torch.no_grad()
    def scored(
        self,
        split: TensorSplit,
        evaluators: dict[str, Evaluator],
        outputs_of: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    ) -> dict[str, dict[str, float]]:
        """``evaluators`` (by task name) fed ``outputs_of(images)[task]`` over ``split`` in
        evaluation mode and batches of ``eval_batch_size``; their summaries by task."""
        self.model.eval()
        size = self.config.eval_batch_size
        for start in range(0, len(split), size):
            batch = split.batch(slice(start, start + size))
            with self.autocast():
                outputs = outputs_of(batch.images)
            for name, evaluator in evaluators.items():
                evaluator.update(outputs[name], batch)
        return {name: evaluator.summary() for name, evaluator in evaluators.items()}

    def evaluation(self) -> dict[str, float]:
        """The history columns of the evaluated tasks' metrics on both splits (see the class
        doc)."""
        primary = [self.tasks[i].name for i in self.primary if self.tasks[i].evaluated]
        metrics = self.tasks[self.primary[0]].metrics
        row: dict[str, float] = {}
        for split in SPLITS:
            scores = self.score(split)
            for metric in metrics:
                row[f"{split}_{metric.name}"] = sum(
                    scores[name][metric.name] for name in primary
                ) / len(primary)
            if len(scores) > 1:
                for name, values in scores.items():
                    row[f"{split}_{self.selection.name}_{name}"] = values[self.selection.name]
        return row

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

    # --- the loop ---------------------------------------------------------------------------------

    def fit(self, out_dir: Path | None = None) -> dict[str, Any]:
        """Train for ``epochs`` (or until early stopping) and return the run's metrics.

        When ``out_dir`` is given, ``history.csv`` and ``checkpoint.pt`` are rewritten after every
        epoch, and ``metrics.json`` and ``model.pt`` written at the end (the checkpoint is then
        removed), each atomically. A checkpoint already there is resumed from (see
        ``auxbench.training.checkpoint``); SIGTERM/SIGUSR1 stop the run after the current epoch's
        checkpoint by raising ``Preempted``; a second signal or SIGINT stops it at once
        (``StoppedNow``, the last completed epoch's checkpoint on disk).
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
            try:
                self._epochs(epochs, out, checkpoint, started, stop)
            except StoppedNow as error:
                on_disk = checkpoint if checkpoint is not None and checkpoint.exists() else None
                raise StoppedNow(error.signal_name, self._checkpointed, on_disk) from None
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
        score = self.selection.name
        keys = ("train_loss", f"val_{score}", f"test_{score}", "epoch_time_s")
        log.info("epoch %d: %s", epoch, " ".join(f"{key}={row[key]:.4f}" for key in keys))
        return row

    def best(self) -> dict[str, Any]:
        """The history row with the best validation score (the first one on ties)."""
        column = self.selection_column
        if self.selection.higher_is_better:
            return max(self.history, key=lambda row: row[column])
        return min(self.history, key=lambda row: row[column])

    def _early_stopped(self) -> bool:
        patience = self.config.patience
        if patience is None or not self.history:
            return False
        last = self.history[-1]["epoch"]
        if last - self.best()["epoch"] < patience:
            return False
        log.info("early stop after epoch %d: no validation gain for %d epochs", last, patience)
        return True

    def _epochs(self, epochs, out, checkpoint, started: float, stop: list[int]) -> None:
        """The epochs of ``fit``: train, evaluate, write the history and the checkpoint, and stop
        after a checkpoint when a signal asked to (``Preempted``)."""
        score = self.selection.name
        self._checkpointed = len(self.history)
        for epoch in epochs:
            if self._early_stopped():
                break
            row = self._epoch(epoch)
            epochs.set_postfix(
                {f"val_{score}": f"{row[f'val_{score}']:.4f}"}
                | {f"test_{score}": f"{row[f'test_{score}']:.4f}"}
            )
            if out is not None:
                atomic.write_text(out / "history.csv", _csv(self.history))
                atomic.save_torch(checkpoint, self.state_dict(time.perf_counter() - started))
                self._checkpointed = epoch
                inject_fault(out, epoch)
            if stop:
                raise Preempted(epoch, checkpoint)

    # --- checkpoints ------------------------------------------------------------------------------

    def seed_batch_streams(self) -> None:
        """The random streams of the training batches and of the look-ahead's meta batches, each
        a shuffle on the CPU and an augmentation on the device, seeded from the run's seed (seed,
        +1, +6, +7: runs with one seed draw the same batches, whatever the method)."""
        seed = self.config.seed
        self.shuffle_generator = torch.Generator().manual_seed(seed)
        self.augment_generator = torch.Generator(device=self.device).manual_seed(seed + 1)
        self.meta_shuffle_generator = torch.Generator().manual_seed(seed + 6)
        self.meta_augment_generator = torch.Generator(device=self.device).manual_seed(seed + 7)

    def batch_stream_generators(self) -> dict[str, torch.Generator]:
        """The streams of ``seed_batch_streams`` by name, for ``generators``."""
        return {
            "shuffle": self.shuffle_generator,
            "augment": self.augment_generator,
            "meta_shuffle": self.meta_shuffle_generator,
            "meta_augment": self.meta_augment_generator,
        }

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
        """``metrics.json``: the test metrics at the selected epoch, the selection score, the last
        epoch's and the last-15 mean test score, the run's facts and config."""
        last = self.history[-LAST_EPOCHS_AVERAGED:]
        final = self.history[-1]
        score = self.selection.name
        return {
            **self.selected_metrics(best),
            "best_epoch": best["epoch"],
            f"val_{score}_best": best[f"val_{score}"],
            f"test_{score}_final": final[f"test_{score}"],
            f"test_{score}_last15_mean": sum(r[f"test_{score}"] for r in last) / len(last),
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


def no_bad_loss(device: torch.device) -> torch.Tensor:
    """The (batch, task) record of ``note_first_non_finite`` before any bad loss: (-1, -1)."""
    return torch.full((2,), -1, dtype=torch.int64, device=device)


def note_first_non_finite(first_bad: torch.Tensor, batch: int, losses: torch.Tensor) -> None:
    """Record (batch, task) of the first non-finite loss in ``first_bad``, on the device."""
    finite = torch.isfinite(losses)
    new = (first_bad[0] < 0) & ~finite.all()
    task = torch.argmin(finite.to(torch.int64))
    first_bad.copy_(torch.where(new, torch.stack([torch.full_like(task, batch), task]), first_bad))


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
