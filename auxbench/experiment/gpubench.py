"""The GPU benchmark (``auxbench bench --variants``, ``make bench-gpu``).

The paper's VGG16 on CIFAR-shaped synthetic data (3×32×32, generated in memory, so no dataset
files are needed), each method in four variants: fp32 (PyTorch's default precision), bf16
autocast, channels-last and ``torch.compile``, timed side by side in one process. Each method's
seconds per step are projected to the wall time of a full run of the paper protocol it belongs to
(its ``config/paper`` file's epochs and batch size, on CIFAR-100's training set less the
validation hold-out), next to the paper's figure.

A method is ``METHOD[/KEY=VALUE...]`` as in ``bench.method_variant``, on the RL-AUX protocol
(``rl-aux-cifar100-20.yaml``: 20 classes, 100 human auxiliary classes, batch 100); ``mtl`` is the
multi-domain trainer on Auto-λ's protocol (``auto-lambda-cifar100-mtl.yaml``: 20 domains of 5
classes, one batch of 32 from every domain per step), e.g. ``mtl/weighting=autolambda``.
"""

from __future__ import annotations

import gc
import logging
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from auxbench.config import CONFIG_KEYS, TrainConfig, make_config, read_yaml
from auxbench.data import DataError
from auxbench.data.assemble import assemble
from auxbench.data.domains import assemble_domains
from auxbench.data.split import stratified_split
from auxbench.data.synthetic import synthetic_raw
from auxbench.experiment.bench import method_variant, wall_time
from auxbench.foundations.errors import ConfigError
from auxbench.methods import check_method
from auxbench.training import MultiDomainTrainer, Trainer
from auxbench.training.streams import resolve_device

log = logging.getLogger(__name__)

BASELINE = "fp32"
VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {},
    "bf16": {"bf16": True},
    "channels_last": {"channels_last": True},
    "compile": {"compile": True},  # the backend: ``compile_backend``
}
"""Each variant's ``TrainConfig`` settings on top of the fp32 baseline."""

MULTIDOMAIN = "mtl"
"""The method name of the multi-domain trainer (Auto-λ's protocol; the method is ``single``)."""

DEFAULT_METHODS = (
    "single",
    "maxl",
    "maxl-fo",
    "rl-aux",
    "human+noise/weighting=autolambda",
    "mtl/weighting=autolambda",
)

COMPILE_ALLOWANCE_S = 90.0
"""What the ``max_seconds`` guard allows for a ``compile`` variant's compilation."""

PAPER_DIR = Path("config/paper")

VARIANT_ERRORS = (RuntimeError, ValueError)
"""What a variant that this machine cannot run raises (torch's errors, compilation's and out of
memory among them, are RuntimeErrors; a method refusing the setting a ValueError): recorded in
its row, and the other variants go on. ``ConfigError`` and ``DataError`` still stop the run."""

# CIFAR-100's training set, as its files hold it: 50,000 images, 500 of each of the 100 fine
# classes, 5 fine classes in each of the 20 superclasses (cifar100-20's classes, cifar100-mtl's
# domains).
CIFAR100_TRAIN_PER_CLASS = 500
CIFAR100_SUPERCLASSES = 20
CIFAR100_CLASSES_PER_SUPERCLASS = 5


@dataclass(frozen=True)
class Protocol:
    """A paper protocol's size: ``steps_per_epoch`` × ``epochs`` training steps of
    ``batch_size`` images (per domain, multi-domain), as its config file sets them; ``train``
    is that file's ``train`` section; ``paper`` the paper's wall-time figure (hours, as a range;
    None where the paper states none)."""

    name: str
    config: Path
    dataset: str
    train: dict[str, Any]
    epochs: int
    batch_size: int
    train_images: int
    steps_per_epoch: int
    paper: tuple[float, float] | None
    paper_source: str

    @property
    def steps(self) -> int:
        """The training steps of a full run."""
        return self.epochs * self.steps_per_epoch

    def describe(self) -> str:
        """One line: the protocol's size and the paper's figure."""
        per = "per domain " if self.dataset == "cifar100-mtl" else ""
        paper = f"{_hours(*self.paper)} {self.paper_source}" if self.paper else self.paper_source
        return (
            f"{self.name}: {self.dataset}, {self.train_images:,} training images {per}after "
            f"the validation hold-out, {self.epochs} epochs × {self.steps_per_epoch} steps of "
            f"{self.batch_size} = {self.steps:,} steps ({self.config}); paper: {paper}"
        )


