"""RL-AUX (Goldfeder, So & Lipson): a PPO agent labels each training image with an auxiliary
class. ``method`` registers ``rl-aux`` and ``wa-rl-aux``; ``env`` is the Gymnasium environment
``auxbench/AuxLabel-v0`` (registered by ``auxbench.training``, which builds the run it wraps);
``policy`` is the agent's network."""

from auxbench.methods.rl_aux import method  # noqa: F401  (registers rl-aux and wa-rl-aux)
from auxbench.methods.rl_aux.env import ENV_ID, AuxLabelEnv, EnvSettings

__all__ = ["ENV_ID", "AuxLabelEnv", "EnvSettings"]
