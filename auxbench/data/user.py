"""Readers for a user's own classification data: an image folder or an ``.npz`` file, with optional
auxiliary labels per image or a class hierarchy, each from a CSV file.

An image folder has the ImageFolder layout ``<root>/<split>/<class>/<image>``: ``train/`` and,
optionally, ``test/``, one folder per class, PNG or JPEG images of any size. Every image is
resized so that its shorter side is ``size`` (bilinear), centre-cropped to ``size × size`` and
converted to RGB or grey. An ``.npz`` file holds ``images`` and ``labels`` arrays, optionally
``test_images``, ``test_labels`` and ``class_names``. Without a test split, 20% of the training
images of every class are held out as the test split (seed 0); the validation split is held out
later from what remains of the training images, as for the built-in datasets (``assemble``).

A CSV file of auxiliary labels has the header ``image,aux_label``: one row per image, its path
relative to the root (``train/cat/001.png``) and an integer or a name. A hierarchy CSV has the
header ``class,coarse`` and maps every class to a coarse class; with ``primary="coarse"`` the
coarse classes are the labels to predict and the classes the human auxiliary labels (as CIFAR-100's
superclasses), with ``primary="fine"`` the other way round. Integer labels are used as they are
(they must number the classes 0..K−1); names are numbered in sorted order.

Every problem with the input is a ``DataError`` of one line naming the file (and the CSV line),
what was expected and how to fix it. Nothing is written.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, ImageOps

from auxbench.data.assemble import RawDataset
from auxbench.data.dataset import DataError, Split
from auxbench.data.split import stratified_split
from auxbench.foundations.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PRIMARY_CHOICES = ("fine", "coarse")
HELD_OUT_TEST_FRACTION = 0.2
HELD_OUT_TEST_SEED = 0
FOLDER_LAYOUT = "<root>/train/<class>/<image> (and optionally <root>/test/<class>/<image>)"
NPZ_KEYS = ("images", "labels", "test_images", "test_labels", "class_names")
_SPLITS = ("train", "test")
_VALIDATION_NAMES = frozenset({"val", "valid", "validation"})
_MODES = {1: "L", 3: "RGB"}
_INTEGER = re.compile(r"[0-9]+")
_NEGATIVE = re.compile(r"-[0-9]+")
_LISTED = 5


@dataclass(frozen=True)
class _Examples:
    """Images with their (fine) class labels and, for an image folder, paths relative to the root."""

    images: torch.Tensor
    labels: torch.Tensor
    paths: tuple[str, ...]

    def subset(self, index: torch.Tensor) -> _Examples:
        """Return the examples at ``index`` (a long tensor of positions)."""
        paths = tuple(self.paths[i] for i in index.tolist()) if self.paths else ()
        return _Examples(self.images[index], self.labels[index], paths)


def read_image_folder(
    root: Path,
    size: int,
    channels: int = 3,
    name: str = "user",
    *,
    aux_csv: Path | None = None,
    hierarchy_csv: Path | None = None,
    primary: str = "fine",
) -> RawDataset:
    """Read the image folder ``root`` as uint8 (N, ``channels``, ``size``, ``size``) splits.

    Classes are the sorted folder names of ``train/``; ``test/``, when present, must have the same
    ones. Hidden files and folders (names starting with ``.``) are skipped, and so are plain files
    directly in ``root`` (such as the CSV files). ``aux_csv`` gives each image a human auxiliary
    label; ``hierarchy_csv`` maps each class to a coarse class, used as the primary label with
    ``primary="coarse"`` and as the auxiliary label with ``primary="fine"``.
    """
    _check_options(aux_csv, hierarchy_csv, primary)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"image size must be a positive integer number of pixels, got {size!r}")
    if channels not in _MODES:
        raise ConfigError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found; expected the layout {FOLDER_LAYOUT}")
    folders = _split_folders(root)
    class_names = _class_folders(folders["train"])
    files = {"train": _image_files(folders["train"], class_names)}
    if "test" in folders:
        test_classes = _class_folders(folders["test"])
        _check_same_classes(folders["test"], test_classes, class_names)
        files["test"] = _image_files(folders["test"], class_names)
    loaded = {
        split: _load_images(found, root, size, _MODES[channels]) for split, found in files.items()
    }
    notes = [f"image folder {root}"]
    train, test, held_out = _train_test(loaded["train"], loaded.get("test"), root / "train")
    if held_out:
        notes.append(_held_out_note("train/"))
    labelled = _labelled(
        train,
        test,
        class_names,
        root,
        aux_csv=aux_csv,
        hierarchy_csv=hierarchy_csv,
        primary=primary,
    )
    return _raw(name, labelled, size // 8, notes)


def read_npz(
    path: Path,
    name: str = "user",
    *,
    hierarchy_csv: Path | None = None,
    primary: str = "fine",
) -> RawDataset:
    """Read an ``.npz`` file of ``images`` (N, H, W) or (N, H, W, C) and ``labels`` (N,).

    Images are uint8, or floats in [0, 1] (scaled to 0..255 and rounded), square, with C = 1 or 3.
    Labels are integers 0..K−1, K the length of the optional ``class_names`` (else the largest
    label + 1), each class with at least one training image. ``test_images`` and ``test_labels``
    come together; ``hierarchy_csv`` refers to classes by their ``class_names`` (by ``"0"``,
    ``"1"``, ... without them).
    """
    _check_options(None, hierarchy_csv, primary)
    path = Path(path)
    arrays = _load_npz(path)
    images = _npz_images(arrays["images"], path, "images")
    side = int(images.shape[-1])
    names = None
    if "class_names" in arrays:
        names = _npz_class_names(arrays["class_names"], path)
    labels = _npz_labels(arrays["labels"], path, "labels", images, names)
    count = len(names) if names is not None else int(labels.max()) + 1
    class_names = names if names is not None else tuple(str(i) for i in range(count))
    _check_every_class(labels, class_names, path)
    test = None
    if "test_images" in arrays:
        test_images = _npz_images(arrays["test_images"], path, "test_images")
        if test_images.shape[1:] != images.shape[1:]:
            raise DataError(
                f"{path}: test_images are {_shape(test_images.shape[1:])} (C×H×W) but images "
                f"are {_shape(images.shape[1:])}; give both splits the same image shape"
            )
        test_labels = _npz_labels(arrays["test_labels"], path, "test_labels", test_images, names)
        if names is None and int(test_labels.max()) >= count:
            raise DataError(
                f"{path}: test_labels has label {int(test_labels.max())} but labels only "
                f"0..{count - 1}; every class needs training images (or give class_names)"
            )
        test = _Examples(test_images, test_labels, ())
    notes = [f"npz file {path}"]
    train, test, held_out = _train_test(_Examples(images, labels, ()), test, path)
    if held_out:
        notes.append(_held_out_note("images"))
    labelled = _labelled(
        train,
        test,
        class_names,
        path.parent,
        aux_csv=None,
        hierarchy_csv=hierarchy_csv,
        primary=primary,
    )
    return _raw(name, labelled, side // 8, notes)


def describe(raw: RawDataset) -> str:
    """One line on ``raw``'s sizes: images per split, image shape, classes and auxiliary classes."""
    aux = (
        "no auxiliary labels"
        if raw.aux_class_names is None
        else f"{len(raw.aux_class_names)} auxiliary classes"
    )
    return (
        f"{raw.name}: {len(raw.train)} train and {len(raw.test)} test images of "
        f"{_shape(raw.train.images.shape[1:])}, {len(raw.class_names)} classes, {aux}"
    )