RL_AUX, AUTO_LAMBDA = "rl-aux-cifar100-20", "auto-lambda-cifar100-mtl"
# The protocols: (config file, the paper's figure in hours, where the paper says it).
PROTOCOLS = {
    RL_AUX: (
        "rl-aux-cifar100-20.yaml",
        (12.0, 36.0),
        (
            "per experiment on 2080 Ti GPUs (RL-AUX appendix B: 'Each experiment took between "
            "12-36 hours')"
        ),
    ),
    AUTO_LAMBDA: (
        "auto-lambda-cifar100-mtl.yaml",
        None,
        "no wall time stated (Auto-λ)",
    ),
}


def read_protocol(name: str, paper_dir: Path = PAPER_DIR) -> Protocol:
    """The protocol ``name`` of ``PROTOCOLS`` from its config file in ``paper_dir``: epochs and
    batch size from the file's ``train`` section, the training images of CIFAR-100 that the
    project trains on (the validation fraction held out per class, as ``stratified_split`` does:
    per class for cifar100-20, per fine class for cifar100-mtl, whose step takes one batch from
    each domain, so an epoch is its largest domain's batches)."""
    file, paper, source = PROTOCOLS[name]
    path = Path(paper_dir) / file
    values = read_yaml(path)
    train = values.get("train") or {}
    dataset = (values.get("datasets") or [None])[0]
    if dataset not in ("cifar100-20", "cifar100-mtl") or "epochs" not in train:
        raise ConfigError(
            f"{path}: expected `datasets: [cifar100-20]` or `[cifar100-mtl]` and `train.epochs`, "
            f"got datasets={values.get('datasets')!r}, train={train!r}"
        )
    val_fraction = train.get("val_fraction", TrainConfig.val_fraction)
    batch = train.get("batch_size", TrainConfig.batch_size)
    if dataset == "cifar100-20":
        per_class = CIFAR100_TRAIN_PER_CLASS * CIFAR100_CLASSES_PER_SUPERCLASS
        kept = _kept(CIFAR100_SUPERCLASSES, per_class, val_fraction)
    else:
        kept = _kept(CIFAR100_CLASSES_PER_SUPERCLASS, CIFAR100_TRAIN_PER_CLASS, val_fraction)
    return Protocol(
        name=name,
        config=path,
        dataset=dataset,
        train=train,
        epochs=train["epochs"],
        batch_size=batch,
        train_images=kept,
        steps_per_epoch=math.ceil(kept / batch),
        paper=paper,
        paper_source=source,
    )


def _kept(classes: int, per_class: int, val_fraction: float) -> int:
    """How many of ``classes`` × ``per_class`` training images ``stratified_split`` keeps."""
    labels = torch.arange(classes).repeat_interleave(per_class)
    return len(stratified_split(labels, val_fraction, seed=0)[0])


def synthetic_cifar(protocol: Protocol, steps: int, seed: int = 0):
    """Synthetic data of CIFAR-100's shape for ``protocol`` (``synthetic_raw``: 3×32×32 images,
    20 classes of 5 auxiliary classes each), with at least ``steps`` batches of training images
    (per domain, multi-domain) once the protocol's validation fraction is held out."""
    val_fraction = protocol.train.get("val_fraction", TrainConfig.val_fraction)
    needed = steps * protocol.batch_size
    groups = CIFAR100_SUPERCLASSES if protocol.dataset == "cifar100-mtl" else 1
    # the classes' shares of the training images vary (the split is random): 15% to spare
    n_train = groups * (math.ceil(1.15 * needed / (1 - val_fraction)) + 50)
    raw = synthetic_raw(
        n_train=n_train,
        n_test=4 * CIFAR100_SUPERCLASSES * CIFAR100_CLASSES_PER_SUPERCLASS,
        num_classes=CIFAR100_SUPERCLASSES,
        aux_per_class=CIFAR100_CLASSES_PER_SUPERCLASS,
        image_size=32,
        channels=3,
        seed=seed,
    )
    if protocol.dataset == "cifar100-mtl":
        data = assemble_domains(raw, val_fraction, seed)
        smallest = min(len(domain.train) for domain in data.domains)
    else:
        data = assemble(raw, val_fraction, seed)
        smallest = len(data.train)
    if smallest < needed:
        raise DataError(f"synthetic {protocol.dataset}: {smallest} training images, need {needed}")
    return data


def no_cuda_message(variants: Sequence[str], methods: Sequence[str]) -> str:
    """The one line that says the benchmark needs a CUDA GPU, and its CPU command."""
    return (
        "bench --variants: --device cuda needs a CUDA GPU, and torch sees none "
        "(torch.cuda.is_available() is False). The same benchmark on the CPU at tiny sizes: "
        f"auxbench bench --variants {','.join(variants)} --methods {','.join(methods)} "
        "--device cpu --steps 2 --repeats 1 --width 0.0625 --compile-methods single "
        "--compile-backend eager"
    )


