"""The embedded goal-conditioned pixel environment of the DDPG + HER track, and the episode-seeding
wrapper that makes goal runs resumable exactly.

**PixelReach** (``auxbench/PixelReach-v0``): a ball of radius ``radius`` moves in the square arena
[−1, 1]² seen from above; the action (2-d, in [−1, 1]) moves it by ``speed`` × action, clipped at
the walls. The goal is a random position of the ball; an episode lasts ``horizon`` steps and is a
success when the ball's centre ends within ``threshold`` of the goal. Observations follow the goal
environments' contract (``/docs/manipulation.md``):

- ``observation``/``goal_image``: (4, size, size) uint8 RGBD images, channels first — the ball
  (red, shaded) on a grey floor with a fixed chequer pattern (so that flow is visible against a
  textured background, as in a real scene); depth 255 on the floor and less on the ball, whose
  surface is a hemisphere: depth = 255·(1 − 0.5·h/r) at height h. The goal image is the scene
  with the ball at the goal.
- ``achieved_goal``/``desired_goal``: the ball's and the goal's (x, y), the ground truth the
  sparse reward −[‖achieved − desired‖ > threshold] is computed from (HER recomputes it).
- ``flow``: the exact optical flow from the previous observation to this one, (2, size/4, size/4)
  float32: every pixel of the previous frame whose centre lay inside the ball moved with the ball
  (Δcolumns, Δrows in pixels); the floor does not move; average-pooled 4×4. Zeros after reset.

Pixel (i, j)'s centre is at x = (j + ½)·2/size − 1, y = 1 − (i + ½)·2/size (row 0 at the top).
A pixel belongs to the ball when its centre is within the radius, so the rendering, and the flow
derived from it, are exact (no anti-aliasing).

**EpisodeSeeds**: every reset of environment ``index`` of a run seeded ``seed`` is seeded from
(seed, index, episode number), ignoring the seed the vector environment passes, so the k-th
episode's start and goal do not depend on what happened before it; a run resumed at an episode
boundary with the saved episode numbers sees the same episodes as one never interrupted.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

REACH_ID = "auxbench/PixelReach-v0"
FLOW_POOL = 4


def sparse_reward(achieved: np.ndarray, desired: np.ndarray, threshold: float) -> np.ndarray:
    """The goal environments' sparse reward: 0 where ‖achieved − desired‖ ≤ ``threshold`` over the
    last axis, −1 elsewhere (float32; works on single goals and on batches)."""
    distance = np.linalg.norm(np.asarray(achieved) - np.asarray(desired), axis=-1)
    return -(distance > threshold).astype(np.float32)


def pool_flow(flow: np.ndarray, pool: int = FLOW_POOL) -> np.ndarray:
    """(2, H, W) flow average-pooled ``pool``×``pool`` → (2, H/pool, W/pool) float32."""
    channels, height, width = flow.shape
    blocks = flow.reshape(channels, height // pool, pool, width // pool, pool)
    return blocks.mean(axis=(2, 4)).astype(np.float32)


class PixelReach(gym.Env):
    """Move the ball to the goal shown in the goal image (see the module doc)."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 10}
    HAS_FLOW: ClassVar[bool] = True
    BALL = np.array([230, 40, 40], dtype=np.float64)

    def __init__(
        self,
        size: int = 32,
        radius: float = 0.18,
        speed: float = 0.25,
        threshold: float = 0.15,
        render_mode: str | None = None,
    ):
        if size < 8 or size % FLOW_POOL:
            raise ValueError(f"PixelReach: size must be a multiple of {FLOW_POOL} >= 8, got {size}")
        if not (0 < radius < 1 and speed > 0 and threshold > 0):
            raise ValueError(f"PixelReach: bad radius/speed/threshold {radius, speed, threshold}")
        self.size, self.radius, self.speed, self.threshold = size, radius, speed, threshold
        self.render_mode = render_mode
        image = spaces.Box(0, 255, (4, size, size), dtype=np.uint8)
        goal = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        pooled = (2, size // FLOW_POOL, size // FLOW_POOL)
        self.observation_space = spaces.Dict(
            {
                "observation": image,
                "goal_image": image,
                "achieved_goal": goal,
                "desired_goal": goal,
                "flow": spaces.Box(-np.inf, np.inf, pooled, dtype=np.float32),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        centres = (np.arange(size) + 0.5) * 2.0 / size - 1.0
        self.xs = centres[None, :].repeat(size, 0)  # x of each pixel centre
        self.ys = -centres[:, None].repeat(size, 1)  # y (row 0 at the top)
        chequer = ((np.arange(size)[:, None] // 4 + np.arange(size)[None, :] // 4) % 2).astype(
            float
        )
        self.floor = np.stack([90 + 40 * chequer, 110 + 40 * chequer, 130 + 40 * chequer])
        self.position = np.zeros(2)
        self.goal = np.zeros(2)
        self.goal_image = np.zeros((4, size, size), dtype=np.uint8)
        self.flow = np.zeros(pooled, dtype=np.float32)

    def ball_mask(self, position: np.ndarray) -> np.ndarray:
        """(size, size) bool: the pixels whose centre lies inside the ball at ``position``."""
        return (self.xs - position[0]) ** 2 + (self.ys - position[1]) ** 2 <= self.radius**2

    def draw(self, position: np.ndarray) -> np.ndarray:
        """The (4, size, size) uint8 RGBD image of the ball at ``position``."""
        squared = (self.xs - position[0]) ** 2 + (self.ys - position[1]) ** 2
        inside = squared <= self.radius**2
        height = np.sqrt(np.clip(self.radius**2 - squared, 0.0, None)) / self.radius  # 0..1
        shade = 0.55 + 0.45 * height
        rgb = np.where(inside[None], self.BALL[:, None, None] * shade[None], self.floor)
        depth = np.where(inside, 255.0 * (1.0 - 0.5 * height), 255.0)
        return np.round(np.concatenate([rgb, depth[None]])).clip(0, 255).astype(np.uint8)

    def pixel_flow(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """The exact (2, size, size) flow from the ball at ``before`` to ``after``: the ball's
        pixels of the first frame move by its displacement in pixels (columns, rows)."""
        scale = self.size / 2.0
        moved = np.array([(after[0] - before[0]) * scale, -(after[1] - before[1]) * scale])
        return moved[:, None, None] * self.ball_mask(before)[None].astype(np.float64)

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "observation": self.draw(self.position),
            "goal_image": self.goal_image.copy(),
            "achieved_goal": self.position.astype(np.float32),
            "desired_goal": self.goal.astype(np.float32),
            "flow": self.flow.copy(),
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        limit = 1.0 - self.radius
        self.position = self.np_random.uniform(-limit, limit, 2)
        self.goal = self.np_random.uniform(-limit, limit, 2)
        self.goal_image = self.draw(self.goal)
        self.flow = np.zeros_like(self.flow)
        return self._obs(), {"is_success": float(self._success())}

    def _success(self) -> bool:
        return bool(np.linalg.norm(self.position - self.goal) <= self.threshold)

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        limit = 1.0 - self.radius
        before = self.position
        self.position = np.clip(before + self.speed * action, -limit, limit)
        self.flow = pool_flow(self.pixel_flow(before, self.position))
        observation = self._obs()
        reward = float(self.compute_reward(self.position, self.goal, {}))
        return observation, reward, False, False, {"is_success": float(self._success())}

    def compute_reward(self, achieved_goal, desired_goal, info) -> np.ndarray:
        """Sparse: 0 within ``threshold`` of the goal, −1 elsewhere (batched or single)."""
        return sparse_reward(achieved_goal, desired_goal, self.threshold)

    def render(self):
        return self.draw(self.position)[:3].transpose(1, 2, 0)


if REACH_ID not in gym.registry:
    gym.register(
        id=REACH_ID, entry_point="auxbench.rltrack.goal_envs:PixelReach", max_episode_steps=12
    )


class EpisodeSeeds(gym.Wrapper):
    """Seeds every reset from (``seed``, ``index``, episode number) (see the module doc);
    ``episodes`` counts the resets so far and is what a checkpoint saves."""

    def __init__(self, env: gym.Env, seed: int, index: int = 0):
        super().__init__(env)
        self.base_seed, self.index, self.episodes = int(seed), int(index), 0
        self.action_space.seed(self.episode_seed(-1))

    def episode_seed(self, episode: int) -> int:
        """The seed of episode ``episode`` (−1: the action space's own)."""
        sequence = np.random.SeedSequence([self.base_seed, self.index, episode + 1])
        return int(sequence.generate_state(1)[0])

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> Any:
        seed = self.episode_seed(self.episodes)
        self.episodes += 1
        return self.env.reset(seed=seed, options=options)
