"""The RL-AUX environment: an agent labels training images with auxiliary classes, the environment
trains the main network on them and rewards the agent with the network's primary-task progress.

``AuxLabelEnv`` wraps a trainer (``auxbench.methods.base.TrainerView``: dataset, main network
with an ``aux`` head of C·ψ outputs, optimiser, device, tasks). ``gymnasium.make(ENV_ID, ...)``
builds a fresh run's environment once ``auxbench.training`` is imported (it registers the id). One episode is one epoch of the training split in batches of B_T:

- **observation**: ``{"images": (n, C, H, W) float32, "labels": (n,) primary classes}``, n = 1 in
  ``per-example`` mode (the paper's interface) and n = B_T in ``batched`` mode (the default);
- **action**: per image a sub-label a ∈ [0, ψ) (auxiliary class ψ·y + a, the block of its primary
  class y, as in MAXL's masked softmax) and, when ``weighted``, a weight bin b ∈ [0, 21) mapped to
  λᵢ = 2^(10·b/20 − 5);
- once B_T images are labelled the main network takes one optimiser step on
  primary + λ·mean(λᵢ·focal(aux)) and the **reward** is

      − mean primary loss on B_R random training images (network in eval mode, after the step)
      + entropy_coef · bonus,

  where the bonus (``entropy_bonus``) guards against the degenerate labelling in which every image
  of a primary class gets the same auxiliary class:

  - ``chosen`` (the default): H_chosen = Σ_c (n_c / B_T) · H(histogram of the sub-labels the
    agent chose for the batch's n_c images of class c), in [0, ln ψ]. It is a function of the
    action, so PPO can learn from it.
  - ``policy`` (RL-AUX's Eq. 3–4, as printed but with the sign of an entropy): H(p̄), p̄ = the
    batch mean of the *policy's* auxiliary-label distribution on the B_R evaluation images. It
    does not depend on the action taken (any two actions from a state get the same bonus), so
    within a rollout it is a constant and its expected policy gradient is zero: it cannot act as a
    guard. Kept to compare with the paper. (Eq. 4 adds Σ p̄ log p̄, the *negative* entropy, which
    would reward collapse and contradicts its own purpose; the bonus here is −Σ p̄ log p̄.)
  - ``none``: no bonus.

  Other steps of per-example mode have reward 0.

The environment is the same in both modes (the same images, the same main-network steps, the same
rewards per batch of B_T images); the PPO problem is not. In batched mode one step labels B_T
images, so (``policy.py``, ``method.py``) the action's log-probability is the *mean* over the
batch's images of the per-image log-probabilities (PPO's ratio is the geometric mean of the
per-image ratios), there is one advantage per batch instead of a GAE advantage per image, the value
network sees the batch's mean feature, and advantages are normalised over minibatches of
``ppo_batch_size`` (8) batch-steps instead of 8·B_T image-steps. ``docs/results/label-generation.md``
measures what that costs.
Episodes use only full batches (a last partial batch is skipped). ``reset`` reshuffles and loads
the canonical main network (``save_canonical``), so a Train-Agent epoch leaves it as it found it;
with ``reset_every="batch"`` it is also reloaded after every batch (the paper's reset ablation).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from auxbench.data import normalize
from auxbench.foundations.hierarchy import (
    chosen_label_entropy,
    negative_batch_entropy,
    sample_weights,
)
from auxbench.methods.base import TrainerView
from auxbench.methods.labels import AUX
from auxbench.tasks import Batch

ENV_ID = "auxbench/AuxLabel-v0"
"""The environment's Gymnasium id (registered by ``auxbench.training``, which builds runs)."""

WEIGHT_BINS = 21
"""Weight-aware action: 21 bins w ∈ {0, 0.05, …, 1}, λᵢ = 2^(10w − 5)."""

MODES = ("batched", "per-example")
RESETS = ("epoch", "batch")
BONUSES = ("chosen", "policy", "none")
"""The reward's anti-collapse bonus: the entropy of the sub-labels chosen (default), RL-AUX's
entropy of the policy's batch-mean distribution, or none (see the module doc)."""

