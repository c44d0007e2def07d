"""The three visual manipulation environments of OL-AUX §5.3, rendered headless in MuJoCo.

Each follows the goal environments' contract (``/docs/manipulation.md``, the page
``/docs/manipulation-envs.md`` gives the details and measured speeds): a ``Dict`` observation
with the RGBD ``observation`` and ``goal_image`` (4 × size × size uint8, channels R, G, B and
depth; depth along the camera's viewing axis, quantised linearly from the environment's
``DEPTH_RANGE`` = (near, far) metres to 0…255 and clipped), the ground-truth ``achieved_goal`` and
``desired_goal`` (float32), and ``flow`` (below); actions in [−1, 1]; the sparse reward
−[‖achieved − desired‖ > threshold]; ``info["is_success"]``; no early termination (the horizon
is the registered ``max_episode_steps``, 50 for all three). Every site (goal markers included) is
hidden from the renders, so the goal is given only by the goal image.

- **Visual Fetch Reach** (``auxbench/VisualFetchReach-v0``): Gymnasium-Robotics ``FetchReach-v4``
  (4-d action, goal = gripper xyz, threshold 0.05 m, its own goal sampler). A world-fixed free
  camera showing the arm and the whole goal box (the model's ``external_camera_0`` crops the
  gripper at the top of the box, and rides on the robot's base). Goal image: the physics state is
  saved, the gripper is driven to the goal by the environment's own controller (proportional
  actions, until within 2.5 mm or 50 steps; goals less than 1.8 cm above the table top stay out
  of reach, ``info["goal_image_error"]`` says how far it got), rendered, and the state restored
  exactly.
- **Visual Hand Reach** (``auxbench/VisualHandReach-v0``): Gymnasium-Robotics ``HandReach-v3``
  (20-d action, goal = the 5 fingertips' xyz = 15-d, threshold 0.01 m). The goal is sampled in
  joint space, not by Gymnasium-Robotics' sampler (fingertip meeting points that would need
  inverse kinematics to render): the actuators' target angles are drawn uniformly in their ranges
  (an action uniform in [−1, 1]²⁰ from the env's ``np_random``) and held for
  ``GOAL_SETTLE_STEPS`` steps from the episode's start; the fingertips where the hand settles are
  the goal, that hand is the goal image, then the state is restored. Setting the joints directly
  (forward kinematics) would give poses the position servos do not reach under gravity and
  contact (measured: 1.4–4 cm from the commanded pose's fingertips, above the 1 cm threshold, and
  most such poses interpenetrate); a settled pose is reachable by construction.
- **Visual Finger Turn** (``auxbench/VisualFingerTurn-v0``): dm_control suite ``finger`` with the
  ``turn_easy`` task's episode initialisation (target radius 0.07; turn_hard's 0.03 would make
  the sparse reward rarer still). 2-d action; goal = the target's (x, z), achieved = the body
  tip's (x, z), threshold = the target site's radius read from the physics. One env step is
  ``CONTROL_STEPS`` = 2 of dm_control's 0.02 s control steps (action repeat 2, as PlaNet and
  DrQ use for the finger), so the 50 steps are 2 s. Camera ``cam0``. Goal image: the unactuated
  hinge is set to the angle that puts the tip on the target, rendered, the state restored.

**Flow** (``HAS_FLOW = True`` for all three; ``flow=False`` in the constructor drops the key to
save the segmentation render): exact, from the renderer's depth and per-pixel geom ids of the
previous frame. Each pixel centre is unprojected to the world with the camera's pinhole
intrinsics (fovy of the frustum), moved with its geom's rigid motion between the two frames,
and projected with the camera of the new frame; background pixels (sky) do not move. Flow is in
pixels (dx = columns, dy = rows), average-pooled 4 × 4, zeros after reset.

**Headless OpenGL**: mujoco picks its OpenGL backend once, when it is first imported, from
``MUJOCO_GL``; :func:`select_gl_backend` sets it (EGL, else OSMesa) before this module imports
mujoco, and the constructors check that mujoco uses it. Without a GPU both are Mesa's llvmpipe,
which loads the system's libLLVM; triton (imported lazily by torch) crashes when it loads after
that, so this module imports it first (``_preload_llvm_users``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import importlib
import importlib.util
import io
import os
import subprocess
import sys
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

FETCH_ID = "auxbench/VisualFetchReach-v0"
HAND_ID = "auxbench/VisualHandReach-v0"
FINGER_ID = "auxbench/VisualFingerTurn-v0"
MANIPULATION_ENVS = {"fetch-reach": FETCH_ID, "hand-reach": HAND_ID, "finger-turn": FINGER_ID}
HORIZON = 50
FLOW_POOL = 4

_GL_LIBRARIES = {"egl": "EGL", "osmesa": "OSMesa"}
_LLVM_USERS = ("triton",)  # installed libraries that bundle their own LLVM
_GL_PROBE = "from mujoco.{0} import GLContext; c = GLContext(8, 8); c.make_current(); c.free()"


def _gl_backend_works(backend: str) -> bool:
    """True when ``backend``'s library loads and mujoco can open an 8×8 context with it (tried in
    a subprocess, so that a failure leaves this process untouched)."""
    name = ctypes.util.find_library(_GL_LIBRARIES[backend])
    if name is None:
        return False
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _GL_PROBE.format(backend)],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def select_gl_backend() -> str:
    """The OpenGL backend mujoco renders with: ``MUJOCO_GL`` if it is set (PYOPENGL_PLATFORM is
    then set to match, unless it is set already), else the first of EGL and OSMesa that works,
    written to ``MUJOCO_GL`` and ``PYOPENGL_PLATFORM``. Raises a one-line RuntimeError naming the
    packages to install when neither works."""
    preset = os.environ.get("MUJOCO_GL", "").strip().lower()
    if preset:
        if preset in _GL_LIBRARIES:
            os.environ.setdefault("PYOPENGL_PLATFORM", preset)
        return preset
    for backend in _GL_LIBRARIES:
        if _gl_backend_works(backend):
            os.environ["MUJOCO_GL"] = backend
            os.environ["PYOPENGL_PLATFORM"] = backend
            return backend
    raise RuntimeError(
        "no headless OpenGL for MuJoCo: install EGL (Debian: apt-get install libegl1 "
        "libegl-mesa0) or OSMesa (apt-get install libosmesa6), or set MUJOCO_GL"
    )


def _preload_llvm_users() -> None:
    """Import the installed libraries that bundle their own LLVM (triton, which torch imports
    lazily) before an OpenGL context exists: Mesa's software renderer (llvmpipe, behind EGL and
    OSMesa on a machine without a GPU) loads the system's libLLVM, and triton's extension
    loaded after it crashes the process (segmentation fault); loaded first, both work."""
    for name in _LLVM_USERS:
        if name not in sys.modules and importlib.util.find_spec(name) is not None:
            with contextlib.suppress(Exception):
                importlib.import_module(name)


# mujoco reads MUJOCO_GL once, when it is imported: choose the backend before that (a machine
# without one still imports this module; the constructors then raise select_gl_backend's error).
with contextlib.suppress(RuntimeError):
    select_gl_backend()
_preload_llvm_users()

import mujoco

with contextlib.redirect_stderr(io.StringIO()):  # its import prints a notice about Adroit
    import gymnasium_robotics
from dm_control.suite import finger as dm_finger

gym.register_envs(gymnasium_robotics)


def _check_mujoco_gl() -> None:
    """Select the backend and make sure mujoco renders with it (it does not when mujoco was
    imported before ``MUJOCO_GL`` was set)."""
    backend = select_gl_backend()
    if backend not in _GL_LIBRARIES:
        return
    module = getattr(getattr(mujoco, "GLContext", None), "__module__", "none")
    if not module.startswith(f"mujoco.{backend}"):
        raise RuntimeError(
            f"mujoco was imported before MUJOCO_GL={backend} was set (its OpenGL context comes "
            f"from {module}): set MUJOCO_GL={backend} in the environment, or import "
            "auxbench.rltrack.manipulation before mujoco"
        )


def sparse_reward(achieved: np.ndarray, desired: np.ndarray, threshold: float) -> np.ndarray:
    """0 where ‖achieved − desired‖ ≤ ``threshold`` over the last axis, −1 elsewhere (float32;
    single goals and batches)."""
    distance = np.linalg.norm(np.asarray(achieved) - np.asarray(desired), axis=-1)
    return -(distance > threshold).astype(np.float32)


def quantise_depth(depth: np.ndarray, near: float, far: float) -> np.ndarray:
    """Metric depth → uint8, linear from ``near`` (0) to ``far`` (255), clipped."""
    scaled = (np.asarray(depth, dtype=np.float64) - near) / (far - near) * 255.0
    return np.round(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)


def pool_flow(flow: np.ndarray, pool: int = FLOW_POOL) -> np.ndarray:
    """(2, H, W) flow average-pooled ``pool``×``pool`` → (2, H/pool, W/pool) float32."""
    channels, height, width = flow.shape
    blocks = flow.reshape(channels, height // pool, pool, width // pool, pool)
    return blocks.mean(axis=(2, 4)).astype(np.float32)


def get_state(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """The full integration state (time, qpos, qvel, act, warm start, controls, applied forces,
    mocap poses, …): what ``set_state`` needs to continue exactly."""
    signature = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(model, signature))
    mujoco.mj_getState(model, data, state, signature)
    return state


def set_state(model: mujoco.MjModel, data: mujoco.MjData, state: np.ndarray) -> None:
    """Restore a ``get_state`` state and recompute the derived quantities."""
    mujoco.mj_setState(model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(model, data)


@dataclass
class Frame:
    """One render: the RGBD image, and for flow the metric depth, the geom id of every pixel (−1:
    no geom), the camera (position, axes as columns: right, up, backwards; focal length in
    pixels) and every geom's pose."""

    rgbd: np.ndarray
    depth: np.ndarray | None = None
    geom: np.ndarray | None = None
    camera: tuple[np.ndarray, np.ndarray, float] | None = None
    geom_pos: np.ndarray | None = None
    geom_mat: np.ndarray | None = None


