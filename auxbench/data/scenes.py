"""Procedurally rendered indoor-like scenes: an embedded dense-prediction dataset for CPUs.

Each image is a ray-cast view of a box room with a few objects on its floor, with exact
per-pixel segmentation, depth and surface normals. ``write_scenes`` stores the images in
NYUv2's preprocessed layout (``<directory>/{train,val}/{image,label,depth,normal}/<i>.npy``), so
the NYUv2 reader reads them; ``render_scenes`` returns them as batched arrays.

The scene model, in plain words:

* **Coordinates.** The world has x to the right, y up and z forward; the room spans
  x in [-width/2, width/2], y in [0, height] (floor to ceiling) and z in [0, length], and the
  back wall is the plane z = length. The camera frame is OpenCV's: x right, y *down*, z forward
  along the optical axis. Normals and depth are given in the camera frame.
* **Room.** Width uniform in [3.5, 5.5] m, length (front to back wall) in [4.5, 7] m, height in
  [2.6, 3.2] m. Its six planes are floor, ceiling and four walls.
* **Camera.** A pinhole with square pixels and focal length 0.81 × the image width in pixels
  (NYUv2's Kinect: 518.9 px at 640 px, about 63° horizontal field of view), principal point at
  the image centre; pixel (i, j) (row, column) looks along the camera-frame ray
  ``((j + 0.5 - W/2) / f, (i + 0.5 - H/2) / f, 1)``. It stands at x uniform in [-0.3, 0.3] m,
  eye height y in [1.2, 1.6] m and z in [0.3, 0.8] m (in front of the front wall), and its pose is
  jittered by a yaw (turn left/right about the vertical) uniform in ±10°, a pitch (positive looks
  down) in [3°, 15°] and a roll (about the optical axis) in ±3°.
* **Objects.** 2–5 per scene, each equally likely an axis-aligned box (half-widths along x and
  z in [0.2, 0.6] m, height [0.3, 1.2] m), a sphere (radius [0.2, 0.5] m) or a vertical cylinder
  (radius [0.15, 0.4] m, height [0.4, 1.5] m), all resting on the floor, their centres uniform
  over the part of the floor at least 1.8 m in front of the camera and inside the walls.
  Objects may overlap one another; the nearest surface wins.
* **Targets.** Per pixel, the nearest hit along the ray gives the class (``SCENE_CLASSES``:
  floor, ceiling, wall, box, sphere, cylinder; all four walls share the class "wall"), the depth
  (the hit's camera-frame z in metres, which is the ray parameter since the ray's z is 1) and the
  unit surface normal in camera coordinates, oriented towards the camera (its dot product with
  the viewing ray is negative). So the back wall seen head-on has normal (0, 0, -1) and the floor
  seen by a level camera has normal (0, -1, 0).
* **Invalid pixels (sensor holes).** With probability 0.4 the back wall has a window (width
  [0.6, 1.2] m, height [0.5, 0.9] m, lower edge [0.9, 1.4] m above the floor, horizontally
  anywhere on the wall): like glass for a depth sensor, its pixels get label -1, depth 0 and the
  zero normal, and look bright and bluish. On average this is about 1 % of the pixels; no other
  pixel is invalid.
* **Appearance.** Every surface (floor, ceiling, the walls together, each object) has a base
  colour: its class's colour mixed with a random colour (mixing weight uniform in [0, 0.5] for
  objects, [0, 0.25] for the room) and then perturbed by ±0.08 per channel. It is multiplied by
  a texture: 1 + a [0.05, 0.2] amplitude mean of three random plane waves in world coordinates
  (wavelengths 0.15–1 m), and on the floor, half the time, a checkerboard of square tiles (side
  [0.3, 0.6] m, contrast [0.05, 0.15]). Shading is Lambertian from one or two point lights just
  below the ceiling (no shadows), each with intensity divided by 1 + 0.08 × distance², plus an
  ambient term uniform in [0.2, 0.35]; lights' total intensity is [0.9, 1.4]. Finally Gaussian
  pixel noise (standard deviation [0.005, 0.02]) is added and the image is clipped to [0, 1].

Rendering is vectorised over pixels (a loop over the handful of objects per image); the images
of one seed are drawn one after another from independent generators keyed by (seed, index), so
image i is the same whatever the count.
"""

