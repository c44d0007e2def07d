import torch
import torch.nn.functional as F

from auxbench.foundations.losses import cross_entropy, focal_loss
from auxbench.foundations.metrics import ConfusionMatrix


def test_focal_loss_with_gamma_zero_is_cross_entropy():
    logits, labels = torch.randn(16, 5), torch.randint(0, 5, (16,))
    expected = F.cross_entropy(logits, labels)
    assert torch.allclose(focal_loss(logits, labels, gamma=0.0), expected, atol=1e-6)
    assert torch.allclose(cross_entropy(logits, labels), expected, atol=1e-6)


def test_focal_loss_down_weights_easy_examples():
    easy = torch.tensor([[10.0, 0.0]])
    hard = torch.tensor([[0.5, 0.0]])
    label = torch.tensor([0])
    ratio_easy = focal_loss(easy, label, 2.0) / F.cross_entropy(easy, label)
    ratio_hard = focal_loss(hard, label, 2.0) / F.cross_entropy(hard, label)
    assert ratio_easy < ratio_hard < 1


def test_soft_targets_match_hard_targets_for_one_hot():
    logits, labels = torch.randn(8, 4), torch.randint(0, 4, (8,))
    one_hot = F.one_hot(labels, 4).float()
    assert torch.allclose(focal_loss(logits, one_hot), focal_loss(logits, labels), atol=1e-6)
    per_sample = focal_loss(logits, labels, reduction="none")
    assert per_sample.shape == (8,)


def test_confusion_matrix_metrics_by_hand():
    matrix = ConfusionMatrix(3, "cpu")
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    predicted = torch.tensor([0, 1, 1, 1, 0, 2])
    matrix.update(F.one_hot(predicted, 3).float(), labels)
    summary = matrix.summary()
    assert summary["acc"] == 4 / 6
    precision = [1 / 2, 2 / 3, 1.0]
    recall = [1 / 2, 1.0, 1 / 2]
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall)]
    assert abs(summary["precision"] - sum(precision) / 3) < 1e-9
    assert abs(summary["recall"] - sum(recall) / 3) < 1e-9
    assert abs(summary["f1"] - sum(f1) / 3) < 1e-9
