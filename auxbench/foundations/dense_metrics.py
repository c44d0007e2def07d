"""Dense-prediction metrics accumulated over an epoch on the tensors' device, and Δ_MTL under
the three conventions of the multi-task literature.

The meters follow Auto-λ's and MTAN's evaluation (``../shared/papers/auto-lambda.txt`` §5.1):
segmentation mIoU and pixel accuracy from a confusion matrix over the epoch's pixels; depth (or
disparity) absolute and relative error over the valid pixels; surface normals' mean and median
angle error and the share of valid pixels within 11.25°, 22.5° and 30°; and, for a user's own
real-valued maps (``regression``), the mean absolute error and the root mean squared error over
the valid pixels' channels. Every mean is over the epoch's valid pixels (pixel-weighted), not a
mean of per-batch means, so it does not depend on the batch size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from auxbench.foundations.metrics import delta_mtl

NORMAL_THRESHOLDS = (11.25, 22.5, 30.0)
ANGLE_BIN = 0.01
"""Width in degrees of the normal meter's angle histogram: the median is exact to within it, and
the thresholds of ``NORMAL_THRESHOLDS`` fall on bin edges, so their shares are exact."""
CONVENTIONS = ("autolambda", "libmtl", "nashmtl")


class SegmentationMeter:
    """Accumulates a (true, predicted) pixel count matrix; pixels labelled ``ignore_index`` do
    not count."""

    def __init__(self, num_classes: int, device: torch.device | str, ignore_index: int = -1):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.counts = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch: ``logits`` (N, C, H, W), ``labels`` (N, H, W) with ``ignore_index`` for
        unlabelled pixels."""
        valid = labels != self.ignore_index
        predicted = logits.argmax(dim=1)[valid]
        self.counts += torch.bincount(
            labels[valid] * self.num_classes + predicted, minlength=self.num_classes**2
        )

    def summary(self) -> dict[str, float]:
        """``miou``: the mean over classes of intersection / union, over the classes that occur
        in the labels or the predictions (a class with an empty union has no IoU); ``pixel_acc``:
        the share of labelled pixels predicted right. NaN before any labelled pixel."""
        matrix = self.counts.view(self.num_classes, self.num_classes).double().cpu()
        total = matrix.sum()
        if total == 0:
            return {"miou": math.nan, "pixel_acc": math.nan}
        hits = matrix.diag()
        union = matrix.sum(dim=0) + matrix.sum(dim=1) - hits
        present = union > 0
        return {
            "miou": float((hits[present] / union[present]).mean()),
            "pixel_acc": float(hits.sum() / total),
        }


