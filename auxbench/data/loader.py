"""Loading a named dataset from a data root, and reporting whether its files are there."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from auxbench.data.assemble import assemble
from auxbench.data.dataset import DataError, Dataset
from auxbench.data.registry import DATASETS, DatasetSpec
from auxbench.data.split import check_val_fraction

DATA_ROOT_ENV = "AUXBENCH_DATA"


def default_root() -> Path:
    """The data root: ``$AUXBENCH_DATA`` if set, else ``<cwd>/data/raw``."""
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env) if env else Path.cwd() / "data" / "raw"


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def load(
    name: str,
    root: str | Path | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> Dataset:
    """Read dataset ``name`` from ``root`` (default ``default_root()``); hold out validation data.

    ``val_fraction`` of every class of the training set goes to validation, chosen by ``seed``; mean
    and std are computed on the remaining training split. Raises ``ValueError`` for an unknown name
    or a bad fraction, and ``DataError`` when files are missing (saying how to get them) or
    malformed.
    """
    spec = _spec(name)
    check_val_fraction(val_fraction)
    location = spec.locate(Path(root) if root is not None else default_root())
    return assemble(spec.read(location), val_fraction, seed).to(device)


def availability(name: str, root: str | Path | None = None) -> tuple[bool, str]:
    """Report whether dataset ``name`` can be loaded from ``root`` (default ``default_root()``).

    Returns ``(True, where the data will be read from)`` or ``(False, what is missing and how to
    get it)``; nothing is read or extracted.
    """
    try:
        location = _spec(name).locate(Path(root) if root is not None else default_root())
    except DataError as exc:
        return False, str(exc)
    return True, location.describe()