def device_name(device: torch.device) -> str:
    """The accelerator's name (``torch.cuda.get_device_name``), or ``cpu (N threads)``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({torch.get_num_threads()} threads)"


def fp32_precision() -> str:
    """What fp32 means here: cuDNN convolutions and CUDA matmuls may use TF32 (PyTorch's
    ``fp32_precision`` settings, ``tf32`` or ``ieee``/``none``)."""
    conv = getattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision", "?")
    matmul = getattr(torch.backends.cuda.matmul, "fp32_precision", "?")
    return f"conv={conv} matmul={matmul}"


@dataclass
class _Budget:
    """How long the benchmark may run, and what it knows so far to estimate a variant's time."""

    clock: Callable[[], float]
    max_seconds: float | None
    started: float = 0.0
    slowest_epoch: float = 0.0  # the slowest fp32 warm-up epoch so far

    def __post_init__(self) -> None:
        self.started = self.clock()

    def overrun(self, seconds: float) -> str | None:
        """None when ``seconds`` more end within ``max_seconds``, else the note saying why not."""
        if self.max_seconds is None:
            return None
        elapsed = self.clock() - self.started
        if elapsed + seconds <= self.max_seconds:
            return None
        return (
            f"--max-seconds {self.max_seconds:g}: at {elapsed:.0f} s, its estimated "
            f"{seconds:.0f} s more (with the variants already warmed up) would end past it"
        )


@dataclass
class _Setting:
    """What every method's variants share."""

    variants: list[str]
    repeats: int
    warmup: int
    compile_methods: Sequence[str] | None
    compile_backend: str
    header: str
    device: str


