"""``AuxDDPG``: stable-baselines3's DDPG with hindsight experience replay on goal-conditioned pixel
environments, and auxiliary losses on its shared image encoder (OL-AUX §5.3's second setting).

**Network.** One convolutional encoder φ (``GoalEncoder``) embeds an RGBD image; the actor and the
critic see [φ(o), φ(g)], the observation's and the goal image's embeddings (a siamese encoder: the
same weights for both), never the ground-truth goal states the reward is computed from. The
auxiliary heads see φ(o_t) and φ(o_{t+1}).

**Update** (one gradient step, a batch from the HER buffer):

- the **primary** loss is the critic's Bellman error L_Q = mean (Q(o, g, a) − y)² with
  y = r + γ (1 − done) Q'(o', g, μ'(o', g)) from the target networks, clipped to
  [−1/(1 − γ), 0], the range of returns of rewards in {−1, 0} (as in HER, Andrychowicz et al.);
- one loss per auxiliary task (``auxbench.rltrack.tasks``, continuous actions) on the same batch;
- ``auxbench.weighting`` turns [L_Q, aux…] into gradients: the encoder gets the method's
  combination, the critic and the heads the gradient of Σ wᵢLᵢ; one Adam step;
- the actor then minimises −Q(φ, μ(φ)) (+ ``action_l2`` · mean μ², HER's action penalty) on the
  encoder's features detached: the encoder is trained by the critic and the auxiliary tasks (as
  in SAC-AE and DrQ), not by the actor, so the primary task of the weighting is L_Q — the paper's
  "L_main can be … the Bellman error L_Q" (§3);
- the targets follow by Polyak averaging with ``tau``, the shared encoder once.

A method that asks for extra data (``weighting.alignment_batches()``, OL-AUX-5 (Ablation)) gets the
losses of that many further batches, sampled from the buffer before the step, as ``extra_losses``.

**HER.** ``GoalImageHerBuffer`` is stable-baselines3's ``HerReplayBuffer`` ("future" strategy,
``n_sampled_goal`` = 9: a sampled transition's goal is relabelled with probability 0.9, §5.3) that
also replaces the goal image: a relabelled goal is the achieved goal of a later transition of the
same episode, so its goal image is that transition's next observation, and the reward is
recomputed by the environment's ``compute_reward`` from the ground-truth goal states.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import DDPG
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.her import HerReplayBuffer
from torch import nn

from auxbench import weighting
from auxbench.rltrack.tasks import AuxTask, Transitions, make_task

LOSS_FLOOR = 1e-8
GOAL_KEYS = ("observation", "goal_image", "achieved_goal", "desired_goal")


def unique(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``params`` without repeats (a shared module's parameters listed twice), in order."""
    seen: set[int] = set()
    kept = []
    for param in params:
        if id(param) not in seen:
            seen.add(id(param))
            kept.append(param)
    return kept


class GoalEncoder(BaseFeaturesExtractor):
    """The shared image encoder: 3×3 convolutions (stride 2 until the map is at most 8×8, then one
    of stride 1), a linear layer, LayerNorm and tanh to ``latent`` features per image; ``forward``
    returns [φ(observation), φ(goal image)] (2 × ``latent`` features)."""

    def __init__(self, observation_space: spaces.Dict, latent: int = 50, channels: int = 32):
        super().__init__(observation_space, 2 * latent)
        image = observation_space["observation"]
        layers: list[nn.Module] = []
        depth, side = image.shape[0], min(image.shape[1:])
        while side > 8:
            layers += [nn.Conv2d(depth, channels, 3, stride=2, padding=1), nn.ReLU()]
            depth, side = channels, (side + 1) // 2
        layers += [nn.Conv2d(depth, channels, 3, padding=1), nn.ReLU(), nn.Flatten()]
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, *image.shape)).shape[1]
        self.linear = nn.Sequential(nn.Linear(flat, latent), nn.LayerNorm(latent), nn.Tanh())
        self.latent = latent

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """φ of images already scaled to [0, 1] (n, C, H, W) → (n, latent)."""
        return self.linear(self.convs(images))

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        both = torch.cat([observations["observation"], observations["goal_image"]])
        z = self.encode(both)
        return torch.cat(z.chunk(2), dim=1)


