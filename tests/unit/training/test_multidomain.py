"""Multi-domain CIFAR-100 (cifar100-mtl): the reader, the per-domain-BatchNorm network, the
multi-domain trainer in multi-task and auxiliary modes, the cosine schedule and Δ_MTL."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from fixtures import cifar100_coarse_of, image_ids, write_cifar100, write_pickle

from auxbench import cli
from auxbench.config import TrainConfig, make_config
from auxbench.data import DataError, MultiDomainDataset, load
from auxbench.data.prepare import prepare
from auxbench.foundations.errors import ConfigError
from auxbench.foundations.metrics import delta_mtl
from auxbench.models import build_multidomain_model
from auxbench.tasks import ClassificationTask
from auxbench.training import MultiDomainTrainer, Trainer
from auxbench.training.optim import create_scheduler, create_weighting

N_TRAIN, N_TEST = 600, 200  # 6 training and 2 test images per fine class
COARSE_NAMES = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    write_cifar100(root, n_train=N_TRAIN, n_test=N_TEST, coarse_names=COARSE_NAMES)
    return root


@pytest.fixture(scope="module")
def data(root):
    return load("cifar100-mtl", root=root)


def fine_classes_of(domain: int) -> list[int]:
    """The fixture's fine classes of superclass ``domain``, by increasing id (= by rank)."""
    return [fine for fine in range(100) if cifar100_coarse_of(np.array(fine)) == domain]


def config(root, **overrides) -> TrainConfig:
    values = {
        "dataset": "cifar100-mtl",
        "data_root": str(root),
        "model": "small",
        "width": 0.125,
        "epochs": 1,
        "batch_size": 16,
        "lr": 0.05,
        "loss": "ce",
        "device": "cpu",
    }
    return TrainConfig(**{**values, **overrides})


# --- data ----------------------------------------------------------------------------------------


def test_twenty_domains_named_by_the_files_each_a_five_way_task(data):
    assert isinstance(data, MultiDomainDataset)
    assert data.domain_names == tuple(COARSE_NAMES)
    assert data.slugs[9] == "large_man_made_outdoor_things"
    assert data.slugs[13] == "non_insect_invertebrates"
    assert data.num_classes == 5
    for domain in data.domains:
        for split in (domain.train, domain.val, domain.test):
            assert split.labels.min() >= 0 and split.labels.max() < 5
    assert sum(len(d.train) + len(d.val) for d in data.domains) == N_TRAIN
    assert sum(len(d.test) for d in data.domains) == N_TEST


def test_label_is_the_rank_of_the_fine_class_within_its_superclass(data):
    for index, domain in enumerate(data.domains):
        fines = fine_classes_of(index)
        assert domain.class_names == tuple(f"fine{fine}" for fine in fines)
        for split, first_id in ((domain.train, 0), (domain.val, 0), (domain.test, N_TRAIN)):
            fine_of_image = [(i - first_id) % 100 for i in image_ids(split.images)]
            assert {int(cifar100_coarse_of(np.array(f))) for f in fine_of_image} == {index}
            assert split.labels.tolist() == [fines.index(f) for f in fine_of_image]


def test_each_domain_has_a_disjoint_stratified_seeded_validation_split(root, data):
    for domain in data.domains:
        train, val = set(image_ids(domain.train.images)), set(image_ids(domain.val.images))
        assert not train & val and len(train | val) == N_TRAIN // 20
        assert sorted(domain.val.labels.tolist()) == [0, 1, 2, 3, 4]  # round(0.1 * 6) = 1 each
        assert sorted(domain.train.labels.tolist()) == sorted(list(range(5)) * 5)
    again = load("cifar100-mtl", root=root, seed=0)
    other = load("cifar100-mtl", root=root, seed=1)
    ids = [image_ids(d.val.images) for d in data.domains]
    assert ids == [image_ids(d.val.images) for d in again.domains]
    assert ids != [image_ids(d.val.images) for d in other.domains]


def test_a_fine_class_in_two_superclasses_is_a_data_error(tmp_path):
    written = write_cifar100(tmp_path, n_train=N_TRAIN, n_test=N_TEST)
    train = written["train"]
    train[b"coarse_labels"][0] = (train[b"coarse_labels"][0] + 1) % 20  # image 0: fine class 0
    write_pickle(tmp_path / "cifar-100-python" / "train", train)
    with pytest.raises(DataError, match="class 0 occurs in the domains"):
        load("cifar100-mtl", root=tmp_path)


