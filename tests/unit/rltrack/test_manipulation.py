"""The MuJoCo visual manipulation environments (auxbench.rltrack.manipulation): headless RGBD
renders, the goal contract, goal images with an exactly restored state, seeding and exact flow."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from auxbench.rltrack import manipulation as M

try:
    M.select_gl_backend()
except RuntimeError as error:  # no EGL/OSMesa here: nothing can be rendered
    pytest.skip(f"MuJoCo cannot render headless here: {error}", allow_module_level=True)

import mujoco  # after manipulation, which picks the OpenGL backend first

from auxbench.rltrack import goal_run
from auxbench.rltrack.tasks import TABLE1_TASKS

SIZE = 32
CLASSES = {
    "fetch-reach": M.VisualFetchReach,
    "hand-reach": M.VisualHandReach,
    "finger-turn": M.VisualFingerTurn,
}
GOAL_DIMS = {"fetch-reach": 3, "hand-reach": 15, "finger-turn": 2}
ACTION_DIMS = {"fetch-reach": 4, "hand-reach": 20, "finger-turn": 2}
THRESHOLDS = {"fetch-reach": 0.05, "hand-reach": 0.01, "finger-turn": 0.07}
# the goal markers (hidden from every render)
TARGET_SITES = {
    "fetch-reach": ["target0"],
    "hand-reach": [f"target{i}" for i in range(5)],
    "finger-turn": ["target"],
}


@pytest.fixture(scope="module")
def envs():
    made = {name: cls(size=SIZE) for name, cls in CLASSES.items()}
    yield made
    for env in made.values():
        env.close()


def rollout(env, seed, steps=3):
    """Reset with ``seed`` and take ``steps`` fixed pseudo-random actions: the observations."""
    observations = [env.reset(seed=seed)[0]]
    actions = np.random.default_rng(123).uniform(-1, 1, (steps, env.action_space.shape[0]))
    observations += [env.step(action)[0] for action in actions]
    return observations


# --- the OpenGL backend -----------------------------------------------------------------------


def test_select_gl_backend_honours_a_preset_mujoco_gl(monkeypatch):
    def no_probe(backend):
        raise AssertionError("probed although MUJOCO_GL was set")

    monkeypatch.setattr(M, "_gl_backend_works", no_probe)
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    assert M.select_gl_backend() == "osmesa"
    assert M.os.environ["PYOPENGL_PLATFORM"] == "osmesa"
    monkeypatch.setenv("MUJOCO_GL", "EGL ")
    monkeypatch.setenv("PYOPENGL_PLATFORM", "egl")
    assert M.select_gl_backend() == "egl"
    assert M.os.environ["MUJOCO_GL"] == "EGL "  # left as the user set it


def test_select_gl_backend_takes_the_first_that_works(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    monkeypatch.setattr(M, "_gl_backend_works", lambda backend: backend == "osmesa")
    assert M.select_gl_backend() == "osmesa"
    assert M.os.environ["MUJOCO_GL"] == "osmesa" and M.os.environ["PYOPENGL_PLATFORM"] == "osmesa"


def test_select_gl_backend_without_one_names_the_packages(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(M.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(RuntimeError) as raised:
        M.select_gl_backend()
    message = str(raised.value)
    assert "\n" not in message
    assert all(package in message for package in ("libegl1", "libegl-mesa0", "libosmesa6"))
    assert "MUJOCO_GL" not in M.os.environ


def test_a_mujoco_imported_with_another_backend_is_a_clear_error(monkeypatch):
    class GlfwContext:
        pass

    GlfwContext.__module__ = "mujoco.glfw"
    monkeypatch.setenv("MUJOCO_GL", "egl")
    monkeypatch.setattr(M.mujoco, "GLContext", GlfwContext)
    with pytest.raises(RuntimeError, match="imported before MUJOCO_GL=egl"):
        M._check_mujoco_gl()


# --- helpers ------------------------------------------------------------------------------------


def test_quantise_depth_is_linear_over_the_range_and_clipped():
    depth = np.array([0.5, 1.0, 1.25, 1.5, 7.0])
    assert M.quantise_depth(depth, 1.0, 1.5).tolist() == [0, 0, 128, 255, 255]  # 127.5 → 128


def test_pool_flow_averages_blocks():
    flow = np.zeros((2, 8, 8))
    flow[0, :4, :4] = 2.0
    flow[1, 4:, 0] = 4.0  # one column of a 4×4 block: mean 1
    pooled = M.pool_flow(flow)
    assert pooled.shape == (2, 2, 2) and pooled.dtype == np.float32
    assert pooled[0].tolist() == [[2.0, 0.0], [0.0, 0.0]]
    assert pooled[1].tolist() == [[0.0, 0.0], [1.0, 0.0]]


# --- the contract, per environment --------------------------------------------------------------


@pytest.mark.parametrize("name", list(CLASSES))
def test_a_frame_is_rendered_headless(envs, name):
    obs, _ = envs[name].reset(seed=0)
    for key in ("observation", "goal_image"):
        image = obs[key]
        assert image.shape == (4, SIZE, SIZE) and image.dtype == np.uint8
        assert image[:3].std() > 5  # not a constant picture
        assert len(np.unique(image[3])) > 5  # the depth channel varies


@pytest.mark.parametrize("name", list(CLASSES))
def test_the_observation_space_contains_every_observation(envs, name):
    env = envs[name]
    space = env.observation_space
    assert set(space.spaces) == {
        "observation",
        "goal_image",
        "achieved_goal",
        "desired_goal",
        "flow",
    }
    assert space["achieved_goal"].shape == (GOAL_DIMS[name],)
    assert space["flow"].shape == (2, SIZE // 4, SIZE // 4)
    assert env.action_space.shape == (ACTION_DIMS[name],)
    assert (env.action_space.low == -1).all() and (env.action_space.high == 1).all()
    for obs in rollout(env, seed=1):
        assert space.contains(obs), name


@pytest.mark.parametrize("name", list(CLASSES))
def test_compute_reward_on_hand_built_batches(envs, name):
    env = envs[name]
    threshold, k = THRESHOLDS[name], GOAL_DIMS[name]
    assert env.threshold == pytest.approx(threshold)
    desired = np.zeros((6, k))
    achieved = np.zeros((6, k))
    achieved[:, 0] = np.array([0.0, 0.5, 0.99, 1.01, 2.0, 0.0]) * threshold
    achieved[5, :2] = 0.8 * threshold  # each coordinate within, the L2 distance 1.13 × beyond
    reward = env.compute_reward(achieved, desired, [{}] * 6)
    assert reward.dtype == np.float32 and reward.tolist() == [0, 0, 0, -1, -1, -1]
    assert float(env.compute_reward(achieved[1], desired[1], {})) == 0.0
    assert float(env.compute_reward(achieved[3], desired[3], {})) == -1.0


@pytest.mark.parametrize("name", list(CLASSES))
def test_reset_with_the_same_seed_gives_the_same_episode(envs, name):
    env = envs[name]
    first, second = rollout(env, seed=5), rollout(env, seed=5)
    for a, b in zip(first, second):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")
    other = env.reset(seed=6)[0]
    assert not np.array_equal(other["desired_goal"], first[0]["desired_goal"])


@pytest.mark.parametrize("name", list(CLASSES))
def test_the_goal_image_is_rendered_and_the_state_restored_exactly(envs, name):
    env = envs[name]
    obs, _ = env.reset(seed=2)
    assert not np.array_equal(obs["goal_image"], obs["observation"])
    model, data = env.model, env.data
    qpos, qvel, state = data.qpos.copy(), data.qvel.copy(), M.get_state(model, data)
    image = env._goal_image()
    assert not np.array_equal(data.qpos, qpos)  # the goal configuration was really set
    M.set_state(model, data, state)
    np.testing.assert_array_equal(data.qpos, qpos)
    np.testing.assert_array_equal(data.qvel, qvel)
    np.testing.assert_array_equal(M.get_state(model, data), state)
    np.testing.assert_array_equal(image, obs["goal_image"])
    # rendering the goal image again leaves the episode as it was
    action = np.full(env.action_space.shape, 0.3)
    again = env.step(action)[0]
    env.reset(seed=2)
    plain = env.step(action)[0]
    for key in plain:
        np.testing.assert_array_equal(again[key], plain[key], err_msg=key)


@pytest.mark.parametrize("name", list(CLASSES))
def test_after_step_the_info_has_is_success(envs, name):
    env = envs[name]
    env.reset(seed=3)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert info["is_success"] in (0.0, 1.0)
    assert reward == info["is_success"] - 1.0
    assert not terminated and not truncated
    distance = np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"])
    assert info["is_success"] == float(distance <= THRESHOLDS[name])


@pytest.mark.parametrize("name", list(CLASSES))
def test_the_goal_markers_are_hidden(envs, name):
    env = envs[name]
    env.reset(seed=0)
    model = env.model
    before = env.camera.capture(env.data).rgbd
    sites = [M._site(model, site) for site in TARGET_SITES[name]]
    assert min(sites) >= 0
    saved = model.site_size[sites].copy(), model.site_rgba[sites].copy()
    model.site_size[sites] = 0.2  # huge, opaque markers at their goals
    model.site_rgba[sites] = [1.0, 0.0, 0.0, 1.0]
    mujoco.mj_forward(model, env.data)
    after = env.camera.capture(env.data).rgbd
    model.site_size[sites], model.site_rgba[sites] = saved
    np.testing.assert_array_equal(before, after)


def test_the_environments_are_registered_with_a_fixed_horizon():
    assert set(M.MANIPULATION_ENVS) == {"fetch-reach", "hand-reach", "finger-turn"}
    for gym_id in M.MANIPULATION_ENVS.values():
        assert gym.spec(gym_id).max_episode_steps == 50
    env = gym.make(M.MANIPULATION_ENVS["finger-turn"], size=SIZE, flow=False)
    env.reset(seed=0)
    truncations = [env.step(env.action_space.sample())[3] for _ in range(50)]
    env.close()
    assert truncations == [False] * 49 + [True]


# --- the goals ----------------------------------------------------------------------------------


def test_fetch_goal_image_shows_the_gripper_at_the_goal(envs):
    env = envs["fetch-reach"]
    for seed in range(20):
        env.reset(seed=seed)
        if env.goal[2] > 0.45:  # 5 cm above the table (the lowest goals are out of reach)
            break
    state = M.get_state(env.model, env.data)
    env._goal_image()
    assert np.linalg.norm(env._achieved() - env.goal) <= env.GOAL_TOLERANCE
    assert env.goal_info["goal_image_error"] <= env.GOAL_TOLERANCE
    M.set_state(env.model, env.data, state)


def test_hand_goal_is_reached_by_holding_the_sampled_action(envs):
    env = envs["hand-reach"]
    obs, _ = env.reset(seed=4)
    assert np.abs(env.goal_action).max() <= 1
    # the same fingertips as Gymnasium-Robotics' achieved goal (order and sites)
    np.testing.assert_allclose(
        obs["achieved_goal"], env.inner._get_obs()["achieved_goal"], atol=1e-6
    )
    for _ in range(env.GOAL_SETTLE_STEPS):
        obs, reward, _, _, info = env.step(env.goal_action)
    np.testing.assert_allclose(obs["achieved_goal"], obs["desired_goal"], atol=1e-6)
    assert info["is_success"] == 1.0 and reward == 0.0
    assert np.linalg.norm(obs["desired_goal"] - rollout(env, 4, 0)[0]["achieved_goal"]) > 0.01


def test_finger_goal_image_puts_the_tip_on_the_target(envs):
    env = envs["finger-turn"]
    env.reset(seed=7)
    state = M.get_state(env.model, env.data)
    target = env.goal.copy()
    assert np.linalg.norm(env._achieved() - target) > 1e-3
    env._goal_image()
    np.testing.assert_allclose(env._achieved(), target, atol=1e-9)
    M.set_state(env.model, env.data, state)
    assert env.threshold == env.model.site_size[M._site(env.model, "target"), 0] == 0.07


# --- flow ---------------------------------------------------------------------------------------


def test_flow_of_a_translated_body_is_focal_times_shift_over_depth(envs):
    """cam1 of the finger looks along +y: moving the spinner by (dx, dz) in the world moves each
    of its pixels by f·dx/z columns and −f·dz/z rows, f = (size/2)/tan(fovy/2), fovy 45°."""
    env = envs["finger-turn"]
    env.reset(seed=3)
    model, data = env.model, env.data
    camera = M.RGBDCamera(model, SIZE, "cam1", (0.9, 1.5))
    before = camera.capture(data, flow=True)
    spinner = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "spinner")
    saved = model.body_pos[spinner].copy()
    model.body_pos[spinner] += [0.01, 0.0, 0.005]
    mujoco.mj_forward(model, data)
    after = camera.capture(data, flow=True)
    model.body_pos[spinner] = saved
    mujoco.mj_forward(model, data)
    camera.close()
    flow = M.exact_flow(before, after)
    on = np.isin(before.geom, np.flatnonzero(model.geom_bodyid == spinner))
    assert on.sum() > 20
    focal = (SIZE / 2) / np.tan(np.radians(45 / 2))
    np.testing.assert_allclose(flow[0][on], focal * 0.01 / before.depth[on], atol=1e-6)
    np.testing.assert_allclose(flow[1][on], -focal * 0.005 / before.depth[on], atol=1e-6)
    assert np.abs(flow[:, ~on]).max() < 1e-9  # the finger, the floor and the sky stay


def test_flow_of_the_turning_body_is_a_rotation_about_the_hinge(envs):
    """cam1 sits at (0, −1, 0.4) looking along +y with image right = +x, up = +z, and the hinge
    at (0.2, ·, 0.4) turns about −y: turning it by δ rotates each spinner point (x, z) about
    (0.2, 0.4) in the x–z plane at unchanged depth; hand-projected here in those coordinates."""
    env = envs["finger-turn"]
    env.reset(seed=3)
    model, data = env.model, env.data
    camera = M.RGBDCamera(model, SIZE, "cam1", (0.9, 1.5))
    before = camera.capture(data, flow=True)
    delta = 0.3
    data.qpos[env.hinge_qpos] += delta
    mujoco.mj_forward(model, data)
    after = camera.capture(data, flow=True)
    camera.close()
    flow = M.exact_flow(before, after)
    spinner = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "spinner")
    on = np.isin(before.geom, np.flatnonzero(model.geom_bodyid == spinner))
    focal = (SIZE / 2) / np.tan(np.radians(45 / 2))
    rows, cols = np.nonzero(on)
    z = before.depth[on]
    x = (cols + 0.5 - SIZE / 2) * z / focal
    height = 0.4 + (SIZE / 2 - rows - 0.5) * z / focal
    # about −y by δ: (x, z) − centre → (cos δ·x − sin δ·z, sin δ·x + cos δ·z)
    dx, dz = x - 0.2, height - 0.4
    x2 = 0.2 + np.cos(delta) * dx - np.sin(delta) * dz
    height2 = 0.4 + np.sin(delta) * dx + np.cos(delta) * dz
    expected_cols = SIZE / 2 + focal * x2 / z - 0.5
    expected_rows = SIZE / 2 - focal * (height2 - 0.4) / z - 0.5
    np.testing.assert_allclose(flow[0][on], expected_cols - cols, atol=1e-5)
    np.testing.assert_allclose(flow[1][on], expected_rows - rows, atol=1e-5)


@pytest.mark.parametrize("name", list(CLASSES))
def test_flow_points_to_where_the_content_went(envs, name):
    """A sanity check of the wiring (the exact tests are above): pixels that moved land on the
    same geom more often than if they had stayed (at 32 px many pixels lie on geom borders)."""
    env = envs[name]
    obs, _ = env.reset(seed=8)
    assert not obs["flow"].any()  # zeros after reset
    hits = stays = total = 0
    for action in np.random.default_rng(0).uniform(-1, 1, (4, env.action_space.shape[0])):
        before = env.frame
        obs = env.step(action)[0]
        flow = M.exact_flow(before, env.frame)
        np.testing.assert_allclose(obs["flow"], M.pool_flow(flow))
        moved = (before.geom >= 0) & (np.hypot(*flow) > 0.5)
        rows, cols = np.nonzero(moved)
        rows2 = np.round(rows + flow[1][moved]).astype(int)
        cols2 = np.round(cols + flow[0][moved]).astype(int)
        inside = (rows2 >= 0) & (rows2 < SIZE) & (cols2 >= 0) & (cols2 < SIZE)
        geom = before.geom[rows[inside], cols[inside]]
        hits += (env.frame.geom[rows2[inside], cols2[inside]] == geom).sum()
        stays += (env.frame.geom[rows[inside], cols[inside]] == geom).sum()
        total += inside.sum()
    assert total > 10
    assert hits / total > 0.5 and hits > 1.1 * stays, (hits, stays, total)


# --- in a DDPG + HER run ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CLASSES))
def test_a_short_run_trains_every_task_on_each_environment(name, tmp_path):
    """The whole track on each MuJoCo environment: its observations through the encoder, all five
    tasks (exact flow included) and the HER buffer, for a few updates."""
    values = {
        "env": name,
        "method": "olaux5",
        "size": 16,
        "steps": 100,
        "batch_size": 4,
        "learning_starts": 50,
        "buffer_size": 100,
        "curve_points": 2,
        "eval_episodes": 1,
        "latent": 8,
        "updates_per_step": 0.04,
    }
    metrics = goal_run.run(goal_run.make_goal_config(values), tmp_path)
    assert metrics["env_steps"] == 100 and metrics["tasks"] == list(TABLE1_TASKS)
    assert 0 <= metrics["final_success"] <= 1


def test_runs_without_the_flow_task_skip_computing_flow():
    def space(method):
        config = goal_run.make_goal_config({"env": "fetch-reach", "method": method, "size": 16})
        env = goal_run.make_goal_env(config, 0)
        try:
            return set(env.observation_space.spaces)
        finally:
            env.close()

    assert "flow" in space("olaux5") and "flow" in space("only-flow")
    assert "flow" not in space("none") and "flow" not in space("only-forward")
