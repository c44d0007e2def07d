"""The auxiliary tasks (OL-AUX's Table 1) and reward prediction, for discrete actions (A2C on
pixel games) and continuous ones (DDPG + HER on goal environments: ``continuous=True``, where the
action dimension takes the place of the number of actions).

Each task is a head on the shared encoder's latent z = φ(o) with a loss on one rollout's
``Transitions`` (o_t, a_t, r_t, o_{t+1}) from the rollout; its gradient reaches the shared encoder
through z and its own head only.

- ``forward``: forward dynamics (Agrawal et al. 2016): predict z_{t+1} from z_t and a_t (one-hot,
  or the continuous action itself);
  the target φ(o_{t+1}) is detached (no gradient through the target, so the encoder cannot
  collapse it to a constant to win). Mean squared error.
- ``inverse``: inverse dynamics: predict a_t from z_t and z_{t+1}. Cross-entropy (discrete) or
  mean squared error (continuous).
- ``egomotion``: given a raw and a transformed observation, predict the transformation (Table 1,
  after Agrawal et al. 2015): one of 5 translations (none, up, down, left, right by ``shift``
  pixels, cyclic) applied to o_t. Cross-entropy. The camera of the Atari games and of PixelCatch
  never moves, so the agent's own motion (egomotion proper) does not exist in these environments;
  the task here is the synthetic-transformation form of Table 1's description.
- ``autoencoder``: reconstruct the observation from z (a two-layer decoder to the observation
  average-pooled to at most 21×21, pixel values in [0, 1]). Mean squared error.
- ``reward``: reward prediction (an extra beyond Table 1): the sign of r_t (−, 0, +) from z_t and
  a_t. Cross-entropy. The rollout buffer's reward includes stable-baselines3's bootstrap γ·V(o_T)
  on time-limit truncations, which can change the sign on those rare steps.

- ``flow``: optical flow (Table 1, after Fischer et al. 2015): predict the flow from o_t to
  o_{t+1} (the environment's exact flow, ``Transitions.flow``: (n, 2, h, w), pooled) from z_t and
  z_{t+1}. Mean squared error. Only for environments that give exact flow (the goal
  environments' ``flow`` key); the Atari emulator does not, so the A2C track leaves it out.
Transitions whose o_{t+1} belongs to the next episode (``valid`` false) are left out of the
dynamics tasks' losses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN = 128
MAX_RECONSTRUCTION = 21


@dataclass
class Transitions:
    """One rollout's transitions as tensors, n of them.

    ``images``: o_t as floats in [0, 1] (n, C, H, W); ``raw``: o_t as stored (what ``encode``
    takes); ``z``/``z_next``: φ(o_t)/φ(o_{t+1}) (n, d) with their graphs; ``actions`` (n,) long;
    ``rewards`` (n,); ``valid`` (n,) bool: o_{t+1} is in the same episode as o_t; ``encode``: the
    shared encoder φ; ``policy_loss``: the main RL loss's term (A2C's policy gradient, DDPG's
    Bellman error), for tasks defined through the main objective (the adversarial task of the
    tests); ``flow``: the exact optical flow from o_t to o_{t+1}, (n, 2, h, w), where the
    environment gives it. Continuous actions are (n, action dimension) floats.
    """

    images: torch.Tensor
    raw: torch.Tensor
    z: torch.Tensor
    z_next: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    valid: torch.Tensor
    encode: Callable[[torch.Tensor], torch.Tensor]
    policy_loss: torch.Tensor
    flow: torch.Tensor | None = None


def mlp(inputs: int, outputs: int) -> nn.Sequential:
    """A two-layer head: ``Linear-ReLU-Linear`` with ``HIDDEN`` hidden units."""
    return nn.Sequential(nn.Linear(inputs, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, outputs))


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (n,) over ``mask``; 0 (with a graph) when the mask is empty."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


class AuxTask(nn.Module):
    """An auxiliary task: its head's parameters and ``loss(batch)``. ``n_actions``: the number of
    discrete actions, or with ``continuous`` the action dimension."""

    name: ClassVar[str]

    def __init__(
        self,
        latent: int,
        n_actions: int,
        obs_shape: tuple[int, ...],
        continuous: bool = False,
        flow_shape: tuple[int, ...] | None = None,
    ):
        super().__init__()
        self.latent, self.n_actions, self.obs_shape = latent, n_actions, tuple(obs_shape)
        self.continuous, self.flow_shape = continuous, flow_shape

    def loss(self, batch: Transitions) -> torch.Tensor:
        raise NotImplementedError

    def action_input(self, actions: torch.Tensor) -> torch.Tensor:
        """The action as a head's input: one-hot when discrete, as given when continuous."""
        return actions.float() if self.continuous else F.one_hot(actions, self.n_actions).float()


class ForwardDynamics(AuxTask):
    """Predict φ(o_{t+1}) (detached) from φ(o_t) and a_t."""

    name = "forward"

    def __init__(self, latent, n_actions, obs_shape, **kwargs):
        super().__init__(latent, n_actions, obs_shape, **kwargs)
        self.head = mlp(latent + n_actions, latent)

    def loss(self, batch: Transitions) -> torch.Tensor:
        predicted = self.head(torch.cat([batch.z, self.action_input(batch.actions)], dim=1))
        errors = (predicted - batch.z_next.detach()).pow(2).mean(dim=1)
        return masked_mean(errors, batch.valid)


