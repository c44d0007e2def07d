"""Classification metrics from a confusion matrix accumulated on the device (no per-batch sync)."""

from __future__ import annotations

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
