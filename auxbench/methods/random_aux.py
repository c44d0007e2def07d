"""``random-aux``: the random-labelling control for the auxiliary-label generators.

Each training image gets one fixed random sub-label a ∈ [0, ψ) within its primary class's block,
drawn once from the run's seed: auxiliary class ψ·y + a, as MAXL's and RL-AUX's labels are laid
out. It is trained like ``human`` (a second head, fixed λ, the focal loss of the generated
labels). It answers "is a learned labelling better than any fixed fine-grained labelling of the
same size?": a generator that does not beat it has learned nothing a coin could not. The RL-AUX
reference code compares against such a "Randomized" labelling.

``config.method_params``: ``psi`` (the sub-labels per primary class, as the generators': the
dataset's class hierarchy's where it has one, else 5).
"""

from __future__ import annotations

from typing import Any

import torch

from auxbench.methods.base import TrainerView, method_params, register
from auxbench.methods.labels import DEFAULT_PSI, GeneratedLabelMethod, with_hierarchy_psi
from auxbench.tasks import Batch

SEED_OFFSET = 7
"""The labels' random stream is seeded with the run's seed plus this (the trainer's other streams
use the seed itself and small offsets)."""


@register
class RandomAuxiliary(GeneratedLabelMethod):
    name = "random-aux"
    description = (
        "control: a fixed random sub-label per training image within its class's block, fixed λ"
    )
    uses_lambda = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        defaults = with_hierarchy_psi({"psi": DEFAULT_PSI}, dataset)
        self.params = method_params(config.method_params, defaults, self.name, integers=("psi",))
        self.psi: int = self.params["psi"]

    def setup(self, trainer: TrainerView) -> None:
        generator = torch.Generator().manual_seed(self.config.seed + SEED_OFFSET)
        sub_labels = torch.randint(self.psi, (len(trainer.train_split),), generator=generator)
        self.sub_labels = sub_labels.to(trainer.device)
        classes = self.psi * trainer.train_split.labels.to(trainer.device) + self.sub_labels
        self.classes_used = int(torch.unique(classes).numel())

    def targets(self, batch: Batch) -> tuple[torch.Tensor, None]:
        return self.psi * batch.labels + self.sub_labels[batch.index], None

    def after_epoch(self, epoch: int) -> dict[str, float]:
        """``aux_classes_used``, as the generators log it: the auxiliary classes the labels use."""
        return {"aux_classes_used": self.classes_used}

    def state_dict(self) -> dict[str, Any]:
        return {"sub_labels": self.sub_labels}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sub_labels = state["sub_labels"].to(self.sub_labels.device)