def variant_costs(
    methods: Sequence[str] = DEFAULT_METHODS,
    variants: Sequence[str] = tuple(VARIANTS),
    steps: int = 20,
    repeats: int = 3,
    device: str = "cuda",
    width: float = 1.0,
    model: str | None = None,
    warmup: int = 1,
    compile_methods: Sequence[str] | None = None,
    compile_backend: str = "inductor",
    max_seconds: float | None = None,
    paper_dir: Path = PAPER_DIR,
    after_method: Callable[[list[dict[str, Any]]], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[dict[str, Any]]:
    """One row per method × variant: the median seconds per epoch and per step, the ratio to the
    method's fp32 step (``vs_fp32``), the warm-up (and, compiled, the compilation: the warm-up
    less as many median epochs), and the projection ``projected_h`` = seconds per step × the
    protocol's steps / 3600 beside the paper's hours.

    Per method, each variant gets its own trainer (the protocol's ``train`` settings, the model
    at ``width``, ``steps`` batches a training epoch) and ``warmup`` untimed epochs
    (``run_epoch``: the method's own work before and after the batches included); then the
    variants take turns for ``repeats`` timed epochs. ``compile`` runs only for the
    ``compile_methods`` (None: all). With ``max_seconds``, a variant whose warm-up and timed
    epochs (estimated from its method's fp32 warm-up epoch, or before that the slowest fp32
    warm-up epoch so far, plus ``COMPILE_ALLOWANCE_S`` to compile) would end past it is skipped
    with a note, and the timed epochs stop early (at least one each) when the next round would
    end past it. A variant that fails on this machine (e.g. compiling MAXL's double backward) is
    recorded with its error. Every row is there, its ``status`` ``measured``, ``skipped`` or
    ``failed`` and its ``note`` saying why. ``after_method`` gets the rows so far after each
    method (to save them)."""
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown or not variants:
        raise ConfigError(
            f"bench --variants: unknown variant(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(VARIANTS)}"
        )
    variants = [BASELINE, *(name for name in dict.fromkeys(variants) if name != BASELINE)]
    target = resolve_device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(no_cuda_message(variants, list(dict.fromkeys(methods))))
    budget = _Budget(clock, max_seconds)
    protocols = {name: read_protocol(name, paper_dir) for name in PROTOCOLS}
    setting = _Setting(
        variants=variants,
        repeats=repeats,
        warmup=warmup,
        compile_methods=compile_methods,
        compile_backend=compile_backend,
        header=(
            f"GPU benchmark: device={device_name(target)} ({target}) torch={torch.__version__} "
            f"fp32 precision: {fp32_precision()}; model={model or 'vgg16 (the protocol)'} "
            f"width={width:g} steps={steps} repeats={repeats} warmup={warmup} "
            f"compile={compile_backend}; data: synthetic, CIFAR-shaped (3x32x32)"
        ),
        device=device_name(target),
    )
    datasets: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for spec in dict.fromkeys(methods):
        name, values = method_variant(spec)
        protocol = protocols[AUTO_LAMBDA if name == MULTIDOMAIN else RL_AUX]
        if name == MULTIDOMAIN:
            values["method"] = "single"
        if protocol.name not in datasets:
            datasets[protocol.name] = synthetic_cifar(protocol, steps)
        settings = {
            **{key: value for key, value in protocol.train.items() if key in CONFIG_KEYS},
            "dataset": protocol.dataset,
            "device": device,
            "width": width,
            "train_limit": steps * protocol.batch_size,
            **({"model": model} if model else {}),
            **values,
        }
        rows.extend(
            _method_rows(spec, settings, datasets[protocol.name], protocol, setting, budget)
        )
        if after_method is not None:
            after_method(rows)
    return rows


def _method_rows(
    spec: str,
    settings: dict[str, Any],
    data: Any,
    protocol: Protocol,
    setting: _Setting,
    budget: _Budget,
) -> list[dict[str, Any]]:
    """The rows of one method's variants (see ``variant_costs``)."""
    repeats, warmup = setting.repeats, setting.warmup
    multidomain = method_variant(spec)[0] == MULTIDOMAIN
    compiled = setting.compile_methods is None or bool(
        {spec, method_variant(spec)[0]} & set(setting.compile_methods)
    )
    trainers: dict[str, Any] = {}
    warmups: dict[str, float] = {}
    times: dict[str, list[float]] = {}
    notes: dict[str, tuple[str, str]] = {}
    epochs: dict[str, int] = {}

    def epoch(variant: str) -> float:
        epochs[variant] += 1
        trainer = trainers[variant]
        return wall_time(trainer.device, lambda: trainer.run_epoch(epochs[variant]))

    def fail(variant: str, error: Exception) -> None:
        message = (str(error).strip().splitlines() or [""])[0][:300]
        notes[variant] = ("failed", f"{type(error).__name__}: {message}")
        log.warning("bench: %s %s failed: %s", spec, variant, notes[variant][1])
        trainers.pop(variant, None)
        _release(compiled_too=False)

    committed = 0.0  # the estimated timed epochs still to run of the variants warmed up
    for variant in setting.variants:
        if variant == "compile" and not compiled:
            notes[variant] = ("skipped", "not among --compile-methods")
            continue
        per_epoch = warmups[BASELINE] / warmup if BASELINE in warmups else budget.slowest_epoch
        estimate = (warmup + repeats) * per_epoch
        estimate += COMPILE_ALLOWANCE_S if variant == "compile" else 0.0
        overrun = budget.overrun(committed + estimate)
        if overrun:
            notes[variant] = ("skipped", overrun)
            log.warning("bench: %s %s skipped: %s", spec, variant, overrun)
            continue
        values = dict(settings, **VARIANTS[variant])
        if variant == "compile":
            values["compile"] = setting.compile_backend
        try:
            config = check_method(make_config(values, f"bench --variants {spec}"))
            trainers[variant] = (MultiDomainTrainer if multidomain else Trainer)(config, data)
            epochs[variant] = 0
            warmups[variant] = sum(epoch(variant) for _ in range(warmup))
        except (ConfigError, DataError):
            raise
        except VARIANT_ERRORS as error:
            fail(variant, error)
            continue
        times[variant] = []
        committed += repeats * warmups[variant] / warmup
        if variant == BASELINE:
            budget.slowest_epoch = max(budget.slowest_epoch, warmups[variant] / warmup)
        log.info("bench: %s %s: warm-up %.1f s", spec, variant, warmups[variant])
    for done in range(repeats):
        overrun = budget.overrun(sum(warmups[variant] / warmup for variant in trainers))
        if done and overrun:
            for variant in trainers:
                notes[variant] = ("measured", f"timed epochs cut to {done}: {overrun}")
            log.warning("bench: %s: timed epochs cut to %d: %s", spec, done, overrun)
            break
        for variant in list(trainers):
            try:
                times[variant].append(epoch(variant))
            except VARIANT_ERRORS as error:
                fail(variant, error)
    rows = []
    for variant in setting.variants:
        row = _row(spec, variant, protocol, setting, settings)
        if variant in trainers:
            trainer = trainers[variant]
            steps = _steps_per_epoch(trainer)
            epoch_s = statistics.median(times[variant])
            row.update(
                status="measured",
                parameters=sum(p.numel() for p in trainer.model.parameters()),
                steps=steps,
                repeats=len(times[variant]),
                warmup_s=warmups[variant],
                compile_s=warmups[variant] - warmup * epoch_s if variant == "compile" else None,
                epoch_s=epoch_s,
                step_s=epoch_s / steps,
                projected_h=epoch_s / steps * protocol.steps / 3600,
                note=notes.get(variant, ("", ""))[1],
            )
        else:
            row.update(status=notes[variant][0], note=notes[variant][1])
        rows.append(row)
    baseline = rows[0]["step_s"]
    for row in rows:
        if row["step_s"] is not None and baseline is not None:
            row["vs_fp32"] = row["step_s"] / baseline
    trainers.clear()
    _release(compiled_too=True)
    return rows


def _row(
    spec: str, variant: str, protocol: Protocol, setting: _Setting, settings: dict[str, Any]
) -> dict[str, Any]:
    """A row with every column, the measurements empty."""
    low, high = protocol.paper or (None, None)
    return {
        "method": spec,
        "variant": variant,
        "status": None,
        "note": "",
        "device": setting.device,
        "model": settings.get("model", TrainConfig.model),
        "width": settings["width"],
        "batch_size": protocol.batch_size,
        "parameters": None,
        "steps": None,
        "repeats": 0,
        "warmup": setting.warmup,
        "warmup_s": None,
        "compile_s": None,
        "epoch_s": None,
        "step_s": None,
        "vs_fp32": None,
        "protocol": protocol.name,
        "protocol_steps": protocol.steps,
        "projected_h": None,
        "paper_h_min": low,
        "paper_h_max": high,
        "paper": protocol.paper_source,
        "protocol_about": protocol.describe(),
        "setting": setting.header,
    }


def _steps_per_epoch(trainer: Any) -> int:
    """The training steps of one of the trainer's epochs."""
    if isinstance(trainer, MultiDomainTrainer):
        return trainer.iterations
    return math.ceil(len(trainer.train_split) / trainer.config.batch_size)


def _release(compiled_too: bool) -> None:
    """Free what dropped trainers held: Python garbage, cached CUDA memory and, ``compiled_too``
    (once a method's variants are done), the compiled graphs."""
    if compiled_too:
        torch.compiler.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def format_variants(rows: list[dict[str, Any]]) -> str:
    """The rows of ``variant_costs`` as text: the setting and protocols, a table of every
    method × variant, the ratios to fp32 side by side, and the notes of what did not run."""
    width = max(12, *(len(row["method"]) for row in rows))
    lines = [rows[0]["setting"], "protocols:"]
    lines += [f"  {about}" for about in dict.fromkeys(row["protocol_about"] for row in rows)]
    lines.append(
        f"{'method':<{width}} {'variant':<13} {'step':>11} {'vs fp32':>8} {'warm-up':>8} "
        f"{'compile':>8} {'projected':>10}  paper"
    )
    for row in rows:
        start = f"{row['method']:<{width}} {row['variant']:<13}"
        if row["status"] != "measured":
            lines.append(f"{start} {row['status']}")
            continue
        compiling = "-" if row["compile_s"] is None else f"{row['compile_s']:.1f} s"
        lines.append(
            f"{start} {row['step_s'] * 1e3:>8.2f} ms {_ratio(row['vs_fp32']):>8} "
            f"{row['warmup_s']:>6.1f} s {compiling:>8} {row['projected_h']:>8.2f} h  "
            f"{_hours(row['paper_h_min'], row['paper_h_max'])} ({row['protocol']})"
        )
    variants = list(dict.fromkeys(row["variant"] for row in rows))
    ratios = {(row["method"], row["variant"]): row["vs_fp32"] for row in rows}
    lines.append("ratios, variant step / fp32 step (measured side by side in this run):")
    lines.append(f"{'method':<{width}} " + " ".join(f"{name:>13}" for name in variants))
    for method in dict.fromkeys(row["method"] for row in rows):
        cells = (_ratio(ratios[method, name]) for name in variants)
        lines.append(f"{method:<{width}} " + " ".join(f"{cell:>13}" for cell in cells))
    notes = [row for row in rows if row["note"]]
    if notes:
        lines.append("notes:")
        lines += [
            f"  {row['method']} {row['variant']}: {row['status']}: {row['note']}" for row in notes
        ]
    return "\n".join(lines)


def _hours(low: float | None, high: float | None) -> str:
    """A paper's figure: ``12-36 h``, or ``-`` when it states none."""
    return "-" if low is None else f"{low:g}-{high:g} h"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"
