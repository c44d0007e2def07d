"""Tests of auxbench.data.user_sets (a user's ``datasets:`` entries) and the example folder, on
files written here in the real layouts."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from auxbench.data import load
from auxbench.data.dataset import DataError
from auxbench.data.prepare import prepare
from auxbench.data.user_example import example_classes, write_example_folder
from auxbench.data.user_sets import UserDataset, require_files, user_datasets, verify
from auxbench.foundations.errors import ConfigError


def folder_entry(root, **extra):
    return {"name": "shapes", "kind": "folder", "path": str(root), "size": 16, **extra}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example folder, small: 3 train and 2 test images per class."""
    root = tmp_path_factory.mktemp("example") / "shapes"
    hierarchy = write_example_folder(root, train_per_class=3, test_per_class=2)
    return root, hierarchy


def one_line(call, *args, error=ConfigError):
    with pytest.raises(error) as info:
        call(*args)
    text = str(info.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize(
    "entry, message",
    [
        ("shapes", "expected a dataset name or a mapping"),
        ({"kind": "folder", "path": "x"}, "lacks 'name'"),
        ({"name": "a", "path": "x"}, "lacks 'kind'"),
        ({"name": "a", "kind": "folder"}, "lacks 'path'"),
        ({"name": "a/b", "kind": "folder", "path": "x"}, "name: 'a/b' must start with"),
        ({"name": "a", "kind": "zip", "path": "x"}, "kind: 'zip' is not one of folder, npz"),
        ({"name": "a", "kind": "npz", "path": "x", "size": 32}, "unknown key 'size' for a npz"),
        ({"name": "a", "kind": "dense", "path": "x", "primary": "fine"}, "unknown key 'primary'"),
        ({"name": "a", "kind": "folder", "path": "x", "size": 0}, "size: expected a positive"),
        ({"name": "a", "kind": "folder", "path": "x", "size": True}, "size: expected a positive"),
        ({"name": "a", "kind": "folder", "path": "x", "channels": 2}, "channels: expected 1"),
        ({"name": "a", "kind": "folder", "path": 3}, "path: expected a string, got 3"),
        ({"name": "a", "kind": "folder", "path": "x", "primary": "mid"}, "primary: expected fine"),
        ({"name": "a", "kind": "folder", "path": "x", "primary": "coarse"}, "coarse needs"),
        (
            {"name": "a", "kind": "folder", "path": "x", "aux_csv": "a", "hierarchy_csv": "h"},
            "give aux_csv (a label per image) or hierarchy_csv",
        ),
    ],
)
def test_bad_entries_are_one_line_errors_naming_the_key(entry, message):
    text = one_line(UserDataset.from_entry, entry, "my.yaml: datasets[1]")
    assert text.startswith("my.yaml: datasets[1]") and message in text


def test_entries_round_trip_with_only_their_kinds_keys():
    folder = UserDataset.from_entry({"name": "a", "kind": "folder", "path": "x"})
    assert folder.to_entry() == {
        "name": "a",
        "kind": "folder",
        "path": "x",
        "size": 32,
        "channels": 3,
        "primary": "fine",
    }
    npz = UserDataset.from_entry({"name": "b", "kind": "npz", "path": "b.npz"})
    assert npz.to_entry() == {"name": "b", "kind": "npz", "path": "b.npz", "primary": "fine"}
    assert UserDataset.from_entry(npz.to_entry()) == npz
    dense = UserDataset.from_entry({"name": "c", "kind": "dense", "path": "d", "description": "x"})
    assert dense.to_entry() == {"name": "c", "kind": "dense", "path": "d", "description": "x"}


def test_config_lists_are_collected_and_misplaced_kinds_refused():
    config = {
        "datasets": ["fashion-mnist", {"name": "a", "kind": "folder", "path": "x"}],
        "dense": {"datasets": ["scenes", {"name": "d", "kind": "dense", "path": "y"}]},
    }
    assert sorted(user_datasets(config)) == ["a", "d"]
    wrong = {"datasets": [{"name": "d", "kind": "dense", "path": "y"}]}
    assert "belongs under dense.datasets" in one_line(user_datasets, wrong)
    wrong = {"dense": {"datasets": [{"name": "a", "kind": "npz", "path": "y"}]}}
    assert "belongs under datasets" in one_line(user_datasets, wrong)
    twice = {
        "datasets": [
            {"name": "a", "kind": "folder", "path": "x"},
            {"name": "a", "kind": "folder", "path": "z"},
        ]
    }
    assert "declared twice" in one_line(user_datasets, twice)


def test_the_example_reads_with_its_hierarchy_and_psi(example):
    root, hierarchy = example
    user = UserDataset.from_entry(
        folder_entry(root, hierarchy_csv=str(hierarchy), primary="coarse")
    )
    raw = user.read()
    assert raw.class_names == ("bar", "disc", "square", "triangle")
    assert raw.aux_class_names == tuple(example_classes())
    assert raw.hierarchy_psi == 2 and raw.train.images.shape == (24, 3, 16, 16)
    # each fine class sits under its own shape
    coarse_of = {fine: raw.class_names.index(shape) for fine, shape in example_classes().items()}
    for split in (raw.train, raw.test):
        names = [raw.aux_class_names[i] for i in split.aux_labels.tolist()]
        assert split.labels.tolist() == [coarse_of[name] for name in names]
    dataset = load("shapes", val_fraction=0.25, user=user)
    assert dataset.hierarchy_psi == 2 and len(dataset.val) == 8 and dataset.num_aux_classes == 8
    fine = UserDataset.from_entry(folder_entry(root, hierarchy_csv=str(hierarchy)))
    assert fine.read().hierarchy_psi is None  # coarse auxiliary classes do not refine the primary
    with pytest.raises(ValueError, match="user dataset is 'shapes'"):
        load("other", user=user)


def test_the_example_is_deterministic(tmp_path):
    write_example_folder(tmp_path / "a", 2, 1, seed=3)
    write_example_folder(tmp_path / "b", 2, 1, seed=3)
    a, b = (sorted(p.relative_to(tmp_path / d) for p in (tmp_path / d).rglob("*")) for d in "ab")
    assert a == b and len(a) == 1 + 2 + 2 * 8 + 8 * (2 + 1)  # csv, splits, class folders, images
    for path in a:
        if (tmp_path / "a" / path).is_file():
            assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes()


def test_files_list_what_is_read(tmp_path, example):
    root, hierarchy = example
    user = UserDataset.from_entry(folder_entry(root, hierarchy_csv=str(hierarchy)))
    files = user.files()
    assert len(files) == 8 * 5 + 1 and hierarchy in files
    assert all(p.suffix in (".png", ".jpg", ".csv") for p in files)
    npz = tmp_path / "d.npz"
    np.savez(npz, images=np.zeros((4, 8, 8), np.uint8), labels=np.array([0, 1, 0, 1]))
    assert UserDataset.from_entry({"name": "n", "kind": "npz", "path": str(npz)}).files() == [npz]
    dense = tmp_path / "dense"
    for relative in ("tasks.yaml", "train/image/0.npy", "val/depth/0.npy", "train/.hidden/x"):
        (dense / relative).parent.mkdir(parents=True, exist_ok=True)
        (dense / relative).write_text("")
    listed = UserDataset.from_entry({"name": "d", "kind": "dense", "path": str(dense)}).files()
    assert [p.relative_to(dense).as_posix() for p in listed] == [
        "tasks.yaml",
        "train/image/0.npy",
        "val/depth/0.npy",
    ]


def test_verify_reads_once_and_again_after_a_change(tmp_path, monkeypatch):
    root = tmp_path / "shapes"
    write_example_folder(root, train_per_class=3, test_per_class=1)
    user = UserDataset.from_entry(folder_entry(root))
    cache = tmp_path / "cache"
    line = verify(user, cache)
    assert line.startswith("shapes: 24 train and 8 test images of 3×16×16, 8 classes")
    reads = []
    original = UserDataset.summary
    monkeypatch.setattr(UserDataset, "summary", lambda self: reads.append(1) or original(self))
    assert verify(user, cache) == line and reads == []  # unchanged: not read again
    image = root / "train" / "bar-cool" / "000.png"
    image.write_bytes(b"broken")
    text = one_line(verify, user, cache, error=DataError)
    assert text.startswith(f"{image}: cannot read image") and reads == [1]
    os.remove(image)
    assert verify(user, cache).startswith("shapes: 23 train") and reads == [1, 1]


def test_missing_paths_are_named(tmp_path):
    user = UserDataset.from_entry(folder_entry(tmp_path / "nowhere"))
    assert "dataset folder not found (dataset 'shapes', key path)" in one_line(
        require_files, user, error=DataError
    )
    (tmp_path / "here").mkdir()
    user = UserDataset.from_entry(folder_entry(tmp_path / "here", aux_csv="aux.csv"))
    assert "aux.csv: CSV file not found (dataset 'shapes', key aux_csv)" in one_line(
        require_files, user, error=DataError
    )


def test_prepare_checksums_every_file_and_changes_with_a_csv_row(tmp_path):
    root = tmp_path / "shapes"
    hierarchy = write_example_folder(root, train_per_class=3, test_per_class=1)
    user = UserDataset.from_entry(
        folder_entry(root, hierarchy_csv=str(hierarchy), primary="coarse")
    )
    first = prepare("shapes", tmp_path / "a.json", user=user)
    assert first == json.loads((tmp_path / "a.json").read_text())
    assert first["user"] == user.to_entry() and first["n_files"] == 8 * 4 + 1
    assert first["hierarchy_psi"] == 2 and first["image_shape"] == [3, 16, 16]
    assert first["num_classes"] == 4 and first["num_aux_classes"] == 8
    # disc-cool moves under square: the labels, and so both checksums, change
    hierarchy.write_text(hierarchy.read_text().replace("disc-cool,disc", "disc-cool,square"))
    second = prepare("shapes", tmp_path / "b.json", user=user)
    assert second["files_sha256"] != first["files_sha256"]
    assert second["content_sha256"] != first["content_sha256"]
    assert second["hierarchy_psi"] == 3
    with pytest.raises(DataError, match="does not match the expected"):
        prepare("shapes", tmp_path / "c.json", expect=first["content_sha256"], user=user)
    assert not (tmp_path / "c.json").exists()


def test_images_are_what_the_example_drew(example):
    root, _ = example
    user = UserDataset.from_entry(folder_entry(root, size=24))
    raw = user.read()
    images = raw.train.images.float()
    warm = [i for i, name in enumerate(raw.class_names) if name.endswith("warm")]
    is_warm = torch.isin(raw.train.labels, torch.tensor(warm))
    centre = images[:, :, 10:14, 10:14].mean(dim=(2, 3))  # the shape covers the centre
    # warm shapes are red/orange (red > blue), cool ones blue/green (blue or green > red)
    assert (centre[is_warm, 0] > centre[is_warm, 2]).all()
    assert (centre[~is_warm, 0] < centre[~is_warm, 1:].max(dim=1).values).all()


def test_a_dense_folder_is_prepared_with_its_tasks(tmp_path):
    from auxbench.data.scenes import SCENE_CLASSES, write_scenes

    folder = tmp_path / "rooms"
    write_scenes(folder, 4, 2, 8, 8, seed=0)
    (folder / "tasks.yaml").write_text(
        f"tasks: {{label: {{kind: segmentation, classes: {len(SCENE_CLASSES)}}}, "
        "depth: {kind: regression}}\n"
    )
    user = UserDataset.from_entry({"name": "rooms", "kind": "dense", "path": str(folder)})
    assert [spec.name for spec in user.dense_tasks()] == ["label", "depth"]
    manifest = prepare("rooms", tmp_path / "rooms.json", user=user)
    assert manifest["tasks"] == {
        "label": {"kind": "segmentation", "classes": len(SCENE_CLASSES)},
        "depth": {"kind": "regression", "classes": None, "channels": 1},
    }
    assert manifest["n_train"] == 4 and manifest["n_test"] == 2
    assert manifest["n_files"] == 1 + 6 * 3  # tasks.yaml, image/label/depth per example
    assert "rooms: 4 train and 2 val images of 3×8×8" in user.summary()
    with pytest.raises(ConfigError, match="is a dense dataset"):
        user.read()


def test_an_npz_entry_loads_with_its_hierarchy(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "arrays.npz"
    labels = np.repeat(np.arange(6), 5)
    np.savez(
        path,
        images=rng.integers(0, 256, (30, 12, 12, 3), dtype=np.uint8),
        labels=labels,
        class_names=np.array(["a1", "a2", "a3", "b1", "b2", "c1"]),
    )
    hierarchy = tmp_path / "h.csv"
    hierarchy.write_text("class,coarse\na1,a\na2,a\na3,a\nb1,b\nb2,b\nc1,c\n")
    entry = {"name": "arr", "kind": "npz", "path": str(path), "hierarchy_csv": str(hierarchy)}
    user = UserDataset.from_entry({**entry, "primary": "coarse"})
    dataset = load("arr", val_fraction=0.2, user=user)
    assert dataset.class_names == ("a", "b", "c") and dataset.num_aux_classes == 6
    assert dataset.hierarchy_psi == 3  # a has three classes
    assert len(dataset.train) + len(dataset.val) == 24 and len(dataset.test) == 6  # 20 % held out
    assert user.files() == sorted([path, hierarchy])