_CAMERAS: weakref.WeakSet = weakref.WeakSet()
_CLOSE_AT_EXIT: list[bool] = []


def _close_cameras() -> None:
    """Free the live cameras' OpenGL contexts before the EGL display goes (mujoco terminates it
    at exit; a renderer freed after that prints an error)."""
    for camera in list(_CAMERAS):
        camera.close()


class RGBDCamera:
    """Renders one model from one camera (a camera name, or free-camera settings ``lookat``,
    ``distance``, ``azimuth``, ``elevation``) as (4, size, size) uint8 RGBD, every site hidden."""

    def __init__(
        self,
        model: mujoco.MjModel,
        size: int,
        camera: str | dict[str, Any],
        depth_range: tuple[float, float],
    ):
        self.model, self.size = model, size
        self.near, self.far = depth_range
        self.renderer = mujoco.Renderer(model, size, size)
        _CAMERAS.add(self)
        if not _CLOSE_AT_EXIT:  # after the first context: runs before mujoco's own exit handler
            atexit.register(_close_cameras)
            _CLOSE_AT_EXIT.append(True)
        self.option = mujoco.MjvOption()
        self.option.sitegroup[:] = 0  # goal markers and every other site
        if isinstance(camera, str):
            self.camera: str | mujoco.MjvCamera = camera
        else:
            free = mujoco.MjvCamera()
            free.type = mujoco.mjtCamera.mjCAMERA_FREE
            free.lookat[:] = camera["lookat"]
            free.distance, free.azimuth = camera["distance"], camera["azimuth"]
            free.elevation = camera["elevation"]
            self.camera = free

    def capture(self, data: mujoco.MjData, flow: bool = False) -> Frame:
        """Render ``data``; with ``flow`` also what ``exact_flow`` needs."""
        renderer = self.renderer
        renderer.update_scene(data, camera=self.camera, scene_option=self.option)
        rgb = renderer.render()
        renderer.enable_depth_rendering()
        depth = renderer.render().astype(np.float64)
        renderer.disable_depth_rendering()
        rgbd = np.concatenate(
            [rgb.transpose(2, 0, 1), quantise_depth(depth, self.near, self.far)[None]]
        )
        if not flow:
            return Frame(rgbd)
        renderer.enable_segmentation_rendering()
        segmentation = renderer.render()
        renderer.disable_segmentation_rendering()
        geom = np.where(
            segmentation[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM), segmentation[..., 0], -1
        )
        # a mono render looks from the mean of the scene's two (stereo) eyes
        eye = mujoco.mjv_averageCamera(renderer.scene.camera[0], renderer.scene.camera[1])
        forward, up = np.array(eye.forward, dtype=np.float64), np.array(eye.up, dtype=np.float64)
        axes = np.stack([np.cross(forward, up), up, -forward], axis=1)
        focal = self.size * eye.frustum_near / (eye.frustum_top - eye.frustum_bottom)
        return Frame(
            rgbd,
            depth,
            geom,
            (np.array(eye.pos, dtype=np.float64), axes, float(focal)),
            data.geom_xpos.copy(),
            data.geom_xmat.reshape(-1, 3, 3).copy(),
        )

    def close(self) -> None:
        """Free the OpenGL context."""
        self.renderer.close()


