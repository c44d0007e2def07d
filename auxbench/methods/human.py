"""``human``: a second head trained on the dataset's human auxiliary labels with a fixed λ."""

from __future__ import annotations

import torch

from auxbench.data import DataError
from auxbench.foundations.losses import classification_loss
from auxbench.methods.base import Batch, Method, register


@register
class HumanAuxiliary(Method):
    name = "human"
    description = "primary + human-labelled auxiliary task (e.g. CIFAR-100 fine classes), fixed λ"
    uses_lambda = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        if not dataset.has_human_aux:
            raise DataError(
                f"dataset {dataset.name!r} has no human auxiliary labels, so method 'human' "
                f"cannot run on it; `auxbench datasets` lists the datasets that have them"
            )

    def heads(self) -> dict[str, int]:
        return {"aux": self.dataset.num_aux_classes}

    def auxiliary_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]):
        loss = classification_loss(
            self.config.loss, outputs["aux"], batch.aux_labels, self.config.focal_gamma
        )
        return {"aux": loss}
