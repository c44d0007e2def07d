"""The dense trainer on a tiny in-memory dataset: columns, modes, the noise task, model
selection, look-ahead from a second pass, clear errors, exact resumption after a crash, and a
user's regression task (NaN-marked invalid pixels) beside segmentation."""

import json
import math

import pytest
import torch
from fixtures import TIMING_KEYS, Crash, crash_after, without_timing

from auxbench.config import make_dense_config
from auxbench.data.dense import DenseDataset, DenseSplit, DenseTaskSpec
from auxbench.foundations.errors import ConfigError
from auxbench.training.checkpoint import CHECKPOINT_NAME
from auxbench.training.dense import DenseTrainer


def _split(count, seed):
    g = torch.Generator().manual_seed(seed)
    height, width = 12, 16
    depth = 1 + torch.rand(count, 1, height, width, generator=g)
    semantic = (depth[:, 0] > 1.5).long()
    semantic[:, 0, 0] = -1
    normal = torch.nn.functional.normalize(torch.randn(count, 3, height, width, generator=g), dim=1)
    images = torch.cat([depth - 1, (semantic.unsqueeze(1) + 1).float() / 2, normal[:, :1]], 1)
    return DenseSplit(images.clamp(0, 1), {"semantic": semantic, "depth": depth, "normal": normal})


@pytest.fixture(scope="module")
def data():
    tasks = (
        DenseTaskSpec("semantic", "segmentation", 2),
        DenseTaskSpec("depth", "depth"),
        DenseTaskSpec("normal", "normal"),
    )
    return DenseDataset("tiny", tasks, _split(40, 0), _split(12, 1), "in memory")


def config(**overrides):
    values = {
        "dataset": "scenes",
        "epochs": 3,
        "batch_size": 8,
        "eval_batch_size": 16,
        "lr": 0.05,
        "device": "cpu",
        "width": 0.5,
    }
    values.update(overrides)
    return make_dense_config(values, source="test")


def test_a_multi_task_epoch_writes_every_tasks_metrics(data, tmp_path, one_thread):
    trainer = DenseTrainer(config(epochs=2, weighting="dwa"), data)
    metrics = trainer.fit(tmp_path)
    row = trainer.history[-1]
    for split in ("val", "test"):
        for column in (
            "miou_semantic",
            "pixel_acc_semantic",
            "abs_err_depth",
            "rel_err_depth",
            "mean_angle_normal",
            "median_angle_normal",
            "within_11.25_normal",
        ):
            assert f"{split}_{column}" in row
    assert trainer.history[0]["val_score"] == 0.0  # the first epoch is the reference
    assert {"weight_semantic", "weight_depth", "weight_normal", "train_loss_depth"} <= set(row)
    assert metrics["n_train"] == 36 and metrics["n_val"] == 4 and metrics["n_test"] == 12
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["tasks"]["depth"] == {"kind": "depth", "primary": True, "metric": "abs_err"}
    assert on_disk["lower_is_better"]["abs_err"] is True
    assert on_disk["lower_is_better"]["miou"] is False
    best = trainer.history[metrics["best_epoch"] - 1]
    assert metrics["test_miou_semantic_at_best_val"] == best["test_miou_semantic"]
    assert metrics["test_miou_semantic_final"] == row["test_miou_semantic"]


def test_a_regression_task_beside_segmentation_trains_and_is_scored(tmp_path, one_thread):
    def split(count, seed):
        base = _split(count, seed)
        depth = base.targets["depth"]
        # a 2-channel map the image predicts (its first channel, and minus it), ~10% pixels NaN
        heat = torch.cat([depth - 1, 1 - depth], dim=1)
        holes = torch.rand(count, 1, *depth.shape[2:], generator=torch.Generator().manual_seed(9))
        heat = torch.where(holes < 0.1, math.nan, heat)
        return DenseSplit(base.images, {"semantic": base.targets["semantic"], "heat": heat})

    tasks = (
        DenseTaskSpec("semantic", "segmentation", 2),
        DenseTaskSpec("heat", "regression", channels=2),
    )
    data = DenseDataset("tiny-regression", tasks, split(40, 0), split(12, 1), "in memory")
    trainer = DenseTrainer(config(epochs=2, crop=[8, 8], scales=[1.0, 1.5]), data)
    assert trainer.tasks[1].outputs == 2
    assert trainer.model(trainer.test_split.images[:2])["heat"].shape == (2, 2, 12, 16)
    metrics = trainer.fit(tmp_path)
    for row in trainer.history:
        for column in ("val_abs_err_heat", "val_rmse_heat", "test_abs_err_heat", "test_rmse_heat"):
            assert math.isfinite(row[column]) and row[column] > 0, column
        assert math.isfinite(row["train_loss_heat"]) and "val_miou_semantic" in row
        assert row["test_rmse_heat"] >= row["test_abs_err_heat"]
    assert math.isfinite(metrics["test_rmse_heat_at_best_val"])
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["tasks"]["heat"] == {"kind": "regression", "primary": True, "metric": "abs_err"}
    assert on_disk["lower_is_better"]["rmse"] is True


