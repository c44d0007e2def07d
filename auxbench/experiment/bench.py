"""Benchmarks printed as ratios measured side by side in one process."""

from __future__ import annotations

import copy
import ctypes
import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from auxbench.config import CONFIG_KEYS, TrainConfig, make_config, yaml_value
from auxbench.data import augment, load
from auxbench.experiment.grid import split_method
from auxbench.foundations.atomic import write_json, write_text
from auxbench.foundations.errors import ConfigError
from auxbench.foundations.losses import classification_loss
from auxbench.foundations.passes import Passes
from auxbench.methods import check_method
from auxbench.training import Trainer


def wall_time(device: torch.device, run: Callable[[], object]) -> float:
    """Seconds ``run()`` takes, with a CUDA device synchronised before and after."""
    _synchronise(device)
    start = time.perf_counter()
    run()
    _synchronise(device)
    return time.perf_counter() - start


def _header(dataset: str, model: str, device: torch.device, steps: int, batch: int, repeats: int):
    return (
        f"dataset={dataset} model={model} device={device} threads={torch.get_num_threads()} "
        f"steps={steps} batch={batch} repeats={repeats}"
    )


def trainer_throughput(
    dataset: str, model: str, steps: int, repeats: int, device: str = "auto"
) -> str:
    """Median images/s of ``Trainer.train_epoch`` vs a bare PyTorch loop doing the same work.

    Both run the same network (a copy of the trainer's, same initial weights), the same optimiser
    settings, the same batch size, normalised data on the same device and the same batched
    augmentation; the bare loop is the minimal hand-written loop for that job. The two alternate
    over ``repeats`` epochs of ``steps`` batches after one warm-up epoch each.
    """
    config = TrainConfig(dataset=dataset, model=model, method="single", device=device, epochs=1)
    config.train_limit = steps * config.batch_size
    trainer = Trainer(config)
    split, data = trainer.train_split, trainer.dataset
    bare_model = copy.deepcopy(trainer.model)
    bare_optimizer = torch.optim.SGD(
        bare_model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    shuffle = torch.Generator().manual_seed(0)
    augment_generator = torch.Generator(device=trainer.device).manual_seed(1)

    def bare_epoch() -> None:
        bare_model.train()
        order = torch.randperm(len(split), generator=shuffle).to(trainer.device)
        for start in range(0, len(split), config.batch_size):
            index = order[start : start + config.batch_size]
            images = augment(
                split.images[index],
                data.crop_padding,
                data.horizontal_flip,
                generator=augment_generator,
            )
            logits = bare_model(images)["primary"]
            loss = classification_loss(config.loss, logits, split.labels[index], config.focal_gamma)
            bare_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            bare_optimizer.step()

    def timed(run) -> float:
        return wall_time(trainer.device, run)

    timed(bare_epoch)
    timed(trainer.train_epoch)
    bare_times, trainer_times = [], []
    for _ in range(repeats):
        bare_times.append(timed(bare_epoch))
        trainer_times.append(timed(trainer.train_epoch))
    bare_rate = len(split) / statistics.median(bare_times)
    trainer_rate = len(split) / statistics.median(trainer_times)
    return (
        f"{_header(dataset, model, trainer.device, steps, config.batch_size, repeats)}\n"
        f"bare loop : {bare_rate:9.1f} images/s (median)\n"
        f"trainer   : {trainer_rate:9.1f} images/s (median)\n"
        f"ratio trainer/bare = {trainer_rate / bare_rate:.3f}"
    )


def method_variant(spec: str) -> tuple[str, dict[str, Any]]:
    """``METHOD[/KEY=VALUE...]`` → the plain method name and the ``TrainConfig`` values of the
    variant (values read as YAML). METHOD may be ``NAME+noise`` (the noise task added); a KEY that
    is a ``TrainConfig`` field sets it (``human+noise/weighting=dwa``), any other goes to
    ``method_params`` (``rl-aux/mode=per-example``)."""
    method, *pairs = spec.split("/")
    name, noise = split_method(method)
    values: dict[str, Any] = {"method": name, "noise_task": noise, "method_params": {}}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ConfigError(f"method variant {spec!r}: expected NAME/KEY=VALUE, got {pair!r}")
        target = values if key in CONFIG_KEYS else values["method_params"]
        target[key] = yaml_value(value)
    return method, values


def pass_times(trainer: Trainer, repeats: int = 10) -> dict[str, float]:
    """Median seconds of each kind of pass of ``auxbench.foundations.passes`` for the trainer's network on
    one training batch, timed on a copy of it (the trainer's state is left as it was)."""
    model = copy.deepcopy(trainer.model).train()
    images = next(iter(trainer.batches())).images
    trunk = list(model.trunk.parameters())

    def losses() -> list[torch.Tensor]:
        return [logits.logsumexp(dim=1).mean() for logits in model(images).values()]

    def once() -> dict[str, float]:
        times = {}
        start = time.perf_counter()
        head_losses = losses()
        _synchronise(trainer.device)
        times["forward"] = time.perf_counter() - start
        times["task_backward"] = wall_time(
            trainer.device,
            lambda: torch.autograd.grad(head_losses[0], trunk, retain_graph=True),
        )
        times["backward"] = wall_time(trainer.device, lambda: sum(head_losses).backward())
        with torch.no_grad():
            times["inference"] = wall_time(trainer.device, lambda: model(images))
        model.zero_grad(set_to_none=True)
        return times

    once()
    samples = [once() for _ in range(repeats)]
    return {kind: statistics.median(sample[kind] for sample in samples) for kind in samples[0]}


def peak_memory_mib(device: torch.device, run: Callable[[], object]) -> float:
    """Peak memory ``run()`` adds, in MiB: on CUDA the peak allocation above the start; on a CPU
    the peak of the C heap's bytes in use (glibc's ``mallinfo2``, sampled every millisecond by a
    thread) above the start: live memory, whatever the allocator keeps cached (nan without
    glibc)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        run()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated(device) - start) / 2**20
    if _MALLINFO2 is None:
        run()
        return math.nan
    start = _heap_in_use()
    peak = [start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.001):
            peak[0] = max(peak[0], _heap_in_use())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run()
    finally:
        stop.set()
        sampler.join()
    return max(0, max(peak[0], _heap_in_use()) - start) / 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    try:
        function = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return None
    function.restype = _MallInfo2
    return function


_MALLINFO2 = _mallinfo2()


def _heap_in_use() -> int:
    """Bytes the C heap has handed out and not freed: in arenas (uordblks) and mmapped (hblkhd)."""
    info = _MALLINFO2()
    return info.uordblks + info.hblkhd


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def minimum_passes(trainer: Trainer) -> Passes:
    """The trainer's method's algorithmic minimum per step under its weighting."""
    return trainer.method.minimum_passes(trainer.weighting.minimum_passes())


def method_costs(
    dataset: str,
    model: str,
    methods: Sequence[str],
    steps: int,
    repeats: int,
    device: str = "auto",
    width: float = 1.0,
    data_root: str | None = None,
) -> list[dict[str, Any]]:
    """Per method, side by side: median wall time per epoch and per step, the ratio to
    ``single``, the algorithmic minimum (``Method.minimum_passes``) in passes and in seconds (at
    the pass times measured on its own network, ``pass_times``), their ratio, the peak memory of
    an epoch and the network's parameter count.

    ``methods`` are registered method names or variants ``METHOD/KEY=VALUE...`` (see
    ``method_variant``; ``single`` is always measured, as the reference). An epoch is
    ``Trainer.run_epoch``: the method's ``before_epoch`` (e.g. RL-AUX's Train-Agent epoch),
    ``steps`` batches of the same seeded training subset, then its ``after_epoch`` (e.g. MAXL's
    generator pass). After one warm-up epoch each, the methods take turns for ``repeats``
    rounds; peak memory is read in one more epoch each (``peak_memory_mib``), outside them.
    """
    specs = ["single", *(spec for spec in dict.fromkeys(methods) if spec != "single")]
    base = TrainConfig(
        dataset=dataset, model=model, device=device, epochs=1, width=width, data_root=data_root
    )
    base.train_limit = steps * base.batch_size
    data = load(dataset, root=base.data_root, val_fraction=base.val_fraction, seed=base.seed)
    trainers = {}
    for spec in specs:
        config = check_method(make_config({**base.to_dict(), **method_variant(spec)[1]}, spec))
        trainers[spec] = Trainer(config, data)
    epochs = dict.fromkeys(specs, 0)

    def epoch(spec: str) -> Callable[[], object]:
        epochs[spec] += 1
        return lambda: trainers[spec].run_epoch(epochs[spec])

    for spec in specs:
        wall_time(trainers[spec].device, epoch(spec))
    times: dict[str, list[float]] = {spec: [] for spec in specs}
    for _ in range(repeats):
        for spec in specs:
            times[spec].append(wall_time(trainers[spec].device, epoch(spec)))
    header = _header(dataset, model, trainers["single"].device, steps, base.batch_size, repeats)
    rows = []
    for spec in specs:
        trainer = trainers[spec]
        epoch_time = statistics.median(times[spec])
        steps_run = len(trainer.train_split) // trainer.config.batch_size
        minimum = minimum_passes(trainer)
        minimum_time = minimum.seconds(pass_times(trainer))
        rows.append(
            {
                "method": spec,
                "width": width,
                "parameters": sum(p.numel() for p in trainer.model.parameters()),
                "epoch_s": epoch_time,
                "step_s": epoch_time / steps_run,
                "vs_single": epoch_time / statistics.median(times["single"]),
                "minimum_passes": minimum.describe(),
                "minimum_step_s": minimum_time,
                "vs_minimum": epoch_time / steps_run / minimum_time,
                "peak_memory_mib": peak_memory_mib(trainer.device, epoch(spec)),
                "setting": header,
            }
        )
    return rows


def format_costs(rows: list[dict[str, Any]]) -> str:
    """The rows of ``method_costs`` as a text table (and each variant against its plain method)."""
    width = max(12, *(len(row["method"]) for row in rows))
    lines = [
        rows[0]["setting"],
        (
            f"{'method':<{width}} {'epoch':>10} {'step':>10} {'vs single':>9} "
            f"{'vs minimum':>10} {'peak MiB':>8}  minimum per step"
        ),
    ]
    for row in rows:
        lines.append(
            f"{row['method']:<{width}} {row['epoch_s']:>8.4f} s {row['step_s'] * 1e3:>7.2f} ms "
            f"{row['vs_single']:>8.2f}x {row['vs_minimum']:>9.2f}x "
            f"{row['peak_memory_mib']:>8.1f}  {row['minimum_passes']}"
        )
    epoch_by_method = {row["method"]: row["epoch_s"] for row in rows}
    for spec, seconds in epoch_by_method.items():
        name = method_variant(spec)[0]
        if name != spec and name in epoch_by_method:
            lines.append(f"{spec} vs {name}: {seconds / epoch_by_method[name]:.2f}x")
    return "\n".join(lines)


def scaling(
    dataset: str,
    model: str,
    methods: Sequence[str],
    widths: Sequence[float],
    steps: int,
    repeats: int,
    device: str = "auto",
    data_root: str | None = None,
) -> list[dict[str, Any]]:
    """``method_costs`` at each channel ``width`` of the main network (one run per width)."""
    return [
        row
        for width in widths
        for row in method_costs(dataset, model, methods, steps, repeats, device, width, data_root)
    ]


def format_scaling(rows: list[dict[str, Any]]) -> str:
    """Per method and width: parameters and time per step, both relative to the narrowest width,
    the ratio to ``single`` at the same width, and two fitted exponents over the widths: k in
    time ∝ parameters^k (1: linear in the parameters) and k in time ∝ (single's time)^k (1: the
    method costs a constant multiple of a plain training step of that network)."""
    frame = pd.DataFrame(rows)
    single = frame[frame["method"] == "single"].set_index("width")["step_s"]
    width = max(12, *(len(method) for method in frame["method"]))
    lines = [
        rows[0]["setting"],
        (
            f"{'method':<{width}} {'width':>5} {'parameters':>11} {'step':>11} {'params x':>8} "
            f"{'time x':>7} {'vs single':>9} {'k params':>8} {'k single':>8}"
        ),
    ]
    for method, group in frame.groupby("method", sort=False):
        group = group.sort_values("width")
        first = group.iloc[0]
        by_parameters = scaling_exponent(group["parameters"], group["step_s"])
        by_single = scaling_exponent(single[group["width"]], group["step_s"])
        for _, row in group.iterrows():
            lines.append(
                f"{method:<{width}} {row['width']:>5g} {row['parameters']:>11,d} "
                f"{row['step_s'] * 1e3:>8.2f} ms {row['parameters'] / first['parameters']:>7.2f}x "
                f"{row['step_s'] / first['step_s']:>6.2f}x {row['vs_single']:>8.2f}x "
                f"{by_parameters:>8.2f} {by_single:>8.2f}"
            )
    return "\n".join(lines)


def scaling_exponent(sizes: Sequence[float], seconds: Sequence[float]) -> float:
    """The least-squares slope of log(seconds) on log(sizes) (nan for fewer than 2 sizes)."""
    x, y = np.log(np.asarray(sizes, float)), np.log(np.asarray(seconds, float))
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan
    return float(np.polyfit(x, y, 1)[0])


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """``rows`` as ``path`` (.json) and next to it as .csv, each written atomically."""
    write_json(path.with_suffix(".json"), rows)
    write_text(path.with_suffix(".csv"), pd.DataFrame(rows).to_csv(index=False))
