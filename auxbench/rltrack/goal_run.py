"""One run of the manipulation track: ``AuxDDPG`` (DDPG + HER) on a goal-conditioned pixel
environment with a weighting method → ``curve.csv`` (per curve point: environment step, the
success rate of ``eval_episodes`` deterministic evaluation episodes, the success rate of the last
``window`` training episodes, each auxiliary task's weight and loss) and ``metrics.json`` (steps to
the success threshold, area under the success curve, final success rate, wall time, settings).

Methods (OL-AUX §5.4–5.6; every method but ``none`` and ``only-*`` uses all ``tasks``):

- ``none``: DDPG + HER alone;
- ``balance``: gradient balancing: every weight 1 on the log auxiliary losses (``fixed``);
- ``gcs``: gradient cosine similarity (``gcs``, raw losses as in Du et al.);
- ``olaux1``/``olaux5``: OL-AUX with N = 1 and N = 5 on the log auxiliary losses (``olaux``);
  OL-AUX-1's β is β/5 (§5.6);
- ``olaux5-ablation``: OL-AUX-5 (Ablation) of Fig. 6: a one-step update of w every 5 steps on 5
  batches' worth of data, same β (``olaux`` with ``mode: ablation``);
- ``only-<task>``: one auxiliary task alone with gradient balancing (Fig. 4).

The balancing methods log L_Q too (``log_losses=True``), as Algorithm 1 does (L_Q > 0, unlike
A2C's loss): otherwise the logged auxiliary losses drown the critic in the encoder (docs).

**Resume.** Every ``checkpoint_every`` environment steps (at an episode boundary, after that
round's updates) the run saves ``checkpoint/``: the networks, both optimisers, the weighting's
state, the replay buffer, the numpy/torch/python and action-space random states, the episode
numbers of the ``EpisodeSeeds`` environments and the curve so far. ``run`` on a directory with a
checkpoint of the same settings continues from it and produces the same curve and final networks
as a run never interrupted; the checkpoint is removed once the run's outputs are written.
"""

from __future__ import annotations

import pickle
import random
import shutil
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv

from auxbench.config import build_validated
from auxbench.foundations import atomic
from auxbench.foundations.errors import ConfigError
from auxbench.foundations.validation import at_least, choice
from auxbench.rltrack.curves import area_under_curve, steps_to_threshold
from auxbench.rltrack.ddpg import AuxDDPG, GoalEncoder, GoalImageHerBuffer
from auxbench.rltrack.goal_envs import REACH_ID, EpisodeSeeds
from auxbench.rltrack.run import olaux_beta
from auxbench.rltrack.tasks import TABLE1_TASKS

METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "none": ("fixed", {}),
    "balance": ("fixed", {"log_losses": True}),
    "gcs": ("gcs", {}),
    "olaux1": ("olaux", {"horizon": 1, "log_losses": True}),
    "olaux5": ("olaux", {"horizon": 5, "log_losses": True}),
    "olaux5-ablation": ("olaux", {"horizon": 5, "log_losses": True, "mode": "ablation"}),
}
SINGLE = "only-"


@dataclass(frozen=True)
class GoalEnvSpec:
    """A named goal environment: its Gymnasium id, its default image size, whether it gives
    exact optical flow, the module that registers it (imported on first use), and whether its
    constructor takes ``flow=False`` to skip computing the flow (for runs without the task)."""

    gym_id: str
    size: int
    has_flow: bool
    module: str
    flow_switch: bool = False


GOAL_ENVS = {
    "reach": GoalEnvSpec(REACH_ID, 32, True, "auxbench.rltrack.goal_envs"),
    "fetch-reach": GoalEnvSpec(
        "auxbench/VisualFetchReach-v0", 64, True, "auxbench.rltrack.manipulation", flow_switch=True
    ),
    "hand-reach": GoalEnvSpec(
        "auxbench/VisualHandReach-v0", 64, True, "auxbench.rltrack.manipulation", flow_switch=True
    ),
    "finger-turn": GoalEnvSpec(
        "auxbench/VisualFingerTurn-v0", 64, True, "auxbench.rltrack.manipulation", flow_switch=True
    ),
}


def method_tasks(method: str, tasks: list[str]) -> list[str]:
    """The auxiliary tasks ``method`` trains with: none, the one of ``only-<task>``, or ``tasks``."""
    if method == "none":
        return []
    if method.startswith(SINGLE):
        return [method[len(SINGLE) :]]
    return list(tasks)


