"""MAXL's label-generation network (its pieces are in ``auxbench.foundations.hierarchy``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from auxbench.foundations.hierarchy import masked_softmax, sample_weights
from auxbench.models import MultiHeadNet, build_model


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
