"""What the auxiliary-label generators share (MAXL, RL-AUX): the ψ-block auxiliary task of C·ψ
classes whose targets the method generates, its weight, and MAXL's label network (the hierarchy's
pieces are in ``auxbench.foundations.hierarchy``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from auxbench.foundations.hierarchy import masked_softmax, sample_weights
from auxbench.methods.base import Method
from auxbench.models import MultiHeadNet, build_model
from auxbench.tasks import Batch, GeneratedLabelTask, Task

AUX = "aux"
DEFAULT_PSI = 5
"""ψ, the auxiliary classes per primary class, where neither the config nor a class hierarchy
sets it: the papers' (MAXL, RL-AUX: 5 for CIFAR-100-20's 100 classes under 20)."""


def with_hierarchy_psi(defaults: dict, dataset) -> dict:
    """``defaults`` with ``psi`` taken from the dataset's class hierarchy when it has one
    (``Dataset.hierarchy_psi``: a user's dataset whose auxiliary classes refine the primary ones),
    so a generator makes as many sub-labels per class as the hierarchy has; ``method_params`` in
    the config still overrides it."""
    psi = getattr(dataset, "hierarchy_psi", None)
    return defaults if psi is None else {**defaults, "psi": psi}


class GeneratedLabelMethod(Method):
    """A method that generates the targets of one auxiliary task: ψ auxiliary classes per primary
    class (class ψ·y + a for an image of class y), trained with the focal loss and weighted by λ,
    or by 1 for the weight-aware variants, whose targets carry per-sample weights. A subclass
    sets ``psi`` and implements ``targets``."""

    psi: int

    @property
    def aux_weight(self) -> float:
        """λ for methods that use it; 1 for the weight-aware ones, whose labels carry per-sample
        weights."""
        return self.config.lam if self.uses_lambda else 1.0

    def tasks(self) -> list[Task]:
        return [self.aux_task]

    @property
    def aux_task(self) -> GeneratedLabelTask:
        """The generated auxiliary task (built once)."""
        if not hasattr(self, "_aux_task"):
            self._aux_task = GeneratedLabelTask(
                AUX,
                self.dataset.num_classes * self.psi,
                self.targets,
                gamma=self.config.focal_gamma,
                weight=self.aux_weight,
            )
        return self._aux_task

    def targets(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The auxiliary targets (classes or distributions over the C·ψ classes) of ``batch``
        and their per-sample weights (None unless weight-aware)."""
        raise NotImplementedError


@dataclass
class GeneratedLabels:
    """What the label network says for a batch: soft auxiliary labels and, for WA-MAXL, the
    per-sample auxiliary loss weights ``2^(10w − 5)`` (None otherwise)."""

    probs: torch.Tensor
    weights: torch.Tensor | None = None

    def detach(self) -> GeneratedLabels:
        weights = None if self.weights is None else self.weights.detach()
        return GeneratedLabels(self.probs.detach(), weights)


class LabelNetwork(nn.Module):
    """Generates ψ auxiliary classes per primary class (masked softmax), optionally with a sigmoid
    weight head on the same features.

    ``network`` is a ``MultiHeadNet`` with a ``labels`` head of C·ψ outputs (and a ``weight`` head
    of one output when weighted).
    """

    def __init__(self, network: MultiHeadNet, psi: int):
        super().__init__()
        self.network = network
        self.psi = psi

    @classmethod
    def build(
        cls,
        model: str,
        in_channels: int,
        num_classes: int,
        psi: int,
        weighted: bool = False,
        width: float = 1.0,
        image_size: int = 32,
    ) -> LabelNetwork:
        """The MAXL label network: trunk ``model`` with ``Linear-ReLU-Linear`` head(s)."""
        heads = {"labels": num_classes * psi, **({"weight": 1} if weighted else {})}
        return cls(build_model(model, in_channels, heads, width, image_size), psi)

    @property
    def weighted(self) -> bool:
        return "weight" in self.network.heads

    @property
    def num_outputs(self) -> int:
        return self.network.heads["labels"][-1].out_features

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> GeneratedLabels:
        outputs = self.network(images)
        probs = masked_softmax(outputs["labels"], labels, self.psi)
        if not self.weighted:
            return GeneratedLabels(probs)
        return GeneratedLabels(probs, sample_weights(torch.sigmoid(outputs["weight"].squeeze(1))))
