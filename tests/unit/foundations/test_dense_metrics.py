"""Dense-prediction meters (regression's NaN-marked invalid pixels, and its batching-independent
pooled means, among them) and Δ_MTL's three conventions, against values worked out by hand."""

import math

import pytest
import torch

from auxbench.foundations.dense_metrics import (
    DepthMeter,
    NormalMeter,
    RegressionMeter,
    SegmentationMeter,
    delta_mtl_dense,
)


def one_hot_logits(predicted: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N, H, W) class indices as (N, C, H, W) logits whose argmax is that class."""
    return torch.nn.functional.one_hot(predicted, num_classes).permute(0, 3, 1, 2).float()


def test_segmentation_miou_and_pixel_accuracy_by_hand_over_two_batches():
    meter = SegmentationMeter(num_classes=3, device="cpu")
    # batch 1: labels [[0, 0], [1, -1]], predictions [[0, 1], [1, 2]] (the -1 pixel is ignored)
    meter.update(
        one_hot_logits(torch.tensor([[[0, 1], [1, 2]]]), 3), torch.tensor([[[0, 0], [1, -1]]])
    )
    # batch 2: labels [[2, 2]], predictions [[2, 0]]
    meter.update(one_hot_logits(torch.tensor([[[2, 0]]]), 3), torch.tensor([[[2, 2]]]))
    # 5 labelled pixels: (0,0) (0,1) (1,1) (2,2) (2,0) as (true, predicted); 3 right
    # class 0: hits 1, union = predicted 2 + true 2 - 1 = 3 -> 1/3
    # class 1: hits 1, union = predicted 2 + true 1 - 1 = 2 -> 1/2
    # class 2: hits 1, union = predicted 1 + true 2 - 1 = 2 -> 1/2
    summary = meter.summary()
    assert summary["pixel_acc"] == pytest.approx(3 / 5)
    assert summary["miou"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 2) / 3)


def test_segmentation_leaves_out_classes_that_never_occur():
    meter = SegmentationMeter(num_classes=4, device="cpu")
    meter.update(one_hot_logits(torch.tensor([[[0, 1]]]), 4), torch.tensor([[[0, 0]]]))
    # class 0: 1 / (1 + 2 - 1) = 1/2; class 1: 0 / (1 + 0) = 0; classes 2, 3 absent
    assert meter.summary()["miou"] == pytest.approx(0.25)
    assert math.isnan(SegmentationMeter(2, "cpu").summary()["miou"])


def test_depth_errors_over_valid_pixels_are_pixel_weighted():
    meter = DepthMeter(device="cpu", invalid=0.0)
    meter.update(torch.tensor([[1.5, 9.0]]), torch.tensor([[1.0, 0.0]]))  # 1 valid: |e| 0.5
    meter.update(torch.tensor([[2.0, 5.0, 3.0]]), torch.tensor([[4.0, 5.0, 2.0]]))  # 2, 0, 1
    # abs: (0.5 + 2 + 0 + 1) / 4 = 0.875; rel: (0.5/1 + 2/4 + 0/5 + 1/2) / 4 = 0.375
    assert meter.summary() == pytest.approx({"abs_err": 0.875, "rel_err": 0.375})
    disparity = DepthMeter(device="cpu", invalid=-1.0)
    disparity.update(torch.tensor([0.2, 0.7]), torch.tensor([-1.0, 0.5]))
    assert disparity.summary()["abs_err"] == pytest.approx(0.2)


def test_regression_errors_by_hand_are_the_same_in_one_batch_or_two():
    nan = math.nan
    # 2 images, 2 channels, 1 × 2 pixels; image 0's pixel 1 is NaN in channel 0 (invalid)
    target = torch.tensor([[[[1.0, nan]], [[2.0, 0.0]]], [[[0.0, 3.0]], [[1.0, 1.0]]]])
    prediction = torch.tensor([[[[2.0, 7.0]], [[0.0, 9.0]]], [[[0.0, 0.0]], [[1.0, 5.0]]]])
    # valid elements' errors: image 0 pixel 0: 1, 2; image 1: 0, 0 (pixel 0), 3, 4 (pixel 1)
    # abs_err = (1 + 2 + 0 + 0 + 3 + 4) / 6; rmse = sqrt((1 + 4 + 0 + 0 + 9 + 16) / 6) = sqrt(5)
    whole = RegressionMeter(device="cpu")
    whole.update(prediction, target)
    assert whole.summary() == {"abs_err": 10 / 6, "rmse": math.sqrt(5.0)}
    halves = RegressionMeter(device="cpu")
    halves.update(prediction[:1], target[:1])
    halves.update(prediction[1:], target[1:])
    assert halves.summary() == whole.summary()  # pooled, not a mean of per-batch values
    nothing = RegressionMeter(device="cpu")
    assert all(math.isnan(value) for value in nothing.summary().values())
    nothing.update(prediction[:1, :, :, 1:], target[:1, :, :, 1:])  # an all-invalid batch
    assert math.isnan(nothing.summary()["rmse"])


def test_normal_angles_median_and_thresholds_by_hand():
    def unit(
        degrees: float,
    ) -> list[float]:  # a normal at `degrees` from (0, 0, 1) in the x-z plane
        radians = math.radians(degrees)
        return [math.sin(radians), 0.0, math.cos(radians)]

    angles = [0.0, 10.0, 20.0, 25.0, 40.0]
    truth = torch.tensor([[0.0, 0.0, 1.0]] * 5 + [[0.0, 0.0, 0.0]])  # the last pixel: invalid
    predicted = torch.tensor([[2 * value for value in unit(a)] for a in angles] + [[1.0, 0, 0]])

    def as_image(rows: torch.Tensor) -> torch.Tensor:  # (pixels, 3) as (N, 3, H, W)
        return rows.T.reshape(1, 3, 2, 3)

    meter = NormalMeter(device="cpu")
    meter.update(as_image(predicted), as_image(truth))
    summary = meter.summary()
    assert summary["mean_angle"] == pytest.approx(19.0)  # (0 + 10 + 20 + 25 + 40) / 5
    assert summary["median_angle"] == pytest.approx(20.0, abs=0.011)
    assert summary["within_11.25"] == pytest.approx(40.0)  # 0 and 10 of 5
    assert summary["within_22.5"] == pytest.approx(60.0)
    assert summary["within_30"] == pytest.approx(80.0)


def test_delta_mtl_conventions_by_hand():
    lower = {"miou": False, "pixel_acc": False, "abs_err": True, "rel_err": True}
    baselines = {
        "seg": {"miou": 40.0, "pixel_acc": 60.0},
        "depth": {"abs_err": 0.5, "rel_err": 0.2},
    }
    metrics = {
        "seg": {"miou": 44.0, "pixel_acc": 60.0},
        "depth": {"abs_err": 0.55, "rel_err": 0.18},
    }
    # signed changes: miou +10%, pixel_acc 0%, abs_err -10% (worse), rel_err +10% (better)
    first = {"seg": "miou", "depth": "abs_err"}
    assert delta_mtl_dense(metrics, baselines, lower, "autolambda", first) == pytest.approx(0.0)
    # libmtl: seg (10 + 0) / 2 = 5, depth (-10 + 10) / 2 = 0 -> 2.5
    assert delta_mtl_dense(metrics, baselines, lower, "libmtl") == pytest.approx(2.5)
    # nashmtl: (10 + 0 - 10 + 10) / 4 = 2.5 here too; differs once tasks have unequal counts
    assert delta_mtl_dense(metrics, baselines, lower, "nashmtl") == pytest.approx(2.5)
    metrics["normal"], baselines["normal"] = {"mean_angle": 20.0}, {"mean_angle": 25.0}
    lower["mean_angle"] = True  # +20%
    assert delta_mtl_dense(metrics, baselines, lower, "libmtl") == pytest.approx((5 + 0 + 20) / 3)
    assert delta_mtl_dense(metrics, baselines, lower, "nashmtl") == pytest.approx(30 / 5)
    with pytest.raises(ValueError, match="convention"):
        delta_mtl_dense(metrics, baselines, lower, "mean")
    with pytest.raises(ValueError, match="task_metric"):
        delta_mtl_dense(metrics, baselines, lower, "autolambda")
    with pytest.raises(ValueError, match="no single-task baseline for seg/miou"):
        delta_mtl_dense(metrics, {**baselines, "seg": {"pixel_acc": 60.0}}, lower, "libmtl")


def test_auto_lambda_table1_split_equal_row_from_its_numbers_and_the_published_baselines():
    # NYUv2 single-task: 43.37 mIoU, 0.5224 depth abs. err, 22.40° mean angle; Split multi-task
    # Equal: 44.64, 0.4332, 24.48 -> +3.57% (one metric per task: all three conventions agree)
    baselines = {
        "semantic": {"miou": 0.4337},
        "depth": {"abs_err": 0.5224},
        "normal": {"mean_angle": 22.40},
    }
    equal = {
        "semantic": {"miou": 0.4464},
        "depth": {"abs_err": 0.4332},
        "normal": {"mean_angle": 24.48},
    }
    lower = {"miou": False, "abs_err": True, "mean_angle": True}
    metric = {"semantic": "miou", "depth": "abs_err", "normal": "mean_angle"}
    for convention in ("autolambda", "libmtl", "nashmtl"):
        assert round(delta_mtl_dense(equal, baselines, lower, convention, metric), 2) == 3.57
    # and Auto-λ's own Split multi-task row: 47.17, 0.4097, 23.68 -> +8.21%
    auto = {
        "semantic": {"miou": 0.4717},
        "depth": {"abs_err": 0.4097},
        "normal": {"mean_angle": 23.68},
    }
    assert round(delta_mtl_dense(auto, baselines, lower, "autolambda", metric), 2) == 8.21
