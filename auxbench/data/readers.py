"""Readers for the real on-disk formats: idx (Fashion-MNIST), CIFAR pickles, SVHN ``.mat`` files.

torchvision's dataset classes are not used here: its CIFAR and SVHN classes verify the md5 sum of
whole files, which rejects the tiny fixtures the tests write, and its CIFAR100 exposes only the fine
labels, not the 20 superclasses. Every problem with a file is raised as a ``DataError`` naming the
file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import math
import pickle
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from auxbench.data.dataset import DataError

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_UNSIGNED_BYTE = 0x08
_CIFAR_SIDE = 32
_CIFAR_PIXELS = 3 * _CIFAR_SIDE * _CIFAR_SIDE
# The only globals a CIFAR pickle needs: numpy's array reconstruction helpers (numpy 1 and 2
# spellings), and the codec call by which pickle protocol 2 spells bytes when written by Python 3.
_PICKLE_NUMPY_NAMES = frozenset({"_reconstruct", "_frombuffer", "ndarray", "dtype", "scalar"})
_PICKLE_GLOBALS = frozenset({("_codecs", "encode")})


def _read_bytes(path: Path) -> bytes:
    """Return the content of ``path``, gunzipped when it starts with the gzip magic."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc})") from exc
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path}: corrupt or truncated gzip data ({exc}); fetch the file again"
        ) from exc


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte idx file (magic ``0x0000080<ndim>``), gzipped or raw."""
    raw = _read_bytes(path)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(
            f"{path}: truncated idx file ({len(raw)} bytes, shorter than its {header}-byte header)"
        )
    magic = int.from_bytes(raw[:4], "big")
    expected = (_IDX_UNSIGNED_BYTE << 8) | ndim
    if magic != expected:
        raise DataError(
            f"{path}: bad idx magic number 0x{magic:08x}, expected 0x{expected:08x} "
            f"(unsigned bytes, {ndim} dimensions); is this the right file?"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = math.prod(dims)
    found = len(raw) - header
    if found != size:
        problem = "truncated" if found < size else "trailing bytes"
        raise DataError(
            f"{path}: size mismatch ({problem}): header declares shape {dims} = {size} bytes "
            f"of data, file holds {found}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _as_array(value: object, path: Path, what: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: {what} is not an array ({exc})") from exc


def _check_labels(
    labels: np.ndarray, num_classes: int, path: Path, what: str = "labels"
) -> torch.Tensor:
    """Return ``labels`` as int64; ``DataError`` when any lies outside ``[0, num_classes)``."""
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: {what} should be integers, found {labels.dtype}")
    labels = labels.astype(np.int64).reshape(-1)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise DataError(
            f"{path}: {what} out of range: found {int(labels[bad][0])}, expected "
            f"0..{num_classes - 1} ({int(bad.sum())} bad entries)"
        )
    return torch.from_numpy(labels)


def _check_count(
    images: torch.Tensor, labels: torch.Tensor, path: Path, other: Path | None = None
) -> None:
    if images.shape[0] != labels.shape[0]:
        where = f"{path} and {other}" if other is not None else str(path)
        raise DataError(
            f"{where}: image/label count mismatch: {images.shape[0]} images but "
            f"{labels.shape[0]} labels"
        )


def read_idx_pair(
    images_path: Path, labels_path: Path, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read idx images (N, H, W) and labels (N,) as uint8 (N, 1, H, W) and int64 tensors."""
    images = torch.from_numpy(read_idx(images_path, ndim=3)).unsqueeze(1)
    labels = _check_labels(read_idx(labels_path, ndim=1), num_classes, labels_path)
    _check_count(images, labels, images_path, labels_path)
    return images, labels


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global but those above, so a dataset file cannot run code."""

    def find_class(self, module: str, name: str) -> object:
        if module.split(".")[0] == "numpy" and name in _PICKLE_NUMPY_NAMES:
            return super().find_class(module.replace("numpy.core", "numpy._core", 1), name)
        if (module, name) in _PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a dataset file")


def _load_pickle(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            content = _NumpyOnlyUnpickler(handle, encoding="bytes").load()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc})") from exc
    # unpickling a damaged file can raise almost any exception type
    except Exception as exc:
        raise DataError(
            f"{path}: not a readable CIFAR pickle ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(content, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(content).__name__}")
    return content


def _get(content: dict, key: bytes, path: Path) -> object:
    if key not in content:
        found = ", ".join(repr(k) for k in content)
        raise DataError(f"{path}: missing key {key!r} (found keys: {found})")
    return content[key]


def read_cifar_batch(
    path: Path, label_keys: Sequence[bytes], num_classes: Sequence[int]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Read a CIFAR batch pickle: uint8 (N, 3, 32, 32) images, an int64 tensor per label key."""
    content = _load_pickle(path)
    data = _as_array(_get(content, b"data", path), path, "b'data'")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS:
        raise DataError(
            f"{path}: shape mismatch: b'data' is {data.dtype} {data.shape}, "
            f"expected uint8 (N, {_CIFAR_PIXELS})"
        )
    images = torch.from_numpy(data.reshape(-1, 3, _CIFAR_SIDE, _CIFAR_SIDE).copy())
    labels = []
    for key, count in zip(label_keys, num_classes, strict=True):
        values = _check_labels(
            _as_array(_get(content, key, path), path, repr(key)), count, path, what=repr(key)
        )
        _check_count(images, values, path)
        labels.append(values)
    return images, labels


