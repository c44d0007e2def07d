"""Benchmarks printed as ratios measured side by side in one process."""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import yaml

from auxbench.config import CONFIG_KEYS, ConfigError, TrainConfig, make_config
from auxbench.data import augment, load
from auxbench.grid import split_method
from auxbench.losses import classification_loss
from auxbench.train import Trainer


def _wall_time(device: torch.device, run: Callable[[], object]) -> float:
    """Seconds ``run()`` takes, with a CUDA device synchronised before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
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
        return _wall_time(trainer.device, run)

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
        target[key] = yaml.safe_load(value)
    return method, values


def method_costs(
    dataset: str,
    model: str,
    methods: Sequence[str],
    steps: int,
    repeats: int,
    device: str = "auto",
) -> str:
    """Median wall time of one epoch per method, and its ratio to ``single``, side by side.

    ``methods`` are registered method names or variants ``METHOD/KEY=VALUE...`` (see
    ``method_variant``; ``single`` is always measured, as the reference); a variant is also
    compared with its plain method (e.g. ``human+noise/weighting=dwa`` with ``human+noise``, fixed
    weights) when that is measured. An epoch is ``Trainer.run_epoch``: the
    method's ``before_epoch`` (e.g. RL-AUX's Train-Agent epoch), ``steps`` batches of the same
    seeded training subset, then its ``after_epoch`` (e.g. MAXL's generator pass). After one
    warm-up epoch each, the methods take turns for ``repeats`` rounds.
    """
    specs = ["single", *(spec for spec in dict.fromkeys(methods) if spec != "single")]
    base = TrainConfig(dataset=dataset, model=model, device=device, epochs=1)
    base.train_limit = steps * base.batch_size
    data = load(dataset, root=base.data_root, val_fraction=base.val_fraction, seed=base.seed)
    trainers = {}
    for spec in specs:
        config = make_config({**base.to_dict(), **method_variant(spec)[1]}, spec)
        trainers[spec] = Trainer(config, data)
    epochs = dict.fromkeys(specs, 0)

    def timed(spec: str) -> float:
        epochs[spec] += 1
        trainer = trainers[spec]
        return _wall_time(trainer.device, lambda: trainer.run_epoch(epochs[spec]))

    for spec in specs:
        timed(spec)
    times: dict[str, list[float]] = {spec: [] for spec in specs}
    for _ in range(repeats):
        for spec in specs:
            times[spec].append(timed(spec))
    medians = {spec: statistics.median(values) for spec, values in times.items()}
    width = max(12, *(len(spec) for spec in specs))
    header = _header(dataset, model, trainers["single"].device, steps, base.batch_size, repeats)
    lines = [header, f"{'method':<{width}} {'epoch (median)':>16} {'vs single':>10}"]
    for spec in specs:
        ratio = medians[spec] / medians["single"]
        lines.append(f"{spec:<{width}} {medians[spec]:>14.4f} s {ratio:>9.2f}x")
    for spec in specs:
        name = method_variant(spec)[0]
        if name != spec and name in medians:
            lines.append(f"{spec} vs {name}: {medians[spec] / medians[name]:.2f}x")
    return "\n".join(lines)