# --- options and small helpers ---------------------------------------------------------------


def _check_options(aux_csv: Path | None, hierarchy_csv: Path | None, primary: str) -> None:
    if primary not in PRIMARY_CHOICES:
        raise ConfigError(f"primary must be 'fine' or 'coarse', got {primary!r}")
    if aux_csv is not None and hierarchy_csv is not None:
        raise ConfigError(
            "give aux_csv (a label per image) or hierarchy_csv (a coarse class per class), "
            "not both: each defines the auxiliary labels"
        )
    if primary == "coarse" and hierarchy_csv is None:
        raise ConfigError(
            "primary='coarse' needs a hierarchy_csv mapping each class to a coarse one"
        )


def _reason(exc: BaseException) -> str:
    """``exc``'s message on one line."""
    return " ".join(str(exc).split())


def _listing(names: Sequence[str], quote: bool = True) -> str:
    """``names`` (quoted) comma-separated, the first few of them when there are many."""
    shown = ", ".join(repr(n) if quote else n for n in names[:_LISTED])
    return shown if len(names) <= _LISTED else f"{shown}, ... ({len(names)} in all)"


def _shape(shape: Sequence[int]) -> str:
    return "×".join(str(int(d)) for d in shape)


def _held_out_note(what: str) -> str:
    return (
        f"test split: {HELD_OUT_TEST_FRACTION:.0%} of each class of {what} held out "
        f"(stratified, seed {HELD_OUT_TEST_SEED})"
    )


