"""Stratified, seeded hold-out of a validation set from the training data."""

from __future__ import annotations

import torch


def check_val_fraction(val_fraction: float) -> None:
    """Raise ``ValueError`` unless ``0 < val_fraction < 1``."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must satisfy 0 < val_fraction < 1, got {val_fraction}")


def stratified_split(
    labels: torch.Tensor, val_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return sorted (train, validation) index tensors partitioning ``range(len(labels))``.

    Each class sends ``round(val_fraction * count)`` of its examples to validation, at least one
    when it has two or more and never all of them, chosen at random by ``seed``.
    """
    check_val_fraction(val_fraction)
    generator = torch.Generator().manual_seed(seed)
    labels = labels.cpu()
    chosen = []
    for cls in torch.unique(labels).tolist():
        members = torch.nonzero(labels == cls).flatten()
        count = len(members)
        take = min(max(round(val_fraction * count), 1 if count >= 2 else 0), count - 1)
        chosen.append(members[torch.randperm(count, generator=generator)[:take]])
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    if chosen:
        is_val[torch.cat(chosen)] = True
    return torch.nonzero(~is_val).flatten(), torch.nonzero(is_val).flatten()
