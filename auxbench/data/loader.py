"""Loading a named dataset from a data root, and reporting whether its files are there."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from auxbench.data.assemble import assemble
from auxbench.data.dataset import DataError, Dataset
from auxbench.data.domains import MultiDomainDataset, assemble_domains
from auxbench.data.registry import DATASETS, DatasetSpec
from auxbench.data.split import check_val_fraction
from auxbench.data.user_sets import UserDataset

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
    user: UserDataset | None = None,
) -> Dataset | MultiDomainDataset:
    """Read dataset ``name`` from ``root`` (default ``default_root()``); hold out validation data.

    ``user``: a user's dataset (``auxbench.data.user_sets``), read from its own path instead;
    ``name`` must be its name.

    ``val_fraction`` of every class of the training set goes to validation, chosen by ``seed``; mean
    and std are computed on the remaining training split. A multi-domain dataset (its spec's
    ``domains`` set) comes as a ``MultiDomainDataset``, every domain split so (see
    ``assemble_domains``). Raises ``ValueError`` for an unknown name or a bad fraction, and
    ``DataError`` when files are missing (saying how to get them) or malformed.
    """
    check_val_fraction(val_fraction)
    if user is not None:
        if user.name != name:
            raise ValueError(f"dataset {name!r} asked for, but the user dataset is {user.name!r}")
        return assemble(user.read(), val_fraction, seed).to(device)
    spec = _spec(name)
    location = spec.locate(Path(root) if root is not None else default_root())
    raw = spec.read(location)
    if spec.domains is None:
        return assemble(raw, val_fraction, seed).to(device)
    dataset = assemble_domains(raw, val_fraction, seed)
    if len(dataset.domains) != spec.domains:
        raise DataError(
            f"{name}: {raw.source} holds {len(dataset.domains)} domains, expected {spec.domains}"
        )
    return dataset.to(device)


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
