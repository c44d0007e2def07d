"""The in-memory dataset every trainer consumes: uint8 image tensors plus labels, per split."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


class DataError(RuntimeError):
    """A dataset is missing, corrupt or malformed; the message says what, where and how to fix it."""


@dataclass(frozen=True)
class Split:
    """One split: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,), optional human ``aux_labels``."""

    images: torch.Tensor
    labels: torch.Tensor
    aux_labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> Split:
        """Return a copy whose tensors live on ``device``."""
        aux = None if self.aux_labels is None else self.aux_labels.to(device)
        return Split(self.images.to(device), self.labels.to(device), aux)

    def subset(self, index: torch.Tensor) -> Split:
        """Return the examples at ``index`` (a long tensor of positions)."""
        aux = None if self.aux_labels is None else self.aux_labels[index]
        return Split(self.images[index], self.labels[index], aux)


@dataclass(frozen=True)
class Dataset:
    """Train / validation / test splits of one named dataset with everything a trainer needs to know."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    class_names: tuple[str, ...]
    num_aux_classes: int | None
    aux_class_names: tuple[str, ...] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int
    horizontal_flip: bool
    source: str
    hierarchy_psi: int | None = None
    """The ψ the dataset's class hierarchy implies (``RawDataset.hierarchy_psi``), which the
    auxiliary-label generators take when their config does not set ``psi``; None: no hierarchy."""

    @property
    def in_channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[-1])

    @property
    def has_human_aux(self) -> bool:
        return self.num_aux_classes is not None

    def to(self, device: torch.device | str) -> Dataset:
        """Return a copy whose splits live on ``device``."""
        return replace(
            self,
            train=self.train.to(device),
            val=self.val.to(device),
            test=self.test.to(device),
        )
