"""The resolved configuration of one training run, with validation that says what is wrong.

Every ``TrainConfig`` field carries, in its metadata, a one-line description (``help``) and the
checks ``validate`` applies besides its type annotation: ``choices`` (a tuple or a registry whose
keys are the names), numeric bounds (``minimum``, ``exclusive_minimum``, ``maximum``,
``exclusive_maximum``) and a ``pattern``. ``auxbench train --help`` and the workflow's schema
(``auxbench.experiment.schema``) are generated from the same metadata.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from auxbench.data import DATASETS
from auxbench.data.dense_sets import DENSE_DATASETS
from auxbench.data.user_sets import UserDataset
from auxbench.foundations.errors import ConfigError
from auxbench.foundations.losses import LOSSES
from auxbench.foundations.validation import (
    check_field_types,
    choice,
    describe_bounds,
    in_range,
    type_hints,
)
from auxbench.models import TRUNKS
from auxbench.models.dense import DENSE_ARCHITECTURES, DENSE_BACKBONES
from auxbench.weighting import GRADIENTS, WEIGHTINGS

SCHEDULES = ("step", "cosine")
META_SPLITS = ("train", "val")
DEVICE_PATTERN = (
    r"auto|(cpu|cuda|mps)(:[0-9]+)?",
    "auto, cpu, cuda or mps (the last three optionally with an index, e.g. cuda:1)",
)
BOUNDS = ("minimum", "exclusive_minimum", "maximum", "exclusive_maximum")


def about(
    help: str,
    *,
    choices: tuple[str, ...] | Mapping[str, Any] | None = None,
    pattern: tuple[str, str] | None = None,
    **bounds: float,
) -> dict[str, Any]:
    """A config field's metadata: its description and the checks ``validate`` applies (see the
    module docstring); ``pattern`` is (a regular expression the whole value must match, the valid
    values in words)."""
    unknown = set(bounds) - set(BOUNDS)
    if unknown:
        raise TypeError(f"about: unknown bound(s) {sorted(unknown)}")
    return {"help": help, "choices": choices, "pattern": pattern, **bounds}


def setting(help: str, default: Any, **checks: Any) -> Any:
    """A config field with an immutable default and its metadata (``about``); fields with a
    mutable default use ``field(default_factory=..., metadata=about(...))``."""
    return field(default=default, metadata=about(help, **checks))


def choice_names(choices: tuple[str, ...] | Mapping[str, Any]) -> tuple[str, ...]:
    """The valid names of a ``choices`` entry: a tuple's items in order, a registry's keys
    sorted."""
    return tuple(sorted(choices)) if isinstance(choices, Mapping) else tuple(choices)


def default_of(spec: Field) -> Any:
    """A dataclass field's default value (a fresh one for a ``default_factory``)."""
    return spec.default_factory() if spec.default is MISSING else spec.default


def yaml_text(value: Any) -> str:
    """``value`` as written in YAML (flow style, one line): ``null``, ``true``, ``{}``, ``0.01``."""
    return (
        yaml.safe_dump(value, default_flow_style=True, width=1_000).removesuffix("\n...\n").strip()
    )


def settings_table(cls: type) -> list[tuple[str, str, str, str, str]]:
    """(key, type annotation, its choices or bounds in words, default in YAML, description) for
    each field of a dataclass built with ``setting``/``about``: what ``auxbench train --help``
    lists."""
    rows = []
    for spec in fields(cls):
        checks = spec.metadata
        kind = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", "")
        limits = describe_bounds(*(checks.get(name) for name in BOUNDS))
        if checks.get("choices") is not None:
            limits = f"one of: {', '.join(choice_names(checks['choices']))}"
        default = yaml_text(default_of(spec))
        rows.append((spec.name, kind, limits, default, checks.get("help", "")))
    return rows


