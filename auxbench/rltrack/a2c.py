"""``AuxA2C``: stable-baselines3's A2C with auxiliary losses on the shared image encoder.

Each update takes the rollout (n_steps × n_envs transitions) in time order, encodes o_0 … o_T
(o_T: the observation after the last step) once with the policy's features extractor φ (shared by
actor and critic), and forms

- the **primary** loss, A2C's own: L_pg + c_ent·L_ent + c_vf·L_vf (as ``A2C.train``);
- one loss per auxiliary task (``tasks``) on the same latents; the next observation of step t is
  o_{t+1} of the same environment, masked where step t ended an episode.

``auxbench.weighting`` turns the list [primary, aux…] into gradients: the shared encoder's
parameters get the method's combination, the actor, critic and task heads the gradient of Σ wᵢLᵢ.
Then the gradient norm is clipped and the optimiser steps, as in A2C.

Log-loss balancing: the A2C loss is negative whenever the policy-gradient term dominates, so its
log is undefined. The paper's implementation detail (§4) wraps "all the auxiliary task losses" in
a log; its Algorithm 1 also logs L_main, which is not possible here. The methods that balance
(``balance``, ``olaux1``, ``olaux5``) therefore log the auxiliary losses only
(``log_losses="auxiliary"``), and OL-AUX's alignment is ∇L_A2C·∇log L_aux,i. Auxiliary losses
are floored at ``LOSS_FLOOR`` so that the log stays finite when a task is solved to float precision
(reward prediction on a rollout without rewards) or has no valid transition in a rollout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import A2C
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from auxbench import weighting
from auxbench.rltrack.tasks import AuxTask, Transitions, make_task

LOSS_FLOOR = 1e-8


class SmallCNN(BaseFeaturesExtractor):
    """A small image encoder for small observations: two 3×3 convolutions (the second with
    stride 2), then a linear layer to ``features_dim`` features."""

    def __init__(self, observation_space: spaces.Box, features_dim: int = 64):
        super().__init__(observation_space, features_dim)
        channels = observation_space.shape[0]
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, *observation_space.shape)).shape[1]
        self.linear = nn.Sequential(nn.Linear(flat, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(observations))


class AuxA2C(A2C):
    """A2C whose update adds auxiliary ``tasks`` (names from ``tasks.TASKS`` or ``AuxTask``
    instances) on the shared features extractor, combined by the weighting ``weighting_name``
    with ``weighting_params`` (primary: the A2C loss). Discrete actions and image observations.
    ``last_losses`` holds the last update's losses (primary first)."""

    def __init__(
        self,
        policy: Any,
        env: Any,
        *,
        tasks: Sequence[str | AuxTask] = (),
        weighting_name: str = "fixed",
        weighting_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        self.task_specs = list(tasks)
        self.weighting_name = weighting_name
        self.weighting_params = dict(weighting_params or {})
        self.last_losses: list[float] = []
        super().__init__(policy, env, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        if not isinstance(self.action_space, spaces.Discrete):
            raise TypeError(f"AuxA2C needs a discrete action space, got {self.action_space}")
        if not isinstance(self.observation_space, spaces.Box):
            raise TypeError(f"AuxA2C needs image observations, got {self.observation_space}")
        if not self.policy.share_features_extractor:
            raise ValueError("AuxA2C needs the features extractor shared by actor and critic")
        latent = self.policy.features_extractor.features_dim
        shape = self.observation_space.shape
        n_actions = int(self.action_space.n)
        heads = [
            spec if isinstance(spec, AuxTask) else make_task(spec, latent, n_actions, shape)
            for spec in self.task_specs
        ]
        self.policy.aux_tasks = nn.ModuleList(heads).to(self.device)
        # the policy's optimiser was built before the heads existed: rebuild it over everything
        self.policy.optimizer = self.policy.optimizer_class(
            self.policy.parameters(), lr=self.lr_schedule(1), **self.policy.optimizer_kwargs
        )
        self.weighting = weighting.create(
            self.weighting_name, 1 + len(heads), primary=[0], **self.weighting_params
        )

    @property
    def task_names(self) -> list[str]:
        """The auxiliary tasks' names, in loss order (after the primary)."""
        return [task.name for task in self.policy.aux_tasks]

    def train(self) -> None:
        """One update on the rollout: A2C's loss and the auxiliary losses through the weighting."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        buffer = self.rollout_buffer
        steps, envs = buffer.buffer_size, buffer.n_envs
        n = steps * envs
        tasks = self.policy.aux_tasks
        observations = buffer.observations
        if len(tasks):  # o_T, the observation after the last step, for the dynamics tasks
            observations = np.concatenate([observations, self._last_obs[None]])
        raw = torch.as_tensor(observations, device=self.device).flatten(0, 1)
        features = self.policy.extract_features(raw)
        latent_pi, latent_vf = self.policy.mlp_extractor(features[:n])
        distribution = self.policy._get_action_dist_from_latent(latent_pi)
        actions = torch.as_tensor(buffer.actions, device=self.device).long().reshape(n)
        advantages = torch.as_tensor(buffer.advantages, device=self.device).reshape(n)
        returns = torch.as_tensor(buffer.returns, device=self.device).reshape(n)
        values = self.policy.value_net(latent_vf).flatten()
        if self.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = -(advantages * distribution.log_prob(actions)).mean()
        value_loss = F.mse_loss(returns, values)
        entropy_loss = -distribution.entropy().mean()
        losses = [policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss]
        if len(tasks):
            starts = np.concatenate([buffer.episode_starts[1:], self._last_episode_starts[None]])
            transitions = Transitions(
                images=preprocess_obs(raw[:n], self.observation_space),
                raw=raw[:n],
                z=features[:n],
                z_next=features[envs:],
                actions=actions,
                rewards=torch.as_tensor(buffer.rewards, device=self.device).reshape(n),
                valid=torch.as_tensor(starts == 0, device=self.device).reshape(n),
                encode=self.policy.extract_features,
                policy_loss=policy_loss,
            )
            losses += [task.loss(transitions).clamp(min=LOSS_FLOOR) for task in tasks]
        shared = list(self.policy.features_extractor.parameters())
        shared_ids = {id(p) for p in shared}
        others = [p for p in self.policy.parameters() if id(p) not in shared_ids]
        self.policy.optimizer.zero_grad()
        self.weighting.backward(losses, shared, task_params=others)
        nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        self.last_losses = [loss.item() for loss in losses]
        self._n_updates += 1
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/policy_loss", policy_loss.item())
        self.logger.record("train/value_loss", value_loss.item())
        self.logger.record("train/entropy_loss", entropy_loss.item())
        for name, loss, weight in zip(
            self.task_names, self.last_losses[1:], self.weighting.weights[1:], strict=True
        ):
            self.logger.record(f"aux/{name}_loss", loss)
            self.logger.record(f"aux/{name}_weight", float(weight))
