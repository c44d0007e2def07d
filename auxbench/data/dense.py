"""Dense-prediction datasets (Auto-λ §5.1): images with per-pixel targets, read from the layouts
the published code reads.

- ``read_nyuv2``: ``{train,val}/{image,label,depth,normal}/<i>.npy`` as MTAN and Auto-λ
  preprocess NYUv2; targets semantic, depth, normal.
- ``read_cityscapes``: ``{train,val}/{image,seg,depth}/<i>.png`` and ``part_seg/<i>.tif``
  (Auto-λ's CityScapes); targets semantic, part, disparity.
- ``read_cityscapes_npy``: ``{train,val}/{image,label_7 or label_19,depth}/<i>.npy`` as MTAN,
  LibMTL and Nash-MTL preprocess CityScapes; targets semantic, disparity.
- ``read_dense_folder``: a user's own data, ``{train,val}/{image,<task>...}/<i>.npy`` with the
  tasks (their kinds, class counts and ignore values, channel counts) declared in ``tasks.yaml``
  (see ``read_dense_folder``).

Files are numbered i = 0, 1, …, n − 1 with the same n in every task folder of a split. The
``val`` folder is the published evaluation split: it becomes the dataset's ``test`` split (a
trainer holds out its own validation images from ``train``). The targets follow one convention
whatever the files use:

- ``semantic`` / ``part``: (N, H, W) int64 class ids, −1 = ignored pixel;
- ``depth``: (N, 1, H, W) float32 metres, 0 = invalid;
- ``disparity``: (N, 1, H, W) float32, −1 = invalid;
- ``normal``: (N, 3, H, W) float32 in [−1, 1], the all-zero vector = invalid;
- ``regression`` (a user's own real-valued maps): (N, C, H, W) float32, any finite value, NaN in
  every channel = invalid pixel;
- images: (N, 3, H, W) float32 in [0, 1].

Every problem with the files is a ``DataError`` of one line naming the folder or file, what was
expected and what was found. The readers only read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from auxbench.data.dataset import DataError

DENSE_KINDS = ("segmentation", "depth", "disparity", "normal", "regression")
SPLITS = (("train", "train"), ("val", "test"))  # (folder, DenseDataset field)
NYUV2_FOLDERS = ("image", "label", "depth", "normal")
CITYSCAPES_FOLDERS = {"image": ".png", "seg": ".png", "part_seg": ".tif", "depth": ".png"}
CITYSCAPES_CLASSES = 19
CITYSCAPES_PARTS = 10
NPY_LABEL_FOLDERS = {2: "label_2", 7: "label_7", 19: "label_19"}
# Disparity png value d > 0 -> (d - 1) / DISPARITY_SCALE (see ``read_cityscapes``).
DISPARITY_SCALE = 1024.0
_TOLERANCE = 1e-3  # how far past [0, 1] / [-1, 1] a float may stray (then it is clipped)

# Cityscapes labelIds -> the 19 evaluation trainIds (cityscapesScripts' labels.py); others -> -1.
LABEL_TO_TRAIN_ID = {
    7: 0,  # road
    8: 1,  # sidewalk
    11: 2,  # building
    12: 3,  # wall
    13: 4,  # fence
    17: 5,  # pole
    19: 6,  # traffic light
    20: 7,  # traffic sign
    21: 8,  # vegetation
    22: 9,  # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    31: 16,  # train
    32: 17,  # motorcycle
    33: 18,  # bicycle
}
_TRAIN_ID_TABLE = np.full(256, -1, dtype=np.int64)
for _label_id, _train_id in LABEL_TO_TRAIN_ID.items():
    _TRAIN_ID_TABLE[_label_id] = _train_id

# Cityscapes-Panoptic-Parts: semantic ids with parts, and the part class of each part id.
HUMAN_SIDS = (24, 25)  # person, rider
VEHICLE_SIDS = (26, 27, 28)  # car, truck, bus
HUMAN_PARTS = {1: 1, 2: 2, 3: 3, 4: 4}  # torso, head, arms, legs
VEHICLE_PARTS = {1: 5, 2: 6, 3: 7, 4: 8, 5: 9}  # windows, wheels, lights, license plate, chassis
_PANOPTIC_LIMIT = 10**7  # ids have at most 7 digits
# _PART_TABLE[sid, pid] = the part class: 0 background, -1 ignored.
_PART_TABLE = np.zeros((100, 100), dtype=np.int64)
_PART_TABLE[0] = -1
for _sids, _parts in ((HUMAN_SIDS, HUMAN_PARTS), (VEHICLE_SIDS, VEHICLE_PARTS)):
    for _sid in _sids:
        _PART_TABLE[_sid] = -1
        for _pid, _part in _parts.items():
            _PART_TABLE[_sid, _pid] = _part


@dataclass(frozen=True)
class DenseTaskSpec:
    """One per-pixel task of a dataset: its target field ``name``, its ``kind`` (one of
    ``DENSE_KINDS``), for segmentation only its number of ``classes`` and for regression only
    its number of ``channels`` (default 1), which size the task's head."""

    name: str
    kind: str
    classes: int | None = None
    channels: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in DENSE_KINDS:
            raise ValueError(
                f"task {self.name!r}: unknown kind {self.kind!r}; choose one of "
                f"{', '.join(DENSE_KINDS)}"
            )
        if self.kind == "segmentation" and (self.classes is None or self.classes < 1):
            raise ValueError(f"segmentation task {self.name!r} needs classes >= 1")
        if self.kind != "segmentation" and self.classes is not None:
            raise ValueError(f"{self.kind} task {self.name!r} takes no classes")
        if self.kind != "regression":
            if self.channels is not None:
                raise ValueError(f"{self.kind} task {self.name!r} takes no channels")
            return
        if self.channels is None:
            object.__setattr__(self, "channels", 1)  # frozen: the default of a regression task
        elif isinstance(self.channels, bool) or not isinstance(self.channels, int):
            raise ValueError(f"regression task {self.name!r}: channels must be an integer >= 1")
        if self.channels < 1:
            raise ValueError(f"regression task {self.name!r} needs channels >= 1")