def read_cifar_names(path: Path, key: bytes) -> tuple[str, ...]:
    """Read the class names stored under ``key`` in a CIFAR meta pickle."""
    names = _get(_load_pickle(path), key, path)
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, bytes | str) for n in names)
    ):
        raise DataError(f"{path}: {key!r} should be a non-empty list of names")
    return tuple(n.decode() if isinstance(n, bytes) else n for n in names)


def read_svhn_mat(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read an SVHN ``*_32x32.mat`` file: uint8 (N, 3, 32, 32) images, int64 digits (10 -> 0)."""
    from scipy.io import loadmat

    try:
        content = loadmat(path, variable_names=("X", "y"))
    # scipy raises ValueError, TypeError, MatReadError, ... for damaged files
    except Exception as exc:
        raise DataError(
            f"{path}: not a readable MATLAB file ({type(exc).__name__}: {exc})"
        ) from exc
    for key in ("X", "y"):
        if key not in content:
            raise DataError(f"{path}: missing variable {key!r}")
    x, y = content["X"], content["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(
            f"{path}: shape mismatch: X is {x.dtype} {x.shape}, expected uint8 (32, 32, 3, N)"
        )
    labels = _check_labels(y, 11, path)
    labels[labels == 10] = 0
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))
    _check_count(images, labels, path)
    return images, labels


def extract_archive(archive: Path, member_dir: str, dest: Path) -> None:
    """Extract the ``member_dir/`` entries of a tar archive into ``dest``, atomically per file.

    Only regular files and directories with relative paths inside ``member_dir/`` are accepted
    (no absolute paths, ``..``, links or devices); they are extracted, with tarfile's ``data``
    filter where this Python has it, into a temporary directory inside ``dest``, then each file is
    moved into place with an atomic rename.
    """
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = [
                    m for m in tar.getmembers() if PurePosixPath(m.name).parts[:1] == (member_dir,)
                ]
                if not members:
                    raise DataError(
                        f"{archive}: archive has no {member_dir}/ directory; "
                        "is this the right archive?"
                    )
                for member in members:
                    if ".." in PurePosixPath(member.name).parts or not (
                        member.isfile() or member.isdir()
                    ):
                        raise DataError(
                            f"{archive}: refusing to extract {member.name!r} (a link, device or "
                            "path outside the archive's directory); is this the right archive?"
                        )
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4, 3.10.12
                    tar.extractall(staging, members=members, filter="data")
                else:
                    tar.extractall(staging, members=members)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise DataError(
                f"{archive}: corrupt or truncated archive ({exc}); download it again"
            ) from exc
        for source in sorted((staging / member_dir).rglob("*")):
            if source.is_file():
                target = dest / source.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                source.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
