"""One run of the RL track: ``AuxA2C`` on a pixel environment with a weighting method →
``curve.csv`` (per curve point: environment step, mean return of the last ``window`` episodes,
each auxiliary task's weight and loss) and ``metrics.json`` (steps to the threshold, area under the
curve, final return, wall time and the settings).

Methods (the paper's §5.4 baselines and OL-AUX; every method but ``none`` uses all ``tasks``):

- ``none``: A2C alone;
- ``balance``: gradient balancing: every weight 1 on the log auxiliary losses (``fixed``);
- ``gcs``: gradient cosine similarity: an auxiliary gradient joins only when its cosine with the
  A2C gradient is > 0 (``gcs``, raw losses as in Du et al.);
- ``olaux1``/``olaux5``: OL-AUX with N = 1 and N = 5 on the log auxiliary losses (``olaux``);
  OL-AUX-1's β is β/5 (§5.6: it updates w five times as often);
- ``olaux5-ablation``: OL-AUX-5 (Ablation) of §5.6 / Fig. 6: θ trained as by OL-AUX-5, w moved
  every 5 updates by the one-step rule (Eq. 4) on 5 rollouts' worth of data (the current rollout
  and the 4 before it, ``AuxA2C``'s module doc), with OL-AUX-5's β (``olaux`` with
  ``mode: ablation``).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from auxbench.config import build_validated
from auxbench.foundations import atomic
from auxbench.foundations.errors import ConfigError
from auxbench.foundations.validation import at_least, choice
from auxbench.rltrack.a2c import AuxA2C, SmallCNN
from auxbench.rltrack.curves import area_under_curve, steps_to_threshold
from auxbench.rltrack.envs import ENVS, env_spec, make_pixel_env
from auxbench.rltrack.tasks import PIXEL_TASKS

METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "none": ("fixed", {}),
    "balance": ("fixed", {"log_losses": "auxiliary"}),
    "gcs": ("gcs", {}),
    "olaux1": ("olaux", {"horizon": 1, "log_losses": "auxiliary"}),
    "olaux5": ("olaux", {"horizon": 5, "log_losses": "auxiliary"}),
    "olaux5-ablation": ("olaux", {"horizon": 5, "log_losses": "auxiliary", "mode": "ablation"}),
}
OPTIMIZERS = ("rmsprop", "adam")


@dataclass
class RLTrackConfig:
    """One run's settings. A2C defaults are stable-baselines3's Atari ones (RL Zoo): 16
    environments, 5 steps per update, lr 7e-4, entropy 0.01, value 0.25, gradient norm 0.5, and
    their RMSprop. OL-AUX §5.3 uses Adam, as ``config/paper/ol-aux-atari.yaml`` does; on the
    embedded catch Adam at this lr is much worse (docs/results/rl-track.md), so it is a setting."""

    env: str = "catch"
    method: str = "olaux5"
    seed: int = 0
    steps: int = 20000
    tasks: list[str] = field(default_factory=lambda: list(PIXEL_TASKS))
    # A2C
    n_envs: int = 16
    n_steps: int = 5
    lr: float = 7e-4
    optimizer: str = "rmsprop"
    gamma: float = 0.99
    ent_coef: float = 0.01
    vf_coef: float = 0.25
    max_grad_norm: float = 0.5
    # OL-AUX's β (OL-AUX-1 uses β/5; OL-AUX-5 and its ablation β)
    beta: float = 0.01
    # the curve: points, episodes averaged per point, the return threshold (default: the env's)
    curve_points: int = 50
    window: int = 20
    threshold: float | None = None
    device: str = "cpu"

    def validate(self) -> RLTrackConfig:
        """Check every value; raise ``ConfigError`` naming the bad one."""
        choice("environment", self.env, list(ENVS))
        choice("RL method", self.method, list(METHODS))
        choice("optimizer", self.optimizer, OPTIMIZERS)
        for task in self.tasks:
            choice("auxiliary task", task, list(PIXEL_TASKS))
        if self.method != "none" and not self.tasks:
            raise ConfigError(f"method {self.method!r} needs at least one auxiliary task")
        for name in ("seed",):
            at_least(name, self.seed, 0)
        for name in ("n_envs", "n_steps", "curve_points", "window"):
            at_least(name, getattr(self, name), 1)
        at_least("steps", self.steps, self.n_envs * self.n_steps)
        for name in ("lr", "beta", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("ent_coef", "vf_coef"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"gamma must be in (0, 1], got {self.gamma!r}")
        return self

    @property
    def solved_at(self) -> float:
        """The return threshold: the configured one, else the environment's."""
        return env_spec(self.env).threshold if self.threshold is None else self.threshold


