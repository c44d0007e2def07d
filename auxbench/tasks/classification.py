"""Classification tasks: a labelled task (the primary task, human auxiliary labels, one domain of
a multi-domain dataset), targets a method generates (MAXL's soft labels, RL-AUX's agent, the
random control), and Auto-λ's noise-prediction sanity task."""

from __future__ import annotations

from collections.abc import Callable

import torch

from auxbench.foundations.losses import classification_loss, weighted_focal_loss
from auxbench.foundations.metrics import ConfusionMatrix
from auxbench.tasks.base import Batch, Evaluator, Metric, Task

CLASSIFICATION_METRICS = (
    Metric("acc"),
    Metric("precision"),
    Metric("recall"),
    Metric("f1"),
)


class ConfusionEvaluator(Evaluator):
    """Accuracy and macro precision, recall and F1 of logits against a label field."""

    def __init__(self, classes: int, field: str, device: torch.device):
        self.field = field
        self.matrix = ConfusionMatrix(classes, device)

    def update(self, output: torch.Tensor, batch: Batch) -> None:
        self.matrix.update(output, batch[self.field])

    def summary(self) -> dict[str, float]:
        return self.matrix.summary()


class ClassificationTask(Task):
    """``outputs``-way classification of the labels in batch field ``field`` with the configured
    loss (``loss``: ``focal`` with ``gamma``, or ``ce``)."""

    metrics = CLASSIFICATION_METRICS

    def __init__(
        self,
        name: str,
        outputs: int,
        *,
        field: str = "label",
        loss: str = "focal",
        gamma: float = 2.0,
        primary: bool = False,
        weight: float | None = None,
        evaluated: bool | None = None,
    ):
        super().__init__(
            name, outputs, primary=primary, reads=(field,), weight=weight, evaluated=evaluated
        )
        self.field, self.loss_kind, self.gamma = field, loss, gamma

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        return classification_loss(self.loss_kind, output, batch[self.field], self.gamma)

    def evaluator(self, device: torch.device) -> Evaluator:
        return ConfusionEvaluator(self.outputs, self.field, device)


Targets = Callable[[Batch], tuple[torch.Tensor, torch.Tensor | None]]
"""A method's targets for a batch: class indices or distributions, and per-sample weights (or
None)."""


class GeneratedLabelTask(Task):
    """An auxiliary task whose targets a method generates for each batch (``targets``: class
    indices or soft labels, and optional per-sample weights), trained with the focal loss
    ``mean(wᵢ · focal(outputᵢ, targetᵢ))`` (MAXL, RL-AUX and the random control, the ψ·C classes
    of the label hierarchy)."""

    def __init__(
        self,
        name: str,
        outputs: int,
        targets: Targets,
        *,
        gamma: float = 2.0,
        weight: float | None = None,
    ):
        super().__init__(name, outputs, reads=("images", "label"), weight=weight)
        self.targets, self.gamma = targets, gamma

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        targets, weights = self.targets(batch)
        return self.loss_with(output, targets, weights)

    def loss_with(
        self, output: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None
    ) -> torch.Tensor:
        """The loss against given targets (an environment that chooses them itself)."""
        return weighted_focal_loss(output, targets, weights, self.gamma)


NOISE = "noise"


class NoiseTask(Task):
    """Auto-λ's sanity check for auxiliary learning (Liu, James, Davison & Johns 2022, "Noise
    Prediction as Sanity Check"), in its classification form: ``classes``-way classification of
    a fixed random label per training image, drawn once per run. The paper's noise task is a
    dense one, a random noise map sampled from a Uniform distribution for each training image;
    for image classification a random class label is the analogue (a target that carries no
    information about the image). The task's gradients are useless at best and a good weighting
    learns to down-weight it. Reads the batch's ``index`` (positions in the training split)."""

    def __init__(
        self,
        n_images: int,
        classes: int,
        seed: int,
        device: torch.device,
        *,
        loss: str = "focal",
        gamma: float = 2.0,
        name: str = NOISE,
    ):
        super().__init__(name, classes, reads=("index",))
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(classes, (n_images,), generator=generator).to(device)
        self.loss_kind, self.gamma = loss, gamma

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        return classification_loss(self.loss_kind, output, self.labels[batch.index], self.gamma)
