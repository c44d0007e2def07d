"""Classification metrics from a confusion matrix accumulated on the device (no per-batch sync),
and the relative multi-task performance Δ_MTL."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class ConfusionMatrix:
    """Accumulates a (true, predicted) count matrix on the tensors' device."""

    def __init__(self, num_classes: int, device: torch.device | str):
        self.num_classes = num_classes
        self.counts = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one batch of predictions."""
        predicted = logits.argmax(dim=1)
        self.counts += torch.bincount(
            labels * self.num_classes + predicted, minlength=self.num_classes**2
        )

    def summary(self) -> dict[str, float]:
        """Accuracy and macro-averaged precision, recall and F1 (classes never seen count as 0)."""
        matrix = self.counts.view(self.num_classes, self.num_classes).double().cpu()
        true_positive = matrix.diag()
        predicted = matrix.sum(dim=0)
        actual = matrix.sum(dim=1)
        precision = torch.where(predicted > 0, true_positive / predicted.clamp(min=1), 0.0)
        recall = torch.where(actual > 0, true_positive / actual.clamp(min=1), 0.0)
        denominator = precision + recall
        f1 = torch.where(
            denominator > 0, 2 * precision * recall / denominator.clamp(min=1e-12), 0.0
        )
        total = matrix.sum()
        return {
            "acc": float(true_positive.sum() / total) if total > 0 else 0.0,
            "precision": float(precision.mean()),
            "recall": float(recall.mean()),
            "f1": float(f1.mean()),
        }


def delta_mtl(
    scores: Sequence[float],
    single_task_scores: Sequence[float],
    lower_is_better: Sequence[bool] | None = None,
) -> float:
    """Δ_MTL in %: the mean over tasks of each task's relative change against its single-task
    baseline, Auto-λ's Eq. 8 (after Maninis et al. 2019)::

        Δ_MTL = 100 / K · Σᵢ (−1)^lᵢ (Mᵢ − Mᵢ,single) / Mᵢ,single

    with lᵢ = 1 where lower is better for task i's metric (``lower_is_better``; default: higher
    is better for every task, as for per-domain accuracies).
    """
    if len(scores) != len(single_task_scores) or not scores:
        raise ValueError(
            f"delta_mtl needs one single-task score per task, got {len(scores)} scores and "
            f"{len(single_task_scores)} single-task scores"
        )
    lower = [False] * len(scores) if lower_is_better is None else list(lower_is_better)
    if len(lower) != len(scores):
        raise ValueError(f"lower_is_better has {len(lower)} entries for {len(scores)} tasks")
    if any(baseline == 0 for baseline in single_task_scores):
        raise ValueError("delta_mtl divides by the single-task scores, which must not be 0")
    changes = [
        (-1 if low else 1) * (score - baseline) / baseline
        for score, baseline, low in zip(scores, single_task_scores, lower, strict=True)
    ]
    return 100 * sum(changes) / len(changes)
