"""Reinforcement learning for auxiliary-task generation (RL-AUX): the Gymnasium environment
``auxbench/AuxLabel-v0`` and the PPO agent's policy."""

from __future__ import annotations

import gymnasium as gym

from auxbench.methods.rl_aux import method  # noqa: F401  (registers rl-aux and wa-rl-aux)
from auxbench.methods.rl_aux.env import AuxLabelEnv, EnvSettings, make_env

ENV_ID = "auxbench/AuxLabel-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="auxbench.methods.rl_aux.env:make_env")

__all__ = ["ENV_ID", "AuxLabelEnv", "EnvSettings", "make_env"]