def exact_flow(before: Frame, after: Frame) -> np.ndarray:
    """(2, H, W) flow from ``before`` to ``after`` (pixels; dx, dy): each pixel centre of
    ``before`` on a geom, unprojected with its depth, moved with that geom's rigid motion and
    projected with ``after``'s camera; pixels on no geom do not move."""
    height, width = before.depth.shape
    position, axes, focal = before.camera
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    z = before.depth
    eye = np.stack([(cols - width / 2) / focal * z, (height / 2 - rows) / focal * z, -z], axis=-1)
    world = position + eye @ axes.T
    flow = np.zeros((2, height, width))
    on_geom = before.geom >= 0
    ids = before.geom[on_geom]
    local = np.einsum("nji,nj->ni", before.geom_mat[ids], world[on_geom] - before.geom_pos[ids])
    moved = after.geom_pos[ids] + np.einsum("nij,nj->ni", after.geom_mat[ids], local)
    position2, axes2, focal2 = after.camera
    eye2 = (moved - position2) @ axes2
    depth2 = -eye2[:, 2]
    flow[0][on_geom] = width / 2 + focal2 * eye2[:, 0] / depth2 - cols[on_geom]
    flow[1][on_geom] = height / 2 - focal2 * eye2[:, 1] / depth2 - rows[on_geom]
    return flow


