"""A small, learnable synthetic dataset with a known primary/auxiliary label hierarchy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from auxbench.data.assemble import RawDataset, assemble
from auxbench.data.dataset import Dataset, Split

_NOISE_STD = 25.0


def synthetic_raw(
    n_train: int = 600,
    n_test: int = 200,
    num_classes: int = 4,
    aux_per_class: int = 2,
    image_size: int = 8,
    channels: int = 1,
    seed: int = 0,
) -> RawDataset:
    """Generate the full train and test sets of ``make_synthetic`` (no validation split yet).

    Each of the ``num_classes * aux_per_class`` fine classes has a fixed, blocky random template;
    an image is its template plus Gaussian noise, quantised to uint8. The primary label is
    ``fine // aux_per_class``, the human auxiliary label is the fine class.
    """
    generator = torch.Generator().manual_seed(seed)
    num_fine = num_classes * aux_per_class
    coarse_size = max(1, image_size // 2)
    templates = 28 + 200 * torch.rand(
        num_fine, channels, coarse_size, coarse_size, generator=generator
    )
    templates = F.interpolate(templates, size=(image_size, image_size), mode="nearest")
    total = n_train + n_test
    fine = (torch.arange(total) % num_fine)[torch.randperm(total, generator=generator)]
    noise = _NOISE_STD * torch.randn(total, channels, image_size, image_size, generator=generator)
    images = (templates[fine] + noise).round().clamp(0, 255).to(torch.uint8)
    split = Split(images, fine // aux_per_class, fine)
    return RawDataset(
        name="synthetic",
        train=split.subset(torch.arange(n_train)),
        test=split.subset(torch.arange(n_train, total)),
        class_names=tuple(f"class {c}" for c in range(num_classes)),
        aux_class_names=tuple(
            f"class {f // aux_per_class}.{f % aux_per_class}" for f in range(num_fine)
        ),
        crop_padding=1,
        horizontal_flip=False,
        source=f"synthetic (generated in memory, seed {seed})",
    )


def make_synthetic(
    n_train: int = 600,
    n_test: int = 200,
    num_classes: int = 4,
    aux_per_class: int = 2,
    image_size: int = 8,
    channels: int = 1,
    seed: int = 0,
    val_fraction: float = 0.1,
) -> Dataset:
    """Build the synthetic dataset; ``seed`` drives both the data and the validation split."""
    raw = synthetic_raw(n_train, n_test, num_classes, aux_per_class, image_size, channels, seed)
    return assemble(raw, val_fraction, seed)
