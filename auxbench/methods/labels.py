"""MAXL's label-generation network and its pieces: the masked softmax over a primary class's block
of auxiliary classes, the per-sample weight mapping of WA-MAXL and the batch-entropy term."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from auxbench.models import MultiHeadNet, build_model

MIN_WEIGHT_EXPONENT, MAX_WEIGHT_EXPONENT = -5.0, 5.0


def masked_softmax(logits: torch.Tensor, labels: torch.Tensor, psi: int) -> torch.Tensor:
    """Softmax of (N, C·ψ) ``logits`` restricted to the ψ classes ``ψ·y … ψ·(y+1)−1`` of each label.

    The block's maximum is subtracted before ``exp``, and every class outside the block is exactly
    zero (a multiplication by a 0/1 mask of finite values), so large logits cannot give inf or NaN.
    """
    n, k = logits.shape
    if k % psi:
        raise ValueError(f"{k} auxiliary logits are not a whole number of blocks of psi={psi}")
    blocks = logits.reshape(n, k // psi, psi)
    own = blocks[torch.arange(n, device=logits.device), labels]  # (N, ψ): this label's block
    shifted = torch.exp(own - own.max(dim=1, keepdim=True).values)
    probs = shifted / shifted.sum(dim=1, keepdim=True)
    mask = nn.functional.one_hot(labels, k // psi).to(logits.dtype).unsqueeze(2)  # (N, C, 1)
    return (mask * probs.unsqueeze(1)).reshape(n, k)


def sample_weights(w: torch.Tensor) -> torch.Tensor:
    """WA-MAXL's per-sample auxiliary weight ``2^(10w − 5)``: w ∈ [0, 1] ↦ [2⁻⁵, 2⁵]."""
    span = MAX_WEIGHT_EXPONENT - MIN_WEIGHT_EXPONENT
    return torch.exp2(span * w + MIN_WEIGHT_EXPONENT)


def negative_batch_entropy(probs: torch.Tensor) -> torch.Tensor:
    """``Σₖ p̄ₖ log p̄ₖ`` of the batch-mean distribution ``p̄`` (0 log 0 = 0, with zero gradient).

    Minimising it maximises the entropy of ``p̄``: the generator is pushed to use every class.
    """
    mean = probs.mean(dim=0)
    tiny = torch.finfo(mean.dtype).tiny
    return torch.where(mean > 0, mean * torch.log(mean.clamp_min(tiny)), 0.0).sum()


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