@dataclass
class DenseSplit:
    """One split: ``images`` float32 (N, 3, H, W) in [0, 1] and a target tensor per task field,
    each with N first (see the module doc for their shapes and invalid values)."""

    images: torch.Tensor
    targets: dict[str, torch.Tensor]

    def __post_init__(self) -> None:
        for name, values in self.targets.items():
            if values.shape[0] != self.images.shape[0]:
                raise ValueError(
                    f"target {name!r} has {values.shape[0]} entries for "
                    f"{self.images.shape[0]} images"
                )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, index: torch.Tensor) -> DenseSplit:
        """Return the images and targets at ``index`` (a long tensor of positions)."""
        return DenseSplit(
            self.images[index], {name: values[index] for name, values in self.targets.items()}
        )

    def to(self, device: torch.device | str) -> DenseSplit:
        """Return a copy whose tensors live on ``device``."""
        return DenseSplit(
            self.images.to(device),
            {name: values.to(device) for name, values in self.targets.items()},
        )


@dataclass(frozen=True)
class DenseDataset:
    """A named dense dataset: its tasks, the ``train`` split, the published evaluation split
    ``test`` (the files' ``val`` folder) and where it was read from (``source``)."""

    name: str
    tasks: tuple[DenseTaskSpec, ...]
    train: DenseSplit
    test: DenseSplit
    source: str

    def to(self, device: torch.device | str) -> DenseDataset:
        """Return a copy whose splits live on ``device``."""
        return replace(self, train=self.train.to(device), test=self.test.to(device))


# --- layout -------------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    """``exc``'s message on one line."""
    return " ".join(str(exc).split())


def _require_folder(path: Path, what: str, layout: str) -> None:
    if not path.is_dir():
        raise DataError(f"{path}: {what} folder not found; expected the layout {layout}")


def _indices(folder: Path, suffix: str) -> set[int]:
    """The numbers i of the ``<i><suffix>`` files in ``folder``; other names are an error."""
    try:
        paths = sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(f"{folder}: cannot list folder ({_reason(exc)})") from exc
    found = set()
    for path in paths:
        if path.name.startswith(".") or path.suffix != suffix:
            continue
        stem = path.name[: -len(suffix)]
        if not stem.isdecimal() or str(int(stem)) != stem:
            raise DataError(
                f"{path}: unexpected file name; expected <i>{suffix} with i = 0, 1, 2, ... "
                "(no leading zeros)"
            )
        found.add(int(stem))
    return found


