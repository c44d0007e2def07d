"""Turning a dataset as read from disk into a ``Dataset``: validation hold-out and statistics."""

from __future__ import annotations

from dataclasses import dataclass

from auxbench.data.dataset import DataError, Dataset, Split
from auxbench.data.split import stratified_split
from auxbench.data.transforms import channel_stats


@dataclass(frozen=True)
class RawDataset:
    """A dataset as read: full training set (before the validation hold-out), test set, metadata."""

    name: str
    train: Split
    test: Split
    class_names: tuple[str, ...]
    aux_class_names: tuple[str, ...] | None
    crop_padding: int
    horizontal_flip: bool
    source: str
    hierarchy_psi: int | None = None
    """ψ of a class hierarchy whose auxiliary classes refine the primary ones: the most auxiliary
    classes under one primary class (a user's hierarchy with ``primary: coarse``); else None."""


def assemble(raw: RawDataset, val_fraction: float, seed: int) -> Dataset:
    """Hold out a stratified validation split from ``raw.train``; mean/std are of the rest."""
    if raw.train.images.shape[1:] != raw.test.images.shape[1:]:
        raise DataError(
            f"{raw.name}: train images are {tuple(raw.train.images.shape[1:])} but test images are "
            f"{tuple(raw.test.images.shape[1:])}, in {raw.source}"
        )
    train_index, val_index = stratified_split(raw.train.labels, val_fraction, seed)
    train = raw.train.subset(train_index)
    mean, std = channel_stats(train.images)
    return Dataset(
        name=raw.name,
        train=train,
        val=raw.train.subset(val_index),
        test=raw.test,
        num_classes=len(raw.class_names),
        class_names=raw.class_names,
        num_aux_classes=None if raw.aux_class_names is None else len(raw.aux_class_names),
        aux_class_names=raw.aux_class_names,
        mean=mean,
        std=std,
        crop_padding=raw.crop_padding,
        horizontal_flip=raw.horizontal_flip,
        source=raw.source,
        hierarchy_psi=raw.hierarchy_psi,
    )
