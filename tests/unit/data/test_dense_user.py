"""A user's own dense dataset (``read_dense_folder``): tasks declared in ``tasks.yaml``, read from
per-task folders of ``.npy`` files in the NYUv2 layout (every kind, regression maps of 1 and 3
channels with NaN-marked invalid pixels among them), on generated files; each bad input's
one-line message."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from auxbench.data.dataset import DataError
from auxbench.data.dense import DenseTaskSpec, read_dense_folder, read_tasks

H, W = 4, 6
TASKS = {
    "semantic": {"kind": "segmentation", "classes": 3, "ignore": 255},
    "height": {"kind": "depth"},
    "disp": {"kind": "disparity"},
    "normals": {"kind": "normal"},
}
COUNTS = {"train": 3, "val": 2}
REGRESSION_TASKS = {
    "semantic": {"kind": "segmentation", "classes": 3, "ignore": 255},
    "heat": {"kind": "regression"},  # 1 channel, saved as (H, W)
    "albedo": {"kind": "regression", "channels": 3},
}


def heat(i: int) -> np.ndarray:
    """A 1-channel regression map (H, W) of negative and positive values, pixel (2, 3) NaN."""
    values = np.arange(H * W, dtype=np.float64).reshape(H, W) * 0.5 - 3.0 + i
    values[2, 3] = np.nan
    return values


def albedo(i: int) -> np.ndarray:
    """A 3-channel regression map (H, W, 3); only channel 1 of pixel (1, 2) is NaN."""
    values = np.stack(
        [np.full((H, W), 0.1 * i), np.arange(H * W).reshape(H, W) / 7, np.full((H, W), -2.5)],
        axis=-1,
    ).astype(np.float32)
    values[1, 2, 1] = np.nan
    return values


def example(task: str, i: int) -> np.ndarray:
    """Example i's array for ``task`` (a pattern that identifies it)."""
    if task == "image":
        return np.full((H, W, 3), (i + 1) / 10, dtype=np.float32)
    if task == "semantic":
        labels = (np.arange(H * W).reshape(H, W) + i) % 3
        labels[0, 0] = 255
        return labels.astype(np.uint8)
    if task == "heat":
        return heat(i)
    if task == "albedo":
        return albedo(i)
    if task in ("height", "disp"):
        values = np.full((H, W, 1), 1.0 + i, dtype=np.float32)
        values[1, 1] = 0.0
        return values
    normal = np.zeros((H, W, 3), dtype=np.float32)
    normal[..., 2] = 1.0
    return normal


