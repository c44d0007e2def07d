"""The RL track: auxiliary tasks for reinforcement learning from pixels (OL-AUX's own setting),
A2C with auxiliary losses on its shared image encoder, weighted by ``auxbench.weighting``.

- ``envs``: the pixel environments (``auxbench/PixelCatch-v0`` and Atari through ``ale-py``);
- ``tasks``: the auxiliary tasks (forward and inverse dynamics, egomotion, autoencoder, reward);
- ``a2c``: ``AuxA2C``, stable-baselines3's A2C with the auxiliary losses;
- ``curves``: metrics of a return-vs-steps curve (steps to a threshold, area under the curve);
- ``run``: one training run → ``metrics.json`` and ``curve.csv``.

Tables and figures over runs are the report's (``auxbench.report.rltrack``).
"""
