"""Tests of auxbench.data.user on tiny image folders, .npz files and CSV files written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from auxbench.data.dataset import DataError
from auxbench.data.user import describe, read_image_folder, read_npz
from auxbench.foundations.errors import ConfigError


def save(path: Path, pixels: np.ndarray) -> Path:
    """Write uint8 ``pixels`` (H, W) or (H, W, 3) as the image ``path`` (format by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def grey(value: int, height: int = 10, width: int = 14) -> np.ndarray:
    return np.full((height, width, 3), value, dtype=np.uint8)


def make_folder(root: Path, classes: dict[str, int], splits=("train",)) -> dict[str, int]:
    """``classes[name]`` uniform grey images per class and split, each of its own grey level.

    Sizes and formats vary: 10×14 PNG, 9×9 JPEG, 14×10 PNG, 5×7 PNG, ... Returns the grey level of
    every image by its path relative to ``root``.
    """
    shapes = [(10, 14, ".png"), (9, 9, ".jpg"), (14, 10, ".PNG"), (5, 7, ".png")]
    levels = {}
    level = 20
    for split in splits:
        for name, count in classes.items():
            for i in range(count):
                height, width, suffix = shapes[i % len(shapes)]
                relative = f"{split}/{name}/{i:03d}{suffix}"
                save(root / relative, grey(level, height, width))
                levels[relative] = level
                level += 10
    return levels


def message(call, *args, error=DataError, **kwargs) -> str:
    """The message of the ``error`` raised by ``call(*args, **kwargs)``, checked to be one line."""
    with pytest.raises(error) as info:
        call(*args, **kwargs)
    text = str(info.value)
    assert "\n" not in text and text.strip() == text
    return text


def levels_of(images: torch.Tensor) -> list[int]:
    """The grey level of each uniform image (its centre pixel, first channel)."""
    return [int(v) for v in images[:, 0, images.shape[2] // 2, images.shape[3] // 2]]


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- image folders ---------------------------------------------------------------------------


def test_folder_shapes_class_order_and_file_order(tmp_path):
    levels = make_folder(tmp_path, {"zebra": 4, "ant": 4, "Moth": 4}, splits=("train", "test"))
    raw = read_image_folder(tmp_path, 8, name="mine")
    # Python string order: upper case before lower case
    assert raw.class_names == ("Moth", "ant", "zebra")
    assert raw.name == "mine" and raw.aux_class_names is None
    assert raw.crop_padding == 1 and raw.horizontal_flip is True
    assert raw.train.images.shape == (12, 3, 8, 8) and raw.train.images.dtype == torch.uint8
    assert raw.test.images.shape == (12, 3, 8, 8)
    assert raw.train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert raw.test.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert raw.train.aux_labels is None
    suffixes = [".png", ".jpg", ".PNG", ".png"]
    expected = [
        levels[f"train/{c}/{i:03d}{s}"] for c in raw.class_names for i, s in enumerate(suffixes)
    ]
    # uniform images stay uniform; JPEG may shift the level by a step or two
    found = levels_of(raw.train.images)
    assert all(abs(f - e) <= 2 for f, e in zip(found, expected, strict=True))
    assert (raw.train.images == raw.train.images[:, :, :1, :1]).all()
    assert "held out" not in raw.source and str(tmp_path) in raw.source


def test_hidden_files_and_files_next_to_the_splits_are_skipped(tmp_path):
    make_folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "train" / "a" / ".DS_Store").write_bytes(b"\0junk")
    (tmp_path / ".cache").mkdir()
    (tmp_path / "hierarchy.csv").write_text("class,coarse\n")
    raw = read_image_folder(tmp_path, 4)
    assert len(raw.train) + len(raw.test) == 4


def test_grey_conversion_uses_the_luma_weights(tmp_path):
    for name in ("red", "green"):
        pixels = np.zeros((6, 6, 3), dtype=np.uint8)
        pixels[..., 0 if name == "red" else 1] = 200
        for i in range(2):
            save(tmp_path / "train" / name / f"{i}.png", pixels)
    raw = read_image_folder(tmp_path, 6, channels=1)
    assert raw.train.images.shape[1:] == (1, 6, 6)
    everything = torch.cat([raw.train.images, raw.test.images])
    labels = torch.cat([raw.train.labels, raw.test.labels])
    # ITU-R 601-2 luma, rounded: L = 0.299 R + 0.587 G + 0.114 B; 200 * 0.587 = 117.4 -> 117,
    # 200 * 0.299 = 59.8 -> 60
    assert set(everything[labels == 0].flatten().tolist()) == {117}  # green (sorted first)
    assert set(everything[labels == 1].flatten().tolist()) == {60}  # red


def test_centre_crop_of_a_wide_and_a_tall_image(tmp_path):
    wide = np.repeat(np.array([[10, 20, 30, 40]], dtype=np.uint8), 2, axis=0)  # 2×4, 4 columns
    save(tmp_path / "train" / "a" / "wide.png", wide)
    save(tmp_path / "train" / "a" / "wide2.png", wide)
    save(tmp_path / "test" / "a" / "wide.png", wide)
    tall = wide.T.copy()  # 4×2, 4 rows
    save(tmp_path / "train" / "b" / "tall.png", tall)
    save(tmp_path / "test" / "b" / "tall.png", tall)
    raw = read_image_folder(tmp_path, 2)
    # the shorter side is already 2: no resize, the middle two columns / rows are kept
    assert raw.test.images[0, 0].tolist() == [[20, 30], [20, 30]]
    assert raw.test.images[1, 0].tolist() == [[20, 20], [30, 30]]
    assert (raw.test.images[:, 0] == raw.test.images[:, 2]).all()  # grey stays grey in RGB


def test_resize_shorter_side_then_centre_crop(tmp_path):
    pixels = np.zeros((8, 16), dtype=np.uint8)
    pixels[:, 8:] = 240  # left half 0, right half 240
    for split in ("train", "test"):
        for name in ("a", "b"):
            save(tmp_path / split / name / "x.png", pixels)
    raw = read_image_folder(tmp_path, 4)
    # 8×16 -> 4×8 (bilinear, scale 2: the triangle filter spans 4 source pixels, weights
    # 1/8, 3/8, 3/8, 1/8), then columns 2..5 of 8. Column 2 samples source columns 3..6 (all 0),
    # column 3 columns 5..8 (1/8 of 240 = 30), column 4 columns 7..10 (7/8 of 240 = 210),
    # column 5 columns 9..12 (all 240).
    row = raw.test.images[0, 0, 0].tolist()
    assert all(abs(f - e) <= 1 for f, e in zip(row, [0, 30, 210, 240], strict=True)), row
    assert (raw.test.images[0, 0] == raw.test.images[0, 0, :1]).all()  # every row the same


def test_images_of_any_size_come_out_square(tmp_path):
    save(tmp_path / "train" / "a" / "big.jpeg", grey(90, 40, 25))
    save(tmp_path / "train" / "a" / "small.JPG", grey(90, 3, 5))
    save(tmp_path / "train" / "b" / "odd.png", grey(90, 7, 13))
    save(tmp_path / "train" / "b" / "odd2.png", grey(90, 13, 7))
    raw = read_image_folder(tmp_path, 12)
    assert raw.train.images.shape[1:] == raw.test.images.shape[1:] == (3, 12, 12)
    assert raw.crop_padding == 1


def test_held_out_test_split_is_stratified_and_seeded(tmp_path):
    levels = make_folder(tmp_path, {"a": 5, "b": 5, "c": 4})
    raw = read_image_folder(tmp_path, 4)
    # 20% of each class: round(1.0) = 1 of 5, round(0.8) = 1 of 4
    assert raw.test.labels.tolist() == [0, 1, 2]
    assert torch.bincount(raw.train.labels).tolist() == [4, 4, 3]
    train, test = levels_of(raw.train.images), levels_of(raw.test.images)
    assert sorted(train + test) == sorted(levels.values())  # a partition of the images
    again = read_image_folder(tmp_path, 4)
    assert levels_of(again.test.images) == test and levels_of(again.train.images) == train
    assert "20% of each class of train/ held out" in raw.source and "seed 0" in raw.source


def hierarchy_folder(root: Path) -> None:
    """Classes ant, bee, cat, dog with 2 training and 1 test image each."""
    for split, count in (("train", 2), ("test", 1)):
        for name in ("ant", "bee", "cat", "dog"):
            for i in range(count):
                save(root / split / name / f"{i}.png", grey(50, 6, 6))


def test_hierarchy_with_fine_primary_gives_coarse_auxiliary_labels(tmp_path):
    hierarchy_folder(tmp_path)
    csv = write_csv(
        tmp_path / "h.csv", "\ufeffclass,coarse\ncat,mammal\nant,insect\n\ndog,mammal\nbee,insect\n"
    )
    raw = read_image_folder(tmp_path, 6, hierarchy_csv=csv)
    assert raw.class_names == ("ant", "bee", "cat", "dog")
    assert raw.aux_class_names == ("insect", "mammal")
    assert raw.train.labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert raw.train.aux_labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert raw.test.aux_labels.tolist() == [0, 0, 1, 1]
    assert "h.csv" in raw.source
    assert describe(raw) == (
        "user: 8 train and 4 test images of 3×6×6, 4 classes, 2 auxiliary classes"
    )


def test_hierarchy_with_coarse_primary_swaps_the_roles(tmp_path):
    hierarchy_folder(tmp_path)
    # integer coarse labels keep their numbers: dog and ant are 0, cat and bee 1
    csv = write_csv(tmp_path / "h.csv", " Class , COARSE ,note\ndog,0,x\nant,0,\ncat,1,\nbee,1,\n")
    raw = read_image_folder(tmp_path, 6, hierarchy_csv=csv, primary="coarse")
    assert raw.class_names == ("0", "1")
    assert raw.aux_class_names == ("ant", "bee", "cat", "dog")
    assert raw.train.labels.tolist() == [0, 0, 1, 1, 1, 1, 0, 0]
    assert raw.train.aux_labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert raw.test.labels.tolist() == [0, 1, 1, 0]
    assert raw.test.aux_labels.tolist() == [0, 1, 2, 3]


def test_per_image_auxiliary_labels_follow_their_images(tmp_path):
    levels = make_folder(tmp_path, {"a": 4, "b": 4})
    paths = sorted(levels)
    rows = [f"{p},{'outdoor' if i % 3 else 'indoor'}" for i, p in enumerate(paths)]
    rows[0] = "./" + rows[0]  # same image, spelled with ./
    csv = write_csv(tmp_path / "aux.csv", "image,aux_label\n" + "\n".join(rows) + "\n")
    raw = read_image_folder(tmp_path, 4, aux_csv=csv)
    assert raw.aux_class_names == ("indoor", "outdoor")
    wanted = {levels[p]: 0 if i % 3 == 0 else 1 for i, p in enumerate(paths)}
    for split in (raw.train, raw.test):  # the held-out test images keep their labels too
        for level, aux in zip(levels_of(split.images), split.aux_labels.tolist(), strict=True):
            assert abs(level - min(wanted, key=lambda v: abs(v - level))) <= 2
            assert aux == wanted[min(wanted, key=lambda v: abs(v - level))]
    assert "aux.csv" in raw.source


def test_integer_auxiliary_labels_are_used_as_they_are(tmp_path):
    levels = make_folder(tmp_path, {"a": 2, "b": 2}, splits=("train", "test"))
    paths = sorted(levels)  # test/a/000.png, test/a/001.jpg, test/b/..., train/a/..., train/b/...
    csv = tmp_path / "aux.csv"

    def write(labels):
        rows = "".join(f"{p},{v}\n" for p, v in zip(paths, labels, strict=True))
        write_csv(csv, "image,aux_label\n" + rows)

    write([2, 0, 1, 1, 0, 2, 1, 0])
    raw = read_image_folder(tmp_path, 4, aux_csv=csv)
    assert raw.aux_class_names == ("0", "1", "2")
    assert raw.test.aux_labels.tolist() == [2, 0, 1, 1]
    assert raw.train.aux_labels.tolist() == [0, 2, 1, 0]
    write([2, 0, 1, 1, 0, 2, 5, 0])  # 3 and 4 never appear
    text = message(read_image_folder, tmp_path, 4, aux_csv=csv)
    assert str(csv) in text and "'3', '4' are never used" in text


# --- npz files -------------------------------------------------------------------------------


def test_npz_grey_uint8_with_test_split_and_class_names(tmp_path):
    images = np.arange(6 * 4 * 4, dtype=np.uint8).reshape(6, 4, 4)
    path = tmp_path / "d.npz"
    np.savez(
        path,
        images=images,
        labels=np.array([1, 0, 1, 0, 2, 2]),
        test_images=images[:2],
        test_labels=np.array([2, 0]),
        class_names=np.array(["cat", "dog", "emu"]),
    )
    raw = read_npz(path, name="arrays")
    assert raw.train.images.shape == (6, 1, 4, 4)
    assert raw.train.images[1, 0].tolist() == images[1].tolist()
    assert raw.train.labels.tolist() == [1, 0, 1, 0, 2, 2]
    assert raw.test.labels.tolist() == [2, 0]
    assert raw.class_names == ("cat", "dog", "emu") and raw.aux_class_names is None
    assert raw.crop_padding == 0 and raw.horizontal_flip
    assert describe(raw) == (
        "arrays: 6 train and 2 test images of 1×4×4, 3 classes, no auxiliary labels"
    )


def test_npz_float_channels_last_is_scaled_and_held_out(tmp_path):
    images = np.zeros((10, 8, 8, 3), dtype=np.float32)
    images[:, 0, 0] = [0.0, 0.2, 1.0]
    labels = np.array([0, 1] * 5)
    path = tmp_path / "d.npz"
    np.savez(path, images=images, labels=labels)
    raw = read_npz(path)
    assert raw.train.images.dtype == torch.uint8 and raw.train.images.shape[1:] == (3, 8, 8)
    assert raw.train.images[0, :, 0, 0].tolist() == [0, 51, 255]  # 0.2 * 255 = 51
    assert raw.class_names == ("0", "1") and raw.crop_padding == 1
    assert torch.bincount(raw.test.labels).tolist() == [1, 1]  # round(0.2 * 5) = 1 per class
    assert torch.bincount(raw.train.labels).tolist() == [4, 4]
    assert "held out" in raw.source


def test_npz_hierarchy_by_class_names(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(
        path,
        images=np.zeros((4, 4, 4), dtype=np.uint8),
        labels=np.array([0, 1, 2, 3]),
        test_images=np.zeros((2, 4, 4), dtype=np.uint8),
        test_labels=np.array([3, 0]),
        class_names=np.array(["ant", "bee", "cat", "dog"]),
    )
    csv = write_csv(tmp_path / "h.csv", "class,coarse\nant,insect\nbee,insect\ncat,m\ndog,m\n")
    raw = read_npz(path, hierarchy_csv=csv, primary="coarse")
    assert raw.class_names == ("insect", "m")
    assert raw.train.labels.tolist() == [0, 0, 1, 1]
    assert raw.test.labels.tolist() == [1, 0] and raw.test.aux_labels.tolist() == [3, 0]


# --- bad inputs: image folders ---------------------------------------------------------------


def test_missing_root_and_train_folder(tmp_path):
    text = message(read_image_folder, tmp_path / "nowhere", 8)
    assert str(tmp_path / "nowhere") in text and "not found" in text and "train/" in text
    save(tmp_path / "test" / "a" / "x.png", grey(1))
    text = message(read_image_folder, tmp_path, 8)
    assert str(tmp_path / "train") in text and "not found" in text


def test_validation_and_unknown_folders_are_errors(tmp_path):
    make_folder(tmp_path, {"a": 2, "b": 2}, splits=("train", "val"))
    text = message(read_image_folder, tmp_path, 8)
    assert str(tmp_path / "val") in text and "held out of train/ automatically" in text
    (tmp_path / "val").rename(tmp_path / "extra")
    text = message(read_image_folder, tmp_path, 8)
    assert str(tmp_path / "extra") in text and "expected only train/ and test/" in text


def test_empty_class_folder(tmp_path):
    make_folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "train" / "c").mkdir()
    (tmp_path / "train" / "c" / ".hidden").write_text("")
    text = message(read_image_folder, tmp_path, 8)
    assert str(tmp_path / "train" / "c") in text and "empty class folder" in text


def test_single_class_and_files_directly_in_a_split(tmp_path):
    make_folder(tmp_path, {"a": 2})
    assert "at least two" in message(read_image_folder, tmp_path, 8)
    make_folder(tmp_path, {"b": 2})
    save(tmp_path / "train" / "stray.png", grey(1))
    text = message(read_image_folder, tmp_path, 8)
    assert "stray.png" in text and "one folder per class" in text


def test_corrupt_and_non_image_files_are_named(tmp_path):
    make_folder(tmp_path, {"a": 2, "b": 2})
    bad = tmp_path / "train" / "b" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    text = message(read_image_folder, tmp_path, 8)
    assert str(bad) in text and "cannot read image" in text
    bad.unlink()
    jpeg = tmp_path / "train" / "b" / "001.jpg"
    full = jpeg.read_bytes()
    jpeg.write_bytes(full[: len(full) // 2])  # truncated
    text = message(read_image_folder, tmp_path, 8)
    assert str(jpeg) in text and "expected a PNG or JPEG file" in text
    jpeg.write_bytes(full)
    note = tmp_path / "train" / "a" / "notes.txt"
    note.write_text("hello")
    text = message(read_image_folder, tmp_path, 8)
    assert str(note) in text and "not a PNG or JPEG" in text


def test_test_classes_must_match_train(tmp_path):
    make_folder(tmp_path, {"a": 2, "b": 2, "c": 2})
    make_folder(tmp_path, {"a": 1, "d": 1}, splits=("test",))
    text = message(read_image_folder, tmp_path, 8)
    assert str(tmp_path / "test") in text
    assert "missing 'b', 'c'" in text and "extra 'd'" in text


def test_aux_csv_errors_name_file_and_line(tmp_path):
    levels = make_folder(tmp_path, {"a": 2, "b": 2})
    paths = sorted(levels)
    csv = tmp_path / "aux.csv"
    write_csv(csv, "image,aux_label\n" + f"{paths[0]},x\n" + "train/a/009.png,y\n")
    text = message(read_image_folder, tmp_path, 8, aux_csv=csv)
    assert f"{csv}:3:" in text and "'train/a/009.png' is not in the dataset" in text
    write_csv(csv, "image,aux_label\n" + f"{paths[0]},x\n{paths[1]},y\n")
    text = message(read_image_folder, tmp_path, 8, aux_csv=csv)
    assert str(csv) in text and "2 of 4 images have no row" in text and paths[2] in text
    write_csv(csv, "image,aux_label\n" + f"{paths[0]},x\n\n{paths[0]},y\n")
    text = message(read_image_folder, tmp_path, 8, aux_csv=csv)
    assert f"{csv}:4:" in text and "listed twice (first on line 2)" in text
    write_csv(csv, f"{paths[0]},x\n")
    text = message(read_image_folder, tmp_path, 8, aux_csv=csv)
    assert f"{csv}:1:" in text and "expected the header image,aux_label" in text
    write_csv(csv, f"image,aux_label\n{paths[0]},\n")
    text = message(read_image_folder, tmp_path, 8, aux_csv=csv)
    assert f"{csv}:2:" in text and "empty 'aux_label'" in text
    write_csv(csv, f"image,aux_label\n{paths[0]},-1\n")
    text = message(read_image_folder, tmp_path, 8, aux_csv=csv)
    assert f"{csv}:2:" in text and "negative" in text
    write_csv(csv, "")
    assert "empty CSV file" in message(read_image_folder, tmp_path, 8, aux_csv=csv)
    text = message(read_image_folder, tmp_path, 8, aux_csv=tmp_path / "none.csv")
    assert str(tmp_path / "none.csv") in text and "not found" in text


def test_hierarchy_csv_errors_name_file_and_line(tmp_path):
    hierarchy_folder(tmp_path)
    csv = tmp_path / "h.csv"
    write_csv(csv, "class,coarse\nant,insect\nbee,insect\ncow,mammal\n")
    text = message(read_image_folder, tmp_path, 6, hierarchy_csv=csv)
    assert f"{csv}:4:" in text and "class 'cow' is not among the dataset's classes" in text
    write_csv(csv, "class,coarse\nant,insect\nbee,insect\n")
    text = message(read_image_folder, tmp_path, 6, hierarchy_csv=csv)
    assert str(csv) in text and "'cat', 'dog' missing from the hierarchy" in text
    write_csv(csv, "class,coarse\nant,insect\nant,mammal\n")
    text = message(read_image_folder, tmp_path, 6, hierarchy_csv=csv)
    assert f"{csv}:3:" in text and "listed twice" in text
    write_csv(csv, "class,coarse\nant,0\nbee,0\ncat,2\ndog,2\n")
    text = message(read_image_folder, tmp_path, 6, hierarchy_csv=csv)
    assert str(csv) in text and "'1' is never used" in text
    write_csv(csv, "class,parent\nant,0\n")
    text = message(read_image_folder, tmp_path, 6, hierarchy_csv=csv)
    assert f"{csv}:1:" in text and "lacks 'coarse'" in text
    write_csv(csv, "class,coarse\nant,all\nbee,all\ncat,all\ndog,all\n")
    text = message(read_image_folder, tmp_path, 6, hierarchy_csv=csv, primary="coarse")
    assert str(csv) in text and "single coarse class" in text


def test_option_errors(tmp_path):
    csv = tmp_path / "x.csv"
    assert "not both" in message(
        read_image_folder, tmp_path, 8, aux_csv=csv, hierarchy_csv=csv, error=ConfigError
    )
    assert "needs a hierarchy_csv" in message(
        read_image_folder, tmp_path, 8, primary="coarse", error=ConfigError
    )
    assert "'fine' or 'coarse'" in message(
        read_image_folder, tmp_path, 8, primary="superclass", error=ConfigError
    )
    assert "positive" in message(read_image_folder, tmp_path, 0, error=ConfigError)
    assert "channels" in message(read_image_folder, tmp_path, 8, channels=4, error=ConfigError)


# --- bad inputs: npz files -------------------------------------------------------------------


def npz_error(tmp_path: Path, **arrays) -> str:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    text = message(read_npz, path)
    assert str(path) in text
    return text


GOOD = np.zeros((4, 4, 4), dtype=np.uint8)
LABELS = np.array([0, 1, 0, 1])


def test_npz_missing_or_unreadable_file(tmp_path):
    assert "file not found" in message(read_npz, tmp_path / "none.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 not a zip")
    assert "not a readable .npz file" in message(read_npz, garbage)
    single = tmp_path / "single.npy"
    np.save(single, GOOD)
    assert "a single array" in message(read_npz, single)


def test_npz_wrong_keys(tmp_path):
    assert "missing array 'labels'" in npz_error(tmp_path, images=GOOD)
    assert "unexpected array(s) 'test_image'" in npz_error(
        tmp_path, images=GOOD, labels=LABELS, test_image=GOOD
    )
    assert "come together" in npz_error(tmp_path, images=GOOD, labels=LABELS, test_images=GOOD)


def test_npz_wrong_shapes_and_dtypes(tmp_path):
    text = npz_error(tmp_path, images=np.zeros((4, 16), np.uint8), labels=LABELS)
    assert "(4, 16)" in text and "(N, H, W)" in text
    text = npz_error(tmp_path, images=np.zeros((4, 3, 4, 4), np.uint8), labels=LABELS)
    assert "channels last" in text
    text = npz_error(tmp_path, images=np.zeros((4, 4, 5), np.uint8), labels=LABELS)
    assert "4×5" in text and "square" in text
    text = npz_error(tmp_path, images=GOOD.astype(np.int32), labels=LABELS)
    assert "int32" in text and "uint8" in text
    text = npz_error(tmp_path, images=GOOD.astype(np.float32) + 2, labels=LABELS)
    assert "outside [0, 1]" in text
    text = npz_error(tmp_path, images=GOOD, labels=LABELS.astype(np.float64))
    assert "float64" in text and "integers" in text
    text = npz_error(
        tmp_path,
        images=GOOD,
        labels=LABELS,
        test_images=np.zeros((2, 5, 5), np.uint8),
        test_labels=LABELS[:2],
    )
    assert "test_images are 1×5×5" in text and "1×4×4" in text


def test_npz_inconsistent_counts_labels_out_of_range_and_empty_class(tmp_path):
    text = npz_error(tmp_path, images=GOOD, labels=LABELS[:3])
    assert "4 images but 3 labels" in text
    text = npz_error(tmp_path, images=GOOD, labels=LABELS, test_images=GOOD[:2], test_labels=LABELS)
    assert "2 test_images but 4 test_labels" in text
    text = npz_error(
        tmp_path, images=GOOD, labels=np.array([0, 1, 2, 1]), class_names=np.array(["a", "b"])
    )
    assert "label 2 outside the declared classes" in text and "0..1" in text
    text = npz_error(tmp_path, images=GOOD, labels=LABELS, class_names=np.array(["a", "b", "c"]))
    assert "empty class 'c' (label 2)" in text
    text = npz_error(tmp_path, images=GOOD, labels=np.array([0, 2, 0, 2]))
    assert "empty class '1' (label 1)" in text
    text = npz_error(
        tmp_path, images=GOOD, labels=LABELS, test_images=GOOD[:1], test_labels=np.array([5])
    )
    assert "test_labels has label 5" in text
    text = npz_error(tmp_path, images=GOOD, labels=LABELS, class_names=np.array(["a", "a"]))
    assert "repeated 'a'" in text
