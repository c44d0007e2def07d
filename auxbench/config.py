"""The resolved configuration of one training run, with validation that says what is wrong."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from auxbench.losses import LOSSES


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message names it and the valid choices."""


@dataclass
class TrainConfig:
    """Everything that determines one run. Defaults follow RL-AUX appendix B where it states them.

    SGD momentum and weight decay are not stated in the paper; 0.9 and 5e-4 are the usual values
    for VGG16 on CIFAR and are configurable.
    """

    dataset: str = "fashion-mnist"
    method: str = "single"
    model: str = "small"
    width: float = 1.0
    lam: float = 1.0
    seed: int = 0
    epochs: int = 15
    batch_size: int = 100
    eval_batch_size: int = 1000
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_step: int = 50
    lr_gamma: float = 0.5
    loss: str = "focal"
    focal_gamma: float = 2.0
    val_fraction: float = 0.1
    train_limit: int | None = None  # a seeded random subset of the training split, for quick runs
    patience: int | None = None
    augment: bool = True
    device: str = "auto"
    bf16: bool = False
    data_root: str | None = None
    method_params: dict[str, Any] = field(default_factory=dict)
    weighting: str = "fixed"  # how the task losses are weighted (auxbench.weighting)
    weighting_params: dict[str, Any] = field(default_factory=dict)
    gradient: str | None = None  # a gradient method on the shared parameters (pcgrad, ...)
    gradient_params: dict[str, Any] = field(default_factory=dict)
    meta_split: str = "train"  # where weightings that look ahead (autolambda) take batches
    noise_task: bool = False  # add Auto-λ's sanity task: a fixed random label per image
    noise_classes: int | None = None  # its number of classes (default: the primary task's)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict of every setting."""
        return asdict(self)

    def validate(self) -> TrainConfig:
        """Raise ``ConfigError`` for any out-of-range value or unknown name; return ``self``."""
        from auxbench.data import DATASETS
        from auxbench.methods import method_names
        from auxbench.models import TRUNKS
        from auxbench.weighting import GRADIENTS, WEIGHTINGS

        _choice("dataset", self.dataset, tuple(DATASETS))
        _choice("method", self.method, method_names())
        _choice("model", self.model, tuple(TRUNKS))
        _choice("loss", self.loss, LOSSES)
        _choice("device", self.device.split(":")[0], ("auto", "cpu", "cuda", "mps"))
        _choice("weighting", self.weighting, tuple(sorted(WEIGHTINGS)))
        if self.gradient is not None:
            _choice("gradient", self.gradient, tuple(sorted(GRADIENTS)))
        _choice("meta_split", self.meta_split, ("train", "val"))
        for name in ("epochs", "batch_size", "eval_batch_size", "lr_step"):
            _at_least(name, getattr(self, name), 1)
        for name in ("lr", "width"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("lam", "momentum", "weight_decay", "focal_gamma"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 < self.lr_gamma <= 1:
            raise ConfigError(f"lr_gamma must be in (0, 1], got {self.lr_gamma!r}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        if self.train_limit is not None:
            _at_least("train_limit", self.train_limit, 1)
        if self.patience is not None:
            _at_least("patience", self.patience, 1)
        if self.noise_classes is not None:
            _at_least("noise_classes", self.noise_classes, 2)
        return self


def _choice(name: str, value: Any, choices: tuple[str, ...] | list[str]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")


def _at_least(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


CONFIG_KEYS = tuple(f.name for f in fields(TrainConfig))


def make_config(values: dict[str, Any], source: str = "config") -> TrainConfig:
    """Build and validate a ``TrainConfig`` from a dict, refusing unknown keys."""
    unknown = sorted(set(values) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(CONFIG_KEYS)}"
        )
    try:
        config = TrainConfig(**values)
    except TypeError as error:
        raise ConfigError(f"{source}: {error}") from error
    return config.validate()


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing file or malformed content."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return values