from __future__ import annotations

import math
import operator
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from auxbench.foundations.errors import ConfigError

SCENE_CLASSES: tuple[str, ...] = ("floor", "ceiling", "wall", "box", "sphere", "cylinder")
"""The class names, indexed by the label ids (label -1 marks an invalid pixel)."""

FLOOR, CEILING, WALL, BOX, SPHERE, CYLINDER = range(len(SCENE_CLASSES))
IGNORE = -1
FOCAL = 0.81
"""The default focal length in units of the image width (NYUv2's Kinect: 518.9 px / 640 px)."""
OBJECT_KINDS = ("box", "sphere", "cylinder")
FIELDS = ("image", "label", "depth", "normal")

_CLASS_COLOURS = {
    FLOOR: (0.55, 0.42, 0.30),
    CEILING: (0.88, 0.87, 0.84),
    WALL: (0.78, 0.74, 0.66),
    BOX: (0.72, 0.34, 0.24),
    SPHERE: (0.28, 0.42, 0.75),
    CYLINDER: (0.34, 0.64, 0.36),
}
_WINDOW_COLOUR = (0.85, 0.92, 1.0)
_FALLOFF = 0.08
_EPS = 1e-9


@dataclass(frozen=True)
class Surface:
    """The look of one surface: base RGB colour in [0, 1] and a plane-wave texture.

    ``waves`` holds rows (kx, ky, kz, phase): the texture factor at world point p is
    ``1 + amplitude * mean(sin(k . p + phase))``. ``checker`` (side in metres, contrast) adds a
    floor-tile checkerboard in the x-z plane, multiplying by 1 ± contrast.
    """

    colour: tuple[float, float, float]
    waves: tuple[tuple[float, float, float, float], ...] = ()
    amplitude: float = 0.0
    checker: tuple[float, float] | None = None


@dataclass(frozen=True)
class SceneObject:
    """One object resting on the floor (y = 0) at floor point (x, z).

    ``kind`` is "box" (``size`` = half-width along x, height, half-width along z), "sphere"
    (``size`` = (radius,)) or "cylinder" (vertical; ``size`` = (radius, height)).
    """

    kind: str
    x: float
    z: float
    size: tuple[float, ...]
    surface: Surface


@dataclass(frozen=True)
class Light:
    """A point light at world ``position`` with the given ``intensity``."""

    position: tuple[float, float, float]
    intensity: float


@dataclass(frozen=True)
class SceneParams:
    """Everything that fixes one image: room, camera pose, objects, lights and noise.

    The room spans x in [-width/2, width/2], y in [0, height], z in [0, length]. The camera sits
    at world ``camera`` with ``yaw`` (positive turns right), ``pitch`` (positive looks down) and
    ``roll`` in radians, and focal length ``focal`` × the image width in pixels. ``window``
    (x0, x1, y0, y1) is a rectangle on the back wall whose pixels are invalid; ``noise_seed``
    drives the pixel noise of standard deviation ``noise``.
    """

    width: float
    length: float
    height: float
    camera: tuple[float, float, float]
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    focal: float = FOCAL
    objects: tuple[SceneObject, ...] = ()
    lights: tuple[Light, ...] = ()
    ambient: float = 0.3
    floor: Surface = field(default_factory=lambda: Surface(_CLASS_COLOURS[FLOOR]))
    ceiling: Surface = field(default_factory=lambda: Surface(_CLASS_COLOURS[CEILING]))
    walls: Surface = field(default_factory=lambda: Surface(_CLASS_COLOURS[WALL]))
    window: tuple[float, float, float, float] | None = None
    noise: float = 0.0
    noise_seed: int = 0