def _count(split_dir: Path, folders: dict[str, str]) -> int:
    """The number n of examples in ``split_dir``: every task folder must hold exactly the files
    ``0<suffix>`` … ``<n−1><suffix>``."""
    indices = {name: _indices(split_dir / name, suffix) for name, suffix in folders.items()}
    count = max((max(found) + 1 for found in indices.values() if found), default=0)
    if count == 0:
        names = ", ".join(f"{name}/<i>{suffix}" for name, suffix in folders.items())
        raise DataError(f"{split_dir}: no examples; expected files {names} for i = 0, 1, ...")
    for name, suffix in folders.items():
        missing = next((i for i in range(count) if i not in indices[name]), None)
        if missing is not None:
            raise DataError(
                f"{split_dir / name}: missing {missing}{suffix}; every task folder of "
                f"{split_dir} must hold 0{suffix} ... {count - 1}{suffix} ({count} files, "
                f"found {len(indices[name])})"
            )
    return count


def _read_layout(
    directory: Path,
    folders: dict[str, str],
    layout: str,
    read_example: Callable[[Path, int], dict[str, np.ndarray]],
) -> dict[str, DenseSplit]:
    """Read both splits: ``read_example(split_dir, i)`` gives example i's arrays ("image" and
    one per target field), which are stacked into preallocated arrays."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: dataset folder not found; expected the layout {layout}")
    splits = {}
    for folder, field in SPLITS:
        split_dir = directory / folder
        _require_folder(split_dir, "split", layout)
        for name in folders:
            _require_folder(split_dir / name, "task", layout)
        count = _count(split_dir, folders)
        stacked: dict[str, np.ndarray] = {}
        for i in range(count):
            for key, array in read_example(split_dir, i).items():
                if key not in stacked:
                    stacked[key] = np.empty((count, *array.shape), dtype=array.dtype)
                stacked[key][i] = array
        images = torch.from_numpy(stacked.pop("image"))
        splits[field] = DenseSplit(
            images, {key: torch.from_numpy(values) for key, values in stacked.items()}
        )
    return splits


class _Shape:
    """The (H, W) every file of a dataset must have: the first file read sets it."""

    def __init__(self) -> None:
        self.size: tuple[int, int] | None = None
        self.first: Path | None = None

    def check(self, array: np.ndarray, path: Path) -> None:
        size = (int(array.shape[0]), int(array.shape[1]))
        if self.size is None:
            self.size, self.first = size, path
        elif size != self.size:
            raise DataError(
                f"{path}: shape {tuple(array.shape)} does not match the {self.size[0]}×"
                f"{self.size[1]} (H×W) of {self.first}; every image and target must have one size"
            )


# --- .npy files ---------------------------------------------------------------------------------


def _load_npy(path: Path) -> np.ndarray:
    """Load one array from a ``.npy`` file (no pickles); ``DataError`` when it cannot be read."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(
            f"{path}: not a readable .npy file ({_reason(exc)}); expected one array saved "
            "with np.save"
        ) from exc
    if not isinstance(array, np.ndarray):  # an .npz archive
        array.close()
        raise DataError(f"{path}: an .npz archive, expected one array written with np.save")
    return array


def _real(array: np.ndarray, path: Path, what: str, shape: str) -> np.ndarray:
    """``array`` as float64 when it is a finite real array of ``what``; else ``DataError``."""
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DataError(f"{path}: {what} should be numbers {shape}, found dtype {array.dtype}")
    values = array.astype(np.float64, copy=False)
    if not np.isfinite(values).all():
        raise DataError(f"{path}: {what} holds NaN or infinite values; expected finite {shape}")
    return values


def _channels(array: np.ndarray, path: Path, what: str, channels: int) -> None:
    if array.ndim != 3 or array.shape[2] != channels:
        raise DataError(f"{path}: {what} has shape {array.shape}, expected (H, W, {channels})")


def _in_range(values: np.ndarray, path: Path, what: str, low: float, high: float) -> np.ndarray:
    """``values`` clipped to [low, high]; ``DataError`` when any lies further than the tolerance
    outside it."""
    smallest, largest = float(values.min()), float(values.max())
    if smallest < low - _TOLERANCE or largest > high + _TOLERANCE:
        raise DataError(
            f"{path}: {what} values span [{smallest:g}, {largest:g}], expected [{low:g}, {high:g}]"
        )
    return np.clip(values, low, high)


def _npy_image(path: Path, shape: _Shape) -> np.ndarray:
    """(H, W, 3) floats in [0, 1] -> (3, H, W) float32."""
    array = _load_npy(path)
    _channels(array, path, "image", 3)
    if not np.issubdtype(array.dtype, np.floating):
        raise DataError(
            f"{path}: image should be floats in [0, 1] (H, W, 3), found dtype {array.dtype}"
        )
    shape.check(array, path)
    values = _in_range(_real(array, path, "image", "(H, W, 3)"), path, "image", 0.0, 1.0)
    return np.ascontiguousarray(values.transpose(2, 0, 1), dtype=np.float32)