class VisualGoalEnv(gym.Env):
    """What the three environments share: the spaces, the observation, the sparse reward, the
    step/reset bookkeeping and flow. A subclass sets ``model``, ``data``, ``threshold`` and
    ``self.camera`` and implements ``_reset_episode``, ``_goal_image``, ``_advance`` and
    ``_achieved``."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 25}
    HAS_FLOW: ClassVar[bool] = True
    GOAL_DIM: ClassVar[int]
    ACTION_DIM: ClassVar[int]
    CAMERA: ClassVar[str | dict[str, Any]]
    DEPTH_RANGE: ClassVar[tuple[float, float]]

    model: mujoco.MjModel
    data: mujoco.MjData
    threshold: float

    def _setup(self, size: int, flow: bool, render_mode: str | None) -> None:
        if size < 8 or size % FLOW_POOL:
            raise ValueError(
                f"{type(self).__name__}: size must be a multiple of {FLOW_POOL} >= 8, got {size}"
            )
        self.size, self.use_flow, self.render_mode = size, flow, render_mode
        image = spaces.Box(0, 255, (4, size, size), dtype=np.uint8)
        goal = spaces.Box(-np.inf, np.inf, (self.GOAL_DIM,), dtype=np.float32)
        keys = {"observation": image, "goal_image": image, "achieved_goal": goal}
        keys["desired_goal"] = goal
        pooled = (2, size // FLOW_POOL, size // FLOW_POOL)
        if flow:
            keys["flow"] = spaces.Box(-np.inf, np.inf, pooled, dtype=np.float32)
        self.observation_space = spaces.Dict(keys)
        self.action_space = spaces.Box(-1.0, 1.0, (self.ACTION_DIM,), dtype=np.float32)
        self.camera = RGBDCamera(self.model, size, self.CAMERA, self.DEPTH_RANGE)
        self.goal = np.zeros(self.GOAL_DIM)
        self.goal_image = np.zeros((4, size, size), dtype=np.uint8)
        self.flow = np.zeros(pooled, dtype=np.float32)
        self.frame: Frame | None = None
        self.goal_info: dict[str, float] = {}

    def _inner_seed(self) -> int:
        """A seed for the wrapped simulator's own generator, drawn from ``np_random``."""
        return int(self.np_random.integers(2**31 - 1))

    def _observation(self) -> dict[str, np.ndarray]:
        obs = {
            "observation": self.frame.rgbd.copy(),
            "goal_image": self.goal_image.copy(),
            "achieved_goal": self._achieved().astype(np.float32),
            "desired_goal": self.goal.astype(np.float32),
        }
        if self.use_flow:
            obs["flow"] = self.flow.copy()
        return obs

    def _info(self) -> dict[str, float]:
        distance = float(np.linalg.norm(self._achieved() - self.goal))
        return {"is_success": float(distance <= self.threshold), **self.goal_info}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._reset_episode()
        state = get_state(self.model, self.data)
        self.goal_image = self._goal_image()
        set_state(self.model, self.data, state)
        self.frame = self.camera.capture(self.data, flow=self.use_flow)
        self.flow = np.zeros_like(self.flow)
        return self._observation(), self._info()

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(self.ACTION_DIM), -1, 1)
        self._advance(action)
        before, self.frame = self.frame, self.camera.capture(self.data, flow=self.use_flow)
        if self.use_flow:
            self.flow = pool_flow(exact_flow(before, self.frame))
        reward = float(self.compute_reward(self._achieved(), self.goal, {}))
        return self._observation(), reward, False, False, self._info()

    def compute_reward(self, achieved_goal, desired_goal, info) -> np.ndarray:
        """Sparse: 0 within ``threshold`` of the goal, −1 elsewhere (batched or single)."""
        return sparse_reward(achieved_goal, desired_goal, self.threshold)

    def render(self):
        """The current RGB frame, (size, size, 3) uint8."""
        return self.frame.rgbd[:3].transpose(1, 2, 0).copy()

    def close(self) -> None:
        self.camera.close()

    # --- per environment --------------------------------------------------------------------

    def _reset_episode(self) -> None:
        raise NotImplementedError

    def _goal_image(self) -> np.ndarray:
        """Render the goal configuration (the caller restores the state afterwards)."""
        raise NotImplementedError

    def _advance(self, action: np.ndarray) -> None:
        raise NotImplementedError

    def _achieved(self) -> np.ndarray:
        raise NotImplementedError


