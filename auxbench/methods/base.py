"""The method plug-in interface and its registry.

A method owns only what differs from plain supervised training; the trainer owns the loop,
evaluation, logging and checkpoints. A method sees the trainer through ``TrainerView`` (a
``Protocol``: this layer does not import the trainer). To add a method:

1. write ``auxbench/methods/<name>.py`` with a ``Method`` subclass decorated with ``@register``;
   give it a ``name``, a one-line ``description`` and ``uses_lambda`` (whether λ means something);
2. override what it needs: ``tasks`` (its auxiliary tasks, ``auxbench.tasks``: a head, its loss
   and its fixed weight each), ``setup`` (build extra networks once the trainer and its main
   network exist), ``before_epoch`` (work before each epoch of the main network, such as training
   an agent), ``after_step`` (work after each main-network step, such as a meta-update),
   ``after_epoch`` (per-epoch work and logs) and ``state_dict`` / ``load_state_dict`` for any
   state of its own (settings from ``config.method_params`` through ``method_params``), and
   ``minimum_passes`` when it does more than the main network's steps (its algorithmic minimum,
   which the benchmark divides the measured cost by);
3. import the module in ``auxbench/methods/__init__.py``, add one test and its docs page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, Protocol

import torch

from auxbench.config import TrainConfig
from auxbench.data import Dataset
from auxbench.foundations.errors import ConfigError
from auxbench.foundations.passes import Passes
from auxbench.foundations.validation import choice
from auxbench.tasks import Batch, Task
from auxbench.weighting import Weighting

LossOverrides = dict[str, Callable[[torch.Tensor, Batch], torch.Tensor]]
"""Task name → loss of that task's head output on a batch, in place of the task's own (an
environment that chooses a task's targets itself)."""


class TrainerView(Protocol):
    """What a method sees of the trainer that runs it (``auxbench.training.supervised.Trainer``):
    the run's config and dataset, the device, the main network with its optimiser and weighting,
    the tasks (``tasks[0]`` is the primary task), the training and validation splits on the device
    (``images`` and ``labels`` tensors, ``len``), and what it can do."""

    config: TrainConfig
    dataset: Dataset
    device: torch.device
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    weighting: Weighting
    tasks: list[Task]
    train_split: Any
    val_split: Any

    def batches(
        self,
        split: Any = None,
        shuffle: torch.Generator | None = None,
        augment_with: torch.Generator | None = None,
    ) -> Iterator[Batch]:
        """One epoch of shuffled, augmented batches of ``split`` (default: training)."""

    def step(self, batch: Batch, overrides: LossOverrides | None = None) -> Any:
        """One optimiser step of the main network on ``batch``."""

    def placed(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` on the training device (channels-last when configured)."""

    def autocast(self) -> AbstractContextManager:
        """The run's autocast context."""

    def generators(self) -> dict[str, torch.Generator]:
        """The trainer's own random streams by name (batch order, augmentation, look-ahead
        batches), which a method's own work must leave as it found them."""


class Method:
    """Base class: primary task only, no auxiliary tasks."""

    name: ClassVar[str]
    description: ClassVar[str]
    uses_lambda: ClassVar[bool] = False

    def __init__(self, config: TrainConfig, dataset: Dataset):
        self.config = config
        self.dataset = dataset
        self.recording = True

    @contextmanager
    def not_recording(self) -> Iterator[None]:
        """Within this block ``recording`` is False: losses computed only to look ahead (e.g. by
        Auto-λ) must not enter a method's per-epoch logs."""
        self.recording = False
        try:
            yield
        finally:
            self.recording = True

    def tasks(self) -> list[Task]:
        """The method's auxiliary tasks (their heads are added to the main network after the
        primary task's)."""
        return []

    def setup(self, trainer: TrainerView) -> None:
        """Called once the trainer is built: ``trainer.model`` (on ``trainer.device``),
        ``trainer.optimizer``, ``trainer.batches()`` and ``trainer.tasks`` are ready."""

    def before_epoch(self, epoch: int) -> dict[str, float]:
        """Per-epoch work before the main network's epoch; returns values to log."""
        return {}

    def after_step(self, batch: Batch) -> None:
        """Called after each optimiser step of the main network on ``batch``."""

    def after_epoch(self, epoch: int) -> dict[str, float]:
        """Per-epoch work once the main network's epoch is done; returns values to log."""
        return {}

    def minimum_passes(self, step: Passes) -> Passes:
        """The least one training step of the main network costs with this method, in passes of
        the main network (``auxbench.foundations.passes``), given what the ``step`` itself costs
        under the run's weighting: just the step, for methods that only add tasks."""
        return step

    def state_dict(self) -> dict[str, Any]:
        """The method's own state (networks, optimisers, counters) for checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


log = logging.getLogger(__name__)


def endless(epochs: Callable[[], Iterator[Batch]]) -> Iterator[Batch]:
    """The batches of ``epochs()``, called again each time it runs out."""
    while True:
        yield from epochs()


METHODS: dict[str, type[Method]] = {}


def method_params(
    values: dict[str, Any],
    defaults: dict[str, Any],
    method: str,
    *,
    choices: dict[str, tuple[str, ...]] | None = None,
    integers: tuple[str, ...] = (),
    positive: tuple[str, ...] = (),
    non_negative: tuple[str, ...] = (),
    unit_interval: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A method's validated settings: ``values`` (``config.method_params``) over its ``defaults``.

    ``method_params`` is shared by every run of a grid, so keys a method does not know are left to
    the other methods, with a warning. The named keys must be one of their ``choices``, integers
    >= 1, > 0, >= 0 or in (0, 1]; anything else raises ``ConfigError`` naming key and value.
    """
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        log.warning("%s ignores method_params %s", method, ", ".join(unknown))
    params = {**defaults, **{key: value for key, value in values.items() if key in defaults}}
    for key, allowed in (choices or {}).items():
        if params[key] not in allowed:
            raise ConfigError(
                f"method_params.{key} {params[key]!r} is unknown; choose one of: "
                f"{', '.join(allowed)}"
            )
    checks = (
        (
            integers,
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
            "an integer >= 1",
        ),
        (positive, lambda v: _number(v) and v > 0, "> 0"),
        (non_negative, lambda v: _number(v) and v >= 0, ">= 0"),
        (unit_interval, lambda v: _number(v) and 0 < v <= 1, "in (0, 1]"),
    )
    for keys, valid, what in checks:
        for key in keys:
            if not valid(params[key]):
                raise ConfigError(f"method_params.{key} must be {what}, got {params[key]!r}")
    return params


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def register(cls: type[Method]) -> type[Method]:
    """Class decorator adding a method to the registry under ``cls.name``."""
    if cls.name in METHODS:
        raise ValueError(f"method {cls.name!r} is registered twice")
    METHODS[cls.name] = cls
    return cls


def method_names() -> tuple[str, ...]:
    """Names of every registered method, sorted."""
    return tuple(sorted(METHODS))


def check_method(config: TrainConfig) -> TrainConfig:
    """``config`` with a registered ``method`` (``TrainConfig.validate`` checks every other key;
    the method registry lives above the config layer); raises ``ConfigError`` otherwise."""
    choice("method", config.method, method_names())
    return config


def create_method(name: str, config: TrainConfig, dataset: Dataset) -> Method:
    """Instantiate the registered method ``name``."""
    choice("method", name, method_names())
    return METHODS[name](config, dataset)
