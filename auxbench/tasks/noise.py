"""Auto-λ's sanity check for auxiliary learning: a noise-prediction task.

Every training image gets a fixed random label, drawn once per run; the labels carry no
information about the images, so the task's gradients are useless at best and a good weighting
method learns to down-weight it (Liu, Davison & Johns 2022, "Noise Prediction as Sanity Check").
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from auxbench.methods import Batch

NAME = "noise"


class NoiseTask:
    """``classes``-way classification of a fixed uniform random label per training image."""

    def __init__(self, n_images: int, classes: int, seed: int, device: torch.device):
        generator = torch.Generator().manual_seed(seed)
        self.classes = classes
        self.labels = torch.randint(classes, (n_images,), generator=generator).to(device)

    def loss(
        self,
        batch: Batch,
        outputs: dict[str, torch.Tensor],
        classification_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """The configured classification loss of the ``noise`` head against the batch's labels
        (``batch.index`` are positions in the training split)."""
        return classification_loss(outputs[NAME], self.labels[batch.index])