# --- the image folder ------------------------------------------------------------------------


def _entries(folder: Path) -> list[Path]:
    """The entries of ``folder`` in sorted order, hidden ones (``.name``) left out."""
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise DataError(f"{folder}: cannot list folder ({_reason(exc)})") from exc


def _split_folders(root: Path) -> dict[str, Path]:
    """The split folders of ``root``; ``DataError`` for a validation or an unknown folder."""
    folders = {}
    for entry in _entries(root):
        if not entry.is_dir():
            continue
        if entry.name in _SPLITS:
            folders[entry.name] = entry
        elif entry.name.lower() in _VALIDATION_NAMES:
            raise DataError(
                f"{entry}: a validation folder is not read; the validation split is held out of "
                "train/ automatically, so move its class folders' images into train/ or test/"
            )
        else:
            raise DataError(
                f"{entry}: unexpected folder; expected only train/ and test/ in {root}, "
                f"the layout {FOLDER_LAYOUT}"
            )
    if "train" not in folders:
        raise DataError(
            f"{root / 'train'}: training folder not found; expected the layout {FOLDER_LAYOUT}"
        )
    return folders


def _class_folders(split: Path) -> tuple[str, ...]:
    """The sorted class folder names of a split folder."""
    classes = []
    for entry in _entries(split):
        if not entry.is_dir():
            raise DataError(
                f"{entry}: a file directly in {split.name}/; expected one folder per class, "
                f"the layout {FOLDER_LAYOUT}"
            )
        classes.append(entry.name)
    if len(classes) < 2:
        raise DataError(
            f"{split}: {len(classes)} class folder(s); expected one folder per class, at least "
            f"two, the layout {FOLDER_LAYOUT}"
        )
    return tuple(classes)


def _check_same_classes(split: Path, found: Sequence[str], expected: Sequence[str]) -> None:
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing {_listing(missing)}")
        if extra:
            problems.append(f"extra {_listing(extra)}")
        raise DataError(
            f"{split}: class folders differ from train/: {'; '.join(problems)}; give test/ the "
            "same class folders as train/"
        )


def _image_files(split: Path, class_names: Sequence[str]) -> list[tuple[Path, int]]:
    """Every image of a split folder with its class index, class by class, sorted by name."""
    files = []
    for index, name in enumerate(class_names):
        folder = split / name
        found = 0
        for entry in _entries(folder):
            if entry.is_dir():
                raise DataError(
                    f"{entry}: a folder inside a class folder; expected the images directly in "
                    f"{split.name}/{name}/ (nested folders are not read)"
                )
            if entry.suffix.lower() not in IMAGE_SUFFIXES:
                raise DataError(
                    f"{entry}: not a PNG or JPEG file by its suffix; expected .png, .jpg or .jpeg "
                    "images only; remove the file or convert it"
                )
            files.append((entry, index))
            found += 1
        if not found:
            raise DataError(
                f"{folder}: empty class folder; put at least one PNG or JPEG image in it or "
                "remove the folder"
            )
    return files


