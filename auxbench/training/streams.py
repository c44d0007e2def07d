"""A run's data on the training device: the device and seeds, splits held as normalised tensors,
the epochs of shuffled, augmented batches, and random batches for look-ahead steps."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from auxbench.data import Split, augment, normalize
from auxbench.tasks import Batch

EVALUATION_SUBSET_SEED = 0  # every run with an ``eval_limit`` scores the same images


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU; other names are taken as they are."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TensorSplit:
    """A split held on the training device: normalised float images and the target fields by name
    (``label``; ``aux_label`` where the dataset has human auxiliary labels)."""

    images: torch.Tensor
    targets: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def labels(self) -> torch.Tensor:
        return self.targets["label"]

    def batch(self, index: torch.Tensor | slice, images: torch.Tensor | None = None) -> Batch:
        """The examples at ``index`` (positions or a slice), with ``images`` in place of theirs
        (e.g. augmented)."""
        return Batch(
            self.images[index] if images is None else images,
            {name: values[index] for name, values in self.targets.items()},
            index,
        )


def on_device(
    split: Split, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> TensorSplit:
    """``split`` normalised with ``mean`` / ``std`` into float images on ``device``."""
    images = normalize(split.images.to(device), mean, std)
    targets = {"label": split.labels.to(device)}
    if split.aux_labels is not None:
        targets["aux_label"] = split.aux_labels.to(device)
    return TensorSplit(images, targets)


def limited(split: Split, limit: int | None, seed: int = EVALUATION_SUBSET_SEED) -> Split:
    """A seeded random subset of ``limit`` examples of ``split`` (all of it when None or more)."""
    if limit is None or limit >= len(split):
        return split
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    return split.subset(order[:limit])


def split_batches(
    split: TensorSplit,
    batch_size: int,
    shuffle: torch.Generator,
    augment_with: torch.Generator,
    crop_padding: int = 0,
    horizontal_flip: bool = False,
) -> Iterator[Batch]:
    """One epoch of ``split`` in batches, in an order drawn from ``shuffle``, each batch randomly
    cropped (``crop_padding``) and flipped (``horizontal_flip``) with ``augment_with``; no
    augmentation (and no draws from ``augment_with``) when both are off."""
    order = torch.randperm(len(split), generator=shuffle).to(split.images.device)
    for start in range(0, len(split), batch_size):
        index = order[start : start + batch_size]
        images = augment(split.images[index], crop_padding, horizontal_flip, augment_with)
        yield split.batch(index, images)


def random_batch(
    split: TensorSplit,
    batch_size: int,
    shuffle: torch.Generator,
    augment_with: torch.Generator,
    crop_padding: int = 0,
    horizontal_flip: bool = False,
) -> Batch:
    """``batch_size`` random examples of ``split`` (no repeats), augmented like ``split_batches``."""
    index = torch.randperm(len(split), generator=shuffle)[:batch_size].to(split.images.device)
    images = augment(split.images[index], crop_padding, horizontal_flip, generator=augment_with)
    return split.batch(index, images)
