import csv
import json

import pytest
import torch
from fixtures import synthetic_config

from auxbench.data import DataError, make_synthetic
from auxbench.foundations.errors import ConfigError
from auxbench.training import Trainer


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(n_train=600, n_test=200, num_classes=4, aux_per_class=2, seed=0)


config = synthetic_config


def test_single_learns_synthetic_task_far_above_chance(synthetic, tmp_path):
    metrics = Trainer(config(), synthetic).fit(tmp_path)
    assert metrics["test_acc_at_best_val"] > 0.8  # chance is 0.25
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in (
        "test_acc_at_best_val",
        "best_epoch",
        "val_acc_best",
        "test_acc_final",
        "test_acc_last15_mean",
        "wall_time_s",
        "device",
        "config",
    ):
        assert key in saved
    assert saved["config"]["method"] == "single"
    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert {"val_acc", "val_f1", "test_precision", "test_recall"} <= set(rows[0])
    best = max(rows, key=lambda r: float(r["val_acc"]))
    assert saved["test_acc_at_best_val"] == pytest.approx(float(best["test_acc"]))
    assert (tmp_path / "model.pt").is_file()


def test_same_seed_gives_identical_history(synthetic):
    first = Trainer(config(epochs=2, method="human"), synthetic)
    first.fit()
    second = Trainer(config(epochs=2, method="human"), synthetic)
    second.fit()
    drop = {"epoch_time_s"}
    strip = [{k: v for k, v in row.items() if k not in drop} for row in first.history]
    assert strip == [{k: v for k, v in row.items() if k not in drop} for row in second.history]
    other = Trainer(config(epochs=2, method="human", seed=1), synthetic)
    other.fit()
    assert other.history[-1]["train_loss"] != first.history[-1]["train_loss"]


def test_human_adds_an_auxiliary_head_sized_by_the_human_labels(synthetic):
    trainer = Trainer(config(method="human", epochs=1), synthetic)
    assert trainer.model.heads["aux"][-1].out_features == synthetic.num_aux_classes
    batch = next(trainer.batches())
    total, _ = trainer.loss(batch)
    primary_only, _ = Trainer(config(method="human", epochs=1, lam=0.0), synthetic).loss(batch)
    assert total > primary_only


def test_human_needs_human_labels(synthetic):
    from dataclasses import replace

    without = replace(synthetic, num_aux_classes=None, aux_class_names=None)
    with pytest.raises(DataError, match="no human auxiliary labels"):
        Trainer(config(method="human"), without)


def test_early_stopping_stops_when_validation_stalls(synthetic):
    metrics = Trainer(config(lr=1e-12, momentum=0.0, epochs=10, patience=2), synthetic).fit()
    assert metrics["stopped_early"] and metrics["epochs_run"] == 3 and metrics["best_epoch"] == 1


def test_train_limit_subsamples_training_split(synthetic):
    trainer = Trainer(config(train_limit=100, epochs=1), synthetic)
    assert len(trainer.train_split) == 100
    assert len(trainer.val_split) == len(synthetic.val)


def test_eval_limit_scores_the_same_subset_in_every_run(synthetic):
    first = Trainer(config(eval_limit=30, seed=1, epochs=1), synthetic)
    second = Trainer(config(eval_limit=30, seed=2, epochs=1, method="human"), synthetic)
    assert len(first.val_split) == len(first.test_split) == 30
    assert torch.equal(first.test_split.images, second.test_split.images)
    assert torch.equal(first.val_split.labels, second.val_split.labels)
    assert len(Trainer(config(epochs=1), synthetic).test_split) == len(synthetic.test)


@pytest.mark.parametrize("method, weighting", [("maxl", "fixed"), ("human", "autolambda")])
def test_a_compiled_channels_last_network_trains_like_the_plain_one(synthetic, method, weighting):
    """torch.compile (here its eager backend, which needs no compiler) keeps the module and its
    parameter names, so the meta-steps' functional calls and checkpoints work unchanged."""
    settings = {"method": method, "weighting": weighting, "epochs": 1, "train_limit": 50}
    plain = Trainer(config(**settings), synthetic)
    fast = Trainer(config(**settings, compile="eager", channels_last=True), synthetic)
    networks = [fast.model, *([fast.method.label_net.network] if method == "maxl" else [])]
    for network in networks:  # the main network and MAXL's label network beside it
        assert network.trunk[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert list(fast.model.state_dict()) == list(plain.model.state_dict())
    expected, got = plain.run_epoch(1), fast.run_epoch(1)
    assert got["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-4)
    for name, value in plain.model.state_dict().items():
        torch.testing.assert_close(fast.model.state_dict()[name], value, rtol=1e-3, atol=1e-4)


def test_compile_must_be_a_flag_or_a_backend_name(synthetic):
    with pytest.raises(ConfigError, match="compile must be"):
        Trainer(config(compile=""), synthetic)