def camera_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The 3×3 matrix taking camera-frame vectors (x right, y down, z forward) to world ones.

    With no jitter the camera looks along world +z; roll turns about the optical axis, pitch
    then tilts the axis down and yaw turns it right about the world vertical.
    """
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    turn = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    spin = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    flip = np.diag([1.0, -1.0, 1.0])  # camera y points down, world y up
    return turn @ tilt @ spin @ flip


def pixel_rays(height: int, width: int, focal: float = FOCAL) -> np.ndarray:
    """The camera-frame viewing rays of every pixel, (H, W, 3), scaled so that their z is 1."""
    f = focal * width
    cols = (np.arange(width) + 0.5 - width / 2) / f
    rows = (np.arange(height) + 0.5 - height / 2) / f
    rays = np.empty((height, width, 3))
    rays[..., 0] = cols[None, :]
    rays[..., 1] = rows[:, None]
    rays[..., 2] = 1.0
    return rays


def _safe(d: np.ndarray) -> np.ndarray:
    """``d`` with its exact zeros nudged, so that slab divisions give ±inf rather than nan."""
    return np.where(d == 0.0, _EPS, d)


def _room_hit(origin: np.ndarray, d: np.ndarray, params: SceneParams):
    """Where each ray leaves the room: distance, class and inward world normal."""
    lo = np.array([-params.width / 2, 0.0, 0.0])
    hi = np.array([params.width / 2, params.height, params.length])
    ds = _safe(d)
    exits = np.where(ds > 0, (hi - origin) / ds, (lo - origin) / ds)  # (P, 3)
    axis = np.argmin(exits, axis=1)
    rows = np.arange(len(d))
    t = exits[rows, axis]
    normal = np.zeros_like(d)
    normal[rows, axis] = -np.sign(ds[rows, axis])
    label = np.full(len(d), WALL, dtype=np.int64)
    label[(axis == 1) & (d[:, 1] < 0)] = FLOOR
    label[(axis == 1) & (d[:, 1] > 0)] = CEILING
    return t, label, normal


def _box_hit(origin: np.ndarray, d: np.ndarray, obj: SceneObject):
    """Entry distance (inf on a miss) and outward world normal of an axis-aligned box."""
    hx, hy, hz = obj.size
    lo = np.array([obj.x - hx, 0.0, obj.z - hz])
    hi = np.array([obj.x + hx, hy, obj.z + hz])
    ds = _safe(d)
    t1 = (lo - origin) / ds
    t2 = (hi - origin) / ds
    near = np.minimum(t1, t2)
    far = np.maximum(t1, t2)
    axis = np.argmax(near, axis=1)
    rows = np.arange(len(d))
    t_near = near[rows, axis]
    hit = (t_near <= far.min(axis=1)) & (t_near > _EPS)
    normal = np.zeros_like(d)
    normal[rows, axis] = -np.sign(ds[rows, axis])
    return np.where(hit, t_near, np.inf), normal


def _sphere_hit(origin: np.ndarray, d: np.ndarray, obj: SceneObject):
    """Entry distance (inf on a miss) and outward world normal of a sphere on the floor."""
    (r,) = obj.size
    centre = np.array([obj.x, r, obj.z])
    oc = origin - centre
    a = np.einsum("pi,pi->p", d, d)
    b = 2.0 * (d @ oc)
    c = oc @ oc - r * r
    disc = b * b - 4.0 * a * c
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)
    hit = (disc >= 0) & (t > _EPS)
    normal = (origin + t[:, None] * d - centre) / r
    return np.where(hit, t, np.inf), normal


def _cylinder_hit(origin: np.ndarray, d: np.ndarray, obj: SceneObject):
    """Entry distance (inf on a miss) and outward world normal of a vertical cylinder (its side
    and top cap; the bottom lies on the floor)."""
    r, h = obj.size
    ox, oz = origin[0] - obj.x, origin[2] - obj.z
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = 2.0 * (d[:, 0] * ox + d[:, 2] * oz)
    c = ox * ox + oz * oz - r * r
    disc = b * b - 4.0 * a * c
    a_safe = np.where(a > _EPS, a, 1.0)
    t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a_safe)
    y_side = origin[1] + t_side * d[:, 1]
    side = (a > _EPS) & (disc >= 0) & (t_side > _EPS) & (y_side >= 0) & (y_side <= h)
    t_side = np.where(side, t_side, np.inf)
    t_rim = np.where(side, t_side, 0.0)  # finite, for the normal of the rays that miss
    t_cap = (h - origin[1]) / _safe(d[:, 1])
    cx = ox + t_cap * d[:, 0]
    cz = oz + t_cap * d[:, 2]
    cap = (t_cap > _EPS) & (cx * cx + cz * cz <= r * r)
    t_cap = np.where(cap, t_cap, np.inf)
    on_cap = t_cap < t_side
    t = np.minimum(t_side, t_cap)
    normal = np.zeros_like(d)
    normal[:, 0] = (ox + t_rim * d[:, 0]) / r
    normal[:, 2] = (oz + t_rim * d[:, 2]) / r
    normal[on_cap] = (0.0, 1.0, 0.0)
    return t, normal


_HITS = {
    "box": (_box_hit, BOX),
    "sphere": (_sphere_hit, SPHERE),
    "cylinder": (_cylinder_hit, CYLINDER),
}


def _texture(points: np.ndarray, surface: Surface) -> np.ndarray:
    """The texture factor of ``surface`` at world ``points`` (P, 3)."""
    factor = np.ones(len(points))
    if surface.waves and surface.amplitude:
        waves = np.asarray(surface.waves)
        factor += surface.amplitude * np.sin(points @ waves[:, :3].T + waves[:, 3]).mean(axis=1)
    if surface.checker is not None:
        side, contrast = surface.checker
        parity = (np.floor(points[:, 0] / side) + np.floor(points[:, 2] / side)) % 2
        factor *= 1.0 + contrast * (2.0 * parity - 1.0)
    return factor


def render(params: SceneParams, height: int, width: int) -> dict[str, np.ndarray]:
    """Ray-cast one scene at ``height`` × ``width`` pixels.

    Returns image (H, W, 3) float32 in [0, 1], label (H, W) int64 (class ids of
    ``SCENE_CLASSES``, -1 in the window), depth (H, W, 1) float32 in metres (0 in the window) and
    normal (H, W, 3) float32 unit camera-frame normals facing the camera (zero in the window).
    """
    rotation = camera_rotation(params.yaw, params.pitch, params.roll)
    rays_cam = pixel_rays(height, width, params.focal).reshape(-1, 3)
    d = rays_cam @ rotation.T  # world directions; the ray parameter is the camera-frame z
    origin = np.asarray(params.camera, dtype=np.float64)

    t, label, normal = _room_hit(origin, d, params)
    surface_id = label.copy()  # 0 floor, 1 ceiling, 2 walls, 3 + k object k
    for k, obj in enumerate(params.objects):
        if obj.kind not in _HITS:
            raise ConfigError(f"scene object kind must be one of {OBJECT_KINDS}, got {obj.kind!r}")
        hit_fn, cls = _HITS[obj.kind]
        t_obj, n_obj = hit_fn(origin, d, obj)
        nearer = t_obj < t
        t = np.where(nearer, t_obj, t)
        normal[nearer] = n_obj[nearer]
        label[nearer] = cls
        surface_id[nearer] = 3 + k
    points = origin + t[:, None] * d
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)

    surfaces = (params.floor, params.ceiling, params.walls) + tuple(
        o.surface for o in params.objects
    )
    albedo = np.empty_like(points)
    for s, surface in enumerate(surfaces):
        mask = surface_id == s
        if mask.any():
            albedo[mask] = np.asarray(surface.colour) * _texture(points[mask], surface)[:, None]
    shade = np.full(len(points), params.ambient)
    for light in params.lights:
        to_light = np.asarray(light.position) - points
        dist = np.linalg.norm(to_light, axis=1)
        lambert = np.maximum(np.einsum("pi,pi->p", normal, to_light) / dist, 0.0)
        shade += light.intensity * lambert / (1.0 + _FALLOFF * dist * dist)
    image = albedo * shade[:, None]

    depth = t.copy()
    normal_cam = normal @ rotation  # world to camera: the rotation's transpose
    if params.window is not None:
        x0, x1, y0, y1 = params.window
        hole = (
            (label == WALL)
            & (np.abs(points[:, 2] - params.length) < 1e-6)
            & (points[:, 0] >= x0)
            & (points[:, 0] <= x1)
            & (points[:, 1] >= y0)
            & (points[:, 1] <= y1)
        )
        image[hole] = np.asarray(_WINDOW_COLOUR) * (0.8 + 0.15 * shade[hole, None])
        label[hole] = IGNORE
        depth[hole] = 0.0
        normal_cam[hole] = 0.0
    if params.noise > 0:
        image += np.random.default_rng(params.noise_seed).normal(0.0, params.noise, image.shape)

    return {
        "image": np.clip(image, 0.0, 1.0).astype(np.float32).reshape(height, width, 3),
        "label": label.reshape(height, width),
        "depth": depth.astype(np.float32).reshape(height, width, 1),
        "normal": normal_cam.astype(np.float32).reshape(height, width, 3),
    }


def _surface(rng: np.random.Generator, cls: int, mix_max: float) -> Surface:
    """A random surface of class ``cls``: perturbed class colour and a plane-wave texture."""
    base = np.asarray(_CLASS_COLOURS[cls])
    colour = base + rng.uniform(0.0, mix_max) * (rng.uniform(0.1, 0.9, 3) - base)
    colour = np.clip(colour + rng.uniform(-0.08, 0.08, 3), 0.05, 0.95)
    directions = rng.normal(size=(3, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavelengths = rng.uniform(0.15, 1.0, 3)
    k = directions * (2 * math.pi / wavelengths)[:, None]
    phases = rng.uniform(0.0, 2 * math.pi, 3)
    waves = tuple(tuple(float(v) for v in (*k[i], phases[i])) for i in range(3))
    checker = None
    if cls == FLOOR and rng.random() < 0.5:
        checker = (float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.05, 0.15)))
    return Surface(
        colour=tuple(float(c) for c in colour),
        waves=waves,
        amplitude=float(rng.uniform(0.05, 0.2)),
        checker=checker,
    )


def sample_params(rng: np.random.Generator) -> SceneParams:
    """Draw one scene from the distributions of the module docstring."""
    width = rng.uniform(3.5, 5.5)
    length = rng.uniform(4.5, 7.0)
    height = rng.uniform(2.6, 3.2)
    camera = (rng.uniform(-0.3, 0.3), rng.uniform(1.2, 1.6), rng.uniform(0.3, 0.8))
    yaw = math.radians(rng.uniform(-10.0, 10.0))
    pitch = math.radians(rng.uniform(3.0, 15.0))
    roll = math.radians(rng.uniform(-3.0, 3.0))

    objects = []
    for _ in range(int(rng.integers(2, 6))):
        kind = OBJECT_KINDS[int(rng.integers(len(OBJECT_KINDS)))]
        if kind == "box":
            size = (rng.uniform(0.2, 0.6), rng.uniform(0.3, 1.2), rng.uniform(0.2, 0.6))
            half_x, half_z = size[0], size[2]
        elif kind == "sphere":
            size = (rng.uniform(0.2, 0.5),)
            half_x = half_z = size[0]
        else:
            size = (rng.uniform(0.15, 0.4), rng.uniform(0.4, 1.5))
            half_x = half_z = size[0]
        x = rng.uniform(-width / 2 + half_x, width / 2 - half_x)
        z = rng.uniform(camera[2] + 1.8, length - half_z)
        cls = _HITS[kind][1]
        objects.append(
            SceneObject(
                kind, float(x), float(z), tuple(float(s) for s in size), _surface(rng, cls, 0.5)
            )
        )

    total = rng.uniform(0.9, 1.4)
    count = int(rng.integers(1, 3))
    shares = rng.dirichlet(np.ones(count)) if count > 1 else np.ones(1)
    lights = tuple(
        Light(
            (
                float(rng.uniform(-width / 2 + 0.3, width / 2 - 0.3)),
                float(height - rng.uniform(0.1, 0.3)),
                float(rng.uniform(0.5, length - 0.5)),
            ),
            float(total * share),
        )
        for share in shares
    )
    window = None
    if rng.random() < 0.4:
        w, h = rng.uniform(0.6, 1.2), rng.uniform(0.5, 0.9)
        x0 = rng.uniform(-width / 2, width / 2 - w)
        y0 = rng.uniform(0.9, 1.4)
        window = (float(x0), float(x0 + w), float(y0), float(y0 + h))
    return SceneParams(
        width=float(width),
        length=float(length),
        height=float(height),
        camera=tuple(float(c) for c in camera),
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        objects=tuple(objects),
        lights=lights,
        ambient=float(rng.uniform(0.2, 0.35)),
        floor=_surface(rng, FLOOR, 0.25),
        ceiling=_surface(rng, CEILING, 0.25),
        walls=_surface(rng, WALL, 0.25),
        window=window,
        noise=float(rng.uniform(0.005, 0.02)),
        noise_seed=int(rng.integers(2**63)),
    )


def _count(value: int, name: str, minimum: int) -> int:
    """``value`` as an int, or a ConfigError naming ``name`` if it is not an integer ≥ minimum."""
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if number is None or isinstance(value, bool) or number < minimum:
        raise ConfigError(f"scenes: {name} must be an integer >= {minimum}, got {value!r}")
    return number


def _render_range(start: int, stop: int, height: int, width: int, seed: int):
    """Images ``start``..``stop - 1`` of ``seed``, batched as in ``render_scenes``."""
    out = {
        "image": np.empty((stop - start, height, width, 3), np.float32),
        "label": np.empty((stop - start, height, width), np.int64),
        "depth": np.empty((stop - start, height, width, 1), np.float32),
        "normal": np.empty((stop - start, height, width, 3), np.float32),
    }
    for n, index in enumerate(range(start, stop)):
        params = sample_params(np.random.default_rng([seed, index]))
        for key, value in render(params, height, width).items():
            out[key][n] = value
    return out


def render_scenes(count: int, height: int, width: int, seed: int) -> dict[str, np.ndarray]:
    """Render ``count`` random scenes; the same arguments give identical bytes.

    Returns image (count, H, W, 3) float32 in [0, 1], label (count, H, W) int64 (-1 = invalid),
    depth (count, H, W, 1) float32 metres (0 = invalid) and normal (count, H, W, 3) float32 unit
    camera-frame vectors (zero = invalid). Image i depends only on (seed, i).
    """
    count = _count(count, "count", 0)
    height = _count(height, "height", 1)
    width = _count(width, "width", 1)
    seed = _count(seed, "seed", 0)
    return _render_range(0, count, height, width, seed)


def write_scenes(
    directory: Path, train: int, test: int, height: int = 48, width: int = 64, seed: int = 0
) -> None:
    """Write ``train`` scenes to ``directory``/train and ``test`` to ``directory``/val as NYUv2.

    Files are ``{train,val}/{image,label,depth,normal}/<i>.npy`` for i = 0, 1, …; the train
    images are ``render_scenes(train, height, width, 2 * seed)`` and the val ones use seed
    ``2 * seed + 1``, so the splits differ. Everything is written under a temporary sibling
    folder that is renamed to ``directory`` at the end: an interrupted run leaves no partial
    dataset (an existing ``directory`` is replaced, and stays intact if the run fails).
    """
    directory = Path(directory)
    splits = {"train": _count(train, "train", 0), "val": _count(test, "test", 0)}
    height = _count(height, "height", 1)
    width = _count(width, "width", 1)
    seed = _count(seed, "seed", 0)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".tmp")
    )
    try:
        for offset, (split, count) in enumerate(splits.items()):
            for name in FIELDS:
                (staging / split / name).mkdir(parents=True)
            for start in range(0, count, 256):
                stop = min(start + 256, count)
                batch = _render_range(start, stop, height, width, 2 * seed + offset)
                for name in FIELDS:
                    for n, index in enumerate(range(start, stop)):
                        _save(staging / split / name / f"{index}.npy", batch[name][n])
        for split in splits:
            for name in FIELDS:
                _sync_folder(staging / split / name)
            _sync_folder(staging / split)
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes the folder private
        _sync_folder(staging)
        if directory.exists():
            old = Path(
                tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".old")
            )
            os.replace(directory, old / directory.name)
            try:
                os.replace(staging, directory)
            except BaseException:
                os.replace(old / directory.name, directory)  # put the old dataset back
                raise
            finally:
                _sync_folder(directory.parent)
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, directory)
            _sync_folder(directory.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _save(path: Path, array: np.ndarray) -> None:
    """``np.save`` ``array`` to ``path`` and make sure it is on disk before the folder's rename."""
    with open(path, "wb") as file:
        np.save(file, array)
        file.flush()
        os.fsync(file.fileno())


def _sync_folder(path: Path) -> None:
    """Make the entries (renames) of folder ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    """The process's file-creation mask."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