def make_rltrack_config(values: dict[str, Any], source: str = "rltrack config") -> RLTrackConfig:
    """Build and validate an ``RLTrackConfig`` from a dict, refusing unknown keys."""
    return build_validated(RLTrackConfig, values, source)


def olaux_beta(beta: float, horizon: int) -> float:
    """The β of OL-AUX-N (and of its ablation, which updates w as often): ``beta`` for the
    paper's N = 5, scaled by N/5 otherwise (§5.6 runs OL-AUX-1 with β/5 "to make a fair
    comparison, as it updates w more frequently", and the ablation with "the same learning rate
    β as OL-AUX-5")."""
    return beta * horizon / 5


def build_agent(config: RLTrackConfig) -> AuxA2C:
    """The A2C agent of ``config`` on its vectorised environment (each with a ``Monitor``)."""
    spec = env_spec(config.env)
    env = make_vec_env(lambda: make_pixel_env(config.env), n_envs=config.n_envs, seed=config.seed)
    name, params = METHODS[config.method]
    if name == "olaux":  # §5.6: OL-AUX-1 updates w 5× as often as OL-AUX-5 (and its ablation)
        params = {**params, "beta": olaux_beta(config.beta, params["horizon"])}
    policy_kwargs = {} if spec.atari else {"features_extractor_class": SmallCNN}
    if config.optimizer == "adam":
        policy_kwargs["optimizer_kwargs"] = {"eps": 1e-5}
    return AuxA2C(
        "CnnPolicy",
        env,
        tasks=[] if config.method == "none" else config.tasks,
        weighting_name=name,
        weighting_params=params,
        learning_rate=config.lr,
        n_steps=config.n_steps,
        gamma=config.gamma,
        ent_coef=config.ent_coef,
        vf_coef=config.vf_coef,
        max_grad_norm=config.max_grad_norm,
        use_rms_prop=config.optimizer == "rmsprop",
        policy_kwargs=policy_kwargs,
        seed=config.seed,
        device=config.device,
    )


class CurveRecorder(BaseCallback):
    """Records a curve point every ``every`` environment steps: the mean return of the last
    ``window`` finished episodes (NaN before the first) and each auxiliary task's weight and
    last loss."""

    def __init__(self, every: int, window: int):
        super().__init__()
        self.every, self.next_point = every, every
        self.returns: deque[float] = deque(maxlen=window)
        self.rows: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.returns.append(float(info["episode"]["r"]))
        if self.num_timesteps >= self.next_point:
            self.rows.append(self.point())
            self.next_point += self.every
        return True

    def point(self) -> dict[str, float]:
        """The current curve point."""
        model = self.model
        row = {
            "step": self.num_timesteps,
            "return": float(np.mean(self.returns)) if self.returns else float("nan"),
        }
        losses = model.last_losses[1:] or [float("nan")] * len(model.task_names)
        for k, name in enumerate(model.task_names):
            row[f"weight_{name}"] = float(model.weighting.weights[k + 1])
            row[f"loss_{name}"] = losses[k]
        return row


def run(config: RLTrackConfig, out: Path) -> dict[str, Any]:
    """Train one run of ``config``; write ``curve.csv`` and ``metrics.json`` into ``out``
    atomically and return the metrics."""
    config.validate()
    started = time.perf_counter()
    model = build_agent(config)
    batch = config.n_envs * config.n_steps
    every = max(batch, config.steps // config.curve_points // batch * batch)
    recorder = CurveRecorder(every, config.window)
    model.learn(config.steps, callback=recorder)
    curve = pd.DataFrame(recorder.rows)
    metrics = {
        **asdict(config),
        "threshold": config.solved_at,
        "steps_to_threshold": steps_to_threshold(curve["step"], curve["return"], config.solved_at),
        "auc": area_under_curve(curve["step"], curve["return"]),
        "final_return": float(curve["return"].iloc[-1]),
        "final_weights": {
            name: float(w) for name, w in zip(model.task_names, model.weighting.weights[1:])
        },
        "env_steps": int(model.num_timesteps),
        "wall_time_s": time.perf_counter() - started,
    }
    out = Path(out)
    atomic.write_text(out / "curve.csv", curve.to_csv(index=False))
    atomic.write_json(out / "metrics.json", metrics)
    return metrics