def test_datasets_command_and_prepare_know_the_dataset(root, tmp_path, capsys):
    assert cli.main(["datasets", "--root", str(root)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("cifar100-mtl"))
    assert " ok " in line
    manifest = prepare("cifar100-mtl", tmp_path / "manifest.json", root=str(root))
    assert list(manifest["domains"]) == COARSE_NAMES and manifest["n_test"] == N_TEST
    assert manifest["domains"]["people"] == [f"fine{f}" for f in fine_classes_of(14)]


# --- network -------------------------------------------------------------------------------------


def test_batchnorm_is_per_domain_and_convolutions_are_shared():
    torch.manual_seed(0)
    model = build_multidomain_model("small", 3, domains=20, classes=5, width=0.25)
    before = {name: b.clone() for name, b in model.named_buffers()}
    loss = model(torch.randn(8, 3, 32, 32), 3).logsumexp(dim=1).mean()
    changed = {name for name, b in model.named_buffers() if not torch.equal(b, before[name])}
    assert changed and all(".norms.3." in name for name in changed)
    assert len(changed) == 3 * len(model.convs)  # mean, var, batch count of every layer
    loss.backward()
    assert all(p.grad is not None for p in model.shared_parameters())
    shared = {id(p) for p in model.shared_parameters()}
    assert shared == {id(p) for p in model.convs.parameters()}
    for name, param in model.named_parameters():
        if id(param) not in shared:
            has_grad = param.grad is not None
            assert has_grad == (".norms.3." in name or name.startswith("heads.3."))


def test_vgg16_has_thirteen_shared_convolutions_and_linear_512_to_5_heads():
    model = build_multidomain_model("vgg16", 3, domains=20, classes=5)
    assert len(model.convs) == 13 and len(model.heads) == 20
    assert (model.heads[0].in_features, model.heads[0].out_features) == (512, 5)
    assert len(model.norms[0].norms) == 20


# --- training ------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighting", ["fixed", "autolambda"])
def test_one_multi_task_epoch_writes_per_domain_columns(root, tmp_path, weighting, one_thread):
    trainer = MultiDomainTrainer(config(root, weighting=weighting))
    assert trainer.weighting.primary == tuple(range(20))
    assert trainer.iterations == math.ceil(25 / 16)
    metrics = trainer.fit(tmp_path)
    with open(tmp_path / "history.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    slugs = trainer.dataset.slugs
    assert {f"val_acc_{s}" for s in slugs} | {f"test_acc_{s}" for s in slugs} <= set(row)
    test_accs = [float(row[f"test_acc_{s}"]) for s in slugs]
    assert float(row["test_acc"]) == pytest.approx(sum(test_accs) / 20)
    assert ("weight_people" in row) == (weighting != "fixed")
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert (
        saved["test_acc_at_best_val"] == metrics["test_acc_at_best_val"] == float(row["test_acc"])
    )
    for key in ("test_acc_at_best_val", "test_f1_at_best_val", "test_acc_last15_mean", "config"):
        assert key in saved
    assert saved["test_acc_per_domain_at_best_val"] == pytest.approx(dict(zip(slugs, test_accs)))
    assert saved["n_train"] == 500 and saved["n_test"] == N_TEST
    assert (tmp_path / "model.pt").is_file()


def test_auxiliary_mode_selects_on_the_primary_domains(root, one_thread):
    primary = [3, 7]
    trainer = MultiDomainTrainer(
        config(root, primary_domains=primary, lam=0.5, epochs=2, schedule="cosine", lr=0.1)
    )
    assert trainer.weighting.primary == (3, 7)
    assert trainer.weighting.weights.tolist() == [1.0 if d in primary else 0.5 for d in range(20)]
    metrics = trainer.fit()
    names = [trainer.task_names[d] for d in primary]
    for row in trainer.history:
        assert row["val_acc"] == pytest.approx(sum(row[f"val_acc_{n}"] for n in names) / 2)
    best = max(trainer.history, key=lambda row: row["val_acc"])
    assert metrics["best_epoch"] == best["epoch"] and metrics["primary_domains"] == names
    assert [row["lr"] for row in trainer.history] == pytest.approx([0.1, 0.05])


def test_look_ahead_leaves_batchnorm_statistics_alone_and_runs_are_seeded(root, one_thread):
    trainer = MultiDomainTrainer(config(root, weighting="autolambda", meta_split="val"))
    before = {name: b.clone() for name, b in trainer.model.named_buffers()}
    meta = trainer._meta_step(next(trainer.train_batches))
    assert len(meta.meta_batch) == 20 and len(meta.meta_batch[0].labels) == 5  # val: 5 each
    assert trainer.weighting.hypergradient(meta).shape == (20,)
    assert all(torch.equal(b, before[name]) for name, b in trainer.model.named_buffers())
    first, second = (MultiDomainTrainer(config(root)) for _ in range(2))
    first.fit()
    second.fit()
    drop = ("epoch_time_s",)
    assert [{k: v for k, v in row.items() if k not in drop} for row in first.history] == [
        {k: v for k, v in row.items() if k not in drop} for row in second.history
    ]


def test_auxbench_train_dispatches_on_the_dataset_kind(root, tmp_path, one_thread):
    flags = ["--dataset", "cifar100-mtl", "--data-root", str(root), "--model", "small"]
    flags += ["--set", "width=0.125", "--epochs", "1", "--batch-size", "32", "--device", "cpu"]
    assert cli.main(["train", *flags, "--out", str(tmp_path)]) == 0
    assert "test_acc_per_domain_at_best_val" in json.loads((tmp_path / "metrics.json").read_text())


def test_the_single_task_trainer_refuses_a_multi_domain_dataset(data):
    with pytest.raises(ConfigError, match="multi-domain"):
        Trainer(TrainConfig(dataset="synthetic", device="cpu"), data)


# --- schedule, settings, Δ_MTL -------------------------------------------------------------------


def test_cosine_schedule_follows_the_cosine_formula():
    epochs, lr = 7, 0.1
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = create_scheduler(optimizer, TrainConfig(schedule="cosine", epochs=epochs, lr=lr))
    for epoch in range(epochs + 1):
        expected = lr * (1 + math.cos(math.pi * epoch / epochs)) / 2
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected, abs=1e-12)
        optimizer.step()
        scheduler.step()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"schedule": "cosin"}, "unknown schedule 'cosin'; choose one of: step, cosine"),
        ({"primary_domains": [20]}, "unknown domain index 20; 'cifar100-mtl' has domains 0..19"),
        ({"primary_domains": [3, 3]}, "repeats a domain"),
        ({"primary_domains": []}, "non-empty list"),
        ({"method": "human"}, "method must be 'single'"),
        ({"dataset": "cifar10", "primary_domains": [1]}, "multi-domain datasets only"),
        ({"weighting_params": {"autolambda": 3e-4}}, "must map that weighting's settings"),
    ],
)
def test_bad_settings_are_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        make_config({"dataset": "cifar100-mtl", **values})


