"""Data preparation: load a dataset through its real readers and write a checksummed manifest.

The manifest is what the training jobs depend on: when a dataset's files change, so does its
manifest, and Snakemake and DVC rerun what used it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from auxbench.foundations import atomic
from auxbench.data import DataError, MultiDomainDataset, load

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


def prepare(
    name: str, out: Path, root: str | None = None, expect: str | None = None
) -> dict[str, Any]:
    """Load dataset ``name``, check it against ``expect`` (content SHA-256) if given, write ``out``.

    The checksum covers every split (of every domain, domain by domain, for a multi-domain
    dataset); the manifest lists the class names (per domain for a multi-domain dataset)."""
    dataset = load(name, root=root)
    multi_domain = isinstance(dataset, MultiDomainDataset)
    parts = dataset.domains if multi_domain else (dataset,)
    splits = [split for part in parts for split in (part.train, part.val, part.test)]
    checksum = content_sha256([t for s in splits for t in (s.images, s.labels, s.aux_labels)])
    if expect is not None and checksum != expect:
        raise DataError(
            f"{name}: content checksum {checksum} does not match the expected {expect}; the files "
            f"in {dataset.source} differ from the ones the config was written for"
        )
    source = Path(dataset.source)
    files = sorted(p for p in source.iterdir() if p.is_file()) if source.is_dir() else []
    manifest = {
        "dataset": name,
        "source": dataset.source,
        "content_sha256": checksum,
        "files": {p.name: file_sha256(p) for p in files},
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
    atomic.write_json(out, manifest)
    return manifest
