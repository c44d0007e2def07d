"""The named datasets: where their files live, how to read them, class names, human aux labels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType

import torch

from auxbench.data.assemble import RawDataset
from auxbench.data.dataset import DataError, Split
from auxbench.data.readers import (
    extract_archive,
    read_cifar_batch,
    read_cifar_names,
    read_idx_pair,
    read_svhn_mat,
)
from auxbench.data.synthetic import synthetic_raw

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs the gzipped idx files."""

FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Shirt",
    "Sandal",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_MNIST_GROUPS = ("top", "lower body / one-piece", "footwear", "bag")
FASHION_MNIST_GROUP_OF = (0, 1, 0, 1, 0, 0, 2, 2, 3, 2)
"""Coarse group of each Fashion-MNIST class (index into ``FASHION_MNIST_GROUPS``)."""

_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
_SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
_CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
_CIFAR100_FILES = ("train", "test", "meta")
CIFAR100_SUPERCLASSES = 20
_SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")


@dataclass(frozen=True)
class Location:
    """Where a dataset's files are; ``archive`` is extracted first when set; None: generated."""

    directory: Path | None
    archive: Path | None = None

    def describe(self) -> str:
        """Say where the data will be read from."""
        if self.directory is None:
            return "generated in memory, no files needed"
        if self.archive is not None:
            return f"{self.archive} (extracted to {self.directory} on first load)"
        return str(self.directory)


@dataclass(frozen=True)
class DatasetSpec:
    """How to find (``locate``, raising ``DataError`` with instructions) and read one dataset.

    ``domains`` is None for a single-task dataset (``load`` gives a ``Dataset``); for a
    multi-domain one it is the number of domains its reader yields as the raw labels, the raw
    auxiliary labels being the classes within them (``load`` gives a ``MultiDomainDataset``).
    """

    summary: str
    locate: Callable[[Path], Location]
    read: Callable[[Location], RawDataset]
    domains: int | None = None


