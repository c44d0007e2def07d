"""The RL track: auxiliary tasks for reinforcement learning from pixels (OL-AUX's two settings),
the auxiliary losses on a shared image encoder, weighted by ``auxbench.weighting``.

A2C on pixel games (§5.3's first setting):

- ``envs``: the pixel environments (``auxbench/PixelCatch-v0`` and Atari through ``ale-py``);
- ``a2c``: ``AuxA2C``, stable-baselines3's A2C with the auxiliary losses;
- ``run``: one training run → ``metrics.json`` and ``curve.csv``.

DDPG + HER on goal-conditioned visual manipulation (§5.3's second setting, the manipulation
track):

- ``goal_envs``: the embedded ``auxbench/PixelReach-v0`` (RGBD, exact optical flow) and the
  episode seeding that makes runs resumable;
- ``manipulation``: Visual Fetch Reach, Visual Hand Reach and Visual Finger Turn in MuJoCo,
  rendered headless (imported only when one of them is used);
- ``ddpg``: ``AuxDDPG`` and ``GoalImageHerBuffer``, stable-baselines3's DDPG and HER buffer with
  the auxiliary losses and goal images;
- ``goal_run``: one manipulation run, with checkpoints → ``metrics.json`` and ``curve.csv``.

Shared: ``tasks`` (forward and inverse dynamics, egomotion, autoencoder, optical flow, reward;
discrete or continuous actions) and ``curves`` (steps to a threshold, area under the curve).

Tables and figures over runs are the report's (``auxbench.report.rltrack``,
``auxbench.report.manipulation``).
"""