class DepthMeter:
    """Absolute and relative error of depth or disparity over the valid pixels: those whose
    target is not ``invalid`` (0 for NYUv2's depth in metres; −1 for CityScapes' disparity)."""

    def __init__(self, device: torch.device | str, invalid: float = 0.0):
        self.invalid = invalid
        self.sums = torch.zeros(3, dtype=torch.float64, device=device)  # |e|, |e|/target, count

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``prediction`` and ``target`` of one shape, e.g. (N, 1, H, W)."""
        valid = target != self.invalid
        error = (prediction[valid] - target[valid]).abs().double()
        self.sums += torch.stack(
            [
                error.sum(),
                (error / target[valid].abs().double()).sum(),
                error.new_tensor(float(error.numel())),
            ]
        )

    def summary(self) -> dict[str, float]:
        """``abs_err`` and ``rel_err`` (|prediction − target| / |target|), means over the valid
        pixels; NaN before any."""
        absolute, relative, count = (float(value) for value in self.sums.cpu())
        if count == 0:
            return {"abs_err": math.nan, "rel_err": math.nan}
        return {"abs_err": absolute / count, "rel_err": relative / count}


class RegressionMeter:
    """Absolute and squared error of C-channel real-valued maps over the valid pixels: those
    whose target is finite in every channel (NaN marks an invalid pixel). The sums are kept on
    the device in float64, so the split's result does not depend on how it is batched."""

    def __init__(self, device: torch.device | str):
        self.sums = torch.zeros(3, dtype=torch.float64, device=device)  # |e|, e², count

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``prediction`` and ``target`` of one shape (N, C, H, W)."""
        valid = torch.isfinite(target).all(dim=1, keepdim=True).expand_as(target)
        error = (prediction[valid].double() - target[valid].double()).abs()
        self.sums += torch.stack(
            [error.sum(), error.square().sum(), error.new_tensor(float(error.numel()))]
        )

    def summary(self) -> dict[str, float]:
        """``abs_err`` (mean |prediction − target|) and ``rmse`` (the square root of the mean
        squared error), both over every channel of every valid pixel of the split (one pooled
        mean, not a mean of per-image values); NaN before any."""
        absolute, squared, count = (float(value) for value in self.sums.cpu())
        if count == 0:
            return {"abs_err": math.nan, "rmse": math.nan}
        return {"abs_err": absolute / count, "rmse": math.sqrt(squared / count)}


class NormalMeter:
    """Angle errors in degrees between predicted and true surface normals over the valid pixels
    (a true normal of all zeros is invalid). Predictions are normalised first; a histogram of
    ``ANGLE_BIN``-wide bins gives the median without keeping every pixel's error."""

    def __init__(self, device: torch.device | str):
        self.bins = round(180 / ANGLE_BIN)
        self.histogram = torch.zeros(self.bins, dtype=torch.int64, device=device)
        self.angle_sum = torch.zeros((), dtype=torch.float64, device=device)

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``prediction`` and ``target`` (N, 3, H, W)."""
        valid = target.abs().sum(dim=1) > 0
        predicted = torch.nn.functional.normalize(prediction.double(), dim=1)
        truth = torch.nn.functional.normalize(target.double(), dim=1)
        cosine = (predicted * truth).sum(dim=1)[valid].clamp(-1.0, 1.0)
        angles = torch.rad2deg(torch.acos(cosine))
        self.angle_sum += angles.sum()
        index = (angles / ANGLE_BIN).floor().long().clamp(max=self.bins - 1)
        self.histogram += torch.bincount(index, minlength=self.bins)

    def summary(self) -> dict[str, float]:
        """``mean_angle``, ``median_angle`` (the bin's lower edge where half the pixels are
        reached, so within ``ANGLE_BIN`` of the exact median) and ``within_<t>`` for each
        threshold t of ``NORMAL_THRESHOLDS``, in % of the valid pixels; NaN before any."""
        counts = self.histogram.cpu()
        total = int(counts.sum())
        names = [f"within_{threshold:g}" for threshold in NORMAL_THRESHOLDS]
        if total == 0:
            return dict.fromkeys(["mean_angle", "median_angle", *names], math.nan)
        cumulative = counts.cumsum(0)
        median_bin = int(torch.searchsorted(cumulative, torch.tensor(math.ceil(total / 2))))
        summary = {
            "mean_angle": float(self.angle_sum) / total,
            "median_angle": median_bin * ANGLE_BIN,
        }
        for name, threshold in zip(names, NORMAL_THRESHOLDS, strict=True):
            below = counts[: round(threshold / ANGLE_BIN)].sum()
            summary[name] = 100 * float(below) / total
        return summary


def delta_mtl_dense(
    metrics: Mapping[str, Mapping[str, float]],
    baselines: Mapping[str, Mapping[str, float]],
    lower_is_better: Mapping[str, bool],
    convention: str,
    task_metric: Mapping[str, str] | None = None,
) -> float:
    """Δ_MTL in % of a multi-task run's ``metrics`` ({task: {metric: value}}) against single-task
    ``baselines`` of the same shape, each metric's sign from ``lower_is_better`` ({metric: bool}),
    under one of the three conventions in use:

    - ``autolambda``: one metric per task (``task_metric``, {task: metric}), Auto-λ's Eq. 8;
    - ``libmtl``: each task's metrics averaged into that task's change, then the tasks averaged;
    - ``nashmtl``: every metric of every task averaged alike.

    The three agree when every task has one metric."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
    missing = [
        f"{task}/{name}"
        for task, values in metrics.items()
        for name in values
        if name not in baselines.get(task, {})
    ]
    if missing:
        raise ValueError(f"no single-task baseline for {', '.join(missing)}")

    def change(task: str, names: list[str]) -> float:
        return delta_mtl(
            [metrics[task][name] for name in names],
            [baselines[task][name] for name in names],
            [lower_is_better[name] for name in names],
        )

    if convention == "autolambda":
        if task_metric is None or set(task_metric) != set(metrics):
            raise ValueError("the autolambda convention needs task_metric: one metric per task")
        return sum(change(task, [task_metric[task]]) for task in metrics) / len(metrics)
    if convention == "libmtl":
        return sum(change(task, list(values)) for task, values in metrics.items()) / len(metrics)
    pairs = [(task, name) for task, values in metrics.items() for name in values]
    return sum(change(task, [name]) for task, name in pairs) / len(pairs)