class GoalImageHerBuffer(HerReplayBuffer):
    """``HerReplayBuffer`` whose relabelled goals bring their goal image along (module doc). Only
    the "future" strategy (the paper's)."""

    def _sample_goals(self, batch_indices: np.ndarray, env_indices: np.ndarray) -> np.ndarray:
        """A later transition of each sampled one's episode (inclusive, as stable-baselines3):
        its achieved goal; the transitions chosen are kept for the goal images."""
        start = self.ep_start[batch_indices, env_indices]
        length = self.ep_length[batch_indices, env_indices]
        position = (batch_indices - start) % self.buffer_size
        later = (np.random.randint(position, length) + start) % self.buffer_size
        self.relabelled_from = (later, env_indices)
        return self.next_observations["achieved_goal"][later, env_indices]

    def _get_virtual_samples(self, batch_indices, env_indices, env=None) -> DictReplayBufferSamples:
        samples = super()._get_virtual_samples(batch_indices, env_indices, env)
        later, envs = self.relabelled_from
        goal_image = self.to_torch(self.next_observations["observation"][later, envs])
        samples.observations["goal_image"] = goal_image
        samples.next_observations["goal_image"] = goal_image
        return samples


def check_goal_space(space: spaces.Space) -> None:
    """A clear error unless ``space`` is a goal environment's (``/docs/manipulation.md``)."""
    if not isinstance(space, spaces.Dict) or not set(GOAL_KEYS) <= set(space.spaces):
        raise TypeError(f"AuxDDPG needs a goal environment with keys {GOAL_KEYS}, got {space}")