def check_settings(config: Any) -> None:
    """Check every field of a dataclass built with ``setting``/``about``: its type, then its
    choices, pattern and bounds (skipped where the value is None). An integer given for a number
    becomes a float, so that equal settings are written alike (``lam: 1.0``, from ``--lam 1``
    or ``lam: 1``)."""
    check_field_types(config)
    hints = type_hints(type(config))
    for spec in fields(config):
        value, checks = getattr(config, spec.name), spec.metadata
        members = typing.get_args(hints[spec.name]) or (hints[spec.name],)
        if value is None:
            continue
        if checks.get("choices") is not None:
            choice(spec.name, value, choice_names(checks["choices"]))
        if checks.get("pattern") and not re.fullmatch(checks["pattern"][0], value):
            raise ConfigError(f"{spec.name} must be {checks['pattern'][1]}, got {value!r}")
        bounds = {name: checks[name] for name in BOUNDS if checks.get(name) is not None}
        if bounds:
            in_range(spec.name, value, integer=int in members, **bounds)
        if type(value) is int and float in members and int not in members:
            setattr(config, spec.name, float(value))


def check_weighting_params(params: dict[str, Any]) -> None:
    """An entry of ``weighting_params`` keyed by a weighting's name must map that weighting's
    settings."""
    for name, value in params.items():
        if name in WEIGHTINGS and not isinstance(value, dict):
            raise ConfigError(
                f"weighting_params: the entry {name!r} names a weighting, so it must map that "
                f"weighting's settings (e.g. {{{name}: {{lr: 0.001}}}}), got {value!r}"
            )


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
    The method name is checked by ``auxbench.methods.check_method`` (the methods sit above this
    module).
    """

    dataset: str = setting(
        "the dataset: a built-in one (`auxbench datasets` lists them) or user_dataset's name",
        "fashion-mnist",
    )
    user_dataset: dict[str, Any] | None = field(
        default=None,
        metadata=about(
            "a user's dataset, as declared in a config's datasets list (name, kind: folder or "
            "npz, path, ...; docs/user-data.md); dataset must be its name"
        ),
    )
    method: str = setting("the auxiliary-learning method (`auxbench methods` lists them)", "single")
    model: str = setting("the main network's trunk", "small", choices=TRUNKS)
    width: float = setting(
        "a factor on the main network's channel widths", 1.0, exclusive_minimum=0
    )
    lam: float = setting("λ: the auxiliary losses' weight under fixed weighting", 1.0, minimum=0)
    seed: int = setting(
        "the random seed (data split, initialisation, batch order, augmentation)", 0, minimum=0
    )
    epochs: int = setting("training epochs", 15, minimum=1)
    batch_size: int = setting("the training batch size", 100, minimum=1)
    eval_batch_size: int = setting("the batch size of validation and test scoring", 1000, minimum=1)
    lr: float = setting("the SGD learning rate", 0.01, exclusive_minimum=0)
    momentum: float = setting("the SGD momentum", 0.9, minimum=0)
    weight_decay: float = setting("the SGD weight decay", 5e-4, minimum=0)
    schedule: str = setting(
        "the lr schedule: step (times lr_gamma every lr_step epochs) or cosine (to 0 over epochs)",
        "step",
        choices=SCHEDULES,
    )
    lr_step: int = setting("the step schedule's epochs between lr reductions", 50, minimum=1)
    lr_gamma: float = setting(
        "the step schedule's factor on the lr", 0.5, exclusive_minimum=0, maximum=1
    )
    loss: str = setting("the classification loss (ce: cross-entropy)", "focal", choices=LOSSES)
    focal_gamma: float = setting("the focal loss's focusing parameter γ", 2.0, minimum=0)
    val_fraction: float = setting(
        "the fraction of the training split held out for validation (model selection)",
        0.1,
        exclusive_minimum=0,
        exclusive_maximum=1,
    )
    train_limit: int | None = setting(
        "train on a seeded random subset of this many training images (null: all), for quick runs",
        None,
        minimum=1,
    )
    eval_limit: int | None = setting(
        "score validation and test on the same random subset of this many images each (null: "
        "all): for quick runs, not for published figures",
        None,
        minimum=1,
    )
    patience: int | None = setting(
        "stop after this many epochs without a validation gain (null: never stop early)",
        None,
        minimum=1,
    )
    augment: bool = setting("the dataset's augmentation (random crops, flips) in training", True)
    device: str = setting(
        "auto (cuda if available, else cpu), cpu, cuda or mps; cpu, cuda and mps optionally with "
        "an index (cuda:1)",
        "auto",
        pattern=DEVICE_PATTERN,
    )
    bf16: bool = setting("bf16 autocast in training", False)
    channels_last: bool = setting(
        "the networks (main, MAXL label network, RL-AUX agent) in channels-last format", False
    )
    compile: bool | str = setting(
        "torch.compile the main network (true: the inductor backend; a string names the backend)",
        False,
    )
    data_root: str | None = setting(
        "where the raw datasets lie (null: $AUXBENCH_DATA or data/raw)", None
    )
    method_params: dict[str, Any] = field(
        default_factory=dict,
        metadata=about("the method's settings (e.g. {mode: per-example} for rl-aux)"),
    )
    weighting: str = setting(
        "how the task losses are weighted (`auxbench methods` lists them); fixed uses λ",
        "fixed",
        choices=WEIGHTINGS,
    )
    weighting_params: dict[str, Any] = field(
        default_factory=dict,
        metadata=about(
            "the weighting's settings; an entry keyed by a weighting's name (e.g. autolambda: "
            "{lr: 3.0e-4}) applies to that weighting only"
        ),
    )
    gradient: str | None = setting(
        "a gradient method on the shared parameters (null: none; `auxbench methods` lists them)",
        None,
        choices=GRADIENTS,
    )
    gradient_params: dict[str, Any] = field(
        default_factory=dict, metadata=about("the gradient method's settings")
    )
    meta_split: str = setting(
        "where weightings that look ahead (autolambda) take their batches",
        "train",
        choices=META_SPLITS,
    )
    noise_task: bool = setting(
        "add Auto-λ's sanity task: predict a fixed random label per image", False
    )
    noise_classes: int | None = setting(
        "the noise task's number of classes (null: the primary task's)", None, minimum=2
    )
    primary_domains: list[int] | None = field(
        default=None,
        metadata=about(
            "multi-domain datasets: the primary domains' indices (auxiliary learning); null: "
            "every domain (multi-task learning)"
        ),
    )

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict of every setting."""
        return asdict(self)

    def validate(self) -> TrainConfig:
        """Raise ``ConfigError`` for a value of the wrong type, out of range or an unknown name;
        return ``self``."""
        check_settings(self)
        if self.compile == "":
            raise ConfigError("compile must be true, false or a torch.compile backend name, got ''")
        check_weighting_params(self.weighting_params)
        user = check_dataset(self.dataset, self.user_dataset, DATASETS, dense=False)
        self._validate_domains(None if user is not None else DATASETS[self.dataset].domains)
        return self

    def user(self) -> UserDataset | None:
        """The user's dataset the run trains on (``user_dataset``), or None for a built-in one."""
        return None if self.user_dataset is None else UserDataset.from_entry(self.user_dataset)

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