def _load_images(files: Sequence[tuple[Path, int]], root: Path, size: int, mode: str) -> _Examples:
    """Decode, resize, centre-crop and convert every file into one uint8 (N, C, H, W) tensor."""
    channels = 1 if mode == "L" else 3
    images = np.empty((len(files), channels, size, size), dtype=np.uint8)
    for i, (path, _) in enumerate(files):
        pixels = np.asarray(_fit(_open_image(path, mode), size))
        images[i] = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    paths = tuple(path.relative_to(root).as_posix() for path, _ in files)
    return _Examples(torch.from_numpy(images), labels, paths)


def _open_image(path: Path, mode: str) -> Image.Image:
    """``path`` decoded by Pillow, turned upright by its EXIF orientation, in ``mode``."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode == "P" and "transparency" in image.info:
                image = image.convert("RGBA")  # Pillow warns when converting these to RGB
            return ImageOps.exif_transpose(image).convert(mode)
    except OSError as exc:  # also Pillow's UnidentifiedImageError and truncated files
        raise DataError(
            f"{path}: cannot read image ({_reason(exc)}); expected a PNG or JPEG file; replace "
            "or remove it"
        ) from exc
    # Pillow's decoders raise ValueError, SyntaxError, DecompressionBombError, ... on bad files
    except Exception as exc:
        raise DataError(
            f"{path}: not a readable image ({type(exc).__name__}: {_reason(exc)}); expected a "
            "PNG or JPEG file; replace or remove it"
        ) from exc


def _fit(image: Image.Image, size: int) -> Image.Image:
    """Resize ``image`` so its shorter side is ``size`` (bilinear), then crop its centre square."""
    width, height = image.size
    scale = size / min(width, height)
    resized = (max(size, int(width * scale + 0.5)), max(size, int(height * scale + 0.5)))
    if resized != image.size:
        image = image.resize(resized, Image.Resampling.BILINEAR)
    left = (resized[0] - size) // 2
    top = (resized[1] - size) // 2
    return image.crop((left, top, left + size, top + size))


# --- the npz file ----------------------------------------------------------------------------


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``; ``DataError`` for missing or unknown keys."""
    how = "write it with numpy.savez(path, images=..., labels=...)"
    if not path.is_file():
        raise DataError(f"{path}: file not found; expected an .npz file; {how}")
    try:
        archive = np.load(path, allow_pickle=False)
    # numpy raises OSError, ValueError, zipfile.BadZipFile, EOFError, ... for damaged files
    except Exception as exc:
        raise DataError(f"{path}: not a readable .npz file ({_reason(exc)}); {how}") from exc
    if not hasattr(archive, "files"):
        raise DataError(f"{path}: a single array, expected an .npz archive of arrays; {how}")
    with archive:
        keys = list(archive.files)
        unknown = [k for k in keys if k not in NPZ_KEYS]
        if unknown:
            raise DataError(
                f"{path}: unexpected array(s) {_listing(unknown)}; expected the keys images, "
                "labels and optionally test_images, test_labels, class_names"
            )
        for key in ("images", "labels"):
            if key not in keys:
                raise DataError(f"{path}: missing array {key!r} (found {_listing(keys)}); {how}")
        if ("test_images" in keys) != ("test_labels" in keys):
            raise DataError(
                f"{path}: test_images and test_labels come together, found only one; add the "
                "other or remove it (a test split is then held out of the training images)"
            )
        arrays = {}
        for key in keys:
            try:
                arrays[key] = archive[key]
            # object arrays (ValueError without pickles), damaged members (BadZipFile, ...)
            except Exception as exc:
                raise DataError(
                    f"{path}: cannot read array {key!r} ({_reason(exc)}); store it as a plain "
                    "numeric or string array"
                ) from exc
    return arrays