def _site(model: mujoco.MjModel, name: str) -> int:
    return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, name)


class VisualFetchReach(VisualGoalEnv):
    """Move the Fetch gripper to the position shown in the goal image (see the module doc)."""

    GOAL_DIM, ACTION_DIM = 3, 4
    # a world-fixed view of the arm and the whole goal box (the initial gripper position ± 0.15
    # m): looking at 8 cm above the initial gripper position from 1.5 m, front left, from above
    CAMERA: ClassVar[dict[str, Any]] = {
        "lookat": (1.342, 0.749, 0.615),
        "distance": 1.5,
        "azimuth": 150.0,
        "elevation": -30.0,
    }
    DEPTH_RANGE = (1.0, 3.0)
    GOAL_TOLERANCE = 0.0025  # metres: the goal image's gripper is this close to the goal
    GOAL_MAX_STEPS = 50

    def __init__(self, size: int = 64, flow: bool = True, render_mode: str | None = None):
        _check_mujoco_gl()
        self.inner = gym.make("FetchReach-v4").unwrapped
        self.model, self.data = self.inner.model, self.inner.data
        self.threshold = float(self.inner.distance_threshold)
        self.grip = _site(self.model, "robot0:grip")
        # the mocap's translucent cross-hair marks the commanded position: not part of the scene
        mocap_geoms = self.model.body_mocapid[self.model.geom_bodyid] >= 0
        self.model.geom_group[mocap_geoms] = 5
        self._setup(size, flow, render_mode)
        self.camera.option.geomgroup[5] = 0

    def _achieved(self) -> np.ndarray:
        return self.data.site_xpos[self.grip].copy()

    def _reset_episode(self) -> None:
        self.inner.reset(seed=self._inner_seed())
        self.goal = np.array(self.inner.goal, dtype=np.float64)

    def _goal_image(self) -> np.ndarray:
        for _ in range(self.GOAL_MAX_STEPS):
            error = self.goal - self._achieved()
            if np.linalg.norm(error) <= self.GOAL_TOLERANCE:
                break
            # the controller moves the gripper's target by 0.05 × action
            self.inner.step(np.concatenate([np.clip(error / 0.05, -1.0, 1.0), [0.0]]))
        mujoco.mj_forward(self.model, self.data)
        self.goal_info = {"goal_image_error": float(np.linalg.norm(self.goal - self._achieved()))}
        return self.camera.capture(self.data).rgbd

    def _advance(self, action: np.ndarray) -> None:
        self.inner.step(action)
        mujoco.mj_forward(self.model, self.data)


FINGERTIPS = (
    "robot0:S_fftip",
    "robot0:S_mftip",
    "robot0:S_rftip",
    "robot0:S_lftip",
    "robot0:S_thtip",
)


