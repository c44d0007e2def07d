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

Extra data (``weighting.alignment_batches()``, OL-AUX-5 (Ablation), method ``olaux5-ablation``):
A2C is on-policy, so "N times as much data" is the current rollout and the N − 1 before it. The
agent keeps the latest rollouts (``Rollout``: observations o_0 … o_T, actions, advantages,
returns, rewards, the ends of episodes); when the weighting asks for k, the same losses
(``rollout_losses``, the one definition of the A2C and auxiliary losses) are computed on the last
k rollouts taken together, at the current parameters, and passed as ``extra_losses``. Log-probs,
values, entropies, latents and auxiliary predictions are recomputed; advantages and returns are
those computed at collection time (as A2C's own loss uses them), normalised over the whole batch
when ``normalize_advantage``. Fewer than k rollouts exist only early in training, or when the
weighting asks for more than ``rollout_memory``: then the ones kept are used and the memory grows
to k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass
class Rollout:
    """What the losses of one rollout (T steps × E environments, time-major) need, on the agent's
    device: ``observations`` o_0 … o_T (T + 1, E, …; o_T the observation after the last step),
    ``actions``, ``advantages``, ``returns``, ``rewards`` and ``ended`` (step t ended an episode,
    so o_{t+1} belongs to the next one), each (T, E)."""

    observations: torch.Tensor
    actions: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    rewards: torch.Tensor
    ended: torch.Tensor

    @property
    def size(self) -> int:
        """The number of transitions, T × E."""
        return self.actions.numel()


class AuxA2C(A2C):
    """A2C whose update adds auxiliary ``tasks`` (names from ``tasks.TASKS`` or ``AuxTask``
    instances) on the shared features extractor, combined by the weighting ``weighting_name``
    with ``weighting_params`` (primary: the A2C loss). Discrete actions and image observations.
    ``last_losses`` holds the last update's losses (primary first). ``rollout_memory``: how many
    of the latest rollouts are kept for a weighting that asks for extra data (module doc);
    default: the weighting's ``horizon`` in OL-AUX's ablation mode, else 0 (none kept)."""

    def __init__(
        self,
        policy: Any,
        env: Any,
        *,
        tasks: Sequence[str | AuxTask] = (),
        weighting_name: str = "fixed",
        weighting_params: dict[str, Any] | None = None,
        rollout_memory: int | None = None,
        **kwargs: Any,
    ):
        self.task_specs = list(tasks)
        self.weighting_name = weighting_name
        self.weighting_params = dict(weighting_params or {})
        self.last_losses: list[float] = []
        self.rollout_memory = rollout_memory
        self.rollouts: list[Rollout] = []  # the latest first-to-last, at most rollout_memory
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
        if self.rollout_memory is None:
            ablation = getattr(self.weighting, "mode", None) == "ablation"
            self.rollout_memory = int(getattr(self.weighting, "horizon", 0)) if ablation else 0

    @property
    def task_names(self) -> list[str]:
        """The auxiliary tasks' names, in loss order (after the primary)."""
        return [task.name for task in self.policy.aux_tasks]

    def current_rollout(self) -> Rollout:
        """The rollout buffer's data (and o_T, the episode ends after the last step) as a
        ``Rollout`` of tensors of its own (the buffer's arrays are refilled by the next
        collection)."""
        buffer = self.rollout_buffer
        observations = np.concatenate([buffer.observations, self._last_obs[None]])
        ended = np.concatenate([buffer.episode_starts[1:], self._last_episode_starts[None]])

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.tensor(array, device=self.device)

        return Rollout(
            observations=tensor(observations),
            actions=tensor(buffer.actions).long().reshape(buffer.buffer_size, buffer.n_envs),
            advantages=tensor(buffer.advantages),
            returns=tensor(buffer.returns),
            rewards=tensor(buffer.rewards),
            ended=tensor(ended != 0),
        )

    def rollout_losses(
        self, rollouts: Sequence[Rollout]
    ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """The losses [A2C, aux…] (module doc) of ``rollouts`` taken together, at the current
        parameters: each loss is a mean over all their transitions. Also returns A2C's terms
        (``policy``, ``value``, ``entropy``) for logging."""
        tasks = self.policy.aux_tasks
        # o_T only for the dynamics tasks; one encoder pass over every rollout's observations
        kept = [r.observations if len(tasks) else r.observations[:-1] for r in rollouts]
        features_all = self.policy.extract_features(torch.cat([o.flatten(0, 1) for o in kept]))
        raw_parts, z_parts, z_next_parts, offset = [], [], [], 0
        for rollout, observations in zip(rollouts, kept, strict=True):
            n, envs = rollout.size, rollout.actions.shape[1]
            features = features_all[offset : offset + len(observations) * envs]
            raw_parts.append(observations.flatten(0, 1)[:n])
            z_parts.append(features[:n])
            z_next_parts.append(features[envs : envs + n])
            offset += len(observations) * envs
        z = torch.cat(z_parts)

        def joined(name: str) -> torch.Tensor:
            return torch.cat([getattr(r, name).reshape(-1) for r in rollouts])

        actions, advantages, returns = joined("actions"), joined("advantages"), joined("returns")
        latent_pi, latent_vf = self.policy.mlp_extractor(z)
        distribution = self.policy._get_action_dist_from_latent(latent_pi)
        values = self.policy.value_net(latent_vf).flatten()
        if self.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = -(advantages * distribution.log_prob(actions)).mean()
        value_loss = F.mse_loss(returns, values)
        entropy_loss = -distribution.entropy().mean()
        losses = [policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss]
        if len(tasks):
            raw = torch.cat(raw_parts)
            transitions = Transitions(
                images=preprocess_obs(raw, self.observation_space),
                raw=raw,
                z=z,
                z_next=torch.cat(z_next_parts),
                actions=actions,
                rewards=joined("rewards"),
                valid=~joined("ended"),
                encode=self.policy.extract_features,
                policy_loss=policy_loss,
            )
            losses += [task.loss(transitions).clamp(min=LOSS_FLOOR) for task in tasks]
        terms = {"policy": policy_loss, "value": value_loss, "entropy": entropy_loss}
        return losses, terms

    def train(self) -> None:
        """One update on the rollout: A2C's loss and the auxiliary losses through the weighting
        (with the losses of the latest rollouts as ``extra_losses`` when it asks for them)."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        rollout = self.current_rollout()
        wanted = self.weighting.alignment_batches()
        self.rollout_memory = max(self.rollout_memory, wanted)
        if self.rollout_memory:
            self.rollouts = [*self.rollouts, rollout][-self.rollout_memory :]
        losses, terms = self.rollout_losses([rollout])
        # the last ``wanted`` rollouts, this one included (fewer early in training: those kept)
        extra = self.rollout_losses(self.rollouts[-wanted:])[0] if wanted else None
        shared = list(self.policy.features_extractor.parameters())
        shared_ids = {id(p) for p in shared}
        others = [p for p in self.policy.parameters() if id(p) not in shared_ids]
        self.policy.optimizer.zero_grad()
        self.weighting.backward(losses, shared, task_params=others, extra_losses=extra)
        nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        self.last_losses = [loss.item() for loss in losses]
        self._n_updates += 1
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/policy_loss", terms["policy"].item())
        self.logger.record("train/value_loss", terms["value"].item())
        self.logger.record("train/entropy_loss", terms["entropy"].item())
        for name, loss, weight in zip(
            self.task_names, self.last_losses[1:], self.weighting.weights[1:], strict=True
        ):
            self.logger.record(f"aux/{name}_loss", loss)
            self.logger.record(f"aux/{name}_weight", float(weight))