LabelDistribution = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(images, primary labels) → (N, C·ψ) auxiliary-label probabilities of the policy."""


@dataclass
class EnvSettings:
    """The environment's own settings (the main network's come from the trainer's config)."""

    psi: int = 5
    weighted: bool = False
    mode: str = "batched"
    batch_size: int = 100  # B_T
    reward_batch_size: int = 256  # B_R
    entropy_coef: float = 1.0
    entropy_bonus: str = "chosen"
    reset_every: str = "epoch"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of: {', '.join(MODES)}")
        if self.entropy_bonus not in BONUSES:
            raise ValueError(
                f"unknown entropy_bonus {self.entropy_bonus!r}; choose one of: {', '.join(BONUSES)}"
            )
        if self.reset_every not in RESETS:
            raise ValueError(
                f"unknown reset_every {self.reset_every!r}; choose one of: {', '.join(RESETS)}"
            )

    @property
    def images_per_step(self) -> int:
        return self.batch_size if self.mode == "batched" else 1


def weight_of_bin(bins: torch.Tensor) -> torch.Tensor:
    """λᵢ = 2^(10w − 5) for weight bins b (w = b / 20)."""
    return sample_weights(bins.to(torch.float32) / (WEIGHT_BINS - 1))


def reward(primary_loss: torch.Tensor, bonus: torch.Tensor | float, entropy_coef: float):
    """−primary_loss + entropy_coef · bonus."""
    return -primary_loss + entropy_coef * bonus


