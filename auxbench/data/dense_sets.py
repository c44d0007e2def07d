"""The dense-prediction datasets by name: where their files lie under the data root and which
reader reads them (``auxbench.data.dense``); the embedded ``scenes`` is generated there on first
use (``auxbench.data.scenes``), deterministically, so every machine trains on the same files.

| name | folder under the data root | layout |
|---|---|---|
| ``scenes`` | ``scenes/`` | NYUv2's, generated: rendered rooms, 48×64 |
| ``nyuv2`` | ``nyuv2/`` | MTAN / Auto-λ preprocessed NYUv2 (``.npy`` per image and task) |
| ``cityscapes`` | ``cityscapes/`` | Auto-λ's 3 tasks from PNG / TIFF (labelIds, panoptic parts, disparity) |
| ``cityscapes-7`` | ``cityscapes-npy/`` | MTAN / LibMTL / Nash-MTL ``.npy`` (7 classes + disparity) |
| ``cityscapes-19`` | ``cityscapes-npy/`` | the same files with the 19-class labels |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from auxbench.data.dataset import DataError
from auxbench.data.dense import (
    DenseDataset,
    DenseSplit,
    DenseTaskSpec,
    read_cityscapes,
    read_cityscapes_npy,
    read_nyuv2,
)
from auxbench.data.loader import default_root
from auxbench.data.scenes import SCENE_CLASSES, write_scenes

SCENES_TRAIN = 1600
SCENES_TEST = 400
SCENES_SEED = 0
SCENES_SIZE = (48, 64)


@dataclass(frozen=True)
class DenseSpec:
    """A dense dataset: its summary, folder under the data root, task names (target fields),
    reader, how to get its files
    (``howto``) and, for an embedded one, how to write them (``generate``)."""

    summary: str
    folder: str
    tasks: tuple[str, ...]
    read: Callable[[Path], DenseDataset]
    howto: str
    generate: Callable[[Path], None] | None = None


DENSE_DATASETS: dict[str, DenseSpec] = {
    "scenes": DenseSpec(
        f"rendered rooms with boxes, spheres and cylinders, {SCENES_SIZE[0]}×{SCENES_SIZE[1]}: "
        f"{len(SCENE_CLASSES)}-class segmentation, depth, normals; {SCENES_TRAIN} train / "
        f"{SCENES_TEST} test (embedded, generated)",
        "scenes",
        ("semantic", "depth", "normal"),
        lambda directory: read_nyuv2(directory, classes=len(SCENE_CLASSES), name="scenes"),
        "it is generated on first use",
        lambda directory: write_scenes(
            directory, SCENES_TRAIN, SCENES_TEST, *SCENES_SIZE, seed=SCENES_SEED
        ),
    ),
    "nyuv2": DenseSpec(
        "NYUv2, 13-class segmentation, depth, normals; 795 train / 654 test, 288×384",
        "nyuv2",
        ("semantic", "depth", "normal"),
        lambda directory: read_nyuv2(directory, classes=13, name="nyuv2"),
        "put the MTAN / Auto-λ preprocessed NYUv2 there ({train,val}/{image,label,depth,normal}/"
        "<i>.npy; docs/dense.md)",
    ),
    "cityscapes": DenseSpec(
        "CityScapes, 19-class and 10-part segmentation, disparity; 2975 train / 500 test, "
        "resized to 256×512",
        "cityscapes",
        ("semantic", "part", "disparity"),
        read_cityscapes,
        "put CityScapes there as {train,val}/{image,seg,depth}/<i>.png and part_seg/<i>.tif "
        "(docs/dense.md)",
    ),
    "cityscapes-7": DenseSpec(
        "CityScapes as MTAN / LibMTL / Nash-MTL preprocess it: 7-class segmentation, disparity; "
        "128×256",
        "cityscapes-npy",
        ("semantic", "disparity"),
        lambda directory: read_cityscapes_npy(directory, classes=7),
        "put the MTAN preprocessed CityScapes there ({train,val}/{image,label_7,depth}/<i>.npy; "
        "docs/dense.md)",
    ),
    "cityscapes-19": DenseSpec(
        "CityScapes as MTAN preprocesses it, with the 19-class labels: segmentation, disparity; "
        "128×256",
        "cityscapes-npy",
        ("semantic", "disparity"),
        lambda directory: read_cityscapes_npy(directory, classes=19),
        "put the MTAN preprocessed CityScapes there ({train,val}/{image,label_19,depth}/<i>.npy; "
        "docs/dense.md)",
    ),
}


def dense_directory(name: str, root: str | Path | None = None) -> Path:
    """Where dataset ``name``'s files lie: its folder under ``root`` (default: the data root)."""
    if name not in DENSE_DATASETS:
        raise DataError(
            f"unknown dense dataset {name!r}; choose one of: {', '.join(DENSE_DATASETS)}"
        )
    return Path(root if root is not None else default_root()) / DENSE_DATASETS[name].folder


def load_dense(name: str, root: str | Path | None = None) -> DenseDataset:
    """Dense dataset ``name`` read from its folder under ``root``; the embedded one is generated
    there first when its folder is missing. Raises ``DataError`` saying how to get missing
    files."""
    directory = dense_directory(name, root)
    spec = DENSE_DATASETS[name]
    if not directory.is_dir():
        if spec.generate is None:
            raise DataError(f"{name}: {directory} does not exist; {spec.howto}")
        spec.generate(directory)
    return spec.read(directory)


NYUV2_SHAPED = "nyuv2-shaped"
"""Not a dataset: random tensors of NYUv2's shapes (795 train, 654 test, 288×384, 13 classes), for
timing the dense networks where NYUv2's files are not (``auxbench bench --dense nyuv2-shaped``)."""


def nyuv2_shaped(train: int = 795, test: int = 654, seed: int = 0) -> DenseDataset:
    """Random images, labels, depth and unit normals of NYUv2's shapes, for cost measurements
    only (nothing in them can be learned)."""
    generator = torch.Generator().manual_seed(seed)

    def split(count: int) -> DenseSplit:
        size = (count, 288, 384)
        normal = torch.nn.functional.normalize(
            torch.randn(count, 3, *size[1:], generator=generator), dim=1
        )
        return DenseSplit(
            torch.rand(count, 3, *size[1:], generator=generator),
            {
                "semantic": torch.randint(-1, 13, size, generator=generator),
                "depth": torch.rand(count, 1, *size[1:], generator=generator) * 10,
                "normal": normal,
            },
        )

    tasks = (
        DenseTaskSpec("semantic", "segmentation", 13),
        DenseTaskSpec("depth", "depth"),
        DenseTaskSpec("normal", "normal"),
    )
    return DenseDataset(NYUV2_SHAPED, tasks, split(train), split(test), "random, NYUv2's shapes")