def _npy_label(path: Path, shape: _Shape, classes: int) -> np.ndarray:
    """(H, W) class ids 0..classes−1 or −1 (ignored), floats or integers -> (H, W) int64."""
    array = _load_npy(path)
    if array.ndim != 2:
        raise DataError(f"{path}: labels have shape {array.shape}, expected (H, W)")
    shape.check(array, path)
    values = _real(array, path, "labels", "(H, W)")
    fractional = values != np.round(values)
    if fractional.any():
        raise DataError(
            f"{path}: labels should be whole class ids, found {values[fractional][0]:g}"
        )
    bad = (values < -1) | (values >= classes)
    if bad.any():
        raise DataError(
            f"{path}: label {values[bad][0]:g} out of range; expected 0..{classes - 1} or -1 "
            f"(ignored) ({int(bad.sum())} bad pixels)"
        )
    return values.astype(np.int64)


def _npy_depth(path: Path, shape: _Shape, what: str) -> np.ndarray:
    """(H, W, 1) values >= 0 (0 = invalid) -> (1, H, W) float64, unchanged."""
    array = _load_npy(path)
    _channels(array, path, what, 1)
    shape.check(array, path)
    values = _real(array, path, what, "(H, W, 1)")
    if values.min() < 0:
        raise DataError(
            f"{path}: {what} holds {float(values.min()):g}; expected values >= 0 (0 = invalid)"
        )
    return values.transpose(2, 0, 1)


def _npy_normal(path: Path, shape: _Shape) -> np.ndarray:
    """(H, W, 3) in [−1, 1] (all zero = invalid) -> (3, H, W) float32."""
    array = _load_npy(path)
    _channels(array, path, "normals", 3)
    shape.check(array, path)
    values = _in_range(_real(array, path, "normals", "(H, W, 3)"), path, "normals", -1.0, 1.0)
    return np.ascontiguousarray(values.transpose(2, 0, 1), dtype=np.float32)


def _segmentation_classes(classes: int) -> None:
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes must be an integer >= 1, got {classes!r}")


def read_nyuv2(directory: Path, classes: int = 13, name: str = "nyuv2") -> DenseDataset:
    """Read NYUv2 as MTAN and Auto-λ preprocess it (or any data set in its layout).

    ``directory`` holds ``{train,val}/{image,label,depth,normal}/<i>.npy``: image (H, W, 3)
    floats in [0, 1]; label (H, W) class ids 0..``classes``−1, −1 ignored (floats or integers);
    depth (H, W, 1) metres, 0 invalid; normal (H, W, 3) in [−1, 1], the zero vector invalid.
    Tasks: ``semantic`` (segmentation, ``classes``), ``depth``, ``normal``; ``val`` is the test
    split.
    """
    _segmentation_classes(classes)
    layout = "<dir>/{train,val}/{image,label,depth,normal}/<i>.npy (i = 0, 1, ...)"
    shape = _Shape()

    def read_example(split_dir: Path, i: int) -> dict[str, np.ndarray]:
        return {
            "image": _npy_image(split_dir / "image" / f"{i}.npy", shape),
            "semantic": _npy_label(split_dir / "label" / f"{i}.npy", shape, classes),
            "depth": _npy_depth(split_dir / "depth" / f"{i}.npy", shape, "depth").astype(
                np.float32
            ),
            "normal": _npy_normal(split_dir / "normal" / f"{i}.npy", shape),
        }

    folders = dict.fromkeys(NYUV2_FOLDERS, ".npy")
    splits = _read_layout(directory, folders, layout, read_example)
    return DenseDataset(
        name=name,
        tasks=(
            DenseTaskSpec("semantic", "segmentation", classes),
            DenseTaskSpec("depth", "depth"),
            DenseTaskSpec("normal", "normal"),
        ),
        train=splits["train"],
        test=splits["test"],
        source=f"NYUv2-layout .npy files (MTAN / Auto-λ preprocessing) in {directory}",
    )