def _npz_images(array: np.ndarray, path: Path, key: str) -> torch.Tensor:
    """``array`` as uint8 (N, C, H, W); ``DataError`` for a bad shape, dtype or value range."""
    if array.ndim == 4 and array.shape[-1] in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    elif array.ndim == 3:
        array = array[:, None]
    else:
        raise DataError(
            f"{path}: {key} has shape {array.shape}, expected (N, H, W) or (N, H, W, C) with "
            "C = 1 or 3 (channels last)"
        )
    if array.shape[0] == 0:
        raise DataError(f"{path}: {key} holds no images; expected at least one")
    if array.shape[2] != array.shape[3]:
        raise DataError(
            f"{path}: {key} are {array.shape[2]}×{array.shape[3]} (H×W), expected square images; "
            "crop or resize them, or use an image folder (resized and cropped when read)"
        )
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise DataError(
                f"{path}: {key} are floats outside [0, 1] (or not finite); expected uint8 "
                "0..255 or floats in [0, 1]"
            )
        array = np.rint(array * 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise DataError(f"{path}: {key} are {array.dtype}, expected uint8 or floats in [0, 1]")
    return torch.from_numpy(np.ascontiguousarray(array))


def _npz_class_names(array: np.ndarray, path: Path) -> tuple[str, ...]:
    if array.dtype.kind not in "US" or array.ndim != 1 or len(array) < 2:
        raise DataError(
            f"{path}: class_names is {array.dtype} {array.shape}, expected a 1-D array of at "
            "least two strings, one per label"
        )
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in array.tolist())
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated or not all(n.strip() for n in names):
        problem = f"repeated {_listing(repeated)}" if repeated else "an empty name"
        raise DataError(f"{path}: class_names has {problem}; give every class its own name")
    return names


def _npz_labels(
    array: np.ndarray,
    path: Path,
    key: str,
    images: torch.Tensor,
    class_names: tuple[str, ...] | None,
) -> torch.Tensor:
    """``array`` as int64 (N,); ``DataError`` unless it has one integer per image, in range."""
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{path}: {key} is {array.dtype} {array.shape}, expected integers (N,)")
    if len(array) != images.shape[0]:
        images_key = "test_images" if key.startswith("test") else "images"
        raise DataError(
            f"{path}: image/label count mismatch: {images.shape[0]} {images_key} but "
            f"{len(array)} {key}; give one label per image"
        )
    labels = array.astype(np.int64)
    top = len(class_names) - 1 if class_names is not None else None
    bad = (labels < 0) if top is None else (labels < 0) | (labels > top)
    if bad.any():
        declared = "non-negative labels" if top is None else f"0..{top} (the class_names)"
        raise DataError(
            f"{path}: {key} has label {int(labels[bad][0])} outside the declared classes "
            f"({int(bad.sum())} of {len(labels)}); expected {declared}"
        )
    return torch.from_numpy(labels)


def _check_every_class(labels: torch.Tensor, class_names: Sequence[str], path: Path) -> None:
    """``DataError`` unless there are two classes or more, each with a training image."""
    if len(class_names) < 2:
        raise DataError(f"{path}: labels has a single class; expected at least two classes")
    counts = torch.bincount(labels, minlength=len(class_names))
    empty = [
        f"{class_names[i]!r} (label {i})" for i in torch.nonzero(counts == 0).flatten().tolist()
    ]
    if empty:
        raise DataError(
            f"{path}: empty class {_listing(empty, quote=False)}: no training image has it; "
            "labels must use every class 0..K-1 (renumber them, or drop the class from "
            "class_names)"
        )


# --- splits and labels -----------------------------------------------------------------------


def _train_test(
    train: _Examples, test: _Examples | None, where: Path
) -> tuple[_Examples, _Examples, bool]:
    """``(train, test, held_out)``: the test split as given, else held out of ``train``."""
    if test is not None:
        return train, test, False
    train_index, test_index = stratified_split(
        train.labels, HELD_OUT_TEST_FRACTION, HELD_OUT_TEST_SEED
    )
    if len(test_index) == 0:
        raise DataError(
            f"{where}: too few images to hold out a test split (one per class); add images or "
            "give a test split"
        )
    return train.subset(train_index), train.subset(test_index), True


@dataclass(frozen=True)
class _Labelled:
    train: Split
    test: Split
    class_names: tuple[str, ...]
    aux_class_names: tuple[str, ...] | None
    notes: tuple[str, ...]
    hierarchy_psi: int | None = None


