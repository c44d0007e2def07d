"""A user's own dense dataset (``read_dense_folder``): tasks declared in ``tasks.yaml``, read from
per-task folders of ``.npy`` files in the NYUv2 layout, on generated files; each bad input's
one-line message."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from auxbench.data.dataset import DataError
from auxbench.data.dense import read_dense_folder, read_tasks

H, W = 4, 6
TASKS = {
    "semantic": {"kind": "segmentation", "classes": 3, "ignore": 255},
    "height": {"kind": "depth"},
    "disp": {"kind": "disparity"},
    "normals": {"kind": "normal"},
}
COUNTS = {"train": 3, "val": 2}


def example(task: str, i: int) -> np.ndarray:
    """Example i's array for ``task`` (a pattern that identifies it)."""
    if task == "image":
        return np.full((H, W, 3), (i + 1) / 10, dtype=np.float32)
    if task == "semantic":
        labels = (np.arange(H * W).reshape(H, W) + i) % 3
        labels[0, 0] = 255
        return labels.astype(np.uint8)
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