def read_cityscapes_npy(directory: Path, classes: int = 7) -> DenseDataset:
    """Read CityScapes as MTAN, LibMTL and Nash-MTL preprocess it: ``directory`` holds
    ``{train,val}/{image,label_<classes>,depth}/<i>.npy`` (``classes`` 7 or 19, or 2).

    image (128, 256, 3) floats in [0, 1]; label (128, 256) class ids, −1 ignored; depth
    (128, 256, 1), which in this layout is inverse depth (disparity), 0 invalid. Tasks:
    ``semantic`` (segmentation, ``classes``) and ``disparity``, whose invalid pixels become −1
    so that every disparity target has the same invalid value; ``val`` is the test split.
    """
    if classes not in NPY_LABEL_FOLDERS:
        raise ValueError(
            f"classes must be one of {', '.join(map(str, NPY_LABEL_FOLDERS))}, got {classes!r}"
        )
    label = NPY_LABEL_FOLDERS[classes]
    layout = f"<dir>/{{train,val}}/{{image,{label},depth}}/<i>.npy (i = 0, 1, ...)"
    shape = _Shape()

    def read_example(split_dir: Path, i: int) -> dict[str, np.ndarray]:
        image = _npy_image(split_dir / "image" / f"{i}.npy", shape)
        semantic = _npy_label(split_dir / label / f"{i}.npy", shape, classes)
        inverse = _npy_depth(split_dir / "depth" / f"{i}.npy", shape, "depth (disparity)")
        return {
            "image": image,
            "semantic": semantic,
            "disparity": np.where(inverse == 0, -1.0, inverse).astype(np.float32),
        }

    folders = dict.fromkeys(("image", label, "depth"), ".npy")
    splits = _read_layout(directory, folders, layout, read_example)
    return DenseDataset(
        name=f"cityscapes-{classes}",
        tasks=(
            DenseTaskSpec("semantic", "segmentation", classes),
            DenseTaskSpec("disparity", "disparity"),
        ),
        train=splits["train"],
        test=splits["test"],
        source=f"CityScapes .npy files (MTAN / LibMTL layout, {label}) in {directory}",
    )


# --- CityScapes images --------------------------------------------------------------------------


def train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map Cityscapes labelIds to the 19 evaluation trainIds (``LABEL_TO_TRAIN_ID``); every
    other value (void classes, ids the evaluation ignores) becomes −1. Returns int64."""
    label_ids = np.asarray(label_ids, dtype=np.int64)
    known = (label_ids >= 0) & (label_ids < _TRAIN_ID_TABLE.size)
    return np.where(known, _TRAIN_ID_TABLE[np.where(known, label_ids, 0)], -1)


def part_classes(ids: np.ndarray) -> np.ndarray:
    """Decode Cityscapes-Panoptic-Parts ids (non-negative, at most 7 digits) to Auto-λ's 10 part
    classes. Returns int64.

    An id of at most 2 digits is a semantic id ``sid`` alone; of 3 to 5 digits
    ``sid · 1000 + instance``; of 6 or 7 digits ``sid · 10^5 + instance · 100 + pid`` with the
    part id ``pid``. Then:

    | sid | pid | part class |
    |---|---|---|
    | 24 person, 25 rider | 1 torso, 2 head, 3 arms, 4 legs | 1, 2, 3, 4 |
    | 26 car, 27 truck, 28 bus | 1 windows, 2 wheels, 3 lights, 4 license plate, 5 chassis | 5–9 |
    | 24–28 | none (a shorter id) or any other | −1 (ignored) |
    | 0 unlabelled | any | −1 (ignored) |
    | any other | any | 0 background |
    """
    ids = np.asarray(ids, dtype=np.int64)
    sid = np.where(ids < 100, ids, np.where(ids < 100_000, ids // 1000, ids // 100_000))
    pid = np.where(ids < 100_000, 0, ids % 100)
    return _PART_TABLE[sid, pid]


def _nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a 2-D array to ``size`` (H, W) by nearest neighbour (pixel centres), so that only
    values present in ``array`` appear."""
    height, width = array.shape
    if (height, width) == size:
        return array
    rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.int64), width - 1)
    return array[rows[:, None], cols[None, :]]


def _open_image(path: Path, expected: str) -> Image.Image:
    """Return ``path`` decoded by Pillow, loaded into memory; ``DataError`` when it cannot be."""
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except OSError as exc:  # also Pillow's UnidentifiedImageError and truncated files
        raise DataError(f"{path}: cannot read image ({_reason(exc)}); expected {expected}") from exc
    # Pillow's decoders raise ValueError, SyntaxError, DecompressionBombError, ... on bad files
    except Exception as exc:
        raise DataError(
            f"{path}: not a readable image ({type(exc).__name__}: {_reason(exc)}); "
            f"expected {expected}"
        ) from exc