NORMAL_LOSSES = ("l1", "cosine")
OPTIMIZERS = ("sgd", "adam")


@dataclass
class DenseConfig:
    """Everything that determines one dense-prediction run (``auxbench.training.dense``).

    Defaults are Auto-λ's dense protocol (appendix A, after MTAN): SGD lr 0.1, momentum 0.9,
    weight decay 1e-4, cosine schedule, batch 4, 200 epochs; the paper configs set them again.
    ``tasks`` picks the dataset's tasks to train (null: all); ``primary_tasks`` the primary ones
    (null: every trained task: multi-task learning); the others and, with ``noise_task``, Auto-λ's
    noise-prediction task are auxiliary. A single-task baseline is ``tasks: [depth]``.
    """

    dataset: str = setting(
        "the dense dataset: a built-in one (`auxbench datasets` lists them) or user_dataset's name",
        "scenes",
    )
    user_dataset: dict[str, Any] | None = field(
        default=None,
        metadata=about(
            "a user's dense dataset, as declared in a config's dense.datasets list (name, kind: "
            "dense, path; docs/user-data.md); dataset must be its name"
        ),
    )
    architecture: str = setting(
        "split (hard sharing, task heads) or mtan (task attention over the shared features)",
        "split",
        choices=DENSE_ARCHITECTURES,
    )
    backbone: str = setting(
        "the shared network: small (CPU encoder-decoder), resnet50 (dilated, DeepLabv3 heads) or "
        "segnet",
        "small",
        choices=DENSE_BACKBONES,
    )
    width: float = setting("a factor on the network's channel widths", 1.0, exclusive_minimum=0)
    tasks: list[str] | None = field(
        default=None,
        metadata=about("the dataset's tasks to train (null: all of them)"),
    )
    primary_tasks: list[str] | None = field(
        default=None,
        metadata=about(
            "the primary tasks (model selection; null: every trained task, i.e. multi-task "
            "learning); the others are auxiliary"
        ),
    )
    noise_task: bool = setting(
        "add Auto-λ's noise prediction: regress a fixed uniform noise map per training image "
        "(auxiliary)",
        False,
    )
    lam: float = setting("λ: the auxiliary tasks' weight under fixed weighting", 1.0, minimum=0)
    seed: int = setting(
        "the random seed (validation split, initialisation, batch order, augmentation)",
        0,
        minimum=0,
    )
    epochs: int = setting("training epochs", 200, minimum=1)
    batch_size: int = setting("the training batch size", 4, minimum=1)
    eval_batch_size: int = setting("the batch size of validation and test scoring", 16, minimum=1)
    optimizer: str = setting(
        "sgd (Auto-λ) or adam (MTAN, LibMTL; Auto-λ's look-ahead then takes a plain SGD step)",
        "sgd",
        choices=OPTIMIZERS,
    )
    lr: float = setting("the learning rate", 0.1, exclusive_minimum=0)
    momentum: float = setting("the SGD momentum", 0.9, minimum=0)
    weight_decay: float = setting("the weight decay", 1e-4, minimum=0)
    schedule: str = setting(
        "the lr schedule: step (times lr_gamma every lr_step epochs) or cosine (to 0 over epochs)",
        "cosine",
        choices=SCHEDULES,
    )
    lr_step: int = setting("the step schedule's epochs between lr reductions", 100, minimum=1)
    lr_gamma: float = setting(
        "the step schedule's factor on the lr", 0.5, exclusive_minimum=0, maximum=1
    )
    normal_loss: str = setting(
        "the surface normals' loss: l1 (Auto-λ) or cosine (1 - cos)", "l1", choices=NORMAL_LOSSES
    )
    val_fraction: float = setting(
        "the fraction of the training images held out for validation (model selection)",
        0.1,
        exclusive_minimum=0,
        exclusive_maximum=1,
    )
    train_limit: int | None = setting(
        "train on a seeded random subset of this many training images (null: all)", None, minimum=1
    )
    eval_limit: int | None = setting(
        "score validation and test on the same random subset of this many images each (null: all)",
        None,
        minimum=1,
    )
    patience: int | None = setting(
        "stop after this many epochs without a validation gain (null: never stop early)",
        None,
        minimum=1,
    )
    augment: bool = setting("random scale, crop and flip in training (augment_dense)", True)
    scales: list[float] = field(
        default_factory=lambda: [1.0, 1.2, 1.5],
        metadata=about("the augmentation's scales, one drawn per image"),
    )
    crop: list[int] | None = field(
        default=None,
        metadata=about(
            "the training crop [height, width] (null: the full image; CityScapes: [256, 256])"
        ),
    )
    device: str = setting(
        "auto (cuda if available, else cpu), cpu, cuda or mps, optionally with an index",
        "auto",
        pattern=DEVICE_PATTERN,
    )
    bf16: bool = setting("bf16 autocast in training", False)
    channels_last: bool = setting("the network in channels-last format", False)
    compile: bool | str = setting(
        "torch.compile the network (true: the inductor backend; a string names the backend)",
        False,
    )
    data_root: str | None = setting(
        "where the raw datasets lie (null: $AUXBENCH_DATA or data/raw)", None
    )
    weighting: str = setting(
        "how the task losses are weighted (`auxbench methods` lists them); fixed uses λ",
        "fixed",
        choices=WEIGHTINGS,
    )
    weighting_params: dict[str, Any] = field(
        default_factory=dict,
        metadata=about(
            "the weighting's settings; an entry keyed by a weighting's name applies to it only"
        ),
    )
    gradient: str | None = setting(
        "a gradient method on the shared parameters (null: none)", None, choices=GRADIENTS
    )
    gradient_params: dict[str, Any] = field(
        default_factory=dict, metadata=about("the gradient method's settings")
    )
    meta_split: str = setting(
        "where Auto-λ's look-ahead batches come from: train (a second, independently shuffled "
        "pass over the training images: Auto-λ's default) or val",
        "train",
        choices=META_SPLITS,
    )

    @property
    def method(self) -> str:
        """The run's label in progress bars: its architecture and mode."""
        return f"dense {self.architecture}"

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict of every setting."""
        return asdict(self)

    def validate(self) -> DenseConfig:
        """Raise ``ConfigError`` for a value of the wrong type, out of range or an unknown name;
        return ``self``. Task names are checked against the dataset when it is loaded."""
        check_settings(self)
        for key in ("tasks", "primary_tasks"):
            names = getattr(self, key)
            if names is None:
                continue
            if (
                not isinstance(names, list)
                or not names
                or not all(isinstance(name, str) for name in names)
            ):
                raise ConfigError(
                    f"{key} must be a non-empty list of task names or null, got {names!r}"
                )
            if len(set(names)) != len(names):
                raise ConfigError(f"{key} repeats a task: {names!r}")
        if self.crop is not None and (
            len(self.crop) != 2 or not all(isinstance(v, int) and v > 0 for v in self.crop)
        ):
            raise ConfigError(f"crop must be [height, width] in pixels or null, got {self.crop!r}")
        if not self.scales or not all(isinstance(v, int | float) and v >= 1 for v in self.scales):
            raise ConfigError(
                f"scales must be a non-empty list of numbers >= 1 (zoom factors), got {self.scales!r}"
            )
        check_weighting_params(self.weighting_params)
        check_dataset(self.dataset, self.user_dataset, DENSE_DATASETS, dense=True)
        return self

    def user(self) -> UserDataset | None:
        """The user's dense dataset the run trains on (``user_dataset``), or None."""
        return None if self.user_dataset is None else UserDataset.from_entry(self.user_dataset)