class InverseDynamics(AuxTask):
    """Predict a_t from φ(o_t) and φ(o_{t+1})."""

    name = "inverse"

    def __init__(self, latent, n_actions, obs_shape, **kwargs):
        super().__init__(latent, n_actions, obs_shape, **kwargs)
        self.head = mlp(2 * latent, n_actions)

    def loss(self, batch: Transitions) -> torch.Tensor:
        predicted = self.head(torch.cat([batch.z, batch.z_next], dim=1))
        if self.continuous:
            errors = (predicted - batch.actions.float()).pow(2).mean(dim=1)
        else:
            errors = F.cross_entropy(predicted, batch.actions, reduction="none")
        return masked_mean(errors, batch.valid)


def translate(images: torch.Tensor, classes: torch.Tensor, shift: int) -> torch.Tensor:
    """Each image (n, C, H, W) moved cyclically by its class: 0 none, 1 up, 2 down, 3 left,
    4 right, by ``shift`` pixels."""
    moves = [(0, 2), (-shift, 2), (shift, 2), (-shift, 3), (shift, 3)]
    moved = images.clone()
    for k, (step, dim) in enumerate(moves):
        chosen = classes == k
        moved[chosen] = torch.roll(images[chosen], step, dims=dim)
    return moved


class Egomotion(AuxTask):
    """Predict which of 5 translations turned o_t into the transformed observation."""

    name = "egomotion"
    N_MOVES = 5

    def __init__(self, latent, n_actions, obs_shape, **kwargs):
        super().__init__(latent, n_actions, obs_shape, **kwargs)
        self.shift = max(1, min(obs_shape[-2:]) // 10)
        self.head = mlp(2 * latent, self.N_MOVES)

    def loss(self, batch: Transitions) -> torch.Tensor:
        classes = torch.randint(self.N_MOVES, (len(batch.raw),), device=batch.raw.device)
        moved = batch.encode(translate(batch.raw, classes, self.shift))
        return F.cross_entropy(self.head(torch.cat([batch.z, moved], dim=1)), classes)


def reconstruction_target(images: torch.Tensor) -> torch.Tensor:
    """The autoencoder's target: ``images`` average-pooled to at most 21×21, flattened."""
    height, width = images.shape[-2:]
    size = (min(height, MAX_RECONSTRUCTION), min(width, MAX_RECONSTRUCTION))
    return F.adaptive_avg_pool2d(images, size).flatten(1)


class Autoencoder(AuxTask):
    """Reconstruct the (pooled) observation from φ(o_t)."""

    name = "autoencoder"

    def __init__(self, latent, n_actions, obs_shape, **kwargs):
        super().__init__(latent, n_actions, obs_shape, **kwargs)
        size = reconstruction_target(torch.zeros(1, *obs_shape)).shape[1]
        self.head = mlp(latent, size)

    def loss(self, batch: Transitions) -> torch.Tensor:
        return F.mse_loss(self.head(batch.z), reconstruction_target(batch.images))


def reward_class(rewards: torch.Tensor) -> torch.Tensor:
    """The reward-prediction target: 0 for r < 0, 1 for r = 0, 2 for r > 0."""
    return (torch.sign(rewards) + 1).long()


class RewardPrediction(AuxTask):
    """Predict the sign of r_t from φ(o_t) and a_t."""

    name = "reward"

    def __init__(self, latent, n_actions, obs_shape, **kwargs):
        super().__init__(latent, n_actions, obs_shape, **kwargs)
        self.head = mlp(latent + n_actions, 3)

    def loss(self, batch: Transitions) -> torch.Tensor:
        logits = self.head(torch.cat([batch.z, self.action_input(batch.actions)], dim=1))
        return F.cross_entropy(logits, reward_class(batch.rewards))


class OpticalFlow(AuxTask):
    """Predict the exact (pooled) optical flow from o_t to o_{t+1} from φ(o_t) and φ(o_{t+1})."""

    name = "flow"

    def __init__(self, latent, n_actions, obs_shape, **kwargs):
        super().__init__(latent, n_actions, obs_shape, **kwargs)
        if self.flow_shape is None:
            raise ValueError("the flow task needs an environment with exact optical flow")
        self.head = mlp(2 * latent, int(torch.Size(self.flow_shape).numel()))

    def loss(self, batch: Transitions) -> torch.Tensor:
        if batch.flow is None:
            raise ValueError("the flow task needs the transitions' exact flow")
        predicted = self.head(torch.cat([batch.z, batch.z_next], dim=1))
        errors = (predicted - batch.flow.flatten(1).float()).pow(2).mean(dim=1)
        return masked_mean(errors, batch.valid)


TASKS: dict[str, type[AuxTask]] = {
    cls.name: cls
    for cls in (
        ForwardDynamics,
        InverseDynamics,
        Egomotion,
        Autoencoder,
        RewardPrediction,
        OpticalFlow,
    )
}
# the tasks of OL-AUX's Table 1, in its order (the manipulation track's default set)
TABLE1_TASKS = ("forward", "inverse", "egomotion", "autoencoder", "flow")
# the tasks a pixel game without ground-truth flow supports (the A2C track's)
PIXEL_TASKS = tuple(name for name in TASKS if name != "flow")


def make_task(
    name: str,
    latent: int,
    n_actions: int,
    obs_shape: tuple[int, ...],
    *,
    continuous: bool = False,
    flow_shape: tuple[int, ...] | None = None,
) -> AuxTask:
    """The auxiliary task ``name`` for a ``latent``-dimensional encoder (``continuous``: actions
    are ``n_actions``-dimensional vectors; ``flow_shape``: the shape of one transition's exact
    flow, for ``flow``); a clear error if unknown."""
    if name not in TASKS:
        raise ValueError(f"unknown auxiliary task {name!r}; choose from: {', '.join(TASKS)}")
    return TASKS[name](latent, n_actions, obs_shape, continuous=continuous, flow_shape=flow_shape)
