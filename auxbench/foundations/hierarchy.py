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


def chosen_label_entropy(
    labels: torch.Tensor, sub_labels: torch.Tensor, psi: int, classes: int | None = None
) -> torch.Tensor:
    """How evenly the sub-labels chosen for a batch spread over each primary class's block:
    ``Σ_c (n_c / n) · H(histogram of the sub-labels chosen for the n_c images of class c)``.

    0 when every image of a class gets the same sub-label, ln ψ when each class's images are
    spread evenly over its ψ sub-labels. Unlike the entropy of a policy's distribution, it is a
    function of the labels chosen, so a reward that contains it depends on the action taken.
    ``classes`` (default: the largest label + 1, which reads the tensor) is the number of primary
    classes; pass it on a GPU to avoid a synchronisation.
    """
    labels, sub_labels = labels.long(), sub_labels.long().to(labels.device)
    classes = int(labels.max()) + 1 if classes is None else classes
    counts = torch.zeros(classes * psi, dtype=torch.float64, device=labels.device)
    ones = torch.ones(len(labels), dtype=counts.dtype, device=labels.device)
    counts.index_add_(0, psi * labels + sub_labels, ones)
    counts = counts.view(classes, psi)
    per_class = counts.sum(dim=1, keepdim=True)
    p = counts / per_class.clamp_min(1)
    entropy = -torch.where(p > 0, p * torch.log(p.clamp_min(1e-300)), 0.0).sum(dim=1)
    return (per_class.squeeze(1) / len(labels) * entropy).sum()


def block_label_information(
    block_probs: torch.Tensor, labels: torch.Tensor, classes: int | None = None
) -> torch.Tensor:
    """Mutual information between an image and its sub-label within its class, from (N, ψ)
    sub-label distributions of images of primary ``labels``:
    ``Σ_c (n_c / N) · H(mean of p over the class-c images) − mean_i H(p_i)``.

    It is high when each class's images are spread over all ψ sub-labels (first term) *and* each
    image's own distribution is confident (second): the condition for a labelling by each
    image's most likely sub-label to use every auxiliary class. Differentiable. ``classes`` as
    for ``chosen_label_entropy``.
    """
    labels = labels.long()
    n, psi = block_probs.shape
    classes = int(labels.max()) + 1 if classes is None else classes
    tiny = torch.finfo(block_probs.dtype).tiny

    def entropy(p: torch.Tensor) -> torch.Tensor:
        return -(p * torch.log(p.clamp_min(tiny))).sum(dim=-1)

    sums = torch.zeros(classes, psi, dtype=block_probs.dtype, device=block_probs.device)
    sums = sums.index_add(0, labels, block_probs)
    counts = torch.bincount(labels, minlength=classes).to(block_probs.dtype)
    means = sums / counts.clamp_min(1).unsqueeze(1)
    marginal = (counts / n * entropy(means)).sum()
    return marginal - entropy(block_probs).mean()