def _integer_map(path: Path, expected: str, limit: int) -> np.ndarray:
    """The pixels of a single-channel integer image, each in [0, ``limit``)."""
    array = np.asarray(_open_image(path, expected))
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise DataError(
            f"{path}: decoded to {array.dtype} {array.shape}, expected {expected} "
            "(one integer channel)"
        )
    bad = (array < 0) | (array >= limit)
    if bad.any():
        raise DataError(
            f"{path}: value {int(array[bad][0])} out of range; expected {expected} with values "
            f"0..{limit - 1}"
        )
    return array.astype(np.int64)


def _check_size(array: np.ndarray, path: Path, image_size: tuple[int, int], image: Path) -> None:
    if array.shape != image_size:
        raise DataError(
            f"{path}: size {array.shape[0]}×{array.shape[1]} (H×W) does not match the "
            f"{image_size[0]}×{image_size[1]} of its image {image}"
        )


def read_cityscapes(directory: Path, size: tuple[int, int] = (256, 512)) -> DenseDataset:
    """Read CityScapes for Auto-λ's 3 tasks, resized to ``size`` (H, W).

    ``directory`` holds ``{train,val}/image/<i>.png`` (8-bit RGB), ``seg/<i>.png`` (Cityscapes
    labelIds, one channel), ``part_seg/<i>.tif`` (Cityscapes-Panoptic-Parts ids, one integer
    channel) and ``depth/<i>.png`` (16-bit disparity), i = 0, 1, …. The image is resized
    bilinearly, the other maps by nearest neighbour. Tasks:

    - ``semantic``: the 19 evaluation trainIds of ``train_ids``, −1 ignored;
    - ``part``: the 10 part classes of ``part_classes``, −1 ignored;
    - ``disparity``: a stored value d > 0 becomes (d − 1) / 1024 and 0 (invalid) becomes −1. The
      official Cityscapes convention divides by 256 (disparity in pixels); we follow Auto-λ's
      scaling as issue 19 specifies, which is that value / 4.

    ``val`` is the test split.
    """
    height, width = (int(side) for side in size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be two positive integers (H, W), got {size!r}")
    size = (height, width)
    layout = (
        "<dir>/{train,val}/{image,seg,depth}/<i>.png and <dir>/{train,val}/part_seg/<i>.tif "
        "(i = 0, 1, ...)"
    )

    def read_example(split_dir: Path, i: int) -> dict[str, np.ndarray]:
        image_path = split_dir / "image" / f"{i}.png"
        image = _open_image(image_path, "an 8-bit RGB image")
        if image.mode != "RGB":
            raise DataError(f"{image_path}: image mode {image.mode!r}, expected an 8-bit RGB png")
        image_size = (image.height, image.width)
        if image_size != size:
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0

        seg_path = split_dir / "seg" / f"{i}.png"
        seg = _integer_map(seg_path, "a Cityscapes labelIds png", 256)
        _check_size(seg, seg_path, image_size, image_path)

        part_path = split_dir / "part_seg" / f"{i}.tif"
        part = _integer_map(part_path, "a Cityscapes-Panoptic-Parts id tif", _PANOPTIC_LIMIT)
        _check_size(part, part_path, image_size, image_path)

        depth_path = split_dir / "depth" / f"{i}.png"
        depth = _integer_map(depth_path, "a 16-bit disparity png", 2**16)
        _check_size(depth, depth_path, image_size, image_path)
        depth = _nearest(depth, size)
        disparity = np.where(depth == 0, -1.0, (depth - 1) / DISPARITY_SCALE)
        return {
            "image": np.ascontiguousarray(pixels),
            "semantic": train_ids(_nearest(seg, size)),
            "part": part_classes(_nearest(part, size)),
            "disparity": disparity.astype(np.float32)[None],
        }

    splits = _read_layout(directory, CITYSCAPES_FOLDERS, layout, read_example)
    return DenseDataset(
        name="cityscapes",
        tasks=(
            DenseTaskSpec("semantic", "segmentation", CITYSCAPES_CLASSES),
            DenseTaskSpec("part", "segmentation", CITYSCAPES_PARTS),
            DenseTaskSpec("disparity", "disparity"),
        ),
        train=splits["train"],
        test=splits["test"],
        source=(
            f"CityScapes png / tif files (labelIds, panoptic parts, disparity) in {directory}, "
            f"resized to {height}×{width}"
        ),
    )


# --- a user's own dense data --------------------------------------------------------------------
# A user's own dense-prediction data: per-task folders in the NYUv2 layout, declared by a small
# YAML file.
#
# The dataset folder holds ``tasks.yaml`` and ``{train,val}/{image,<task>...}/<i>.npy`` (i = 0, 1,
# ...; the same n files in every folder of a split; ``val`` is the test split, as for NYUv2).
# ``tasks.yaml`` declares each task by its folder name::
#
#     tasks:
#       semantic: {kind: segmentation, classes: 13, ignore: 255}
#       depth: {kind: depth}
#       normal: {kind: normal}
#       albedo: {kind: regression, channels: 3}
#
# Kinds and their files (every file (H, W[, C]) with one H × W for the whole dataset):
#
# - ``image`` (not a task): (H, W, 3) floats in [0, 1];
# - ``segmentation``: (H, W) class ids 0..``classes``−1; ``ignore`` (optional, default −1) is the
#   value of unlabelled pixels, which become −1;
# - ``depth``: (H, W, 1) values ≥ 0, 0 = invalid;
# - ``disparity``: (H, W, 1) values ≥ 0, 0 = invalid (stored as −1, the disparity convention);
# - ``normal``: (H, W, 3) in [−1, 1], the zero vector = invalid;
# - ``regression``: ``channels`` (optional, default 1) real-valued maps, any finite values (e.g. a
#   heat map, albedo, height): (H, W, C) floats or integers, or (H, W) when C is 1; NaN in any
#   channel makes the pixel invalid (stored as NaN in all its channels), ±inf is an error.
#
# Every problem is a ``DataError`` of one line naming the file (``tasks.yaml`` and the key, or the
# ``.npy`` file), what was expected and how to fix it; the reader only reads.

TASKS_FILE = "tasks.yaml"
IMAGE_FOLDER = "image"
_KEYS = {
    "segmentation": {"kind", "classes", "ignore"},
    "depth": {"kind"},
    "disparity": {"kind"},
    "normal": {"kind"},
    "regression": {"kind", "channels"},
}
_EXAMPLE = "tasks: {semantic: {kind: segmentation, classes: 13, ignore: 255}, depth: {kind: depth}}"


def read_tasks(path: Path) -> tuple[tuple[DenseTaskSpec, ...], dict[str, int]]:
    """The tasks ``tasks.yaml`` at ``path`` declares, in its order, and each segmentation task's
    ignore value."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise DataError(
            f"{path}: not found; a dense dataset folder declares its tasks there, e.g. {_EXAMPLE}"
        ) from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: not readable YAML ({' '.join(str(exc).split())})") from exc
    tasks = document.get("tasks") if isinstance(document, dict) else None
    if not isinstance(tasks, dict) or not tasks:
        raise DataError(f"{path}: expected a non-empty mapping under `tasks:`, e.g. {_EXAMPLE}")
    specs, ignores = [], {}
    for name, entry in tasks.items():
        where = f"{path}: tasks.{name}"
        if not isinstance(name, str) or not name.isidentifier() or name == IMAGE_FOLDER:
            raise DataError(
                f"{path}: task name {name!r} must be a folder name of letters, digits and _ "
                f"(not {IMAGE_FOLDER!r}, the images' folder)"
            )
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected a mapping such as {{kind: depth}}, got {entry!r}")
        kind = entry.get("kind")
        if kind not in DENSE_KINDS:
            raise DataError(f"{where}.kind: {kind!r} is not one of {', '.join(DENSE_KINDS)}")
        unknown = sorted(set(entry) - _KEYS[kind])
        if unknown:
            raise DataError(
                f"{where}: unknown key {unknown[0]!r} for a {kind} task; it takes "
                f"{', '.join(sorted(_KEYS[kind]))}"
            )
        classes = channels = None
        if kind == "regression":
            channels = _integer(entry.get("channels", 1), f"{where}.channels", low=1)
        if kind == "segmentation":
            classes = _integer(entry.get("classes"), f"{where}.classes", low=1)
            ignore = _integer(entry.get("ignore", -1), f"{where}.ignore", low=-1)
            if 0 <= ignore < classes:
                raise DataError(
                    f"{where}.ignore: {ignore} is one of the {classes} class ids 0..{classes - 1}; "
                    "use a value outside them (e.g. 255 or -1)"
                )
            ignores[name] = ignore
        specs.append(DenseTaskSpec(name, kind, classes, channels))
    return tuple(specs), ignores


def _integer(value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise DataError(f"{where}: expected an integer >= {low}, got {value!r}")
    return value


def _segmentation(path: Path, shape: _Shape, classes: int, ignore: int) -> np.ndarray:
    """(H, W) class ids, ``ignore`` → −1 -> (H, W) int64."""
    array = _load_npy(path)
    if array.ndim != 2:
        raise DataError(f"{path}: labels have shape {array.shape}, expected (H, W)")
    shape.check(array, path)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"{path}: labels should be class ids (H, W), found dtype {array.dtype}")
    values = array.astype(np.float64)
    if not np.isfinite(values).all() or (values != np.round(values)).any():
        raise DataError(f"{path}: labels should be whole class ids, found a fractional or NaN one")
    labels = values.astype(np.int64)
    labels[labels == ignore] = -1
    bad = (labels < -1) | (labels >= classes)
    if bad.any():
        raise DataError(
            f"{path}: label {int(labels[bad][0])} out of range; expected 0..{classes - 1} or the "
            f"ignore value {ignore} ({int(bad.sum())} bad pixels; declare classes or ignore in "
            f"{TASKS_FILE})"
        )
    return labels


def _regression(path: Path, shape: _Shape, channels: int) -> np.ndarray:
    """(H, W, C) real values, or (H, W) when C is 1; NaN in a channel = invalid pixel ->
    (C, H, W) float32 with NaN in every channel of an invalid pixel."""
    array = _load_npy(path)
    expected = f"(H, W, {channels})" + (" or (H, W)" if channels == 1 else "")
    flat = channels == 1 and array.ndim == 2
    if not flat and (array.ndim != 3 or array.shape[2] != channels):
        raise DataError(
            f"{path}: regression target has shape {array.shape}, expected {expected} for "
            f"channels: {channels}; save the map as (H, W, C) or declare its C as channels in "
            f"{TASKS_FILE}"
        )
    shape.check(array, path)
    if flat:
        array = array[..., None]
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DataError(
            f"{path}: regression target should be real numbers {expected} (floats, NaN for "
            f"invalid pixels), found dtype {array.dtype}; save it as float32"
        )
    wide = array.astype(np.float64, copy=False)
    if np.isinf(wide).any():
        raise DataError(
            f"{path}: regression target holds ±inf ({int(np.isinf(wide).sum())} values); "
            "expected finite values, with NaN marking invalid pixels"
        )
    if (np.abs(wide) > np.finfo(np.float32).max).any():  # would become inf as float32
        raise DataError(
            f"{path}: regression target holds values beyond float32's range (largest magnitude "
            f"{float(np.nanmax(np.abs(wide))):g}); rescale the map"
        )
    values = np.ascontiguousarray(wide.transpose(2, 0, 1), dtype=np.float32)
    values[:, np.isnan(values).any(axis=0)] = np.nan  # an invalid pixel is NaN in every channel
    return values


def read_dense_folder(directory: Path, name: str = "user") -> DenseDataset:
    """Read the dense dataset in ``directory`` (the module doc's layout), its tasks from
    ``directory/tasks.yaml``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(
            f"{directory}: dense dataset folder not found; expected {TASKS_FILE} and "
            "{train,val}/{image,<task>...}/<i>.npy"
        )
    specs, ignores = read_tasks(directory / TASKS_FILE)
    folders = dict.fromkeys((IMAGE_FOLDER, *(spec.name for spec in specs)), ".npy")
    layout = f"<dir>/{{train,val}}/{{{','.join(folders)}}}/<i>.npy (i = 0, 1, ...)"
    shape = _Shape()

    def read_example(split_dir: Path, i: int) -> dict[str, np.ndarray]:
        example = {IMAGE_FOLDER: _npy_image(split_dir / IMAGE_FOLDER / f"{i}.npy", shape)}
        for spec in specs:
            path = split_dir / spec.name / f"{i}.npy"
            if spec.kind == "segmentation":
                example[spec.name] = _segmentation(path, shape, spec.classes, ignores[spec.name])
            elif spec.kind == "normal":
                example[spec.name] = _npy_normal(path, shape)
            elif spec.kind == "regression":
                example[spec.name] = _regression(path, shape, spec.channels)
            else:
                values = _npy_depth(path, shape, spec.kind)
                if spec.kind == "disparity":
                    values = np.where(values == 0, -1.0, values)
                example[spec.name] = values.astype(np.float32)
        return example

    splits = _read_layout(directory, folders, layout, read_example)
    return DenseDataset(
        name=name,
        tasks=specs,
        train=splits["train"],
        test=splits["test"],
        source=f"a user's dense dataset ({TASKS_FILE} and NYUv2-layout .npy files) in {directory}",
    )
