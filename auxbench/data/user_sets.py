"""A user's own datasets, declared in a config as ``datasets:`` entries, by name.

An entry is a mapping (the workflow config's ``datasets:`` or ``dense.datasets:`` list, or a file
given to ``--data-config``)::

    datasets:
      - fashion-mnist                       # a built-in dataset, by name
      - name: leaves                        # a user's dataset
        kind: folder                        # folder | npz | dense
        path: data/user/leaves              # relative paths: to the working directory
        size: 32                            # folder: images resized and centre-cropped to 32×32
        channels: 3                         # folder: 3 (RGB) or 1 (grey)
        hierarchy_csv: data/user/leaves/hierarchy.csv   # class,coarse (or aux_csv: image,aux_label)
        primary: coarse                     # coarse classes primary, the classes the human aux

``kind: folder`` reads the ImageFolder layout and ``kind: npz`` an ``.npz`` file
(``auxbench.data.user``); ``kind: dense`` a dense dataset folder with its ``tasks.yaml``
(``auxbench.data.dense.read_dense_folder``). ``UserDataset.from_entry`` checks an entry's keys
and values (``ConfigError`` naming the key); reading the files checks them (``DataError`` naming
the file and line). ``verify`` reads a dataset once and remembers, by the files' sizes and
modification times, that it read cleanly, so the workflow can check every dataset before any job
starts without reading it again on every invocation.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from auxbench.data.assemble import RawDataset
from auxbench.data.dataset import DataError
from auxbench.data.dense import (
    IMAGE_FOLDER,
    TASKS_FILE,
    DenseDataset,
    DenseTaskSpec,
    read_dense_folder,
    read_tasks,
)
from auxbench.data.user import (
    IMAGE_SUFFIXES,
    PRIMARY_CHOICES,
    describe,
    read_image_folder,
    read_npz,
)
from auxbench.foundations import atomic
from auxbench.foundations.errors import ConfigError

USER_KINDS = ("folder", "npz", "dense")
CLASSIFICATION_KINDS = ("folder", "npz")
DEFAULT_SIZE = 32
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_KEYS = {
    "folder": ("name", "kind", "path", "size", "channels", "aux_csv", "hierarchy_csv", "primary"),
    "npz": ("name", "kind", "path", "hierarchy_csv", "primary"),
    "dense": ("name", "kind", "path"),
}
_OPTIONAL = ("description",)
_DENSE_SPLITS = ("train", "val")
_CLASSIFICATION_SPLITS = ("train", "test")
_EXAMPLE = "{name: leaves, kind: folder, path: data/user/leaves, size: 32}"


@dataclass(frozen=True)
class UserDataset:
    """One checked ``datasets:`` entry (see the module doc); paths as written in the entry."""

    name: str
    kind: str
    path: str
    size: int = DEFAULT_SIZE
    channels: int = 3
    aux_csv: str | None = None
    hierarchy_csv: str | None = None
    primary: str = "fine"
    description: str | None = None

    @classmethod
    def from_entry(cls, entry: Any, where: str = "datasets entry") -> UserDataset:
        """The entry ``entry`` (a mapping) checked; ``ConfigError`` of one line naming ``where``
        and the key otherwise."""
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f"{where}: expected a dataset name or a mapping such as {_EXAMPLE}, got {entry!r}"
            )
        for key in ("name", "kind", "path"):
            if entry.get(key) in (None, ""):
                raise ConfigError(f"{where}: lacks '{key}'; a user dataset is e.g. {_EXAMPLE}")
        name, kind = entry["name"], entry["kind"]
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise ConfigError(
                f"{where}.name: {name!r} must start with a letter or digit and hold only letters, "
                "digits, '.', '_' and '-' (it names the dataset's results folders)"
            )
        where = f"{where} ({name})"
        if kind not in USER_KINDS:
            raise ConfigError(f"{where}.kind: {kind!r} is not one of {', '.join(USER_KINDS)}")
        allowed = (*_KEYS[kind], *_OPTIONAL)
        unknown = sorted(str(key) for key in entry if key not in allowed)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key '{unknown[0]}' for a {kind} dataset; it takes "
                f"{', '.join(allowed)}"
            )
        values = dict(entry)
        for key in ("path", "aux_csv", "hierarchy_csv", "description"):
            if values.get(key) is not None and not isinstance(values[key], str):
                raise ConfigError(f"{where}.{key}: expected a string, got {values[key]!r}")
        size = values.get("size", DEFAULT_SIZE)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"{where}.size: expected a positive number of pixels, got {size!r}")
        channels = values.get("channels", 3)
        if channels not in (1, 3) or isinstance(channels, bool):
            raise ConfigError(f"{where}.channels: expected 1 (grey) or 3 (RGB), got {channels!r}")
        primary = values.get("primary", "fine")
        if primary not in PRIMARY_CHOICES:
            raise ConfigError(f"{where}.primary: expected fine or coarse, got {primary!r}")
        if values.get("aux_csv") and values.get("hierarchy_csv"):
            raise ConfigError(
                f"{where}: give aux_csv (a label per image) or hierarchy_csv (a coarse class per "
                "class), not both: each defines the auxiliary labels"
            )
        if primary == "coarse" and not values.get("hierarchy_csv"):
            raise ConfigError(
                f"{where}.primary: coarse needs hierarchy_csv, the CSV mapping each class to its "
                "coarse class (header class,coarse)"
            )
        return cls(
            name=name,
            kind=kind,
            path=values["path"],
            size=size,
            channels=channels,
            aux_csv=values.get("aux_csv") or None,
            hierarchy_csv=values.get("hierarchy_csv") or None,
            primary=primary,
            description=values.get("description"),
        )

    def to_entry(self) -> dict[str, Any]:
        """The entry as a plain mapping, only the keys that apply to the kind (JSON-able)."""
        values = asdict(self)
        allowed = (*_KEYS[self.kind], *_OPTIONAL)
        return {key: value for key, value in values.items() if key in allowed and value is not None}

    @property
    def is_dense(self) -> bool:
        return self.kind == "dense"

    def read(self) -> RawDataset:
        """The classification dataset as read (``DataError`` for any problem with its files)."""
        if self.is_dense:
            raise ConfigError(
                f"dataset {self.name!r} is a dense dataset (kind: dense); list it under "
                "dense.datasets and train it with `auxbench dense-train`"
            )
        csv = {"hierarchy_csv": _optional_path(self.hierarchy_csv), "primary": self.primary}
        if self.kind == "folder":
            return read_image_folder(
                Path(self.path),
                self.size,
                self.channels,
                self.name,
                aux_csv=_optional_path(self.aux_csv),
                **csv,
            )
        return read_npz(Path(self.path), self.name, **csv)

    def read_dense(self) -> DenseDataset:
        """The dense dataset as read (``DataError`` for any problem with its files)."""
        if not self.is_dense:
            raise ConfigError(
                f"dataset {self.name!r} is a classification dataset (kind: {self.kind}); list it "
                "under datasets and train it with `auxbench train`"
            )
        return read_dense_folder(Path(self.path), self.name)

    def dense_tasks(self) -> tuple[DenseTaskSpec, ...]:
        """The tasks a dense dataset's ``tasks.yaml`` declares (reads that file only)."""
        return read_tasks(Path(self.path) / TASKS_FILE)[0]

    def summary(self) -> str:
        """One line on the dataset's sizes, from reading it."""
        if self.is_dense:
            dataset = self.read_dense()
            tasks = ", ".join(f"{spec.name} ({spec.kind})" for spec in dataset.tasks)
            shape = "×".join(str(d) for d in dataset.train.images.shape[1:])
            return (
                f"{self.name}: {len(dataset.train)} train and {len(dataset.test)} val images of "
                f"{shape}; tasks {tasks}"
            )
        return describe(self.read())

    def files(self) -> list[Path]:
        """Every file the dataset is read from, sorted: what a changed file reruns."""
        root = Path(self.path)
        if self.kind == "npz":
            found = [root]
        elif self.is_dense:
            found = [root / TASKS_FILE]
            try:  # the image folder and the declared tasks' folders
                folders = [IMAGE_FOLDER, *(spec.name for spec in self.dense_tasks())]
            except DataError:  # a bad tasks.yaml: whatever is there (reading it will say why)
                folders = None
            for split in _DENSE_SPLITS:
                if folders is None:
                    found += _visible_files(root / split)
                else:
                    found += [p for f in folders for p in _visible_files(root / split / f)]
        else:
            found = [
                path
                for split in _CLASSIFICATION_SPLITS
                for path in _visible_files(root / split)
                if path.suffix.lower() in IMAGE_SUFFIXES
            ]
        for csv in (self.aux_csv, self.hierarchy_csv):
            if csv:
                found.append(Path(csv))
        return sorted(set(found))

    def fingerprint(self) -> str:
        """SHA-256 of the entry and of each file's path, size and modification time (no reading
        of the files' contents): equal fingerprints mean nothing was touched since."""
        digest = hashlib.sha256(json.dumps(self.to_entry(), sort_keys=True).encode())
        for path in self.files():
            try:
                stat = path.stat()
            except OSError:
                digest.update(f"{path}\0missing\n".encode())
                continue
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()