def test_weighting_params_keyed_by_name_reach_that_weighting_only():
    params = {"autolambda": {"lr": 3e-4}}
    tasks = [
        ClassificationTask("primary", 2, primary=True),
        ClassificationTask("a", 2, weight=0.2),
        ClassificationTask("b", 2, weight=0.2),
    ]
    for name, lr in (("autolambda", 3e-4), ("gradnorm", 0.025)):
        method = create_weighting(TrainConfig(weighting=name, weighting_params=params), tasks)
        assert method.optimizer.param_groups[0]["lr"] == pytest.approx(lr)
    fixed = create_weighting(TrainConfig(weighting_params={**params, "lam": 0.5}), tasks)
    assert fixed.weights.tolist() == pytest.approx([1.0, 0.2, 0.2])


def test_delta_mtl_is_the_mean_relative_change_in_percent():
    assert delta_mtl([0.8, 0.6], [0.75, 0.5]) == pytest.approx(
        100 * ((0.8 - 0.75) / 0.75 + (0.6 - 0.5) / 0.5) / 2
    )
    assert delta_mtl([0.5, 0.5], [0.5, 0.5]) == 0
    # Auto-λ Table 1, CityScapes (Split, multi-task): mIoU, mIoU, disparity error (lower better)
    single, lower = [56.20, 52.74, 0.84], [False, False, True]
    assert delta_mtl([54.03, 50.18, 0.79], single, lower) == pytest.approx(-0.92, abs=0.005)
    assert delta_mtl([56.08, 51.88, 0.76], single, lower) == pytest.approx(2.56, abs=0.005)
    with pytest.raises(ValueError, match="one single-task score per task"):
        delta_mtl([0.5], [0.5, 0.6])
