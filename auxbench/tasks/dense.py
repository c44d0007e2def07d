"""Dense-prediction tasks (Auto-λ §5.1): semantic and part segmentation, depth, disparity, surface
normals, a user's own real-valued maps and Auto-λ's noise-prediction sanity task.

Each task reads the target field of its own name from the batch (``semantic``, ``part``,
``depth``, ``disparity``, ``normal``, ``noise``, or a user's task name; ``auxbench.data.dense``)
and is scored by the meters of ``auxbench.foundations.dense_metrics``, its first metric the one
Auto-λ's Table 1 reports (mIoU, absolute error, mean angle; absolute error for regression).
Losses follow Auto-λ's code:

- segmentation: pixel-wise cross-entropy, pixels labelled −1 ignored;
- depth and disparity: L1 over the valid pixels (depth 0, disparity −1 invalid);
- normals: the prediction is normalised to unit length, then L1 against the true normal over the
  valid pixels (an all-zero true normal is invalid) — or, with ``loss="cosine"``, 1 − cos;
- regression (a user's C-channel maps, ``kind: regression``): L1 over the valid pixels (a pixel
  is valid when its target is finite in every channel; NaN marks an invalid one), scored by
  ``abs_err`` and ``rmse``;
- noise: L1 against the image's fixed uniform noise map; not scored (it exists to be useless).

Every mean is over the batch's valid pixels (elements for the L1 of the multi-channel normals
and regression maps), so a batch with many invalid pixels does not get a smaller loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from auxbench.data.dense import DENSE_KINDS
from auxbench.foundations.dense_metrics import (
    NORMAL_THRESHOLDS,
    DepthMeter,
    NormalMeter,
    RegressionMeter,
    SegmentationMeter,
)
from auxbench.tasks.base import Batch, Evaluator, Metric, Task

SEGMENTATION_METRICS = (Metric("miou"), Metric("pixel_acc"))
ERROR_METRICS = (Metric("abs_err", higher_is_better=False), Metric("rel_err", False))
NORMAL_METRICS = (
    Metric("mean_angle", higher_is_better=False),
    Metric("median_angle", higher_is_better=False),
    *(Metric(f"within_{threshold:g}") for threshold in NORMAL_THRESHOLDS),
)
REGRESSION_METRICS = (Metric("abs_err", higher_is_better=False), Metric("rmse", False))
NORMAL_LOSSES = ("l1", "cosine")
INVALID_DEPTH = 0.0
INVALID_DISPARITY = -1.0


class MeterEvaluator(Evaluator):
    """Feeds a meter the head's output and the batch's target field."""

    def __init__(self, meter, field: str):
        self.meter, self.field = meter, field

    def update(self, output: torch.Tensor, batch: Batch) -> None:
        self.meter.update(output.float(), batch[self.field])

    def summary(self) -> dict[str, float]:
        return self.meter.summary()


class DenseTask(Task):
    """A dense task reading the batch field of its own name."""

    def __init__(self, name: str, outputs: int, *, primary: bool = False, evaluated=None):
        super().__init__(name, outputs, primary=primary, reads=(name,), evaluated=evaluated)


class SegmentationTask(DenseTask):
    """``classes``-way pixel classification; labels −1 are ignored."""

    metrics = SEGMENTATION_METRICS

    def __init__(self, name: str, classes: int, *, primary: bool = False, evaluated=None):
        super().__init__(name, classes, primary=primary, evaluated=evaluated)

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(output.float(), batch[self.name], ignore_index=-1)

    def evaluator(self, device: torch.device) -> Evaluator:
        return MeterEvaluator(SegmentationMeter(self.outputs, device), self.name)


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean |prediction − target| over the elements where ``valid`` (broadcast over channels);
    0 (with a gradient) when nothing is valid."""
    valid = valid.expand_as(target)
    count = valid.sum().clamp(min=1)
    return ((prediction.float() - target).abs() * valid).sum() / count


