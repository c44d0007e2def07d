"""Writers of tiny datasets in the real on-disk formats, for tests (nothing binary is committed).

Every training image carries a unique id in its first two pixels (``id = p[0] + 256 * p[1]``, see
``image_ids``) so tests can follow examples through the validation split.
"""

from __future__ import annotations

import gzip
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import torch

from auxbench.config import TrainConfig

FASHION_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialise a uint8 array in idx format (magic 0x0000080<ndim>, big-endian dimensions)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """Write ``array`` as an idx file, gzipped when ``compress``."""
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def _images_with_ids(n: int, shape: tuple[int, ...], first_id: int, rng: np.random.Generator):
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    flat = images.reshape(n, -1)
    ids = np.arange(first_id, first_id + n)
    flat[:, 0], flat[:, 1] = ids % 256, ids // 256
    return images


def image_ids(images: torch.Tensor) -> list[int]:
    """The ids embedded by these writers in uint8 (N, C, H, W) images."""
    flat = images.reshape(len(images), -1).long()
    return (flat[:, 0] + 256 * flat[:, 1]).tolist()


def write_fashion_mnist(
    directory: Path, n_train: int = 40, n_test: int = 20, compress: bool = True, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write the four Fashion-MNIST idx files (labels ``i % 10``) and return the arrays written."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": _images_with_ids(n_train, (28, 28), 0, rng),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": _images_with_ids(n_test, (28, 28), n_train, rng),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    suffix = ".gz" if compress else ""
    for name, key in zip(FASHION_FILES, arrays, strict=True):
        write_idx(directory / f"{name}{suffix}", arrays[key], compress)
    return arrays


def write_pickle(path: Path, content: object) -> None:
    """Pickle ``content`` like the original CIFAR files: protocol 2, numpy 1 module names."""
    path.write_bytes(pickle.dumps(content, protocol=2).replace(b"numpy._core", b"numpy.core"))


def _cifar_data(n: int, first_id: int, rng: np.random.Generator) -> np.ndarray:
    return _images_with_ids(n, (3 * 32 * 32,), first_id, rng)


def write_cifar10(root: Path, per_batch: int = 6, n_test: int = 10, seed: int = 0) -> dict:
    """Write ``root/cifar-10-batches-py``: five training batches, a test batch, the meta file."""
    rng = np.random.default_rng(seed)
    directory = root / "cifar-10-batches-py"
    directory.mkdir(parents=True, exist_ok=True)
    labels = []
    for i in range(5):
        batch_labels = [int(x) for x in rng.integers(0, 10, per_batch)]
        labels += batch_labels
        data = _cifar_data(per_batch, i * per_batch, rng)
        write_pickle(directory / f"data_batch_{i + 1}", {b"data": data, b"labels": batch_labels})
    test = _cifar_data(n_test, 5 * per_batch, rng)
    test_labels = [int(i % 10) for i in range(n_test)]
    write_pickle(directory / "test_batch", {b"data": test, b"labels": test_labels})
    names = [f"name{i}".encode() for i in range(10)]
    write_pickle(directory / "batches.meta", {b"label_names": names, b"num_vis": 3072})
    return {"labels": labels, "test_data": test, "test_labels": test_labels}


def cifar100_coarse_of(fine: np.ndarray) -> np.ndarray:
    """The deliberately scrambled superclass of each fine class used by ``write_cifar100``."""
    return (fine * 7 + 3) % 20


def write_cifar100(
    root: Path,
    n_train: int = 200,
    n_test: int = 40,
    seed: int = 0,
    coarse_names: list[str] | None = None,
) -> dict:
    """Write ``root/cifar-100-python/{train,test,meta}`` with fine labels ``i % 100`` (so image
    ``i`` of a file has fine label ``i % 100``) and superclass names ``coarse_names`` (default
    ``coarse0`` ...)."""
    rng = np.random.default_rng(seed)
    directory = root / "cifar-100-python"
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, n, first_id in (("train", n_train, 0), ("test", n_test, n_train)):
        fine = np.arange(n) % 100
        content = {
            b"data": _cifar_data(n, first_id, rng),
            b"fine_labels": fine.tolist(),
            b"coarse_labels": cifar100_coarse_of(fine).tolist(),
        }
        write_pickle(directory / name, content)
        written[name] = content
    write_pickle(
        directory / "meta",
        {
            b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [
                name.encode() for name in coarse_names or [f"coarse{i}" for i in range(20)]
            ],
        },
    )
    return written


def write_svhn(root: Path, n_train: int = 30, n_test: int = 20, seed: int = 0) -> dict:
    """Write ``root/svhn/{train,test}_32x32.mat``, digits stored as 1..10 (10 meaning 0)."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    directory = root / "svhn"
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, n, first_id in (("train", n_train, 0), ("test", n_test, n_train)):
        images = _images_with_ids(n, (3, 32, 32), first_id, rng)  # (N, C, H, W)
        x = np.ascontiguousarray(images.transpose(2, 3, 1, 0))  # SVHN layout (H, W, C, N)
        y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(n, 1)
        savemat(directory / f"{name}_32x32.mat", {"X": x, "y": y})
        written[name] = {"images": images, "y": y}
    return written


def make_tar(root: Path, directory_name: str, archive_name: str) -> Path:
    """Pack ``root/directory_name`` into the tar.gz ``root/archive_name``; delete the directory."""
    archive = root / archive_name
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / directory_name, arcname=directory_name)
    shutil.rmtree(root / directory_name)
    return archive


def synthetic_config(**overrides) -> TrainConfig:
    """A quick CPU training config on the synthetic dataset; ``overrides`` replace any key."""
    values = {
        "dataset": "synthetic",
        "model": "small",
        "epochs": 4,
        "batch_size": 50,
        "lr": 0.05,
        "device": "cpu",
        "seed": 0,
    }
    return TrainConfig(**{**values, **overrides})


# --- crashing and resuming a run -------------------------------------------------------------

TIMING_KEYS = {"epoch_time_s", "wall_time_s"}


def without_timing(rows: list[dict]) -> list[dict]:
    """History rows without their wall-time columns (which a resumed run cannot reproduce)."""
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in rows]


class Crash(Exception):
    """Stands for the process dying right after a checkpoint."""


def crash_after(epoch: int):
    """An ``inject_fault`` stand-in (monkeypatch ``auxbench.training.loop.inject_fault``) that
    raises ``Crash`` once epoch ``epoch``'s checkpoint is written."""

    def fault(out_dir, finished):
        if finished == epoch:
            raise Crash

    return fault