def write_dataset(root: Path, tasks=TASKS, counts=COUNTS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tasks.yaml").write_text(yaml.safe_dump({"tasks": tasks}, sort_keys=False))
    for split, count in counts.items():
        for task in ("image", *tasks):
            folder = root / split / task
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                np.save(folder / f"{i}.npy", example(task, i))
    return root


def test_reads_the_declared_tasks_in_their_conventions(tmp_path):
    data = read_dense_folder(write_dataset(tmp_path / "mine"), name="mine")
    assert data.name == "mine"
    assert [(t.name, t.kind, t.classes) for t in data.tasks] == [
        ("semantic", "segmentation", 3),
        ("height", "depth", None),
        ("disp", "disparity", None),
        ("normals", "normal", None),
    ]
    assert len(data.train) == 3 and len(data.test) == 2  # val is the test split
    assert data.train.images.shape == (3, 3, H, W)
    assert data.train.images[2, 0, 0, 0].item() == pytest.approx(0.3)
    semantic = data.train.targets["semantic"]
    assert semantic.shape == (3, H, W) and semantic[0, 0, 0].item() == -1  # ignore 255 → −1
    assert semantic[1, 0, 1].item() == (1 + 1) % 3
    height, disp = data.test.targets["height"], data.test.targets["disp"]
    assert height.shape == (2, 1, H, W) and height[1, 0, 0, 0].item() == 2.0
    assert height[1, 0, 1, 1].item() == 0.0  # depth: 0 stays invalid
    assert disp[1, 0, 1, 1].item() == -1.0  # disparity: 0 → −1
    assert data.train.targets["normals"].shape == (3, 3, H, W)


def test_tasks_without_ignore_keep_minus_one(tmp_path):
    tasks = {"seg": {"kind": "segmentation", "classes": 2}}
    specs, ignores = read_tasks(write_dataset(tmp_path / "d", tasks=tasks) / "tasks.yaml")
    assert [spec.name for spec in specs] == ["seg"] and ignores == {"seg": -1}


def test_regression_maps_of_one_and_three_channels_keep_their_values_and_nan(tmp_path):
    data = read_dense_folder(write_dataset(tmp_path / "r", tasks=REGRESSION_TASKS))
    assert [(t.name, t.kind, t.classes, t.channels) for t in data.tasks] == [
        ("semantic", "segmentation", 3, None),
        ("heat", "regression", None, 1),  # channels default to 1
        ("albedo", "regression", None, 3),
    ]
    for split, count in (("train", 3), ("test", 2)):
        targets = getattr(data, split).targets
        assert targets["heat"].shape == (count, 1, H, W) and targets["heat"].dtype == torch.float32
        assert targets["albedo"].shape == (count, 3, H, W)
        assert targets["albedo"].dtype == torch.float32
    for i in range(3):
        expected = torch.from_numpy(heat(i)).float()
        stored = data.train.targets["heat"][i, 0]
        assert torch.equal(stored.isnan(), expected.isnan()) and stored.isnan().sum() == 1
        assert torch.equal(stored.nan_to_num(), expected.nan_to_num())  # values as written
        stored = data.train.targets["albedo"][i]
        # a NaN in one channel makes the pixel invalid: NaN in every channel
        assert stored[:, 1, 2].isnan().all() and stored.isnan().sum() == 3
        expected = torch.from_numpy(albedo(i)).permute(2, 0, 1)
        valid = ~stored.isnan()
        assert torch.equal(stored[valid], expected[valid])
    assert data.train.targets["heat"][0, 0, 0, 0].item() == -3.0
    assert data.test.targets["albedo"][1, 2, 0, 0].item() == -2.5


def test_a_regression_spec_has_one_channel_by_default_and_only_regression_has_channels():
    assert DenseTaskSpec("heat", "regression").channels == 1
    assert DenseTaskSpec("albedo", "regression", channels=3).channels == 3
    assert DenseTaskSpec("depth", "depth").channels is None
    with pytest.raises(ValueError, match="regression task 'heat' needs channels >= 1"):
        DenseTaskSpec("heat", "regression", channels=0)
    with pytest.raises(ValueError, match="channels must be an integer"):
        DenseTaskSpec("heat", "regression", channels=True)
    with pytest.raises(ValueError, match="depth task 'depth' takes no channels"):
        DenseTaskSpec("depth", "depth", channels=1)
    with pytest.raises(ValueError, match="regression task 'heat' takes no classes"):
        DenseTaskSpec("heat", "regression", 3)


def test_a_one_channel_regression_map_may_be_saved_with_its_channel(tmp_path):
    root = write_dataset(tmp_path / "r", tasks=REGRESSION_TASKS)
    np.save(root / "val" / "heat" / "0.npy", heat(0)[..., None].astype(np.float16))  # (H, W, 1)
    np.save(root / "val" / "heat" / "1.npy", np.arange(H * W).reshape(H, W))  # integers
    data = read_dense_folder(root)
    stored, expected = data.test.targets["heat"][0, 0], torch.from_numpy(heat(0)).float()
    assert torch.equal(stored.nan_to_num(), expected.nan_to_num())  # half holds them exactly
    assert stored.isnan().sum() == 1 and stored.dtype == torch.float32
    assert torch.equal(
        data.test.targets["heat"][1, 0], torch.arange(H * W, dtype=torch.float32).view(H, W)
    )


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ({}, "expected a non-empty mapping under `tasks:`"),
        ({"semantic": {"kind": "edges"}}, "tasks.semantic.kind: 'edges' is not one of"),
        ({"semantic": {"kind": "segmentation"}}, "tasks.semantic.classes: expected an integer"),
        (
            {"semantic": {"kind": "segmentation", "classes": 3, "ignore": 1}},
            "tasks.semantic.ignore: 1 is one of the 3 class ids",
        ),
        ({"depth": {"kind": "depth", "classes": 3}}, "unknown key 'classes' for a depth task"),
        ({"image": {"kind": "depth"}}, "task name 'image' must be a folder name"),
        ({"depth": "depth"}, "tasks.depth: expected a mapping"),
        (
            {"heat": {"kind": "regression", "channels": 0}},
            "tasks.heat.channels: expected an integer >= 1, got 0",
        ),
        (
            {"heat": {"kind": "regression", "channels": 2.5}},
            "tasks.heat.channels: expected an integer >= 1, got 2.5",
        ),
        (
            {"heat": {"kind": "regression", "classes": 3}},
            "unknown key 'classes' for a regression task; it takes channels, kind",
        ),
        ({"depth": {"kind": "depth", "channels": 1}}, "unknown key 'channels' for a depth task"),
    ],
)
def test_bad_task_declarations_name_the_file_and_key(tmp_path, tasks, message):
    path = tmp_path / "tasks.yaml"
    path.write_text(yaml.safe_dump({"tasks": tasks}))
    with pytest.raises(DataError, match=message) as error:
        read_tasks(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_bad_files_name_the_file(tmp_path):
    root = write_dataset(tmp_path / "d")
    with pytest.raises(DataError, match="tasks.yaml: not found"):
        read_dense_folder(tmp_path)  # a folder without tasks.yaml
    np.save(root / "train" / "semantic" / "1.npy", np.full((H, W), 7, dtype=np.uint8))
    with pytest.raises(DataError, match=r"semantic/1.npy: label 7 out of range; expected 0..2"):
        read_dense_folder(root)
    np.save(root / "train" / "semantic" / "1.npy", example("semantic", 1))
    np.save(root / "val" / "height" / "1.npy", np.zeros((H + 1, W, 1), dtype=np.float32))
    with pytest.raises(DataError, match=r"height/1.npy: shape \(5, 6, 1\) does not match"):
        read_dense_folder(root)
    (root / "val" / "height" / "1.npy").unlink()
    with pytest.raises(DataError, match=r"val/height: missing 1.npy"):
        read_dense_folder(root)
    with pytest.raises(DataError, match="dense dataset folder not found"):
        read_dense_folder(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("file", "array", "message"),
    [
        (
            "train/albedo/1.npy",
            np.zeros((H, W, 2), dtype=np.float32),
            r"albedo/1.npy: regression target has shape \(4, 6, 2\), expected \(H, W, 3\) for c",
        ),
        (
            "train/albedo/1.npy",
            np.zeros((H, W), dtype=np.float32),
            r"albedo/1.npy: regression target has shape \(4, 6\), expected \(H, W, 3\)",
        ),
        (
            "val/heat/1.npy",
            np.zeros((H, W, 2), dtype=np.float32),
            r"heat/1.npy: .* shape \(4, 6, 2\), expected \(H, W, 1\) or \(H, W\) for channels: 1",
        ),
        (
            "val/heat/1.npy",
            np.zeros((H + 1, W), dtype=np.float32),
            r"heat/1.npy: shape \(5, 6\) does not match the 4×6 \(H×W\)",
        ),
        (
            "train/albedo/0.npy",
            np.zeros((H, W - 1, 3), dtype=np.float32),
            r"albedo/0.npy: shape \(4, 5, 3\) does not match the 4×6 \(H×W\)",
        ),
        (
            "train/heat/2.npy",
            np.where(np.eye(H, W) > 0, -np.inf, 1.0),
            r"heat/2.npy: regression target holds ±inf \(4 values\); expected finite values",
        ),
        (
            "train/heat/2.npy",
            np.full((H, W), 1e300),
            r"heat/2.npy: regression target holds values beyond float32's range",
        ),
        (
            "val/albedo/0.npy",
            np.full((H, W, 3), "x"),
            r"albedo/0.npy: .* should be real numbers \(H, W, 3\).*dtype <U1; save it as float32",
        ),
        (
            "val/heat/0.npy",
            np.ones((H, W), dtype=bool),
            r"heat/0.npy: regression target should be real numbers .*found dtype bool",
        ),
    ],
    ids=[
        "channels",
        "channels-missing",
        "channels-one",
        "height",
        "width",
        "inf",
        "float32-overflow",
        "strings",
        "bool",
    ],
)
def test_bad_regression_files_name_the_file(tmp_path, file, array, message):
    root = write_dataset(tmp_path / "r", tasks=REGRESSION_TASKS)
    np.save(root / file, array)
    with pytest.raises(DataError, match=message) as error:
        read_dense_folder(root)
    assert str(root / file) in str(error.value) and "\n" not in str(error.value)
