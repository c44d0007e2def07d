"""Dense tasks' losses on hand-built maps: ignored labels, invalid depth/disparity and normals,
NaN-marked invalid pixels of regression maps (with a finite gradient)."""

import math

import pytest
import torch

from auxbench.tasks import Batch
from auxbench.tasks.dense import NoiseMapTask, dense_task


def test_segmentation_loss_ignores_unlabelled_pixels():
    task = dense_task("semantic", "segmentation", 3, primary=True)
    logits = torch.zeros(1, 3, 1, 2)
    logits[0, 0, 0, 0] = math.log(2.0)  # pixel 0: probabilities (2, 1, 1) / 4
    labels = torch.tensor([[[0, -1]]])
    loss = task.loss(logits, Batch(torch.zeros(1, 3, 1, 2), {"semantic": labels}))
    assert loss.item() == pytest.approx(-math.log(0.5))
    assert task.metrics[0].name == "miou" and task.evaluated


def test_depth_and_disparity_l1_over_valid_pixels_only():
    prediction = torch.tensor([[[[1.0, 5.0, 2.0]]]])
    depth = dense_task("depth", "depth")
    target = torch.tensor([[[[2.0, 0.0, 4.0]]]])  # 0 = invalid
    assert depth.loss(prediction, Batch(None, {"depth": target})).item() == pytest.approx(1.5)
    disparity = dense_task("disparity", "disparity")
    target = torch.tensor([[[[-1.0, 4.0, 2.0]]]])  # -1 = invalid
    batch = Batch(None, {"disparity": target})
    assert disparity.loss(prediction, batch).item() == pytest.approx(0.5)
    assert not disparity.metrics[0].higher_is_better


def test_normal_loss_normalises_the_prediction_and_skips_zero_normals():
    task = dense_task("normal", "normal")
    prediction = torch.tensor([[3.0, 1.0], [0.0, 0.0], [4.0, 0.0]]).view(1, 3, 1, 2)
    target = torch.tensor([[0.6, 0.0], [0.0, 0.0], [0.8, 0.0]]).view(1, 3, 1, 2)
    # pixel 0: (0.6, 0, 0.8) exactly -> 0; pixel 1 invalid
    assert task.loss(prediction, Batch(None, {"normal": target})).item() == pytest.approx(0.0)
    target = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]).view(1, 3, 1, 2)
    # |0.6-0| + |0-1| + |0.8-0| = 2.4 over 3 elements
    assert task.loss(prediction, Batch(None, {"normal": target})).item() == pytest.approx(0.8)
    cosine = dense_task("normal", "normal", normal_loss="cosine")
    assert cosine.loss(prediction, Batch(None, {"normal": target})).item() == pytest.approx(1.0)


def test_regression_l1_over_pixels_finite_in_every_channel_with_a_finite_gradient():
    task = dense_task("albedo", "regression", channels=2, primary=True)
    assert task.outputs == 2 and task.evaluated and task.reads == ("albedo",)
    assert [m.name for m in task.metrics] == ["abs_err", "rmse"]
    assert not any(m.higher_is_better for m in task.metrics)
    nan = math.nan
    # 4 pixels (1 × 4), 2 channels; pixel 1 is NaN in channel 0, pixel 2 in channel 1
    prediction = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]]).view(1, 2, 1, 4)
    prediction.requires_grad_(True)
    target = torch.tensor([[2.0, nan, 3.0, 0.5], [1.0, 5.0, nan, -2.0]]).view(1, 2, 1, 4)
    loss = task.loss(prediction, Batch(None, {"albedo": target}))
    # valid pixels 0 and 3: |1 − 2| + |0 − 1| + |4 − 0.5| + |0 + 2| = 7.5 over 4 elements
    assert loss.item() == pytest.approx(1.875)
    loss.backward()
    grad = prediction.grad.view(2, 4)
    assert torch.isfinite(grad).all()
    assert (grad[:, 1:3] == 0).all()  # nothing flows from the invalid pixels
    assert torch.equal(grad[:, [0, 3]], torch.tensor([[-0.25, 0.25], [-0.25, 0.25]]))


def test_regression_defaults_to_one_channel_and_checks_its_channels():
    task = dense_task("heat", "regression")
    assert task.outputs == 1
    target = torch.full((1, 1, 2, 2), math.nan)  # nothing valid: 0, with a gradient
    prediction = torch.ones(1, 1, 2, 2, requires_grad=True)
    loss = task.loss(prediction, Batch(None, {"heat": target}))
    loss.backward()
    assert loss.item() == 0.0 and (prediction.grad == 0).all()
    with pytest.raises(ValueError, match="regression task 'heat' needs channels >= 1, got 0"):
        dense_task("heat", "regression", channels=0)
    with pytest.raises(ValueError, match="depth task 'depth' takes no channels"):
        dense_task("depth", "depth", channels=1)


def test_noise_task_is_auxiliary_l1_and_not_scored():
    task = NoiseMapTask()
    out = torch.tensor([[[[0.5, 1.0]]]])
    noise = torch.tensor([[[[0.25, 0.0]]]])
    assert task.loss(out, Batch(None, {"noise": noise})).item() == pytest.approx(0.625)
    assert not task.primary and not task.evaluated


def test_unknown_kind_is_named():
    with pytest.raises(ValueError, match="unknown dense task kind 'flow'"):
        dense_task("x", "flow")
