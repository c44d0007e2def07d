"""Tests of auxbench.data.scenes: hand-checked ray casts, the batched arrays and the NYUv2 files."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from auxbench.data import scenes
from auxbench.data.scenes import (
    SCENE_CLASSES,
    Light,
    SceneObject,
    SceneParams,
    Surface,
    render,
    render_scenes,
    write_scenes,
)
from auxbench.foundations.errors import ConfigError

H, W = 48, 64
F = 0.81 * W  # the focal length in pixels
FLOOR, CEILING, WALL, BOX, SPHERE, CYLINDER = range(6)
GREY = Surface((0.5, 0.5, 0.5))


def room(**overrides) -> SceneParams:
    """An empty 4 m wide, 5 m long, 3 m high room; a level camera 1.5 m up, 1 m from the front."""
    values = {"width": 4.0, "length": 5.0, "height": 3.0, "camera": (0.0, 1.5, 1.0)}
    values.update(overrides)
    return SceneParams(**values)


@pytest.fixture(scope="module")
def batch() -> dict[str, np.ndarray]:
    return render_scenes(6, H, W, seed=11)


def test_class_names():
    assert SCENE_CLASSES == ("floor", "ceiling", "wall", "box", "sphere", "cylinder")


def test_empty_room_centre_sees_the_back_wall_head_on():
    out = render(room(), H, W)
    # the centre pixel's ray is (0.5/F, 0.5/F, 1): it meets the back wall z = 5 at depth 5 - 1
    assert out["label"][24, 32] == WALL
    assert out["depth"][24, 32, 0] == pytest.approx(4.0, abs=1e-6)
    np.testing.assert_allclose(out["normal"][24, 32], [0.0, 0.0, -1.0], atol=1e-6)
    # every back-wall pixel of a level camera lies at the same depth
    back = np.abs(out["normal"][..., 2] + 1.0) < 1e-6
    assert back.sum() > 500
    np.testing.assert_allclose(out["depth"][back, 0], 4.0, atol=1e-5)


def test_empty_room_floor_ceiling_and_side_wall():
    out = render(room(), H, W)
    # bottom row: the ray drops 23.5/F per metre of depth, reaching the floor 1.5 m down
    assert out["label"][47, 32] == FLOOR
    assert out["depth"][47, 32, 0] == pytest.approx(1.5 * F / 23.5, abs=1e-5)
    np.testing.assert_allclose(out["normal"][47, 32], [0.0, -1.0, 0.0], atol=1e-6)  # y is down
    # top row: the ceiling 1.5 m up, normal pointing down in the image
    assert out["label"][0, 32] == CEILING
    assert out["depth"][0, 32, 0] == pytest.approx(1.5 * F / 23.5, abs=1e-5)
    np.testing.assert_allclose(out["normal"][0, 32], [0.0, 1.0, 0.0], atol=1e-6)
    # left column: the ray moves 31.5/F left per metre, meeting the wall x = -2
    assert out["label"][24, 0] == WALL
    assert out["depth"][24, 0, 0] == pytest.approx(2.0 * F / 31.5, abs=1e-5)
    np.testing.assert_allclose(out["normal"][24, 0], [1.0, 0.0, 0.0], atol=1e-6)
    assert (out["label"] >= 0).all()  # no window, no invalid pixel


def test_empty_room_unlit_image_is_colour_times_ambient():
    params = room(floor=Surface((0.2, 0.4, 0.6)), walls=GREY, ceiling=GREY, ambient=0.5)
    out = render(params, H, W)
    np.testing.assert_allclose(out["image"][47, 32], [0.1, 0.2, 0.3], atol=1e-6)
    np.testing.assert_allclose(out["image"][24, 32], [0.25, 0.25, 0.25], atol=1e-6)


def test_lambertian_light_at_the_camera():
    light = Light((0.0, 1.5, 1.0), 1.0)
    out = render(room(walls=GREY, ambient=0.2, lights=(light,)), H, W)
    # centre pixel: the back-wall point (e·4, -e·4, 5) with e = 0.5/F, the light at the eye
    e = 0.5 / F
    distance = 4.0 * math.sqrt(1 + 2 * e * e)
    cosine = 4.0 / distance
    expected = 0.5 * (0.2 + cosine / (1 + 0.08 * distance**2))
    np.testing.assert_allclose(out["image"][24, 32], [expected] * 3, atol=1e-6)


def test_pitch_tilts_the_floor_normal():
    pitch = math.radians(10.0)
    out = render(room(pitch=pitch), H, W)
    assert out["label"][47, 32] == FLOOR
    # world up seen by a camera looking 10° down: (0, -cos 10°, -sin 10°)
    np.testing.assert_allclose(
        out["normal"][47, 32], [0.0, -math.cos(pitch), -math.sin(pitch)], atol=1e-6
    )
    # the bottom-row ray (e, b, 1), b = 23.5/F, drops b·cos 10° + sin 10° per unit of depth
    b = 23.5 / F
    expected = 1.5 / (b * math.cos(pitch) + math.sin(pitch))
    assert out["depth"][47, 32, 0] == pytest.approx(expected, abs=1e-5)


def test_positive_yaw_turns_right():
    out = render(room(camera=(0.0, 1.5, 2.5), yaw=math.pi / 2), H, W)
    # looking along +x at the wall x = 2, head-on, 2 m away
    assert out["label"][24, 32] == WALL
    assert out["depth"][24, 32, 0] == pytest.approx(2.0, abs=1e-6)
    np.testing.assert_allclose(out["normal"][24, 32], [0.0, 0.0, -1.0], atol=1e-6)


def test_box_front_face():
    box = SceneObject("box", x=0.0, z=3.0, size=(0.5, 2.0, 0.5), surface=GREY)
    out = render(room(objects=(box,)), H, W)
    # front face z = 2.5, 1.5 m in front of the camera
    assert out["label"][24, 32] == BOX
    assert out["depth"][24, 32, 0] == pytest.approx(1.5, abs=1e-6)
    np.testing.assert_allclose(out["normal"][24, 32], [0.0, 0.0, -1.0], atol=1e-6)
    # the face spans x in [-0.5, 0.5]: at depth 1.5 that is 0.5/1.5·F = 17.3 px either side
    assert out["label"][24, 32 + 16] == BOX
    assert out["label"][24, 32 + 18] == WALL


def test_sphere_front():
    ball = SceneObject("sphere", x=0.0, z=3.0, size=(0.5,), surface=GREY)
    out = render(room(camera=(0.0, 0.5, 0.5), objects=(ball,)), H, W)
    # the ray (e, -e, 1) from 2.5 m before the centre: t² (1 + 2e²) - 5t + 6 = 0
    e = 0.5 / F
    a = 1 + 2 * e * e
    t = (5 - math.sqrt(25 - 24 * a)) / (2 * a)
    assert out["label"][24, 32] == SPHERE
    assert out["depth"][24, 32, 0] == pytest.approx(t, abs=1e-5)
    hit = np.array([e * t, 0.5 - e * t, 0.5 + t]) - np.array([0.0, 0.5, 3.0])
    expected = hit / 0.5 * np.array([1, -1, 1])  # world to camera: y flips
    np.testing.assert_allclose(out["normal"][24, 32], expected, atol=1e-5)


def test_cylinder_side_and_top_cap():
    can = SceneObject("cylinder", x=0.0, z=3.0, size=(0.5, 1.0), surface=GREY)
    out = render(room(camera=(0.0, 0.5, 0.5), objects=(can,)), H, W)
    # the ray (e, -e, 1) meets the side x² + (z - 3)² = 0.25 where t² (1 + e²) - 5t + 6 = 0
    e = 0.5 / F
    a = 1 + e * e
    t = (5 - math.sqrt(25 - 24 * a)) / (2 * a)
    assert out["label"][24, 32] == CYLINDER
    assert out["depth"][24, 32, 0] == pytest.approx(t, abs=1e-5)
    np.testing.assert_allclose(
        out["normal"][24, 32], [e * t / 0.5, 0.0, (t - 2.5) / 0.5], atol=1e-5
    )
    # looking straight down from 2 m above its axis: the cap 1 m below faces the camera
    down = render(room(camera=(0.0, 2.0, 3.0), pitch=math.pi / 2, objects=(can,)), H, W)
    assert down["label"][24, 32] == CYLINDER
    assert down["depth"][24, 32, 0] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(down["normal"][24, 32], [0.0, 0.0, -1.0], atol=1e-6)


def test_window_pixels_are_invalid():
    out = render(room(window=(-0.5, 0.5, 1.0, 2.0)), H, W)
    assert out["label"][24, 32] == -1
    assert out["depth"][24, 32, 0] == 0.0
    assert (out["normal"][24, 32] == 0.0).all()
    assert out["label"][24, 40] == WALL  # at 4 m, x = 8.5/F·4 = 0.66 m is outside the window
    assert out["depth"][24, 40, 0] > 0


def test_unknown_object_kind():
    cone = SceneObject("cone", x=0.0, z=3.0, size=(0.5,), surface=GREY)
    with pytest.raises(ConfigError, match="cone"):
        render(room(objects=(cone,)), H, W)


def test_determinism():
    first = render_scenes(3, H, W, seed=5)
    again = render_scenes(3, H, W, seed=5)
    other = render_scenes(3, H, W, seed=6)
    for key in ("image", "label", "depth", "normal"):
        assert first[key].tobytes() == again[key].tobytes()
        assert first[key].tobytes() != other[key].tobytes()
    # image i depends only on (seed, i)
    longer = render_scenes(4, H, W, seed=5)
    assert longer["image"][:3].tobytes() == first["image"].tobytes()
    # the images of one seed differ from one another
    assert first["depth"][0].tobytes() != first["depth"][1].tobytes()


def test_shapes_dtypes_and_ranges(batch):
    assert batch["image"].shape == (6, H, W, 3) and batch["image"].dtype == np.float32
    assert batch["label"].shape == (6, H, W) and batch["label"].dtype == np.int64
    assert batch["depth"].shape == (6, H, W, 1) and batch["depth"].dtype == np.float32
    assert batch["normal"].shape == (6, H, W, 3) and batch["normal"].dtype == np.float32
    assert batch["image"].min() >= 0.0 and batch["image"].max() <= 1.0
    assert batch["image"].std() > 0.05  # not a flat picture
    assert set(np.unique(batch["label"])) <= {-1, *range(len(SCENE_CLASSES))}
    assert len(set(np.unique(batch["label"])) - {-1}) >= 5
    valid = batch["label"] >= 0
    assert valid.mean() > 0.9  # sensor holes are few
    assert (batch["depth"][valid, 0] > 0).all()
    assert (batch["depth"][valid, 0] < 10).all()  # inside a room at most 7 m long
    assert (batch["depth"][~valid, 0] == 0).all()
    assert (batch["normal"][~valid] == 0).all()


def test_normals_are_unit_and_face_the_camera(batch):
    valid = batch["label"] >= 0
    normal = batch["normal"].astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(normal[valid], axis=-1), 1.0, atol=1e-5)
    rays = scenes.pixel_rays(H, W)
    facing = np.einsum("nhwc,hwc->nhw", normal, rays)
    assert (facing[valid] < 0).all()


def test_tasks_share_structure(batch):
    """Label boundaries fall where depth jumps or the normal turns by 20°; elsewhere they rarely
    do."""
    label, depth, normal = batch["label"], batch["depth"][..., 0], batch["normal"]
    boundary, change = [], []
    for axis in (1, 2):  # vertical and horizontal neighbours
        a = [np.take(x, range(x.shape[axis] - 1), axis=axis) for x in (label, depth, normal)]
        b = [np.take(x, range(1, x.shape[axis]), axis=axis) for x in (label, depth, normal)]
        valid = (a[0] >= 0) & (b[0] >= 0)
        jump = np.abs(a[1] - b[1]) > 0.15 * np.minimum(a[1], b[1])  # 15 % of the nearer depth
        turn = (a[2] * b[2]).sum(-1) < math.cos(math.radians(20))
        boundary.append((a[0] != b[0])[valid])
        change.append((jump | turn)[valid])
    boundary, change = np.concatenate(boundary), np.concatenate(change)
    assert boundary.mean() > 0.01
    assert change[boundary].mean() > 0.9
    assert change[~boundary].mean() < 0.05  # wall corners, touching objects of one class


def test_write_scenes_layout(tmp_path):
    target = tmp_path / "scenes"
    write_scenes(target, train=3, test=2)
    assert sorted(os.listdir(target)) == ["train", "val"]
    train = render_scenes(3, H, W, seed=0)
    val = render_scenes(2, H, W, seed=1)
    for split, count, arrays in (("train", 3, train), ("val", 2, val)):
        assert sorted(os.listdir(target / split)) == ["depth", "image", "label", "normal"]
        for name in ("image", "label", "depth", "normal"):
            files = sorted(os.listdir(target / split / name))
            assert files == [f"{i}.npy" for i in range(count)]
            for i in range(count):
                loaded = np.load(target / split / name / f"{i}.npy")
                assert loaded.dtype == arrays[name].dtype
                assert loaded.tobytes() == arrays[name][i].tobytes()
    first_train = np.load(target / "train" / "image" / "0.npy")
    first_val = np.load(target / "val" / "image" / "0.npy")
    assert first_train.shape == (H, W, 3) and not np.array_equal(first_train, first_val)
    assert sorted(os.listdir(tmp_path)) == ["scenes"]  # no temporary folder left behind


def test_write_scenes_replaces_an_existing_dataset(tmp_path):
    target = tmp_path / "scenes"
    (target / "train" / "image").mkdir(parents=True)
    (target / "train" / "image" / "7.npy").write_bytes(b"stale")
    write_scenes(target, train=1, test=1, height=8, width=10, seed=3)
    assert os.listdir(target / "train" / "image") == ["0.npy"]
    assert np.load(target / "val" / "depth" / "0.npy").shape == (8, 10, 1)
    assert sorted(os.listdir(tmp_path)) == ["scenes"]


def test_interrupted_write_leaves_the_old_dataset(tmp_path, monkeypatch):
    target = tmp_path / "scenes"
    target.mkdir()
    (target / "keep.txt").write_text("old")
    calls = []

    def failing_save(path: Path, array: np.ndarray) -> None:
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt
        path.write_bytes(b"partial")

    monkeypatch.setattr(scenes, "_save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        write_scenes(target, train=2, test=2, height=4, width=4)
    assert os.listdir(target) == ["keep.txt"]
    assert sorted(os.listdir(tmp_path)) == ["scenes"]


@pytest.mark.parametrize(
    ("call", "key"),
    [
        (lambda: render_scenes(-1, H, W, 0), "count"),
        (lambda: render_scenes(2, 0, W, 0), "height"),
        (lambda: render_scenes(2, H, W, -3), "seed"),
        (lambda: render_scenes(2.5, H, W, 0), "count"),
        (lambda: write_scenes(Path("/nonexistent/x"), 1, -1), "test"),
    ],
)
def test_bad_arguments(call, key):
    with pytest.raises(ConfigError, match=key):
        call()