def method_weighting(method: str, beta: float) -> tuple[str, dict[str, Any]]:
    """The weighting (name, parameters) of ``method``, OL-AUX's β scaled as §5.6 says."""
    name, params = METHODS["balance" if method.startswith(SINGLE) else method]
    if name == "olaux":
        params = {**params, "beta": olaux_beta(beta, params["horizon"])}
        if params.get("mode") == "ablation":  # same β as OL-AUX-5 (§5.6)
            params["beta"] = beta
    return name, params


@dataclass
class GoalTrackConfig:
    """One run's settings. The paper (§5.3) fixes DDPG + HER with relabelling probability 0.9 and
    Adam; the rest are ours: HER's (Andrychowicz et al.) γ-clipped targets, Polyak 0.95 (τ 0.05),
    action penalty 1, Gaussian exploration noise, and sizes that fit the CPU."""

    env: str = "reach"
    method: str = "olaux5"
    seed: int = 0
    steps: int = 6000
    # None: every Table-1 task the environment supports (flow only where it is exact)
    tasks: list[str] | None = None
    size: int | None = None
    n_envs: int = 1
    buffer_size: int = 20000
    batch_size: int = 128
    lr: float = 1e-3
    actor_lr: float = 1e-3
    gamma: float = 0.95
    tau: float = 0.05
    noise_std: float = 0.2
    action_l2: float = 1.0
    learning_starts: int = 240
    # gradient steps per environment step, taken after each round of one episode per env
    updates_per_step: float = 0.5
    latent: int = 50
    beta: float = 0.01
    curve_points: int = 20
    eval_episodes: int = 20
    window: int = 20
    # the success rate that counts as solved for steps_to_threshold
    threshold: float = 0.8
    # environment steps between checkpoints (None: one per curve point)
    checkpoint_every: int | None = None
    device: str = "cpu"

    def validate(self) -> GoalTrackConfig:
        """Check every value; raise ``ConfigError`` naming the bad one."""
        choice("goal environment", self.env, list(GOAL_ENVS))
        if self.method.startswith(SINGLE):
            choice("auxiliary task of " + self.method, self.method[len(SINGLE) :], self.env_tasks)
        else:
            choice("manipulation method", self.method, list(METHODS))
        for task in self.tasks or []:
            choice(f"auxiliary task for {self.env}", task, self.env_tasks)
        if self.tasks is not None and not self.tasks and self.method != "none":
            raise ConfigError(f"method {self.method!r} needs at least one auxiliary task")
        at_least("seed", self.seed, 0)
        for name in ("n_envs", "buffer_size", "batch_size", "curve_points", "window", "latent"):
            at_least(name, getattr(self, name), 1)
        at_least("eval_episodes", self.eval_episodes, 0)
        at_least("learning_starts", self.learning_starts, 0)
        at_least("steps", self.steps, self.curve_points)
        if self.size is not None:
            at_least("size", self.size, 8)
        for name in ("lr", "actor_lr", "beta", "tau", "updates_per_step"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("noise_std", "action_l2"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 < self.gamma < 1:
            raise ConfigError(f"gamma must be in (0, 1), got {self.gamma!r}")
        if not 0 <= self.threshold <= 1:
            raise ConfigError(f"threshold is a success rate in [0, 1], got {self.threshold!r}")
        if self.tau > 1:
            raise ConfigError(f"tau must be in (0, 1], got {self.tau!r}")
        return self

    @property
    def env_tasks(self) -> list[str]:
        """The Table-1 tasks this environment supports (flow only with exact flow)."""
        spec = GOAL_ENVS[self.env]
        return [task for task in TABLE1_TASKS if task != "flow" or spec.has_flow]

    @property
    def run_tasks(self) -> list[str]:
        """The auxiliary tasks this run trains with."""
        return method_tasks(self.method, self.env_tasks if self.tasks is None else self.tasks)


def make_goal_config(
    values: dict[str, Any], source: str = "manipulation config"
) -> GoalTrackConfig:
    """Build and validate a ``GoalTrackConfig`` from a dict, refusing unknown keys."""
    return build_validated(GoalTrackConfig, values, source)


def make_goal_env(config: GoalTrackConfig, index: int) -> gym.Env:
    """Environment ``index`` of the run: the goal environment at the run's image size, its
    episodes seeded by ``EpisodeSeeds`` (index ≥ 1000: the evaluation environment)."""
    spec = GOAL_ENVS[config.env]
    __import__(spec.module)  # registers the environment
    kwargs: dict[str, Any] = {"size": config.size or spec.size}
    if spec.flow_switch and "flow" not in config.run_tasks:
        kwargs["flow"] = False  # a segmentation render and the flow saved per step
    env = gym.make(spec.gym_id, **kwargs)
    return EpisodeSeeds(Monitor(env, info_keywords=("is_success",)), config.seed, index)


def horizon(env: gym.Env) -> int:
    """The fixed episode length of a goal environment (its TimeLimit)."""
    steps = env.spec.max_episode_steps if env.spec is not None else None
    if not steps:
        raise ValueError(f"goal environment {env} needs a fixed max_episode_steps")
    return int(steps)


def build_agent(config: GoalTrackConfig) -> AuxDDPG:
    """The DDPG + HER agent of ``config`` on its vectorised environment."""
    env = DummyVecEnv(
        [lambda index=index: make_goal_env(config, index) for index in range(config.n_envs)]
    )
    episode = horizon(env.envs[0])
    dims = env.action_space.shape[0]
    name, params = method_weighting(config.method, config.beta)
    rounds = max(1, round(config.updates_per_step * episode * config.n_envs))
    return AuxDDPG(
        "MultiInputPolicy",
        env,
        tasks=config.run_tasks,
        weighting_name=name,
        weighting_params=params,
        actor_lr=config.actor_lr,
        action_l2=config.action_l2,
        learning_rate=config.lr,
        buffer_size=config.buffer_size,
        learning_starts=config.learning_starts,
        batch_size=config.batch_size,
        tau=config.tau,
        gamma=config.gamma,
        train_freq=(1, "episode"),
        gradient_steps=rounds,
        action_noise=NormalActionNoise(np.zeros(dims), config.noise_std * np.ones(dims)),
        replay_buffer_class=GoalImageHerBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 9, "goal_selection_strategy": "future"},
        policy_kwargs={
            "features_extractor_class": GoalEncoder,
            "features_extractor_kwargs": {"latent": config.latent},
            "share_features_extractor": True,
            "net_arch": [256, 256],
        },
        seed=config.seed,
        device=config.device,
    )


def evaluate(model: AuxDDPG, env: gym.Env, episodes: int) -> float:
    """The success rate of the deterministic policy over ``episodes`` episodes of ``env``, always
    the same ones (the episode numbers restart), so evaluation leaves no state behind."""
    env.episodes = 0
    successes = 0.0
    for _ in range(episodes):
        obs, info = env.reset()
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        successes += float(info["is_success"])
    return successes / episodes


class GoalRecorder(BaseCallback):
    """Records a curve point every ``every`` steps and saves a checkpoint every ``save_every``
    steps (at the start of a round, once the last round's updates are done)."""

    def __init__(self, run: GoalRun):
        super().__init__()
        self.run = run

    def _on_rollout_start(self) -> None:
        if self.num_timesteps >= self.run.next_checkpoint and self.num_timesteps < self.run.steps:
            self.run.save_checkpoint()
            self.run.next_checkpoint += self.run.save_every

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.run.train_successes.append(float(info["is_success"]))
        if self.num_timesteps >= self.run.next_point:
            self.run.rows.append(self.run.point())
            self.run.next_point += self.run.every
        return True


class GoalRun:
    """One run's agent, curve and checkpoint (see the module doc)."""

    def __init__(self, config: GoalTrackConfig, out: Path):
        self.config, self.out = config.validate(), Path(out)
        self.model = build_agent(config)
        self.eval_env = make_goal_env(config, 1000)
        self.episode = horizon(self.model.env.envs[0])
        round_steps = self.episode * config.n_envs
        self.steps = -(-config.steps // round_steps) * round_steps  # whole rounds
        self.every = max(round_steps, config.steps // config.curve_points)
        self.save_every = config.checkpoint_every or self.every
        self.next_point, self.next_checkpoint = self.every, self.save_every
        self.train_successes: deque[float] = deque(maxlen=config.window)
        self.rows: list[dict[str, float]] = []
        self.elapsed = 0.0

    @property
    def checkpoint(self) -> Path:
        return self.out / "checkpoint"

    def point(self) -> dict[str, float]:
        """The current curve point."""
        model = self.model
        row = {
            "step": model.num_timesteps,
            "success": evaluate(model, self.eval_env, self.config.eval_episodes)
            if self.config.eval_episodes
            else float("nan"),
            "train_success": float(np.mean(self.train_successes))
            if self.train_successes
            else float("nan"),
        }
        losses = model.last_losses[1:] or [float("nan")] * len(model.task_names)
        for k, name in enumerate(model.task_names):
            row[f"weight_{name}"] = float(model.weighting.weights[k + 1])
            row[f"loss_{name}"] = losses[k]
        return row

    def state(self) -> dict[str, Any]:
        """Everything but the replay buffer that a resumed run needs."""
        model = self.model
        return {
            "config": asdict(self.config),
            "policy": model.policy.state_dict(),
            "actor_optimizer": model.actor.optimizer.state_dict(),
            "critic_optimizer": model.critic.optimizer.state_dict(),
            "weighting": model.weighting.state_dict(),
            "num_timesteps": model.num_timesteps,
            "n_updates": model._n_updates,
            "episode_num": model._episode_num,
            "episodes": [env.episodes for env in model.env.envs],
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
                "action_space": model.action_space.np_random.bit_generator.state,
            },
            "rows": list(self.rows),
            "train_successes": list(self.train_successes),
            "next_point": self.next_point,
            "next_checkpoint": self.next_checkpoint,
            "elapsed": self.elapsed + time.perf_counter() - self.started,
        }

    def save_checkpoint(self) -> None:
        """Write ``checkpoint/`` atomically (a temporary folder, then a rename)."""
        staging = self.out / "checkpoint.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        torch.save(self.state(), staging / "state.pt")
        with open(staging / "replay.pkl", "wb") as handle:
            pickle.dump(self.model.replay_buffer, handle, protocol=pickle.HIGHEST_PROTOCOL)
        old = self.out / "checkpoint.old"
        if self.checkpoint.exists():
            self.checkpoint.rename(old)
        staging.rename(self.checkpoint)
        shutil.rmtree(old, ignore_errors=True)

    def resume(self) -> bool:
        """Continue from ``checkpoint/`` when it holds this run's settings; False if none."""
        state_file = self.checkpoint / "state.pt"
        if not state_file.exists():
            return False
        state = torch.load(state_file, weights_only=False)
        if state["config"] != asdict(self.config):
            raise ConfigError(
                f"{self.checkpoint}: a checkpoint of other settings; delete it to start afresh"
            )
        model = self.model
        model.policy.load_state_dict(state["policy"])
        model.actor.optimizer.load_state_dict(state["actor_optimizer"])
        model.critic.optimizer.load_state_dict(state["critic_optimizer"])
        model.weighting.load_state_dict(state["weighting"])
        model.num_timesteps, model._n_updates = state["num_timesteps"], state["n_updates"]
        model._episode_num = state["episode_num"]
        with open(self.checkpoint / "replay.pkl", "rb") as handle:
            model.replay_buffer = pickle.load(handle)
        model.replay_buffer.set_env(model.env)
        # learn() resets every environment once more: replay their latest episode's start
        for env, episodes in zip(model.env.envs, state["episodes"], strict=True):
            env.episodes = episodes - 1
        model._last_obs = None
        self.rows, self.next_point = state["rows"], state["next_point"]
        self.next_checkpoint = state["next_checkpoint"]
        self.train_successes.extend(state["train_successes"])
        self.elapsed = state["elapsed"]
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        model.action_space.np_random.bit_generator.state = rng["action_space"]
        return True

    def train(self) -> dict[str, Any]:
        """Train to the end (resuming if a checkpoint is there); write the outputs; the metrics."""
        self.started = time.perf_counter()
        resumed = self.resume()
        model = self.model
        remaining = self.steps - model.num_timesteps
        model.learn(remaining, callback=GoalRecorder(self), reset_num_timesteps=not resumed)
        config = self.config
        curve = pd.DataFrame(self.rows)
        measure = "success" if config.eval_episodes else "train_success"
        metrics = {
            **asdict(config),
            "tasks": model.task_names,
            "measure": measure,
            "steps_to_threshold": steps_to_threshold(
                curve["step"], curve[measure], config.threshold
            ),
            "auc": area_under_curve(curve["step"], curve[measure]),
            "final_success": float(curve[measure].iloc[-1]),
            "final_weights": {
                name: float(w) for name, w in zip(model.task_names, model.weighting.weights[1:])
            },
            "env_steps": int(model.num_timesteps),
            "resumed": resumed,
            "wall_time_s": self.elapsed + time.perf_counter() - self.started,
        }
        atomic.write_text(self.out / "curve.csv", curve.to_csv(index=False))
        atomic.write_json(self.out / "metrics.json", metrics)
        shutil.rmtree(self.checkpoint, ignore_errors=True)
        return metrics


def run(config: GoalTrackConfig, out: Path) -> dict[str, Any]:
    """Train one run of ``config`` into ``out`` (resuming from its checkpoint if there is one)
    and return its metrics."""
    return GoalRun(config, out).train()
