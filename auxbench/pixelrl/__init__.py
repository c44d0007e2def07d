"""Auxiliary tasks for reinforcement learning from pixels (OL-AUX's own setting): A2C with
auxiliary losses on its shared image encoder, weighted by ``auxbench.weighting``.

- ``envs``: the pixel environments (``auxbench/PixelCatch-v0`` and Atari through ``ale-py``);
- ``tasks``: the auxiliary tasks (forward and inverse dynamics, egomotion, autoencoder, reward);
- ``a2c``: ``AuxA2C``, stable-baselines3's A2C with the auxiliary losses;
- ``metrics``: return-vs-steps curves, steps to a threshold, area under the curve;
- ``run``: one training run → ``metrics.json`` and ``curve.csv``;
- ``aggregate``: tables and figures over runs.
"""