def check_dataset(
    name: str, entry: dict[str, Any] | None, builtin: Mapping[str, Any], dense: bool
) -> UserDataset | None:
    """``dataset`` names a built-in dataset of ``builtin`` or the user's dataset ``entry``
    (checked, and returned); ``ConfigError`` otherwise."""
    if entry is None:
        if name not in builtin:
            raise ConfigError(
                f"dataset: unknown dataset {name!r}; choose one of {', '.join(sorted(builtin))}, "
                "or declare your own in the config's "
                f"{'dense.datasets' if dense else 'datasets'} list (docs/user-data.md)"
            )
        return None
    user = UserDataset.from_entry(entry, "user_dataset")
    if user.name != name:
        raise ConfigError(
            f"user_dataset: declares {user.name!r} but dataset is {name!r}; set dataset to the "
            "declared name"
        )
    if name in builtin:
        raise ConfigError(
            f"user_dataset.name: {name!r} is a built-in dataset's name; give yours another"
        )
    if user.is_dense != dense:
        wanted = "dense" if dense else "folder or npz"
        raise ConfigError(
            f"user_dataset.kind: {user.kind!r} here, where a {wanted} dataset is trained "
            f"({'auxbench dense-train' if dense else 'auxbench train'})"
        )
    return user


def make_dense_config(values: dict[str, Any], source: str = "config") -> DenseConfig:
    """Build and validate a ``DenseConfig`` from a dict, refusing unknown keys."""
    return build_validated(DenseConfig, values, source)


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


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-3`` as a number as YAML 1.2 does (YAML 1.1 wants a
    dot, ``1.0e-3``, and reads ``1e-3`` as a string)."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_value(text: str) -> Any:
    """A value written in YAML, such as ``--set KEY=VALUE``'s (``1e-3`` is a number)."""
    return yaml.load(text, Loader=YamlLoader)  # a subclass of the safe loader


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing file or malformed content."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = yaml_value(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return values