def fashion_mnist_file(directory: Path, name: str) -> Path | None:
    """The existing raw or gzipped copy of idx file ``name`` in ``directory``, or None."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def missing_fashion_mnist_files(directory: Path) -> list[Path]:
    """The ``.gz`` paths of the Fashion-MNIST files that ``directory`` lacks (in either form)."""
    return [
        directory / f"{name}.gz"
        for name in FASHION_MNIST_FILES
        if fashion_mnist_file(directory, name) is None
    ]


def _locate_fashion_mnist(root: Path) -> Location:
    local = root / "fashion-mnist"
    for directory in (local, SYSTEM_FASHION_MNIST):
        if not missing_fashion_mnist_files(directory):
            return Location(directory)
    missing = "\n  ".join(str(path) for path in missing_fashion_mnist_files(local))
    raise DataError(
        f"fashion-mnist: missing files:\n  {missing}\n"
        f"(uncompressed copies without .gz work too; {SYSTEM_FASHION_MNIST} was searched as well). "
        "Get them with `auxbench datasets --fetch fashion-mnist`, or "
        f"`apt install dataset-fashion-mnist` (which installs them into {SYSTEM_FASHION_MNIST})."
    )


def _read_fashion_mnist(location: Location, coarse: bool) -> RawDataset:
    directory = location.directory
    group_of = torch.tensor(FASHION_MNIST_GROUP_OF)

    def read(prefix: str) -> Split:
        images, labels = read_idx_pair(
            fashion_mnist_file(directory, f"{prefix}-images-idx3-ubyte"),
            fashion_mnist_file(directory, f"{prefix}-labels-idx1-ubyte"),
            num_classes=len(FASHION_MNIST_CLASSES),
        )
        return (
            Split(images, group_of[labels], labels)
            if coarse
            else Split(images, labels, group_of[labels])
        )

    names = (
        (FASHION_MNIST_GROUPS, FASHION_MNIST_CLASSES)
        if coarse
        else (FASHION_MNIST_CLASSES, FASHION_MNIST_GROUPS)
    )
    return RawDataset(
        name="fashion-mnist-coarse" if coarse else "fashion-mnist",
        train=read("train"),
        test=read("t10k"),
        class_names=names[0],
        aux_class_names=names[1],
        crop_padding=2,
        horizontal_flip=True,
        source=str(directory),
    )


def _locate_files(
    root: Path,
    name: str,
    subdir: str,
    files: tuple[str, ...],
    how_to_get: str,
    archive: str | None = None,
) -> Location:
    """Find ``files`` in ``root/subdir``, else an ``archive`` in ``root`` to extract them from.

    Raises ``DataError`` saying what is missing and ``how_to_get`` it otherwise.
    """
    directory = root / subdir
    missing = [directory / file for file in files if not (directory / file).is_file()]
    if not missing:
        return Location(directory)
    if archive is not None and (root / archive).is_file():
        return Location(directory, root / archive)
    if directory.is_dir():
        listing = "files:\n  " + "\n  ".join(str(path) for path in missing)
    else:
        listing = f"directory {directory} (holding {', '.join(files)})"
    raise DataError(f"{name}: missing {listing}\n{how_to_get}")


def _extracted(location: Location, files: tuple[str, ...]) -> Path:
    """Extract ``location.archive`` if set; check that the directory holds all of ``files``."""
    directory = location.directory
    if location.archive is not None:
        extract_archive(location.archive, directory.name, directory.parent)
        for file in files:
            if not (directory / file).is_file():
                raise DataError(
                    f"{location.archive}: archive does not contain {directory.name}/{file}"
                )
    return directory


def _read_cifar10(location: Location) -> RawDataset:
    directory = _extracted(location, _CIFAR10_FILES)
    names = read_cifar_names(directory / "batches.meta", b"label_names")
    batches = [
        read_cifar_batch(directory / f"data_batch_{i}", [b"labels"], [len(names)])
        for i in range(1, 6)
    ]
    test_images, (test_labels,) = read_cifar_batch(
        directory / "test_batch", [b"labels"], [len(names)]
    )
    return RawDataset(
        name="cifar10",
        train=Split(
            torch.cat([images for images, _ in batches]),
            torch.cat([labels for _, (labels,) in batches]),
        ),
        test=Split(test_images, test_labels),
        class_names=names,
        aux_class_names=None,
        crop_padding=4,
        horizontal_flip=True,
        source=str(directory),
    )


def _read_cifar100(location: Location, name: str) -> RawDataset:
    """CIFAR-100 with the superclasses (``coarse_labels``) as labels, the fine classes as
    auxiliary labels."""
    directory = _extracted(location, _CIFAR100_FILES)
    coarse_names = read_cifar_names(directory / "meta", b"coarse_label_names")
    fine_names = read_cifar_names(directory / "meta", b"fine_label_names")

    def read(file: str) -> Split:
        images, (coarse, fine) = read_cifar_batch(
            directory / file,
            [b"coarse_labels", b"fine_labels"],
            [len(coarse_names), len(fine_names)],
        )
        return Split(images, coarse, fine)

    return RawDataset(
        name=name,
        train=read("train"),
        test=read("test"),
        class_names=coarse_names,
        aux_class_names=fine_names,
        crop_padding=4,
        horizontal_flip=True,
        source=str(directory),
    )


def _read_svhn(location: Location) -> RawDataset:
    directory = location.directory
    return RawDataset(
        name="svhn",
        train=Split(*read_svhn_mat(directory / "train_32x32.mat")),
        test=Split(*read_svhn_mat(directory / "test_32x32.mat")),
        class_names=tuple(str(digit) for digit in range(10)),
        aux_class_names=None,
        crop_padding=4,
        horizontal_flip=False,
        source=str(directory),
    )


def _locate_cifar(
    root: Path, name: str, subdir: str, files: tuple[str, ...], archive: str
) -> Location:
    how_to_get = (
        f"Download {archive} from {_CIFAR_URL} and either put it at {root / archive} "
        f"(it is extracted on first load) or extract it inside {root} so that "
        f"{root / subdir} exists."
    )
    return _locate_files(root, name, subdir, files, how_to_get, archive)


def _locate_svhn(root: Path) -> Location:
    how_to_get = (
        f"Download {' and '.join(_SVHN_FILES)} (format 2, cropped digits) from {_SVHN_URL} "
        f"into {root / 'svhn'}."
    )
    return _locate_files(root, "svhn", "svhn", _SVHN_FILES, how_to_get)


DATASETS: MappingProxyType[str, DatasetSpec] = MappingProxyType(
    {
        "fashion-mnist": DatasetSpec(
            "Fashion-MNIST, 10 clothing classes; human aux: 4 coarse groups",
            _locate_fashion_mnist,
            partial(_read_fashion_mnist, coarse=False),
        ),
        "fashion-mnist-coarse": DatasetSpec(
            "Fashion-MNIST, 4 coarse groups; human aux: the 10 classes",
            _locate_fashion_mnist,
            partial(_read_fashion_mnist, coarse=True),
        ),
        "cifar10": DatasetSpec(
            "CIFAR-10, 10 classes; no human aux",
            partial(
                _locate_cifar,
                name="cifar10",
                subdir="cifar-10-batches-py",
                files=_CIFAR10_FILES,
                archive="cifar-10-python.tar.gz",
            ),
            _read_cifar10,
        ),
        "cifar100-20": DatasetSpec(
            "CIFAR-100, 20 superclasses; human aux: the 100 fine classes",
            partial(
                _locate_cifar,
                name="cifar100-20",
                subdir="cifar-100-python",
                files=_CIFAR100_FILES,
                archive="cifar-100-python.tar.gz",
            ),
            partial(_read_cifar100, name="cifar100-20"),
        ),
        "cifar100-mtl": DatasetSpec(
            "CIFAR-100 as 20 domains (the superclasses), each a 5-way task over its fine classes",
            partial(
                _locate_cifar,
                name="cifar100-mtl",
                subdir="cifar-100-python",
                files=_CIFAR100_FILES,
                archive="cifar-100-python.tar.gz",
            ),
            partial(_read_cifar100, name="cifar100-mtl"),
            domains=CIFAR100_SUPERCLASSES,
        ),
        "svhn": DatasetSpec(
            "SVHN digits (train and test, no extra), 10 classes; no human aux",
            _locate_svhn,
            _read_svhn,
        ),
        "synthetic": DatasetSpec(
            "synthetic templates + noise, 4 classes; human aux: 8 sub-classes (for tests)",
            lambda root: Location(None),
            lambda location: synthetic_raw(),
        ),
    }
)
"""Every dataset ``load`` accepts, by name."""