def test_one_primary_task_selects_on_its_own_metric_and_noise_is_auxiliary(data, one_thread):
    trainer = DenseTrainer(config(primary_tasks=["depth"], noise_task=True, epochs=3), data)
    assert [t.name for t in trainer.tasks] == ["semantic", "depth", "normal", "noise"]
    assert [t.primary for t in trainer.tasks] == [False, True, False, False]
    assert trainer.train_split.targets["noise"].shape == (36, 1, 12, 16)
    trainer.fit()
    errors = [row["val_abs_err_depth"] for row in trainer.history]
    assert trainer.best()["epoch"] == 1 + errors.index(min(errors))
    # the auxiliary tasks are scored too, the noise task is not
    assert "val_miou_semantic" in trainer.history[0]
    assert not any("noise" in key and key.startswith("val_") for key in trainer.history[0])


def test_single_task_runs_train_one_head(data, one_thread):
    trainer = DenseTrainer(config(tasks=["normal"], epochs=1), data)
    assert list(trainer.model(trainer.test_split.images[:2])) == ["normal"]
    trainer.fit()
    assert "val_mean_angle_normal" in trainer.history[0]


def test_unknown_task_names_are_one_line_errors(data):
    with pytest.raises(ConfigError, match="tasks: unknown task\\(s\\) 'flow'; dataset 'tiny' has"):
        DenseTrainer(config(tasks=["flow"]), data)
    with pytest.raises(ConfigError, match="primary_tasks: unknown task\\(s\\) 'normal'"):
        DenseTrainer(config(tasks=["depth"], primary_tasks=["normal"]), data)


def test_look_ahead_meta_batches_come_from_their_own_pass(data, one_thread):
    trainer = DenseTrainer(config(weighting="autolambda", noise_task=True, epochs=1), data)
    before = trainer.shuffle_generator.get_state()
    meta = trainer._meta_batches()
    first = next(meta)
    assert torch.equal(trainer.shuffle_generator.get_state(), before)
    assert len(first.index) == 8 and "noise" in first.targets
    trainer.fit()
    assert trainer.history[0]["weight_noise"] != pytest.approx(0.1, abs=0.0)  # it learned


@pytest.mark.parametrize(
    "overrides",
    [
        {"weighting": "uncertainty"},
        {"weighting": "autolambda", "noise_task": True, "gradient": "pcgrad"},
        {"architecture": "mtan", "weighting": "dwa"},
    ],
    ids=["uncertainty", "autolambda+pcgrad", "mtan-dwa"],
)
def test_a_crashed_dense_run_resumes_to_the_same_result(
    data, tmp_path, monkeypatch, overrides, one_thread
):
    straight = DenseTrainer(config(**overrides), data)
    expected = straight.fit(tmp_path / "straight")
    monkeypatch.setattr("auxbench.training.loop.inject_fault", crash_after(2))
    with pytest.raises(Crash):
        DenseTrainer(config(**overrides), data).fit(tmp_path / "resumed")
    assert (tmp_path / "resumed" / CHECKPOINT_NAME).is_file()
    resumed = DenseTrainer(config(**overrides), data)
    metrics = resumed.fit(tmp_path / "resumed")
    assert without_timing(resumed.history) == without_timing(straight.history)
    for key in set(expected) - TIMING_KEYS:
        assert metrics[key] == expected[key], key
    for a, b in zip(resumed.model.parameters(), straight.model.parameters(), strict=True):
        assert torch.equal(a, b)
