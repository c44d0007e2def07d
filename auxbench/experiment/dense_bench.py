"""The cost benchmark's dense-prediction rows: per architecture × weighting, the step time of
``DenseTrainer`` side by side with Equal (``fixed``) on the same architecture and with its
algorithmic minimum (``Weighting.minimum_passes`` at the pass times of its own network), its peak
memory and parameter count; and the projected wall time of a paper protocol from the measured
epoch.

Every trainer of one call shares the dataset and the seed, so the networks start alike; after one
warm-up epoch each, they take turns for ``repeats`` epochs of ``steps`` batches (training only,
no evaluation).
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Sequence
from typing import Any

import torch

from auxbench.config import make_dense_config
from auxbench.data.dense_sets import load_dense
from auxbench.experiment.bench import peak_memory_mib, wall_time
from auxbench.experiment.dense_grid import BASELINE_WEIGHTING, dataset_tasks, setting_values
from auxbench.experiment.grid import split_weighting
from auxbench.training.dense import DenseTrainer


def dense_pass_times(trainer: DenseTrainer, repeats: int = 5) -> dict[str, float]:
    """Median seconds of a forward, a task's backward to the shared parameters, the backward of
    the summed losses and an inference pass, on one training batch of a copy of the network."""
    model = copy.deepcopy(trainer.model).train()
    batch = next(trainer.batches(trainer.train_split, torch.Generator(), trainer.augment_generator))
    shared = model.shared_parameters()

    def once() -> dict[str, float]:
        times = {}
        holder: dict[str, Any] = {}
        times["forward"] = wall_time(
            trainer.device,
            lambda: holder.update(losses=trainer.task_losses(batch, model(batch.images))),
        )
        losses = holder["losses"]
        times["task_backward"] = wall_time(
            trainer.device,
            lambda: torch.autograd.grad(losses[0], shared, retain_graph=True, allow_unused=True),
        )
        times["backward"] = wall_time(trainer.device, lambda: sum(losses).backward())
        with torch.no_grad():
            times["inference"] = wall_time(trainer.device, lambda: model(batch.images))
        model.zero_grad(set_to_none=True)
        return times

    once()
    samples = [once() for _ in range(repeats)]
    return {kind: statistics.median(sample[kind] for sample in samples) for kind in samples[0]}


def dense_costs(
    dataset: str,
    architectures: Sequence[str],
    weightings: Sequence[str],
    steps: int,
    repeats: int,
    setting: str = "auxiliary",
    settings: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One row per architecture × weighting (``fixed`` always measured, the reference): epoch and
    step time, the ratio to ``fixed`` on the same architecture, the minimum per step in passes
    and seconds and the ratio to it, peak memory of an epoch, parameters. ``setting`` is a dense
    grid setting (default: every task primary plus the noise task), ``settings`` further
    ``DenseConfig`` keys (backbone, width, batch_size, device, ...)."""
    base = {"dataset": dataset, "epochs": 1, **(settings or {})}
    base.update(setting_values(setting, dataset_tasks(dataset)))
    data = load_dense(dataset, base.get("data_root"))
    specs = [BASELINE_WEIGHTING, *(w for w in dict.fromkeys(weightings) if w != BASELINE_WEIGHTING)]
    trainers: dict[tuple[str, str], DenseTrainer] = {}
    for architecture in architectures:
        for spec in specs:
            weighting, gradient = split_weighting(spec)
            values = {**base, "architecture": architecture, "weighting": weighting}
            values["gradient"] = gradient
            config = make_dense_config(values, f"dense bench {architecture}/{spec}")
            config.train_limit = steps * config.batch_size
            trainer = DenseTrainer(config, data)
            trainers[architecture, spec] = trainer

    for trainer in trainers.values():
        wall_time(trainer.device, trainer.train_epoch)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in trainers}
    for _ in range(repeats):
        for key, trainer in trainers.items():
            times[key].append(wall_time(trainer.device, trainer.train_epoch))
    rows = []
    for (architecture, spec), trainer in trainers.items():
        config = trainer.config
        epoch_time = statistics.median(times[architecture, spec])
        steps_run = -(-len(trainer.train_split) // config.batch_size)
        minimum = trainer.weighting.minimum_passes()
        minimum_time = minimum.seconds(dense_pass_times(trainer))
        rows.append(
            {
                "architecture": architecture,
                "backbone": config.backbone,
                "weighting": spec,
                "parameters": sum(p.numel() for p in trainer.model.parameters()),
                "epoch_s": epoch_time,
                "step_s": epoch_time / steps_run,
                "vs_fixed": epoch_time / statistics.median(times[architecture, BASELINE_WEIGHTING]),
                "minimum_passes": minimum.describe(),
                "minimum_step_s": minimum_time,
                "vs_minimum": epoch_time / steps_run / minimum_time,
                "peak_memory_mib": peak_memory_mib(trainer.device, trainer.train_epoch),
                "setting": (
                    f"dataset={dataset} setting={setting} backbone={config.backbone} "
                    f"width={config.width} batch={config.batch_size} device={trainer.device} "
                    f"threads={torch.get_num_threads()} steps={steps} repeats={repeats}"
                ),
            }
        )
    return rows


def format_dense_costs(rows: list[dict[str, Any]]) -> str:
    """The rows of ``dense_costs`` as a text table."""
    lines = [
        rows[0]["setting"],
        (
            f"{'architecture':<12} {'weighting':<22} {'step':>10} {'vs fixed':>8} "
            f"{'vs minimum':>10} {'peak MiB':>8} {'params':>11}  minimum per step"
        ),
    ]
    for row in rows:
        lines.append(
            f"{row['architecture']:<12} {row['weighting']:<22} {row['step_s'] * 1e3:>7.1f} ms "
            f"{row['vs_fixed']:>7.2f}x {row['vs_minimum']:>9.2f}x {row['peak_memory_mib']:>8.1f} "
            f"{row['parameters']:>11,}  {row['minimum_passes']}"
        )
    return "\n".join(lines)
