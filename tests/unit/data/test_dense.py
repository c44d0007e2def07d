"""Tests of auxbench.data.dense: tiny files in the real layouts (npy, png, tif) checked by hand."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from auxbench.data.dataset import DataError
from auxbench.data.dense import (
    DenseDataset,
    DenseSplit,
    DenseTaskSpec,
    part_classes,
    read_cityscapes,
    read_cityscapes_npy,
    read_nyuv2,
    train_ids,
)

H, W = 4, 6
COUNTS = {"train": 3, "val": 2}


def raises(match: str):
    """``pytest.raises(DataError)`` whose message contains ``match`` literally."""
    return pytest.raises(DataError, match=re.escape(match))


def one_line(info: pytest.ExceptionInfo) -> str:
    message = str(info.value)
    assert "\n" not in message
    return message


# --- NYUv2 ------------------------------------------------------------------------------------


def nyu_image(split: str, i: int) -> np.ndarray:
    """(H, W, 3) floats: pixel (y, x) channel c holds (100 c + 10 y + x) / 1000, + 0.5 in val,
    + 0.001 i."""
    c, y, x = np.meshgrid(np.arange(3), np.arange(H), np.arange(W), indexing="ij")
    values = (100 * c + 10 * y + x) / 1000 + 0.001 * i + (0.5 if split == "val" else 0.0)
    return values.transpose(1, 2, 0)


def nyu_label(i: int) -> np.ndarray:
    """(H, W) float labels: (y + x + i) % 13, with −1 at (0, 0)."""
    y, x = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    label = ((y + x + i) % 13).astype(np.float64)
    label[0, 0] = -1
    return label


def nyu_depth(i: int) -> np.ndarray:
    depth = np.full((H, W, 1), 2.0 + i, dtype=np.float32)
    depth[0, 0, 0] = 0.0
    depth[2, 5, 0] = 3.5
    return depth


def nyu_normal() -> np.ndarray:
    normal = np.zeros((H, W, 3), dtype=np.float32)
    normal[..., :] = (0.6, 0.0, 0.8)
    normal[1, 1] = 0.0
    return normal


def write_nyuv2(root: Path, counts: dict[str, int] = COUNTS) -> Path:
    for split, count in counts.items():
        for folder in ("image", "label", "depth", "normal"):
            (root / split / folder).mkdir(parents=True)
        for i in range(count):
            np.save(root / split / "image" / f"{i}.npy", nyu_image(split, i))
            np.save(root / split / "label" / f"{i}.npy", nyu_label(i))
            np.save(root / split / "depth" / f"{i}.npy", nyu_depth(i))
            np.save(root / split / "normal" / f"{i}.npy", nyu_normal())
    return root


def test_nyuv2_shapes_dtypes_and_tasks(tmp_path):
    data = read_nyuv2(write_nyuv2(tmp_path / "nyuv2"))
    assert isinstance(data, DenseDataset)
    assert data.name == "nyuv2"
    assert data.tasks == (
        DenseTaskSpec("semantic", "segmentation", 13),
        DenseTaskSpec("depth", "depth"),
        DenseTaskSpec("normal", "normal"),
    )
    assert str(tmp_path / "nyuv2") in data.source
    assert len(data.train) == 3 and len(data.test) == 2
    train = data.train
    assert train.images.shape == (3, 3, H, W) and train.images.dtype == torch.float32
    assert set(train.targets) == {"semantic", "depth", "normal"}
    assert train.targets["semantic"].shape == (3, H, W)
    assert train.targets["semantic"].dtype == torch.int64
    assert train.targets["depth"].shape == (3, 1, H, W)
    assert train.targets["depth"].dtype == torch.float32
    assert train.targets["normal"].shape == (3, 3, H, W)
    assert train.targets["normal"].dtype == torch.float32


def test_nyuv2_values_and_sentinels(tmp_path):
    data = read_nyuv2(write_nyuv2(tmp_path))
    images, targets = data.train.images, data.train.targets
    # channel 2, row 1, column 3 of train image 1: (200 + 10 + 3) / 1000 + 0.001
    assert images[1, 2, 1, 3].item() == pytest.approx(0.214)
    assert images[0, 0, 3, 5].item() == pytest.approx(0.035)
    semantic = targets["semantic"]
    assert semantic[0, 0, 0].item() == -1  # ignored pixel kept
    assert semantic[0, 1, 2].item() == 3
    assert semantic[2, 3, 5].item() == 10  # (3 + 5 + 2) % 13
    depth = targets["depth"]
    assert depth[0, 0, 0, 0].item() == 0.0  # invalid depth kept
    assert depth[0, 0, 2, 5].item() == 3.5
    assert depth[1, 0, 3, 3].item() == 3.0
    normal = targets["normal"]
    assert normal[0, :, 1, 1].tolist() == [0.0, 0.0, 0.0]  # invalid normal kept
    assert normal[0, :, 0, 0].tolist() == pytest.approx([0.6, 0.0, 0.8])


def test_nyuv2_val_folder_is_the_test_split(tmp_path):
    data = read_nyuv2(write_nyuv2(tmp_path))
    # val images are offset by 0.5: channel 0, pixel (0, 0) of val image 1 is 0.5 + 0.001
    assert data.test.images[1, 0, 0, 0].item() == pytest.approx(0.501)
    assert data.train.images[1, 0, 0, 0].item() == pytest.approx(0.001)


def test_nyuv2_integer_labels_name_and_classes(tmp_path):
    root = write_nyuv2(tmp_path)
    for split, count in COUNTS.items():
        for i in range(count):
            np.save(root / split / "label" / f"{i}.npy", nyu_label(i).astype(np.int32) % 3)
    data = read_nyuv2(root, classes=3, name="scenes")
    assert data.name == "scenes"
    assert data.tasks[0] == DenseTaskSpec("semantic", "segmentation", 3)
    assert data.train.targets["semantic"][0, 0, 0].item() == 2  # -1 % 3 in the file


@pytest.mark.parametrize("value", [13, -2])
def test_nyuv2_label_out_of_range(tmp_path, value):
    root = write_nyuv2(tmp_path)
    label = nyu_label(1)
    label[2, 2] = value
    path = root / "train" / "label" / "1.npy"
    np.save(path, label)
    with raises(f"{path}: label {value} out of range") as info:
        read_nyuv2(root)
    assert "0..12 or -1" in one_line(info)


def test_nyuv2_labels_above_classes(tmp_path):
    root = write_nyuv2(tmp_path)
    with raises(f"{root / 'train' / 'label' / '0.npy'}: label 3 out of range"):
        read_nyuv2(root, classes=3)


def test_nyuv2_fractional_label(tmp_path):
    root = write_nyuv2(tmp_path)
    label = nyu_label(0)
    label[1, 1] = 2.5
    path = root / "val" / "label" / "0.npy"
    np.save(path, label)
    with raises(f"{path}: labels should be whole class ids, found 2.5"):
        read_nyuv2(root)


def test_nyuv2_missing_directory(tmp_path):
    with raises(f"{tmp_path / 'absent'}: dataset folder not found") as info:
        read_nyuv2(tmp_path / "absent")
    assert "{train,val}/{image,label,depth,normal}/<i>.npy" in one_line(info)


def test_nyuv2_missing_split(tmp_path):
    root = write_nyuv2(tmp_path, {"train": 2})
    with raises(f"{root / 'val'}: split folder not found"):
        read_nyuv2(root)


def test_nyuv2_missing_task_folder(tmp_path):
    root = write_nyuv2(tmp_path)
    for path in (root / "train" / "normal").iterdir():
        path.unlink()
    (root / "train" / "normal").rmdir()
    with raises(f"{root / 'train' / 'normal'}: task folder not found"):
        read_nyuv2(root)


def test_nyuv2_gap_names_folder_and_index(tmp_path):
    root = write_nyuv2(tmp_path)
    (root / "train" / "label" / "1.npy").unlink()
    with raises(f"{root / 'train' / 'label'}: missing 1.npy") as info:
        read_nyuv2(root)
    assert "(3 files, found 2)" in one_line(info)


def test_nyuv2_different_count_names_folder_and_index(tmp_path):
    root = write_nyuv2(tmp_path)
    np.save(root / "val" / "image" / "2.npy", nyu_image("val", 2))
    with raises(f"{root / 'val' / 'label'}: missing 2.npy"):
        read_nyuv2(root)


def test_nyuv2_empty_split(tmp_path):
    root = write_nyuv2(tmp_path, {"train": 2, "val": 0})
    with raises(f"{root / 'val'}: no examples"):
        read_nyuv2(root)


def test_nyuv2_bad_file_name(tmp_path):
    root = write_nyuv2(tmp_path)
    np.save(root / "train" / "depth" / "01.npy", nyu_depth(1))
    with raises(f"{root / 'train' / 'depth' / '01.npy'}: unexpected file name"):
        read_nyuv2(root)


def test_nyuv2_corrupt_file(tmp_path):
    root = write_nyuv2(tmp_path)
    path = root / "train" / "depth" / "2.npy"
    path.write_bytes(b"not an array")
    with raises(f"{path}: not a readable .npy file") as info:
        read_nyuv2(root)
    one_line(info)


def test_nyuv2_truncated_file(tmp_path):
    root = write_nyuv2(tmp_path)
    path = root / "val" / "normal" / "1.npy"
    path.write_bytes(path.read_bytes()[:-20])
    with raises(f"{path}: not a readable .npy file"):
        read_nyuv2(root)


def test_nyuv2_pickled_array_is_refused(tmp_path):
    root = write_nyuv2(tmp_path)
    path = root / "train" / "image" / "0.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with raises(f"{path}: not a readable .npy file"):
        read_nyuv2(root)


def test_nyuv2_depth_without_channel(tmp_path):
    root = write_nyuv2(tmp_path)
    path = root / "train" / "depth" / "0.npy"
    np.save(path, nyu_depth(0)[..., 0])
    with raises(f"{path}: depth has shape (4, 6), expected (H, W, 1)"):
        read_nyuv2(root)


def test_nyuv2_size_mismatch_names_file_and_shapes(tmp_path):
    root = write_nyuv2(tmp_path)
    path = root / "val" / "image" / "1.npy"
    np.save(path, np.zeros((H + 1, W, 3)))
    with raises(f"{path}: shape (5, 6, 3) does not match the 4×6 (H×W) of") as info:
        read_nyuv2(root)
    assert str(root / "train" / "image" / "0.npy") in one_line(info)


def test_nyuv2_label_size_mismatch(tmp_path):
    root = write_nyuv2(tmp_path)
    path = root / "train" / "label" / "2.npy"
    np.save(path, np.zeros((H, W + 2)))
    with raises(f"{path}: shape (4, 8) does not match the 4×6 (H×W)"):
        read_nyuv2(root)


def test_nyuv2_uint8_image(tmp_path):
    root = write_nyuv2(tmp_path)
    path = root / "train" / "image" / "1.npy"
    np.save(path, np.zeros((H, W, 3), dtype=np.uint8))
    with raises(f"{path}: image should be floats in [0, 1] (H, W, 3), found dtype uint8"):
        read_nyuv2(root)


def test_nyuv2_image_out_of_range(tmp_path):
    root = write_nyuv2(tmp_path)
    path = root / "train" / "image" / "1.npy"
    np.save(path, nyu_image("train", 1) * 255)
    with raises(f"{path}: image values span [0.255, 60.18], expected [0, 1]"):
        read_nyuv2(root)


def test_nyuv2_nan_and_negative_depth(tmp_path):
    root = write_nyuv2(tmp_path)
    path = root / "train" / "depth" / "1.npy"
    depth = nyu_depth(1)
    depth[1, 1, 0] = np.nan
    np.save(path, depth)
    with raises(f"{path}: depth holds NaN or infinite values"):
        read_nyuv2(root)
    depth[1, 1, 0] = -0.5
    np.save(path, depth)
    with raises(f"{path}: depth holds -0.5; expected values >= 0"):
        read_nyuv2(root)


def test_nyuv2_normal_out_of_range(tmp_path):
    root = write_nyuv2(tmp_path)
    path = root / "val" / "normal" / "0.npy"
    np.save(path, nyu_normal() * 2)
    with raises(f"{path}: normals values span [0, 1.6], expected [-1, 1]"):
        read_nyuv2(root)


def test_nyuv2_bad_classes_argument(tmp_path):
    with pytest.raises(ValueError, match="classes"):
        read_nyuv2(write_nyuv2(tmp_path), classes=0)


# --- the dataclasses --------------------------------------------------------------------------


def test_dense_split_len_subset_to():
    images = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 2, 2).contiguous()
    split = DenseSplit(images, {"semantic": torch.arange(4).view(4, 1, 1).expand(4, 2, 2)})
    assert len(split) == 4
    part = split.subset(torch.tensor([3, 1]))
    assert len(part) == 2
    assert part.images[:, 0, 0, 0].tolist() == [3.0, 1.0]
    assert part.targets["semantic"][:, 1, 1].tolist() == [3, 1]
    moved = split.to("cpu")
    assert moved.images.device.type == "cpu" and set(moved.targets) == {"semantic"}


def test_dense_split_counts_must_agree():
    with pytest.raises(ValueError, match="'depth' has 2 entries for 3 images"):
        DenseSplit(torch.zeros(3, 3, 2, 2), {"depth": torch.zeros(2, 1, 2, 2)})


def test_dense_task_spec_checks():
    with pytest.raises(ValueError, match="unknown kind"):
        DenseTaskSpec("x", "edges")
    with pytest.raises(ValueError, match="needs classes"):
        DenseTaskSpec("semantic", "segmentation")
    with pytest.raises(ValueError, match="takes no classes"):
        DenseTaskSpec("depth", "depth", 3)


# --- CityScapes png / tif ---------------------------------------------------------------------

# labelIds at chosen pixels, with their trainIds
LABEL_IDS = {(0, 0): (7, 0), (0, 1): (26, 13), (0, 2): (33, 18), (0, 3): (0, -1), (0, 4): (5, -1)}
LABEL_IDS |= {(0, 5): (24, 11), (1, 0): (255, -1), (1, 1): (8, 1), (1, 2): (23, 10)}
# panoptic-parts ids at chosen pixels, with their part classes
PART_IDS = {
    (0, 0): (24 * 10**5 + 1 * 100 + 2, 2),  # person, instance 1, head
    (0, 1): (26 * 10**5 + 3 * 100 + 5, 9),  # car, instance 3, chassis
    (0, 2): (7, 0),  # road
    (0, 3): (0, -1),  # unlabelled
    (0, 4): (26001, -1),  # car, instance 1, no part id
    (0, 5): (24, -1),  # person without instance or part
    (1, 0): (25 * 10**5 + 12 * 100 + 4, 4),  # rider, legs
    (1, 1): (28 * 10**5 + 1 * 100 + 1, 5),  # bus, windows
    (1, 2): (24 * 10**5 + 1 * 100 + 0, -1),  # person, part id 0
    (1, 3): (24 * 10**5 + 1 * 100 + 9, -1),  # person, no such part
    (1, 4): (11 * 10**5 + 2 * 100 + 3, 0),  # building with a part id: background
    (1, 5): (27 * 10**5 + 2 * 100 + 2, 6),  # truck, wheels
    (2, 0): (26 * 10**5 + 3, 7),  # car, instance 0, lights
    (2, 1): (26 * 10**5 + 4, 8),  # car, license plate
    (2, 2): (25 * 10**5 + 1, 1),  # rider, torso
    (2, 3): (24 * 10**5 + 3, 3),  # person, arms
    (2, 4): (21000, 0),  # vegetation with instance 0
}
# stored disparity values at chosen pixels, with the disparity read
DISPARITIES = {(0, 0): (0, -1.0), (0, 1): (1025, 1.0), (0, 2): (1, 0.0), (0, 3): (2049, 2.0)}
DISPARITIES |= {(0, 4): (65535, 65534 / 1024)}


def city_maps(i: int) -> dict[str, np.ndarray]:
    """The four maps of CityScapes example i: RGB (channel 2 constant), labelIds, parts, disparity."""
    y, x = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    rgb = np.stack([10 * y + x + i, 40 * y, np.full((H, W), 200)], axis=-1).astype(np.uint8)
    seg = np.full((H, W), 21, dtype=np.uint8)  # vegetation -> 8
    for (r, c), (label_id, _) in LABEL_IDS.items():
        seg[r, c] = label_id
    part = np.full((H, W), 7, dtype=np.int32)
    for (r, c), (panoptic, _) in PART_IDS.items():
        part[r, c] = panoptic
    depth = np.full((H, W), 513, dtype=np.uint16)  # 0.5
    for (r, c), (stored, _) in DISPARITIES.items():
        depth[r, c] = stored
    return {"image": rgb, "seg": seg, "part_seg": part, "depth": depth}


def write_cityscapes(root: Path, counts: dict[str, int] = COUNTS) -> Path:
    for split, count in counts.items():
        for folder in ("image", "seg", "part_seg", "depth"):
            (root / split / folder).mkdir(parents=True)
        for i in range(count):
            maps = city_maps(i + (10 if split == "val" else 0))
            Image.fromarray(maps["image"]).save(root / split / "image" / f"{i}.png")
            Image.fromarray(maps["seg"]).save(root / split / "seg" / f"{i}.png")
            Image.fromarray(maps["part_seg"]).save(root / split / "part_seg" / f"{i}.tif")
            Image.fromarray(maps["depth"]).save(root / split / "depth" / f"{i}.png")
    return root


def test_fixture_formats(tmp_path):
    """The fixture files decode in the modes of the real files."""
    root = write_cityscapes(tmp_path, {"train": 1})
    modes = {}
    for name in ("image/0.png", "seg/0.png", "part_seg/0.tif", "depth/0.png"):
        with Image.open(root / "train" / name) as image:
            modes[name] = image.mode
    assert modes == {
        "image/0.png": "RGB",
        "seg/0.png": "L",
        "part_seg/0.tif": "I",
        "depth/0.png": "I;16",
    }


def test_cityscapes_shapes_tasks_and_values(tmp_path):
    data = read_cityscapes(write_cityscapes(tmp_path / "cityscapes"), size=(H, W))
    assert data.name == "cityscapes"
    assert data.tasks == (
        DenseTaskSpec("semantic", "segmentation", 19),
        DenseTaskSpec("part", "segmentation", 10),
        DenseTaskSpec("disparity", "disparity"),
    )
    assert str(tmp_path / "cityscapes") in data.source
    assert len(data.train) == 3 and len(data.test) == 2
    train = data.train
    assert train.images.shape == (3, 3, H, W) and train.images.dtype == torch.float32
    assert train.targets["semantic"].shape == (3, H, W)
    assert train.targets["semantic"].dtype == torch.int64
    assert train.targets["part"].shape == (3, H, W)
    assert train.targets["part"].dtype == torch.int64
    assert train.targets["disparity"].shape == (3, 1, H, W)
    assert train.targets["disparity"].dtype == torch.float32
    # image 1, channel 0 at (2, 3) is 10·2 + 3 + 1 = 24; channel 1 is 40·2 = 80
    assert train.images[1, 0, 2, 3].item() == pytest.approx(24 / 255)
    assert train.images[1, 1, 2, 3].item() == pytest.approx(80 / 255)
    # the val folder is the test split: its image 0 was written as example 10
    assert data.test.images[0, 0, 0, 0].item() == pytest.approx(10 / 255)


def test_cityscapes_label_ids_to_train_ids(tmp_path):
    semantic = read_cityscapes(write_cityscapes(tmp_path), size=(H, W)).train.targets["semantic"]
    for (r, c), (_, train_id) in LABEL_IDS.items():
        assert semantic[2, r, c].item() == train_id, (r, c)
    assert semantic[0, 3, 3].item() == 8  # vegetation everywhere else


def test_cityscapes_part_decoding(tmp_path):
    part = read_cityscapes(write_cityscapes(tmp_path), size=(H, W)).test.targets["part"]
    for (r, c), (_, expected) in PART_IDS.items():
        assert part[1, r, c].item() == expected, (r, c)
    assert part[1, 3, 5].item() == 0  # road elsewhere


def test_cityscapes_disparity(tmp_path):
    disparity = read_cityscapes(write_cityscapes(tmp_path), size=(H, W)).train.targets["disparity"]
    for (r, c), (_, expected) in DISPARITIES.items():
        assert disparity[0, 0, r, c].item() == pytest.approx(expected), (r, c)
    assert disparity[0, 0, 3, 3].item() == 0.5  # (513 − 1) / 1024


def test_train_ids_and_part_classes_directly():
    assert train_ids(np.array([7, 8, 11, 12, 13, 17, 19, 20, 21, 22])).tolist() == list(range(10))
    assert train_ids(np.array([23, 24, 25, 26, 27, 28, 31, 32, 33])).tolist() == list(range(10, 19))
    assert (
        train_ids(np.array([0, 1, 6, 9, 10, 14, 15, 16, 18, 29, 30, 34, 255, -1, 300])).tolist()
        == [-1] * 15
    )
    ids = np.array([[panoptic for panoptic, _ in PART_IDS.values()]])
    assert part_classes(ids).tolist() == [[part for _, part in PART_IDS.values()]]


def test_cityscapes_upsampling_nearest_and_bilinear(tmp_path):
    root = write_cityscapes(tmp_path, {"train": 1, "val": 1})
    data = read_cityscapes(root, size=(2 * H, 2 * W))
    maps = city_maps(0)
    semantic = data.train.targets["semantic"][0]
    assert semantic.shape == (2 * H, 2 * W)
    # nearest: each source pixel becomes a 2×2 block
    assert semantic[0:2, 2:4].tolist() == [[13, 13], [13, 13]]  # labelId 26 at (0, 1)
    assert semantic[2:4, 0:2].tolist() == [[-1, -1], [-1, -1]]  # 255 at (1, 0)
    allowed = {train_id for _, train_id in LABEL_IDS.values()} | {8}
    assert set(semantic.unique().tolist()) <= allowed
    part = data.train.targets["part"][0]
    assert set(part.unique().tolist()) <= {p for _, p in PART_IDS.values()} | {0}
    disparity = data.train.targets["disparity"][0, 0]
    assert disparity[1, 3].item() == 1.0  # 1025 at (0, 1)
    assert set(disparity.unique().tolist()) <= {-1.0, 0.0, 0.5, 1.0, 2.0, 65534 / 1024}
    images = data.train.images
    assert images.shape == (1, 3, 2 * H, 2 * W)
    assert images.min() >= 0 and images.max() <= 1
    assert torch.all(images[0, 2] == torch.tensor(200 / 255))  # a constant channel stays
    # bilinear: values between the source values (channel 1 is 40·y; between rows 0 and 1)
    assert 0 < images[0, 1, 1, 0].item() < 40 / 255
    assert not np.isin(np.round(images[0, 1].numpy() * 255), maps["image"][..., 1]).all()


def test_cityscapes_downsampling_picks_pixel_centres(tmp_path):
    data = read_cityscapes(write_cityscapes(tmp_path, {"train": 1, "val": 1}), size=(2, 3))
    # 4×6 -> 2×3: rows 1 and 3, columns 1, 3 and 5
    semantic = data.train.targets["semantic"][0]
    assert semantic.tolist() == [[1, 8, 8], [8, 8, 8]]  # (1, 1) is labelId 8 -> 1
    part = data.train.targets["part"][0]
    assert part.tolist() == [[5, -1, 6], [0, 0, 0]]  # bus windows, person pid 9, truck wheels
    disparity = data.train.targets["disparity"][0, 0]
    assert disparity.tolist() == [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]


def test_cityscapes_default_size(tmp_path):
    data = read_cityscapes(write_cityscapes(tmp_path, {"train": 1, "val": 1}))
    assert data.train.images.shape == (1, 3, 256, 512)
    assert data.test.targets["part"].shape == (1, 256, 512)
    assert "256×512" in data.source


def test_cityscapes_missing_part_folder(tmp_path):
    root = write_cityscapes(tmp_path)
    for path in (root / "val" / "part_seg").iterdir():
        path.unlink()
    (root / "val" / "part_seg").rmdir()
    with raises(f"{root / 'val' / 'part_seg'}: task folder not found") as info:
        read_cityscapes(root, size=(H, W))
    assert "part_seg/<i>.tif" in one_line(info)


def test_cityscapes_gap(tmp_path):
    root = write_cityscapes(tmp_path)
    (root / "train" / "depth" / "0.png").unlink()
    with raises(f"{root / 'train' / 'depth'}: missing 0.png"):
        read_cityscapes(root, size=(H, W))


def test_cityscapes_grey_image(tmp_path):
    root = write_cityscapes(tmp_path)
    path = root / "train" / "image" / "1.png"
    Image.fromarray(city_maps(1)["seg"]).save(path)
    with raises(f"{path}: image mode 'L', expected an 8-bit RGB png"):
        read_cityscapes(root, size=(H, W))


def test_cityscapes_corrupt_png(tmp_path):
    root = write_cityscapes(tmp_path)
    path = root / "val" / "seg" / "1.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with raises(f"{path}: ") as info:
        read_cityscapes(root, size=(H, W))
    assert "expected a Cityscapes labelIds png" in one_line(info)


def test_cityscapes_size_mismatch(tmp_path):
    root = write_cityscapes(tmp_path)
    path = root / "train" / "seg" / "2.png"
    Image.fromarray(np.zeros((H, W + 1), dtype=np.uint8)).save(path)
    with raises(f"{path}: size 4×7 (H×W) does not match the 4×6 of its image"):
        read_cityscapes(root, size=(H, W))


@pytest.mark.parametrize("value", [10**7, -5])
def test_cityscapes_part_id_out_of_range(tmp_path, value):
    root = write_cityscapes(tmp_path)
    path = root / "train" / "part_seg" / "0.tif"
    ids = city_maps(0)["part_seg"]
    ids[3, 0] = value
    Image.fromarray(ids).save(path)
    with raises(f"{path}: value {value} out of range") as info:
        read_cityscapes(root, size=(H, W))
    assert "0..9999999" in one_line(info)


def test_cityscapes_rgb_disparity(tmp_path):
    root = write_cityscapes(tmp_path)
    path = root / "val" / "depth" / "0.png"
    Image.fromarray(city_maps(0)["image"]).save(path)
    with raises(f"{path}: decoded to uint8 (4, 6, 3), expected a 16-bit disparity png"):
        read_cityscapes(root, size=(H, W))


def test_cityscapes_missing_directory(tmp_path):
    with raises(f"{tmp_path / 'none'}: dataset folder not found"):
        read_cityscapes(tmp_path / "none")


# --- CityScapes npy (LibMTL / Nash-MTL) -------------------------------------------------------


def write_cityscapes_npy(root: Path, labels: tuple[str, ...] = ("label_7", "label_19")) -> Path:
    for split, count in COUNTS.items():
        for folder in ("image", *labels, "depth"):
            (root / split / folder).mkdir(parents=True)
        for i in range(count):
            np.save(root / split / "image" / f"{i}.npy", nyu_image(split, i))
            for folder in labels:
                classes = int(folder.split("_")[1])
                label = np.full((H, W), float(classes - 1))
                label[0, 0] = -1
                label[1, 0] = i % classes
                np.save(root / split / folder / f"{i}.npy", label)
            depth = np.full((H, W, 1), 0.25, dtype=np.float32)
            depth[0, 1, 0] = 0.0
            depth[2, 2, 0] = 0.125
            np.save(root / split / "depth" / f"{i}.npy", depth)
    return root


def test_cityscapes_npy_seven_classes(tmp_path):
    data = read_cityscapes_npy(write_cityscapes_npy(tmp_path / "cs"))
    assert data.name == "cityscapes-7"
    assert data.tasks == (
        DenseTaskSpec("semantic", "segmentation", 7),
        DenseTaskSpec("disparity", "disparity"),
    )
    assert "label_7" in data.source and str(tmp_path / "cs") in data.source
    assert len(data.train) == 3 and len(data.test) == 2
    semantic = data.train.targets["semantic"]
    assert semantic.shape == (3, H, W) and semantic.dtype == torch.int64
    assert semantic[2, 0, 0].item() == -1 and semantic[2, 1, 0].item() == 2
    assert semantic[2, 3, 3].item() == 6
    disparity = data.train.targets["disparity"]
    assert disparity.shape == (3, 1, H, W) and disparity.dtype == torch.float32
    assert disparity[0, 0, 0, 1].item() == -1.0  # 0 (invalid) -> -1
    assert disparity[0, 0, 2, 2].item() == 0.125
    assert disparity[0, 0, 3, 3].item() == 0.25
    assert set(data.train.targets) == {"semantic", "disparity"}
    assert data.test.images[1, 0, 0, 0].item() == pytest.approx(0.501)


def test_cityscapes_npy_nineteen_and_two_classes(tmp_path):
    root = write_cityscapes_npy(tmp_path, ("label_19", "label_2"))
    nineteen = read_cityscapes_npy(root, classes=19)
    assert nineteen.tasks[0].classes == 19 and nineteen.name == "cityscapes-19"
    assert nineteen.train.targets["semantic"][0, 3, 3].item() == 18
    two = read_cityscapes_npy(root, classes=2)
    assert two.train.targets["semantic"][0, 3, 3].item() == 1


def test_cityscapes_npy_missing_label_folder(tmp_path):
    root = write_cityscapes_npy(tmp_path, ("label_7",))
    with raises(f"{root / 'train' / 'label_19'}: task folder not found") as info:
        read_cityscapes_npy(root, classes=19)
    assert "{image,label_19,depth}/<i>.npy" in one_line(info)


def test_cityscapes_npy_label_out_of_range(tmp_path):
    root = write_cityscapes_npy(tmp_path, ("label_7",))
    path = root / "val" / "label_7" / "1.npy"
    np.save(path, np.full((H, W), 7.0))
    with raises(f"{path}: label 7 out of range; expected 0..6 or -1"):
        read_cityscapes_npy(root)


def test_cityscapes_npy_negative_disparity(tmp_path):
    root = write_cityscapes_npy(tmp_path, ("label_7",))
    path = root / "train" / "depth" / "2.npy"
    np.save(path, np.full((H, W, 1), -1.0))
    with raises(f"{path}: depth (disparity) holds -1; expected values >= 0"):
        read_cityscapes_npy(root)


def test_cityscapes_npy_bad_classes():
    with pytest.raises(ValueError, match="classes must be one of 2, 7, 19"):
        read_cityscapes_npy(Path("unused"), classes=5)
