"""Data preparation: load a dataset through its real readers and write a checksummed manifest.

The manifest is what the training jobs depend on: when a dataset's files change, so does its
manifest, and Snakemake and DVC rerun what used it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from auxbench.data import DataError, MultiDomainDataset, load
from auxbench.data.dense_sets import DENSE_DATASETS, load_dense
from auxbench.data.user_sets import UserDataset
from auxbench.foundations import atomic

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def content_sha256(tensors: list[torch.Tensor | None]) -> str:
    """SHA-256 over the bytes of the given tensors (``None`` entries are skipped)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        if tensor is not None:
            digest.update(tensor.contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def files_sha256(files: list[Path]) -> str:
    """SHA-256 over every file's path and SHA-256, in the given order."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def prepare(
    name: str,
    out: Path,
    root: str | None = None,
    expect: str | None = None,
    user: UserDataset | None = None,
) -> dict[str, Any]:
    """Load dataset ``name``, check it against ``expect`` (content SHA-256) if given, write ``out``.

    The checksum covers every split (of every domain, domain by domain, for a multi-domain
    dataset); the manifest lists the class names (per domain for a multi-domain dataset). A user's
    dataset (``user``, named ``name``) is read from its own files; its manifest holds its entry and
    a SHA-256 over every file it is read from (``files_sha256``), so any changed byte (an image, a
    CSV) changes the manifest."""
    if user is not None and user.is_dense:
        return prepare_dense(name, out, root, expect, user)
    if user is None and name in DENSE_DATASETS:
        return prepare_dense(name, out, root, expect)
    dataset = load(name, root=root, user=user)
    multi_domain = isinstance(dataset, MultiDomainDataset)
    parts = dataset.domains if multi_domain else (dataset,)
    splits = [split for part in parts for split in (part.train, part.val, part.test)]
    checksum = content_sha256([t for s in splits for t in (s.images, s.labels, s.aux_labels)])
    _check_expected(name, checksum, expect, dataset.source)
    manifest = {
        "dataset": name,
        "source": dataset.source,
        "content_sha256": checksum,
        **_files_entries(dataset.source, user),
        "n_train": sum(len(part.train) for part in parts),
        "n_val": sum(len(part.val) for part in parts),
        "n_test": sum(len(part.test) for part in parts),
        "num_classes": dataset.num_classes,
    }
    if multi_domain:
        manifest["domains"] = {domain.name: list(domain.class_names) for domain in parts}
    else:
        manifest["num_aux_classes"] = dataset.num_aux_classes
        manifest["class_names"] = list(dataset.class_names)
        manifest["image_shape"] = list(dataset.train.images.shape[1:])
        if dataset.hierarchy_psi is not None:
            manifest["hierarchy_psi"] = dataset.hierarchy_psi
    atomic.write_json(out, manifest)
    return manifest


def _files_entries(source: str, user: UserDataset | None) -> dict[str, Any]:
    """A built-in dataset's files (name → SHA-256) in its source folder, or a user dataset's
    entry with the number of its files and ``files_sha256`` over them all."""
    if user is not None:
        files = user.files()
        return {"user": user.to_entry(), "n_files": len(files), "files_sha256": files_sha256(files)}
    folder = Path(source)
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    return {"files": {p.name: file_sha256(p) for p in files}}


def _check_expected(name: str, checksum: str, expect: str | None, source: str) -> None:
    if expect is not None and checksum != expect:
        raise DataError(
            f"{name}: content checksum {checksum} does not match the expected {expect}; the files "
            f"in {source} differ from the ones the config was written for"
        )


def prepare_dense(
    name: str,
    out: Path,
    root: str | None = None,
    expect: str | None = None,
    user: UserDataset | None = None,
) -> dict[str, Any]:
    """``prepare`` for a dense dataset (``auxbench.data.dense_sets``; the embedded one is
    generated first if missing; or a user's, ``user``): the checksum covers both splits' images
    and every target field in name order."""
    dataset = user.read_dense() if user is not None else load_dense(name, root)
    splits = (dataset.train, dataset.test)
    checksum = content_sha256(
        [t for s in splits for t in (s.images, *(s.targets[k] for k in sorted(s.targets)))]
    )
    _check_expected(name, checksum, expect, dataset.source)
    manifest = {
        "dataset": name,
        "source": dataset.source,
        "content_sha256": checksum,
        **({} if user is None else _files_entries(dataset.source, user)),
        "n_train": len(dataset.train),
        "n_test": len(dataset.test),
        "image_shape": list(dataset.train.images.shape[1:]),
        "tasks": {
            spec.name: {
                "kind": spec.kind,
                "classes": spec.classes,
                **({"channels": spec.channels} if spec.channels is not None else {}),
            }
            for spec in dataset.tasks
        },
    }
    atomic.write_json(out, manifest)
    return manifest
