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
import math
import statistics
from collections.abc import Sequence
from typing import Any

import torch

from auxbench.config import make_dense_config
from auxbench.data.dense_sets import NYUV2_SHAPED, load_dense, nyuv2_shaped
from auxbench.experiment.bench import peak_memory_mib, wall_time
from auxbench.experiment.dense_grid import BASELINE_WEIGHTING, dataset_tasks, setting_values
from auxbench.experiment.grid import split_weighting
from auxbench.foundations.errors import ConfigError
from auxbench.training.dense import DenseTrainer
from auxbench.training.streams import resolve_device

PAPER_EPOCHS = 200  # Auto-λ's dense protocol (appendix A)
NYUV2_TRAIN = 795


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
    ``DenseConfig`` keys (backbone, width, batch_size, device, ...). ``paper_hours``: one run of
    the paper protocol (``PAPER_EPOCHS`` epochs over the dataset's training images less the 10%
    validation hold-out) at the measured step time, training only. ``nyuv2-shaped`` times random
    tensors of NYUv2's shapes (``auxbench.data.dense_sets.nyuv2_shaped``)."""
    device = (settings or {}).get("device") or "auto"
    if resolve_device(device).type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "bench --dense: --device cuda needs a CUDA GPU, and torch sees none; on the CPU: "
            f"auxbench bench --dense {dataset} --device cpu --width 0.25 --steps 2 --repeats 1"
        )
    shaped = dataset == NYUV2_SHAPED
    base = {"dataset": "nyuv2" if shaped else dataset, "epochs": 1, **(settings or {})}
    base.update(setting_values(setting, dataset_tasks(base["dataset"])))
    batch = int(base.get("batch_size", 4))
    # random NYUv2-shaped tensors: as many training images as the timed epochs use (after the
    # validation hold-out), the paper projection at NYUv2's 795
    data = (
        nyuv2_shaped(train=math.ceil(steps * batch / 0.9) + 1, test=2)
        if shaped
        else load_dense(dataset, base.get("data_root"))
    )
    protocol_train = NYUV2_TRAIN if shaped else len(data.train)
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
        steps_run = math.ceil(len(trainer.train_split) / config.batch_size)
        paper_steps = PAPER_EPOCHS * math.ceil(round(0.9 * protocol_train) / config.batch_size)
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
                "paper_hours": epoch_time / steps_run * paper_steps / 3600,
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
            f"{'vs minimum':>10} {'peak MiB':>8} {'params':>11} {'paper h':>8}  minimum per step"
        ),
    ]
    for row in rows:
        lines.append(
            f"{row['architecture']:<12} {row['weighting']:<22} {row['step_s'] * 1e3:>7.1f} ms "
            f"{row['vs_fixed']:>7.2f}x {row['vs_minimum']:>9.2f}x {row['peak_memory_mib']:>8.1f} "
            f"{row['parameters']:>11,} {row['paper_hours']:>8.1f}  {row['minimum_passes']}"
        )
    return "\n".join(lines)
