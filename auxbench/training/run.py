"""One run from its config: the trainer for the dataset's kind, and the fresh run behind
``gymnasium.make("auxbench/AuxLabel-v0", ...)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auxbench.config import TrainConfig, make_config
from auxbench.data import DATASETS
from auxbench.methods.rl_aux import AuxLabelEnv
from auxbench.training.multidomain import MultiDomainTrainer
from auxbench.training.supervised import Trainer


def train(config: TrainConfig, out_dir: Path | None = None) -> dict[str, Any]:
    """Train one run as configured and return its metrics (see ``TrainingLoop.fit``): with the
    multi-domain trainer for a multi-domain dataset, else with ``Trainer``."""
    if config.user_dataset is None and DATASETS[config.dataset].domains is not None:
        return MultiDomainTrainer(config).fit(out_dir)
    return Trainer(config).fit(out_dir)


def make_label_env(weighted: bool = False, **config: Any) -> AuxLabelEnv:
    """The RL-AUX environment of a fresh ``rl-aux`` (or, ``weighted``, ``wa-rl-aux``) run.

    ``config`` holds ``TrainConfig`` keys: the dataset, main network, optimiser settings, device,
    λ (``lam``), B_T (``batch_size``) and, in ``method_params``, ψ (``psi``), ``mode``, B_R
    (``reward_batch_size``), ``entropy_coef`` and ``reset_every``. This is the entry point of
    ``gymnasium.make("auxbench/AuxLabel-v0", ...)``.
    """
    method = "wa-rl-aux" if weighted else "rl-aux"
    return Trainer(make_config({**config, "method": method})).method.env
