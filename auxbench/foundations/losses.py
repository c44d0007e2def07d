"""Classification losses: focal loss (MAXL's convention, gamma = 2) and cross-entropy, hard or soft targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("focal", "ce")


def _at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    """Compute in float32 (bf16/fp16 logits from autocast) or wider (float64 stays float64)."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, reduction: str = "mean"
) -> torch.Tensor:
    """Focal loss ``-sum_k t_k (1 - p_k)^gamma log p_k``.

    ``target`` is either class indices (N,) or a distribution over classes (N, K), such as the soft
    auxiliary labels a label network generates. ``reduction`` is ``"mean"`` or ``"none"`` (per sample).
    """
    log_p = F.log_softmax(_at_least_float32(logits), dim=1)
    if target.dtype in (torch.int64, torch.int32):
        log_pt = log_p.gather(1, target.long().unsqueeze(1)).squeeze(1)
        per_sample = -((1.0 - log_pt.exp()) ** gamma) * log_pt
    else:
        per_sample = -(target * (1.0 - log_p.exp()) ** gamma * log_p).sum(dim=1)
    return _reduce(per_sample, reduction)


def weighted_focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None = None,
    gamma: float = 2.0,
) -> torch.Tensor:
    """Mean of ``weights[i] × focal_loss_i`` (plain mean when ``weights`` is None): the auxiliary
    loss with per-sample weights of the weight-aware methods."""
    per_sample = focal_loss(logits, target, gamma, reduction="none")
    if weights is not None:
        per_sample = weights * per_sample
    return per_sample.mean()


def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy with class-index or distribution targets."""
    if target.dtype in (torch.int64, torch.int32):
        per_sample = F.cross_entropy(_at_least_float32(logits), target.long(), reduction="none")
    else:
        per_sample = -(target * F.log_softmax(_at_least_float32(logits), dim=1)).sum(dim=1)
    return _reduce(per_sample, reduction)


def classification_loss(
    kind: str, logits: torch.Tensor, target: torch.Tensor, gamma: float, reduction: str = "mean"
) -> torch.Tensor:
    """The configured loss: ``kind`` is ``"focal"`` (with ``gamma``) or ``"ce"``."""
    if kind == "focal":
        return focal_loss(logits, target, gamma, reduction)
    if kind == "ce":
        return cross_entropy(logits, target, reduction)
    raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}")


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "none":
        return per_sample
    raise ValueError(f"unknown reduction {reduction!r}; choose 'mean' or 'none'")