def _optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _visible_files(folder: Path) -> list[Path]:
    """The files under ``folder`` (recursively), hidden files and folders left out."""
    if not folder.is_dir():
        return []
    return [
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]


def user_datasets(config: Mapping[str, Any], source: str = "config") -> dict[str, UserDataset]:
    """The user datasets a workflow config declares, by name: the mappings of its ``datasets:``
    (classification: kind folder or npz) and of its ``dense.datasets:`` (kind dense) lists.

    ``ConfigError`` for a bad entry, a name used twice or for a built-in dataset, or a kind in the
    wrong list. The built-in names are checked by the caller's registries, so that this module
    stays below them: ``reserved`` names are refused."""
    found: dict[str, UserDataset] = {}
    dense = config.get("dense") if isinstance(config.get("dense"), Mapping) else {}
    lists = (("datasets", config.get("datasets")), ("dense.datasets", dense.get("datasets")))
    for key, entries in lists:
        if not isinstance(entries, list):
            continue
        for i, entry in enumerate(entries):
            if isinstance(entry, str):
                continue
            dataset = UserDataset.from_entry(entry, f"{source}: {key}[{i}]")
            wanted = ("dense",) if key == "dense.datasets" else CLASSIFICATION_KINDS
            if dataset.kind not in wanted:
                other = "dense.datasets" if dataset.is_dense else "datasets"
                raise ConfigError(
                    f"{source}: {key}[{i}] ({dataset.name}).kind: a {dataset.kind} dataset "
                    f"belongs under {other}, not {key}"
                )
            if dataset.name in found and found[dataset.name] != dataset:
                raise ConfigError(
                    f"{source}: {key}[{i}]: the name {dataset.name!r} is declared twice with "
                    "different settings; give each dataset its own name"
                )
            found[dataset.name] = dataset
    return found