class AuxLabelEnv(gym.Env):
    """Gymnasium environment around the training of ``trainer.model`` (see the module doc)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        trainer: TrainerView,
        settings: EnvSettings,
        label_distribution: LabelDistribution | None = None,
        seed: int = 0,
    ):
        self.trainer = trainer
        self.settings = settings
        self.label_distribution = label_distribution
        self.device = trainer.device
        split, n = trainer.train_split, settings.images_per_step
        if len(split) < settings.batch_size:
            raise ValueError(
                f"the training split has {len(split)} images, fewer than one batch of "
                f"{settings.batch_size}; lower batch_size or use more data"
            )
        classes = self.classes = trainer.dataset.num_classes
        low, high = _image_bounds(trainer, split.images.shape[1:])
        self.observation_space = spaces.Dict(
            {
                "images": spaces.Box(
                    np.broadcast_to(low, (n, *low.shape)),
                    np.broadcast_to(high, (n, *high.shape)),
                    dtype=np.float32,
                ),
                "labels": spaces.MultiDiscrete(np.full(n, classes)),
            }
        )
        bins = [WEIGHT_BINS] * n if settings.weighted else []
        self.action_space = spaces.MultiDiscrete(np.array([settings.psi] * n + bins))
        self.batches_per_episode = len(split) // settings.batch_size
        self.steps_per_episode = self.batches_per_episode * (settings.batch_size // n)
        self._seed_generators(seed)
        self._canonical: tuple[dict, dict] | None = None
        self._batches: Iterator[Batch] = iter(())
        self._batch: Batch | None = None
        self.stats = LabelStats(classes * settings.psi, self.device)

    # --- the canonical main network ------------------------------------------------------------

    def save_canonical(self) -> None:
        """Remember the main network, its optimiser and the task weighting as they are now."""
        trainer = self.trainer
        self._canonical = (
            {key: value.detach().clone() for key, value in trainer.model.state_dict().items()},
            copy.deepcopy(trainer.optimizer.state_dict()),
            copy.deepcopy(trainer.weighting.state_dict()),
        )

    def restore_canonical(self) -> None:
        """Put the saved main network, optimiser and task-weighting state back, bit for bit."""
        if self._canonical is None:
            return
        model_state, optimizer_state, weighting_state = self._canonical
        self.trainer.model.load_state_dict(model_state)
        # Copies: the optimiser and the weighting would otherwise update the saved state in place.
        self.trainer.optimizer.load_state_dict(copy.deepcopy(optimizer_state))
        self.trainer.weighting.load_state_dict(copy.deepcopy(weighting_state))

    # --- gymnasium interface -------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._seed_generators(seed)
        self.restore_canonical()
        self._batches = self._full_batches()
        self._next_batch()
        return self._observation(), {}

    def step(self, action):
        if self._batch is None:
            raise RuntimeError("the episode is over: call reset() first")
        n, size = self.settings.images_per_step, self.settings.batch_size
        action = torch.as_tensor(np.asarray(action).reshape(-1), dtype=torch.int64)
        self._sub_labels[self._position : self._position + n] = action[:n]
        if self.settings.weighted:
            self._bins[self._position : self._position + n] = action[n:]
        self._position += n
        value, info = 0.0, {}
        if self._position == size:
            value, info = self._train_and_reward()
            self._next_batch()
        terminated = self._batch is None
        return self._observation(), value, terminated, False, info

    # --- internals -----------------------------------------------------------------------------

    def _seed_generators(self, seed: int) -> None:
        self._shuffle = torch.Generator().manual_seed(seed)
        self._augment = torch.Generator(device=self.device).manual_seed(seed + 1)
        self._evaluation = torch.Generator().manual_seed(seed + 2)

    def generator_states(self) -> dict[str, torch.Tensor]:
        """The states of the environment's random streams (shuffle, augmentation, evaluation)."""
        return {
            "shuffle": self._shuffle.get_state(),
            "augment": self._augment.get_state(),
            "evaluation": self._evaluation.get_state(),
        }

    def set_generator_states(self, states: dict[str, torch.Tensor]) -> None:
        """Restore what ``generator_states`` returned."""
        self._shuffle.set_state(states["shuffle"])
        self._augment.set_state(states["augment"])
        self._evaluation.set_state(states["evaluation"])

    def _full_batches(self) -> Iterator[Batch]:
        batches = self.trainer.batches(shuffle=self._shuffle, augment_with=self._augment)
        for batch in batches:
            if len(batch.labels) == self.settings.batch_size:
                yield batch

    def _next_batch(self) -> None:
        self._batch = next(self._batches, None)
        self._position = 0
        self._sub_labels = torch.zeros(self.settings.batch_size, dtype=torch.int64)
        self._bins = torch.zeros(self.settings.batch_size, dtype=torch.int64)

    def _observation(self) -> dict[str, np.ndarray]:
        n = self.settings.images_per_step
        if self._batch is None:  # terminal: any valid observation
            shape = self.observation_space["images"].shape
            return {"images": np.zeros(shape, np.float32), "labels": np.zeros(n, np.int64)}
        window = slice(self._position, self._position + n)
        return {
            "images": self._batch.images[window].float().cpu().numpy(),
            "labels": self._batch.labels[window].cpu().numpy(),
        }

    def labelled(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The current batch's auxiliary classes ψ·y + a and per-sample weights (or None)."""
        labels = self._batch.labels
        targets = self.settings.psi * labels + self._sub_labels.to(labels.device)
        weights = weight_of_bin(self._bins.to(labels.device)) if self.settings.weighted else None
        return targets, weights

    def _train_and_reward(self) -> tuple[float, dict[str, float]]:
        targets, weights = self.labelled()
        aux = next(task for task in self.trainer.tasks if task.name == AUX)

        def labelled_loss(output: torch.Tensor, batch: Batch) -> torch.Tensor:
            return aux.loss_with(output, targets, weights)

        self.trainer.model.train()
        self.trainer.step(self._batch, {AUX: labelled_loss})
        chosen = chosen_label_entropy(
            self._batch.labels, self._sub_labels, self.settings.psi, self.classes
        )
        primary, probs = self._evaluate(with_policy=self.settings.entropy_bonus == "policy")
        if self.settings.entropy_bonus == "chosen":
            bonus = chosen
        elif self.settings.entropy_bonus == "policy":
            bonus = -negative_batch_entropy(probs)
        else:
            bonus = torch.zeros(())
        value = float(reward(primary, bonus, self.settings.entropy_coef))
        self.stats.record_labels(targets, weights)
        self.stats.record_reward(value, probs, chosen)
        if self.settings.reset_every == "batch":
            self.restore_canonical()
        return value, {"primary_loss": float(primary), "bonus": float(bonus)}

    @torch.no_grad()
    def _evaluate(self, with_policy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Primary loss of the main network (eval mode) on B_R random training images, and (when
        ``with_policy``) the policy's auxiliary-label distribution on them."""
        split = self.trainer.train_split
        index = torch.randint(
            len(split), (self.settings.reward_batch_size,), generator=self._evaluation
        ).to(self.device)
        batch = split.batch(index)
        images, labels = batch.images, batch.labels
        primary_task = self.trainer.tasks[0]
        model = self.trainer.model
        model.eval()
        with self.trainer.autocast():
            logits = model(images)[primary_task.name]
        model.train()
        primary = primary_task.loss(logits, batch)
        if not with_policy:
            return primary, None
        if self.label_distribution is None:
            raise RuntimeError("entropy_bonus 'policy' needs the policy's label_distribution")
        return primary, self.label_distribution(images, labels)


class LabelStats:
    """Running logs of a labelling: rewards, auxiliary classes chosen, per-sample weights, and the
    entropy of the policy (per image, and of its batch-mean distribution) on evaluation batches.
    ``reset`` starts over; the environment records into ``env.stats``."""

    def __init__(self, num_aux_classes: int, device: torch.device):
        self.num_aux_classes = num_aux_classes
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.rewards: list[float] = []
        self.counts = torch.zeros(self.num_aux_classes, dtype=torch.int64, device=self.device)
        self.weights: list[torch.Tensor] = []
        self.policy_entropy: list[torch.Tensor] = []
        self.label_entropy: list[torch.Tensor] = []
        self.chosen_entropy: list[torch.Tensor] = []

    def record_labels(self, targets: torch.Tensor, weights: torch.Tensor | None) -> None:
        self.counts += torch.bincount(targets, minlength=self.num_aux_classes)
        if weights is not None:
            self.weights.append(weights.double())

    def record_reward(
        self, value: float, probs: torch.Tensor | None, chosen: torch.Tensor | None = None
    ) -> None:
        self.rewards.append(value)
        if chosen is not None:
            self.chosen_entropy.append(chosen.detach())
        if probs is not None:
            tiny = torch.finfo(probs.dtype).tiny
            per_image = -(probs * torch.log(probs.clamp_min(tiny))).sum(dim=1)
            self.policy_entropy.append(per_image.mean())
            self.label_entropy.append(-negative_batch_entropy(probs))

    def summary(self, prefix: str) -> dict[str, float]:
        """``<prefix>_classes_used`` and, where recorded, the mean reward, the mean entropy of
        the chosen sub-labels per batch, mean policy entropies and the mean and spread of the
        weights."""
        logs: dict[str, float] = {f"{prefix}_classes_used": int((self.counts > 0).sum())}
        if self.rewards:
            logs[f"{prefix}_reward"] = float(np.mean(self.rewards))
        if self.chosen_entropy:
            logs[f"{prefix}_chosen_entropy"] = float(torch.stack(self.chosen_entropy).mean())
        if self.policy_entropy:
            logs[f"{prefix}_policy_entropy"] = float(torch.stack(self.policy_entropy).mean())
            logs[f"{prefix}_label_entropy"] = float(torch.stack(self.label_entropy).mean())
        if self.weights:
            weights = torch.cat(self.weights)
            logs[f"{prefix}_weight_mean"] = float(weights.mean())
            logs[f"{prefix}_weight_std"] = float(weights.std(correction=0))
        return logs


def _image_bounds(trainer: TrainerView, shape: torch.Size) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel bounds of normalised images: pixel values 0 and 255, and 0 (augmentation's
    zero padding), exactly as ``normalize`` computes them."""
    channels = shape[0]
    extremes = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, channels, 1, 1)
    values = normalize(extremes.contiguous(), trainer.dataset.mean, trainer.dataset.std)
    low = torch.minimum(values.min(dim=0).values, torch.zeros(()))
    high = torch.maximum(values.max(dim=0).values, torch.zeros(()))
    return (
        np.broadcast_to(low.numpy(), shape).astype(np.float32),
        np.broadcast_to(high.numpy(), shape).astype(np.float32),
    )