def _labelled(
    train: _Examples,
    test: _Examples,
    class_names: tuple[str, ...],
    root: Path,
    *,
    aux_csv: Path | None,
    hierarchy_csv: Path | None,
    primary: str,
) -> _Labelled:
    """The splits with their primary and auxiliary labels, from the CSV file given (if any)."""
    if hierarchy_csv is not None:
        coarse_of, coarse_names = _read_hierarchy(Path(hierarchy_csv), class_names)
        train_coarse, test_coarse = coarse_of[train.labels], coarse_of[test.labels]
        if primary == "fine":
            return _Labelled(
                Split(train.images, train.labels, train_coarse),
                Split(test.images, test.labels, test_coarse),
                class_names,
                coarse_names,
                (f"hierarchy {hierarchy_csv} (primary: fine classes, auxiliary: coarse)",),
            )
        if len(coarse_names) < 2:
            raise DataError(
                f"{hierarchy_csv}: a single coarse class leaves nothing to classify with "
                "primary='coarse'; give at least two coarse classes"
            )
        return _Labelled(
            Split(train.images, train_coarse, train.labels),
            Split(test.images, test_coarse, test.labels),
            coarse_names,
            class_names,
            (f"hierarchy {hierarchy_csv} (primary: coarse classes, auxiliary: fine)",),
            hierarchy_psi=int(torch.bincount(coarse_of).max()),
        )
    if aux_csv is not None:
        aux_of, aux_names = _read_aux_labels(Path(aux_csv), root, train.paths + test.paths)
        return _Labelled(
            Split(
                train.images,
                train.labels,
                torch.tensor([aux_of[p] for p in train.paths], dtype=torch.int64),
            ),
            Split(
                test.images,
                test.labels,
                torch.tensor([aux_of[p] for p in test.paths], dtype=torch.int64),
            ),
            class_names,
            aux_names,
            (f"auxiliary labels {aux_csv}",),
        )
    return _Labelled(
        Split(train.images, train.labels), Split(test.images, test.labels), class_names, None, ()
    )


def _raw(name: str, labelled: _Labelled, crop_padding: int, notes: list[str]) -> RawDataset:
    return RawDataset(
        name=name,
        train=labelled.train,
        test=labelled.test,
        class_names=labelled.class_names,
        aux_class_names=labelled.aux_class_names,
        crop_padding=crop_padding,
        horizontal_flip=True,
        source="; ".join([*notes, *labelled.notes]),
        hierarchy_psi=labelled.hierarchy_psi,
    )


# --- CSV files -------------------------------------------------------------------------------


def _read_csv(path: Path, columns: tuple[str, str]) -> list[tuple[int, str, str]]:
    """The rows of a CSV file with a header naming ``columns``: (line number, value, value).

    Column names are matched without regard to case or surrounding spaces; other columns are
    ignored, blank lines skipped, and every value of the two columns must be non-empty.
    """
    header = ",".join(columns)
    if not path.is_file():
        raise DataError(f"{path}: CSV file not found; expected a file with the header {header}")
    rows = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            found = None
            try:
                for row in reader:
                    if not any(cell.strip() for cell in row):
                        continue
                    cells = [cell.strip() for cell in row]
                    if found is None:
                        found = [cell.lower() for cell in cells]
                        missing = [c for c in columns if c not in found]
                        if missing:
                            raise DataError(
                                f"{path}:{reader.line_num}: header {','.join(cells)!r} lacks "
                                f"{_listing(missing)}; expected the header {header} on the first "
                                "line"
                            )
                        where = [found.index(c) for c in columns]
                        continue
                    values = [cells[i] if i < len(cells) else "" for i in where]
                    if not all(values):
                        raise DataError(
                            f"{path}:{reader.line_num}: empty {columns[values.index('')]!r}; "
                            f"expected a value in both columns of {header}"
                        )
                    rows.append((reader.line_num, values[0], values[1]))
            except csv.Error as exc:
                raise DataError(
                    f"{path}:{reader.line_num}: malformed CSV ({_reason(exc)}); expected rows "
                    f"of {header}"
                ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: cannot read CSV file ({_reason(exc)}); expected UTF-8 text"
        ) from exc
    if found is None:
        raise DataError(f"{path}: empty CSV file; expected the header {header} and one row each")
    return rows


