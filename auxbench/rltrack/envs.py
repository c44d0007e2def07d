"""The pixel environments: a small one that learns in seconds (``auxbench/PixelCatch-v0``) and
Atari games through ``ale-py`` with the standard preprocessing.

**PixelCatch**: a ball appears in a random column of the top row of a ``rows × columns`` board
and falls one row per step; the agent moves a paddle along the bottom row (actions: left, stay,
right). When the ball reaches the bottom row the episode ends with reward +1 if the paddle is under
it and −1 otherwise, so an episode's return is ±1 and a random policy's mean return is negative.
The observation is a ``(1, rows·scale, columns·scale)`` uint8 grey image (ball 255, paddle 128).

**Atari**: ``ALE/<Game>-v5`` without the built-in frame skip, then ``AtariPreprocessing`` (no-op
reset, frame skip 4 with max-pooling, 84×84 grey) and ``FrameStackObservation`` of 4 frames:
observations are ``(4, 84, 84)`` uint8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

CATCH_ID = "auxbench/PixelCatch-v0"


class PixelCatch(gym.Env):
    """Catch the falling ball, seen as a small grey image (see the module doc)."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 10}
    BALL, PADDLE = 255, 128

    def __init__(self, rows: int = 8, columns: int = 5, scale: int = 2, render_mode=None):
        if rows < 2 or columns < 2 or scale < 1:
            raise ValueError(f"PixelCatch needs rows, columns >= 2, scale >= 1: {rows, columns}")
        self.rows, self.columns, self.scale = rows, columns, scale
        self.render_mode = render_mode
        shape = (1, rows * scale, columns * scale)
        self.observation_space = spaces.Box(0, 255, shape, dtype=np.uint8)
        self.action_space = spaces.Discrete(3)
        self.ball = (0, 0)
        self.paddle = 0

    def _image(self) -> np.ndarray:
        board = np.zeros((self.rows, self.columns), dtype=np.uint8)
        board[self.rows - 1, self.paddle] = self.PADDLE
        board[self.ball] = self.BALL
        image = np.kron(board, np.ones((self.scale, self.scale), dtype=np.uint8))
        return image[None]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.ball = (0, int(self.np_random.integers(self.columns)))
        self.paddle = int(self.np_random.integers(self.columns))
        return self._image(), {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"PixelCatch: invalid action {action!r}")
        self.paddle = int(np.clip(self.paddle + int(action) - 1, 0, self.columns - 1))
        self.ball = (self.ball[0] + 1, self.ball[1])
        terminated = self.ball[0] == self.rows - 1
        reward = 0.0
        if terminated:
            reward = 1.0 if self.paddle == self.ball[1] else -1.0
        return self._image(), reward, terminated, False, {}

    def render(self):
        return np.repeat(self._image()[0][..., None], 3, axis=-1)


if CATCH_ID not in gym.registry:
    gym.register(id=CATCH_ID, entry_point="auxbench.rltrack.envs:PixelCatch")


@dataclass(frozen=True)
class EnvSpec:
    """A named environment: its Gymnasium id, whether it is an Atari game, and the return that
    counts as solved for ``steps_to_threshold`` (configs may override it)."""

    gym_id: str
    atari: bool
    threshold: float


ENVS = {
    "catch": EnvSpec(CATCH_ID, atari=False, threshold=0.8),
    "breakout": EnvSpec("ALE/Breakout-v5", atari=True, threshold=30.0),
    "pong": EnvSpec("ALE/Pong-v5", atari=True, threshold=0.0),
    "seaquest": EnvSpec("ALE/Seaquest-v5", atari=True, threshold=1000.0),
}


def env_spec(name: str) -> EnvSpec:
    """The spec of environment ``name``; a clear error for an unknown name."""
    if name not in ENVS:
        raise ValueError(f"unknown environment {name!r}; choose one of: {', '.join(ENVS)}")
    return ENVS[name]


def make_atari(gym_id: str) -> gym.Env:
    """Atari game ``gym_id`` (e.g. ``ALE/Breakout-v5``) with the standard preprocessing: frame
    skip 4, 84×84 grey, a stack of 4 frames (channels first)."""
    import ale_py

    gym.register_envs(ale_py)
    env = gym.make(gym_id, frameskip=1)
    env = gym.wrappers.AtariPreprocessing(env, frame_skip=4, screen_size=84, grayscale_obs=True)
    return gym.wrappers.FrameStackObservation(env, 4)


def make_pixel_env(name: str) -> gym.Env:
    """The environment ``name`` (a key of ``ENVS``) with its preprocessing."""
    spec = env_spec(name)
    return make_atari(spec.gym_id) if spec.atari else gym.make(spec.gym_id)
