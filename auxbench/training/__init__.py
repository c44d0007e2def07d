"""Training: the loop every trainer shares (``loop``), the supervised and multi-domain trainers,
the data streams on the device, the optimiser and weighting, checkpoints and preemption.

Importing it registers RL-AUX's Gymnasium environment ``auxbench/AuxLabel-v0``, whose entry point
builds a fresh run (``run.make_label_env``).
"""

import gymnasium as gym

from auxbench.methods.rl_aux import ENV_ID
from auxbench.training.multidomain import MultiDomainTrainer
from auxbench.training.run import make_label_env, train
from auxbench.training.supervised import Trainer

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point=make_label_env)

__all__ = ["ENV_ID", "MultiDomainTrainer", "Trainer", "make_label_env", "train"]