class VisualHandReach(VisualGoalEnv):
    """Move the Shadow hand's five fingertips to the pose shown in the goal image (see the module
    doc: the goal is a settled pose under a random joint-space target)."""

    GOAL_DIM, ACTION_DIM = 15, 20
    CAMERA: ClassVar[dict[str, Any]] = {
        "lookat": (1.0, 0.88, 0.21),
        "distance": 0.32,
        "azimuth": 110.0,
        "elevation": -45.0,
    }
    DEPTH_RANGE = (0.2, 0.6)
    GOAL_SETTLE_STEPS = 25

    def __init__(self, size: int = 64, flow: bool = True, render_mode: str | None = None):
        _check_mujoco_gl()
        self.inner = gym.make("HandReach-v3").unwrapped
        self.model, self.data = self.inner.model, self.inner.data
        self.threshold = float(self.inner.distance_threshold)
        self.tips = [_site(self.model, name) for name in FINGERTIPS]
        self._setup(size, flow, render_mode)

    def _achieved(self) -> np.ndarray:
        return self.data.site_xpos[self.tips].reshape(-1).copy()

    def _reset_episode(self) -> None:
        self.inner.reset(seed=self._inner_seed())
        self.goal_action = self.np_random.uniform(-1.0, 1.0, self.ACTION_DIM)

    def _goal_image(self) -> np.ndarray:
        for _ in range(self.GOAL_SETTLE_STEPS):
            self.inner.step(self.goal_action)
        mujoco.mj_forward(self.model, self.data)
        self.goal = self._achieved()
        self.inner.goal = self.goal.copy()
        return self.camera.capture(self.data).rgbd

    def _advance(self, action: np.ndarray) -> None:
        self.inner.step(action)
        mujoco.mj_forward(self.model, self.data)


class VisualFingerTurn(VisualGoalEnv):
    """Turn the body on the unactuated hinge until its tip is on the target shown in the goal
    image (see the module doc)."""

    GOAL_DIM, ACTION_DIM = 2, 2
    CAMERA = "cam0"
    DEPTH_RANGE = (0.9, 1.5)
    TARGET_RADIUS = 0.07  # dm_control's turn_easy
    CONTROL_TIMESTEP = 0.02  # dm_control's finger default
    CONTROL_STEPS = 2

    def __init__(self, size: int = 64, flow: bool = True, render_mode: str | None = None):
        _check_mujoco_gl()
        self.physics = dm_finger.Physics.from_xml_string(*dm_finger.get_model_and_assets())
        self.model, self.data = self.physics.model.ptr, self.physics.data.ptr
        self.substeps = round(self.CONTROL_STEPS * self.CONTROL_TIMESTEP / self.model.opt.timestep)
        self.tip, self.target = _site(self.model, "tip"), _site(self.model, "target")
        hinge = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, "hinge")
        self.hinge_qpos = int(self.model.jnt_qposadr[hinge])
        self.hinge = hinge
        self.threshold = self.TARGET_RADIUS
        self._setup(size, flow, render_mode)

    def _achieved(self) -> np.ndarray:
        return self.data.site_xpos[self.tip][[0, 2]].copy()

    def _reset_episode(self) -> None:
        random = np.random.RandomState(self._inner_seed())
        with self.physics.reset_context():
            dm_finger.Turn(self.TARGET_RADIUS, random=random).initialize_episode(self.physics)
        self.threshold = float(self.model.site_size[self.target, 0])
        self.goal = self.data.site_xpos[self.target][[0, 2]].copy()

    def _goal_image(self) -> np.ndarray:
        # the hinge turns about −y: angle q puts the tip (at distance r above the hinge at q = 0)
        # at hinge + r·(−sin q, cos q) in (x, z)
        dx, dz = self.goal - self.data.xanchor[self.hinge][[0, 2]]
        self.data.qpos[self.hinge_qpos] = -np.arctan2(dx, dz)
        mujoco.mj_forward(self.model, self.data)
        return self.camera.capture(self.data).rgbd

    def _advance(self, action: np.ndarray) -> None:
        self.physics.set_control(action)
        self.physics.step(self.substeps)
        mujoco.mj_forward(self.model, self.data)


for _gym_id, _entry in (
    (FETCH_ID, "VisualFetchReach"),
    (HAND_ID, "VisualHandReach"),
    (FINGER_ID, "VisualFingerTurn"),
):
    if _gym_id not in gym.registry:
        gym.register(
            id=_gym_id,
            entry_point=f"auxbench.rltrack.manipulation:{_entry}",
            max_episode_steps=HORIZON,
        )