class DepthTask(DenseTask):
    """Per-pixel regression of a one-channel map (depth in metres, or disparity), L1 over the
    pixels whose target is not ``invalid``."""

    metrics = ERROR_METRICS

    def __init__(
        self,
        name: str,
        *,
        invalid: float = INVALID_DEPTH,
        primary: bool = False,
        evaluated=None,
    ):
        super().__init__(name, 1, primary=primary, evaluated=evaluated)
        self.invalid = invalid

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        target = batch[self.name]
        return masked_l1(output, target, target != self.invalid)

    def evaluator(self, device: torch.device) -> Evaluator:
        return MeterEvaluator(DepthMeter(device, invalid=self.invalid), self.name)


class NormalTask(DenseTask):
    """Surface normals: three outputs normalised to a unit vector, L1 (or 1 − cos) over the
    valid pixels."""

    metrics = NORMAL_METRICS

    def __init__(self, name: str, *, loss: str = "l1", primary: bool = False, evaluated=None):
        if loss not in NORMAL_LOSSES:
            raise ValueError(f"normal loss must be one of {', '.join(NORMAL_LOSSES)}, got {loss!r}")
        super().__init__(name, 3, primary=primary, evaluated=evaluated)
        self.loss_kind = loss

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        target = batch[self.name]
        valid = target.abs().sum(dim=1, keepdim=True) > 0
        predicted = F.normalize(output.float(), dim=1)
        if self.loss_kind == "cosine":
            cosine = (predicted * target).sum(dim=1, keepdim=True)
            return ((1 - cosine) * valid).sum() / valid.sum().clamp(min=1)
        return masked_l1(predicted, target, valid)

    def evaluator(self, device: torch.device) -> Evaluator:
        return MeterEvaluator(NormalMeter(device), self.name)


class RegressionTask(DenseTask):
    """Per-pixel regression of a ``channels``-channel real-valued map, L1 over the valid
    pixels: those whose target is finite in every channel (NaN marks an invalid pixel)."""

    metrics = REGRESSION_METRICS

    def __init__(self, name: str, channels: int = 1, *, primary: bool = False, evaluated=None):
        super().__init__(name, channels, primary=primary, evaluated=evaluated)

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        target = batch[self.name]
        valid = torch.isfinite(target).all(dim=1, keepdim=True)
        # the invalid targets are replaced before the subtraction: |prediction − NaN| · 0 would
        # be NaN, in the loss and in its gradient
        finite = torch.where(valid, target, target.new_zeros(()))
        return masked_l1(output, finite, valid)

    def evaluator(self, device: torch.device) -> Evaluator:
        return MeterEvaluator(RegressionMeter(device), self.name)


class NoiseMapTask(DenseTask):
    """Auto-λ's sanity task: regress each training image's fixed uniform noise map (L1). Nothing
    in the image predicts it, so a weighting should learn to turn it down; not scored."""

    def __init__(self, name: str = "noise", *, primary: bool = False):
        super().__init__(name, 1, primary=primary, evaluated=False)

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        return (output.float() - batch[self.name]).abs().mean()


def dense_task(
    name: str,
    kind: str,
    classes: int | None = None,
    *,
    channels: int | None = None,
    primary: bool = False,
    normal_loss: str = "l1",
) -> DenseTask:
    """The task of a dataset's ``kind`` (``auxbench.data.dense.DenseTaskSpec``), evaluated
    whether primary or auxiliary; ``classes`` for segmentation, ``channels`` (default 1) for
    regression."""
    if channels is not None and kind in DENSE_KINDS and kind != "regression":
        raise ValueError(f"{kind} task {name!r} takes no channels (only regression does)")
    if kind == "segmentation":
        if classes is None:
            raise ValueError(f"segmentation task {name!r} needs its number of classes")
        return SegmentationTask(name, classes, primary=primary, evaluated=True)
    if kind == "depth":
        return DepthTask(name, invalid=INVALID_DEPTH, primary=primary, evaluated=True)
    if kind == "disparity":
        return DepthTask(name, invalid=INVALID_DISPARITY, primary=primary, evaluated=True)
    if kind == "normal":
        return NormalTask(name, loss=normal_loss, primary=primary, evaluated=True)
    if kind == "regression":
        channels = 1 if channels is None else channels
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"regression task {name!r} needs channels >= 1, got {channels!r}")
        return RegressionTask(name, channels, primary=primary, evaluated=True)
    raise ValueError(f"unknown dense task kind {kind!r}; choose one of {', '.join(DENSE_KINDS)}")
