"""The resolved configuration of one training run, with validation that says what is wrong."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from auxbench.data import DATASETS
from auxbench.foundations.errors import ConfigError
from auxbench.foundations.losses import LOSSES
from auxbench.foundations.validation import at_least, choice
from auxbench.models import TRUNKS
from auxbench.weighting import GRADIENTS, WEIGHTINGS

SCHEDULES = ("step", "cosine")


@dataclass
class TrainConfig:
    """Everything that determines one run. Defaults follow RL-AUX appendix B where it states them.

    SGD momentum and weight decay are not stated in the paper; 0.9 and 5e-4 are the usual values
    for VGG16 on CIFAR and are configurable.

    ``schedule``: ``step`` multiplies the lr by ``lr_gamma`` every ``lr_step`` epochs; ``cosine``
    anneals it from ``lr`` to 0 over ``epochs`` (Auto-λ's CIFAR-100 protocol).
    ``weighting_params`` go to the configured weighting; an entry keyed by a weighting's name holds
    settings for that weighting only and overrides the plain entries, so one grid can set, say,
    ``{autolambda: {lr: 3.0e-4}}`` without passing ``lr`` to every other weighting.
    ``primary_domains`` (multi-domain datasets only) selects auxiliary learning: those domains are
    primary (model selection on their mean validation accuracy), the others auxiliary.
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
    schedule: str = "step"  # the lr schedule: step (StepLR(lr_step, lr_gamma)) or cosine
    lr_step: int = 50
    lr_gamma: float = 0.5
    loss: str = "focal"
    focal_gamma: float = 2.0
    val_fraction: float = 0.1
    train_limit: int | None = None  # a seeded random subset of the training split, for quick runs
    eval_limit: int | None = None  # the same random subset of so many val and test images each
    patience: int | None = None
    augment: bool = True
    device: str = "auto"
    bf16: bool = False
    channels_last: bool = False  # channels-last networks (main, label net, agent): faster pooling
    compile: bool | str = False  # torch.compile the main network (a string names the backend)
    data_root: str | None = None
    method_params: dict[str, Any] = field(default_factory=dict)
    weighting: str = "fixed"  # how the task losses are weighted (auxbench.weighting)
    # a weighting's settings; entries under a weighting's name apply to that weighting only
    weighting_params: dict[str, Any] = field(default_factory=dict)
    gradient: str | None = None  # a gradient method on the shared parameters (pcgrad, ...)
    gradient_params: dict[str, Any] = field(default_factory=dict)
    meta_split: str = "train"  # where weightings that look ahead (autolambda) take batches
    noise_task: bool = False  # add Auto-λ's sanity task: a fixed random label per image
    noise_classes: int | None = None  # its number of classes (default: the primary task's)
    # multi-domain datasets: the primary domains' indices (None: every domain, multi-task learning)
    primary_domains: list[int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict of every setting."""
        return asdict(self)

    def validate(self) -> TrainConfig:
        """Raise ``ConfigError`` for any out-of-range value or unknown name; return ``self``."""
        choice("dataset", self.dataset, tuple(DATASETS))
        choice("model", self.model, tuple(TRUNKS))
        choice("loss", self.loss, LOSSES)
        choice("device", self.device.split(":")[0], ("auto", "cpu", "cuda", "mps"))
        choice("weighting", self.weighting, tuple(sorted(WEIGHTINGS)))
        if self.gradient is not None:
            choice("gradient", self.gradient, tuple(sorted(GRADIENTS)))
        choice("meta_split", self.meta_split, ("train", "val"))
        choice("schedule", self.schedule, SCHEDULES)
        for name in ("epochs", "batch_size", "eval_batch_size", "lr_step"):
            at_least(name, getattr(self, name), 1)
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
        if not isinstance(self.compile, bool | str) or self.compile == "":
            raise ConfigError(
                f"compile must be true, false or a torch.compile backend name, got {self.compile!r}"
            )
        for name in ("train_limit", "eval_limit"):
            if getattr(self, name) is not None:
                at_least(name, getattr(self, name), 1)
        if self.patience is not None:
            at_least("patience", self.patience, 1)
        if self.noise_classes is not None:
            at_least("noise_classes", self.noise_classes, 2)
        for name, value in self.weighting_params.items():
            if name in WEIGHTINGS and not isinstance(value, dict):
                raise ConfigError(
                    f"weighting_params: the entry {name!r} names a weighting, so it must map that "
                    f"weighting's settings (e.g. {{{name}: {{lr: 0.001}}}}), got {value!r}"
                )
        self._validate_domains(DATASETS[self.dataset].domains)
        return self

    def _validate_domains(self, domains: int | None) -> None:
        """Multi-domain datasets (``domains`` tasks) train one head per domain and nothing else;
        ``primary_domains`` must name distinct domains of such a dataset."""
        if domains is None:
            if self.primary_domains is not None:
                raise ConfigError(
                    f"primary_domains applies to multi-domain datasets only; {self.dataset!r} has "
                    "one task"
                )
            return
        if self.method != "single" or self.noise_task:
            raise ConfigError(
                f"dataset {self.dataset!r} is multi-domain: its tasks are its {domains} domains, "
                f"so method must be 'single' without the noise task (got {self.method!r}"
                f"{', noise_task' if self.noise_task else ''})"
            )
        if self.primary_domains is None:
            return
        if not isinstance(self.primary_domains, list | tuple) or not self.primary_domains:
            raise ConfigError(
                f"primary_domains must be a non-empty list of domain indices or null, "
                f"got {self.primary_domains!r}"
            )
        for index in self.primary_domains:
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < domains:
                raise ConfigError(
                    f"primary_domains: unknown domain index {index!r}; {self.dataset!r} has "
                    f"domains 0..{domains - 1} (in the order of its files' domain names)"
                )
        if len(set(self.primary_domains)) != len(self.primary_domains):
            raise ConfigError(f"primary_domains repeats a domain: {self.primary_domains!r}")


CONFIG_KEYS = tuple(f.name for f in fields(TrainConfig))


def build_validated(cls: type, values: dict[str, Any], source: str) -> Any:
    """An instance of the config dataclass ``cls`` (with a ``validate`` method returning it) from
    a dict, refusing unknown keys."""
    keys = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(keys))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(keys)}"
        )
    try:
        config = cls(**values)
    except TypeError as error:
        raise ConfigError(f"{source}: {error}") from error
    return config.validate()


def make_config(values: dict[str, Any], source: str = "config") -> TrainConfig:
    """Build and validate a ``TrainConfig`` from a dict, refusing unknown keys."""
    return build_validated(TrainConfig, values, source)


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
