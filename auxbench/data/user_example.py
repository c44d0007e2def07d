"""A small example of a user's dataset on disk: the docs' "Your own data" page and its test run
it (``auxbench datasets --write-example DIR``).

``write_example_folder`` writes an image folder in the ImageFolder layout with a class hierarchy:
eight fine classes, a shape drawn in one of two colour families (``disc-warm``, ``disc-cool``,
``square-warm``, ...), under four coarse classes, the shapes. The primary task is the shape
(``primary: coarse``), the human auxiliary task the fine class, as CIFAR-100-20's superclasses
and classes. The images are what a user's files look like: PNG and JPEG, of varied sizes and
aspect ratios, the shape at a random place, size and shade on a noisy background, so they must be
resized and centre-cropped when read, and the task is learnable but not trivial at a few hundred
images.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from auxbench.foundations import atomic

SHAPES = ("disc", "square", "triangle", "bar")
FAMILIES = {"warm": ((200, 60, 40), (230, 160, 30)), "cool": ((40, 90, 210), (40, 170, 120))}
HIERARCHY_FILE = "hierarchy.csv"


def example_classes() -> dict[str, str]:
    """Every fine class of the example and its coarse class (the shape), in sorted order."""
    return {f"{shape}-{family}": shape for shape in sorted(SHAPES) for family in sorted(FAMILIES)}


def _draw(shape: str, family: str, rng: np.random.Generator) -> Image.Image:
    """One image: ``shape`` in a colour of ``family`` on a noisy background, of a random size."""
    width, height = int(rng.integers(28, 49)), int(rng.integers(28, 49))
    background = rng.integers(70, 150, size=3)
    noise = rng.normal(0, 18, size=(height, width, 3))
    pixels = np.clip(background + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    side = min(width, height)
    radius = side * rng.uniform(0.22, 0.34)
    cx = width / 2 + rng.uniform(-0.12, 0.12) * side
    cy = height / 2 + rng.uniform(-0.12, 0.12) * side
    palette = FAMILIES[family]
    base = np.array(palette[int(rng.integers(len(palette)))], dtype=float)
    colour = tuple(int(v) for v in np.clip(base * rng.uniform(0.8, 1.15), 0, 255))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if shape == "disc":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], colour)
    else:
        draw.rectangle((cx - radius, cy - radius / 3, cx + radius, cy + radius / 3), fill=colour)
    return image


def write_example_folder(
    root: str | Path, train_per_class: int = 40, test_per_class: int = 15, seed: int = 0
) -> Path:
    """Write the example dataset under ``root`` (``train/`` and ``test/`` class folders and
    ``hierarchy.csv``) and return the hierarchy's path. Deterministic for a ``seed``; every file
    is written whole (temp file, then rename)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for name in example_classes():
            shape, family = name.split("-")
            for i in range(count):
                image = _draw(shape, family, rng)
                suffix, kind = (".jpg", "JPEG") if i % 3 == 2 else (".png", "PNG")
                buffer = io.BytesIO()
                image.save(buffer, kind, **({"quality": 92} if kind == "JPEG" else {}))
                atomic.write_bytes(root / split / name / f"{i:03d}{suffix}", buffer.getvalue())
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("class", "coarse"))
    writer.writerows(example_classes().items())
    hierarchy = root / HIERARCHY_FILE
    atomic.write_text(hierarchy, text.getvalue())
    return hierarchy