class AuxDDPG(DDPG):
    """DDPG + HER whose critic update adds auxiliary ``tasks`` (names of
    ``auxbench.rltrack.tasks.TASKS`` or ``AuxTask`` instances) on the shared encoder, combined by
    the weighting ``weighting_name`` with ``weighting_params`` (primary: L_Q). ``last_losses``:
    the last update's losses (primary first)."""

    def __init__(
        self,
        policy: Any,
        env: Any,
        *,
        tasks: Sequence[str | AuxTask] = (),
        weighting_name: str = "fixed",
        weighting_params: dict[str, Any] | None = None,
        actor_lr: float = 1e-3,
        action_l2: float = 1.0,
        clip_target: bool = True,
        **kwargs: Any,
    ):
        self.task_specs = list(tasks)
        self.weighting_name = weighting_name
        self.weighting_params = dict(weighting_params or {})
        self.actor_lr, self.action_l2, self.clip_target = actor_lr, action_l2, clip_target
        self.last_losses: list[float] = []
        super().__init__(policy, env, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        check_goal_space(self.observation_space)
        if not isinstance(self.action_space, spaces.Box):
            raise TypeError(f"AuxDDPG needs continuous actions, got {self.action_space}")
        encoder = self.policy.actor.features_extractor
        if self.policy.critic.features_extractor is not encoder:
            raise ValueError("AuxDDPG needs share_features_extractor=True")
        flow = self.observation_space.spaces.get("flow")
        image_shape = self.observation_space["observation"].shape
        heads = [
            spec
            if isinstance(spec, AuxTask)
            else make_task(
                spec,
                encoder.latent,
                int(self.action_space.shape[0]),
                image_shape,
                continuous=True,
                flow_shape=None if flow is None else tuple(flow.shape),
            )
            for spec in self.task_specs
        ]
        self.policy.aux_tasks = nn.ModuleList(heads).to(self.device)
        optimizer = self.policy.optimizer_class
        kwargs = self.policy.optimizer_kwargs
        # the actor's optimiser holds its head only: the encoder learns from the critic and tasks
        self.actor.optimizer = optimizer(self.actor.mu.parameters(), lr=self.actor_lr, **kwargs)
        self.critic.optimizer = optimizer(
            unique([*self.critic.parameters(), *self.policy.aux_tasks.parameters()]),
            lr=self.lr_schedule(1),
            **kwargs,
        )
        self.weighting = weighting.create(
            self.weighting_name, 1 + len(heads), primary=[0], **self.weighting_params
        )

    @property
    def task_names(self) -> list[str]:
        """The auxiliary tasks' names, in loss order (after the primary)."""
        return [task.name for task in self.policy.aux_tasks]

    @property
    def encoder(self) -> GoalEncoder:
        return self.policy.actor.features_extractor

    def losses(self, data: DictReplayBufferSamples) -> tuple[list[torch.Tensor], torch.Tensor]:
        """([L_Q, aux…], the features [φ(o), φ(g)]) of one batch at the current parameters."""
        space = self.observation_space
        obs = preprocess_obs(data.observations, space)
        next_obs = preprocess_obs(data.next_observations, space)
        encoder = self.encoder
        features = encoder(obs)
        with torch.no_grad():
            next_features = self.actor_target.features_extractor(next_obs)
            next_actions = self.actor_target.mu(next_features)
            next_q = self.critic_target.q_networks[0](torch.cat([next_features, next_actions], 1))
            target = data.rewards + (1 - data.dones) * self.gamma * next_q
            if self.clip_target:
                target = target.clamp(-1.0 / (1.0 - self.gamma), 0.0)
        q = self.critic.q_networks[0](torch.cat([features, data.actions], dim=1))
        critic_loss = F.mse_loss(q, target)
        losses = [critic_loss]
        tasks = self.policy.aux_tasks
        if len(tasks):
            n = len(data.actions)
            raw = data.observations["observation"]
            transitions = Transitions(
                images=obs["observation"],
                raw=raw,
                z=features[:, : encoder.latent],
                z_next=encoder.encode(next_obs["observation"]),
                actions=data.actions,
                rewards=data.rewards.reshape(n),
                valid=torch.ones(n, dtype=torch.bool, device=self.device),
                encode=lambda images: encoder.encode(images.float() / 255.0),
                policy_loss=critic_loss,
                flow=data.next_observations.get("flow"),
            )
            losses += [task.loss(transitions).clamp(min=LOSS_FLOOR) for task in tasks]
        return losses, features

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """``gradient_steps`` updates (module doc), each on a batch of ``batch_size``."""
        self.policy.set_training_mode(True)
        encoder = list(self.encoder.parameters())
        encoder_ids = {id(p) for p in encoder}
        heads = [
            p
            for p in unique([*self.critic.parameters(), *self.policy.aux_tasks.parameters()])
            if id(p) not in encoder_ids
        ]
        sources = unique([*self.actor.parameters(), *self.critic.parameters()])
        targets = unique([*self.actor_target.parameters(), *self.critic_target.parameters()])
        for _ in range(gradient_steps):
            self._n_updates += 1
            extra = None
            more = self.weighting.alignment_batches()
            if more:
                extra, _ = self.losses(self.replay_buffer.sample(more * batch_size))
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            losses, features = self.losses(data)
            self.critic.optimizer.zero_grad()
            self.weighting.backward(losses, encoder, task_params=heads, extra_losses=extra)
            self.critic.optimizer.step()

            z = features.detach()
            actions = self.actor.mu(z)
            q = self.critic.q_networks[0](torch.cat([z, actions], dim=1))
            actor_loss = -q.mean() + self.action_l2 * actions.pow(2).mean()
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()
            with torch.no_grad():
                for source, target in zip(sources, targets, strict=True):
                    target.mul_(1 - self.tau).add_(source, alpha=self.tau)
            self.last_losses = [loss.item() for loss in losses]
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if self.last_losses:
            self.logger.record("train/critic_loss", self.last_losses[0])
            self.logger.record("train/actor_loss", actor_loss.item())
        for name, loss, weight in zip(
            self.task_names, self.last_losses[1:], self.weighting.weights[1:], strict=False
        ):
            self.logger.record(f"aux/{name}_loss", loss)
            self.logger.record(f"aux/{name}_weight", float(weight))