def _label_ids(
    path: Path, entries: Sequence[tuple[int, str]], column: str
) -> tuple[list[int], tuple[str, ...]]:
    """Numbers for ``(line, value)`` labels: integers as they are, names in sorted order."""
    if all(_INTEGER.fullmatch(value) for _, value in entries):
        ids = [int(value) for _, value in entries]
        count = max(ids) + 1
        unused = sorted(set(range(count)) - set(ids))
        if unused:
            raise DataError(
                f"{path}: {column} values are integers but {_listing([str(u) for u in unused])} "
                f"{'is' if len(unused) == 1 else 'are'} never used; number the classes "
                f"0..{len(set(ids)) - 1} without gaps, or use names"
            )
        return ids, tuple(str(i) for i in range(count))
    names = tuple(sorted({value for _, value in entries}))
    index = {n: i for i, n in enumerate(names)}
    return [index[value] for _, value in entries], names


def _check_label(path: Path, line: int, column: str, value: str) -> None:
    if _NEGATIVE.fullmatch(value):
        raise DataError(
            f"{path}:{line}: {column} {value} is negative; expected integers 0..K-1 or names"
        )


def _read_hierarchy(
    path: Path, class_names: tuple[str, ...]
) -> tuple[torch.Tensor, tuple[str, ...]]:
    """The coarse class index of every class (a long tensor) and the coarse class names."""
    known = set(class_names)
    first_line: dict[str, int] = {}
    coarse: dict[str, tuple[int, str]] = {}
    for line, name, parent in _read_csv(path, ("class", "coarse")):
        if name not in known:
            raise DataError(
                f"{path}:{line}: class {name!r} is not among the dataset's classes "
                f"({_listing(class_names)}); fix the name or remove the row"
            )
        if name in first_line:
            raise DataError(
                f"{path}:{line}: class {name!r} listed twice (first on line {first_line[name]}); "
                "map each class to one coarse class"
            )
        _check_label(path, line, "coarse", parent)
        first_line[name] = line
        coarse[name] = (line, parent)
    missing = [n for n in class_names if n not in coarse]
    if missing:
        raise DataError(
            f"{path}: class(es) {_listing(missing)} missing from the hierarchy; add a row "
            "class,coarse for every class of the dataset"
        )
    ids, names = _label_ids(path, [coarse[n] for n in class_names], "coarse")
    return torch.tensor(ids, dtype=torch.int64), names


def _read_aux_labels(
    path: Path, root: Path, images: Sequence[str]
) -> tuple[dict[str, int], tuple[str, ...]]:
    """The auxiliary label of every image (by its path relative to ``root``) and their names."""
    known = set(images)
    first_line: dict[str, int] = {}
    entries = []
    for line, image, label in _read_csv(path, ("image", "aux_label")):
        key = PurePosixPath(image.replace("\\", "/")).as_posix()
        if key not in known:
            raise DataError(
                f"{path}:{line}: image {image!r} is not in the dataset; expected the path of a "
                f"PNG or JPEG relative to {root}, such as {images[0]!r}"
            )
        if key in first_line:
            raise DataError(
                f"{path}:{line}: image {image!r} listed twice (first on line {first_line[key]}); "
                "give each image one aux_label"
            )
        _check_label(path, line, "aux_label", label)
        first_line[key] = line
        entries.append((key, line, label))
    missing = [p for p in images if p not in first_line]
    if missing:
        raise DataError(
            f"{path}: {len(missing)} of {len(images)} images have no row, such as "
            f"{missing[0]!r}; give every image an aux_label"
        )
    ids, names = _label_ids(path, [(line, label) for _, line, label in entries], "aux_label")
    return {key: i for (key, _, _), i in zip(entries, ids, strict=True)}, names
