"""The label hierarchy shared by the auxiliary-label generators (MAXL, RL-AUX): ψ auxiliary classes
per primary class (the masked softmax over a class's block), the per-sample weight mapping of the
weight-aware variants and the batch-entropy term that keeps every auxiliary class in use."""

from __future__ import annotations

import torch
from torch import nn

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
