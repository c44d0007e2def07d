"""Tasks: losses from their batch fields, metrics with a direction, fixed weights, the selection
metric, the noise task and generated targets."""

import pytest
import torch

from auxbench.foundations.losses import classification_loss, weighted_focal_loss
from auxbench.tasks import (
    Batch,
    ClassificationTask,
    GeneratedLabelTask,
    Metric,
    NoiseTask,
    Task,
    selection_metric,
)


def batch(n=8, classes=3):
    generator = torch.Generator().manual_seed(0)
    return Batch(
        torch.randn(n, 1, 4, 4, generator=generator),
        {
            "label": torch.randint(classes, (n,), generator=generator),
            "aux_label": torch.randint(2, (n,), generator=generator),
        },
        torch.arange(n),
    )


def test_a_classification_task_reads_its_field_with_the_configured_loss():
    b = batch()
    logits = torch.randn(8, 2)
    task = ClassificationTask("aux", 2, field="aux_label", loss="ce")
    assert task.reads == ("aux_label",) and not task.primary and not task.evaluated
    assert torch.equal(task.loss(logits, b), classification_loss("ce", logits, b.aux_labels, 2.0))
    assert task.metrics[0] == Metric("acc", higher_is_better=True)


def test_an_evaluated_task_scores_accuracy_and_macro_f1():
    b = batch()
    task = ClassificationTask("primary", 3, primary=True)
    assert task.evaluated
    evaluator = task.evaluator(torch.device("cpu"))
    perfect = torch.nn.functional.one_hot(b.labels, 3).float()
    evaluator.update(perfect, b)
    summary = evaluator.summary()
    assert summary["acc"] == 1.0 and set(summary) == {m.name for m in task.metrics}


def test_fixed_weights_are_one_for_primary_tasks_lambda_or_their_own_for_auxiliary_ones():
    assert ClassificationTask("p", 3, primary=True).fixed_weight(0.3) == 1.0
    assert ClassificationTask("a", 3).fixed_weight(0.3) == 0.3
    assert ClassificationTask("a", 3, weight=1.0).fixed_weight(0.3) == 1.0


def test_the_primary_tasks_must_share_a_selection_metric():
    class Regression(Task):
        metrics = (Metric("abs_err", higher_is_better=False),)

    primary = ClassificationTask("p", 3, primary=True)
    assert selection_metric([primary, ClassificationTask("a", 2)]) == Metric("acc")
    lower = Regression("depth", 1, primary=True)
    assert selection_metric([lower]) == Metric("abs_err", higher_is_better=False)
    with pytest.raises(ValueError, match="evaluated tasks must share one selection metric"):
        selection_metric([primary, lower])


def test_the_noise_task_has_a_fixed_random_label_per_training_image():
    first = NoiseTask(50, 4, seed=3, device=torch.device("cpu"))
    again = NoiseTask(50, 4, seed=3, device=torch.device("cpu"))
    assert torch.equal(first.labels, again.labels) and int(first.labels.max()) < 4
    assert first.reads == ("index",)
    b = batch()
    logits = torch.randn(8, 4)
    expected = classification_loss("focal", logits, first.labels[b.index], 2.0)
    assert torch.equal(first.loss(logits, b), expected)


def test_a_generated_label_task_trains_on_the_methods_targets_and_weights():
    b = batch()
    targets = torch.softmax(torch.randn(8, 6), dim=1)
    weights = torch.linspace(0.5, 2.0, 8)
    task = GeneratedLabelTask("aux", 6, lambda on: (targets, weights), weight=1.0)
    logits = torch.randn(8, 6)
    assert torch.equal(task.loss(logits, b), weighted_focal_loss(logits, targets, weights, 2.0))
    assert task.fixed_weight(0.5) == 1.0