def dataset_names(entries: list[Any]) -> list[str]:
    """The names of a ``datasets:`` list's entries (names, or user datasets' ``name``)."""
    return [entry if isinstance(entry, str) else str(entry.get("name")) for entry in entries]


def verify(dataset: UserDataset, cache: Path | None = None) -> str:
    """Read ``dataset`` completely (every image decoded, every CSV row checked), unless ``cache``
    (a folder) says it read cleanly with the same ``fingerprint``; return its ``summary`` line.
    ``DataError`` (naming the file and line) for the first problem found."""
    record = None if cache is None else Path(cache) / f"{dataset.name}.json"
    fingerprint = dataset.fingerprint()
    if record is not None and record.is_file():
        try:
            seen = json.loads(record.read_text())
        except (OSError, ValueError):
            seen = {}
        if seen.get("fingerprint") == fingerprint and isinstance(seen.get("summary"), str):
            return seen["summary"]
    summary = dataset.summary()
    if record is not None:
        atomic.write_json(record, {"fingerprint": fingerprint, "summary": summary})
    return summary


def require_files(dataset: UserDataset) -> None:
    """``DataError`` naming the path when the dataset's folder or file (or a CSV) is missing."""
    root = Path(dataset.path)
    if dataset.kind == "npz" and not root.is_file():
        raise DataError(f"{root}: .npz file not found (dataset {dataset.name!r}, key path)")
    if dataset.kind != "npz" and not root.is_dir():
        raise DataError(f"{root}: dataset folder not found (dataset {dataset.name!r}, key path)")
    for key in ("aux_csv", "hierarchy_csv"):
        value = getattr(dataset, key)
        if value and not Path(value).is_file():
            raise DataError(f"{value}: CSV file not found (dataset {dataset.name!r}, key {key})")
