"""The RL-AUX agent's policy for stable-baselines3's PPO (RL-AUX appendix C.2).

- **Feature extractor**: the main network's backbone (same trunk and width) down to 256 features
  per image (its ``Linear-ReLU-Linear`` head ending in 256 outputs, then ReLU).
- **Action network**: per image, ``Linear(256, C·ψ)`` logits of which only the ψ of the image's
  primary-class block are used (a categorical over its sub-labels, MAXL's masked softmax); in the
  weight-aware variant also ``Linear(256, 21)`` logits over the weight bins.
  Its initial distribution (``weight_init``): ``unit`` centres it on the bin of λᵢ = 2⁰ = 1
  (logits −½((b − 10)/σ)², σ = ``weight_init_std`` bins, the image-dependent part scaled by 0.01,
  as stable-baselines3 initialises its action networks), so the weight-aware agent starts as
  RL-AUX with λ = 1 and the most likely bin is stable; ``uniform`` leaves PyTorch's default
  initialisation (near-uniform over the 21 bins: mean weight 4.6, an argmax that follows noise).
- **Value network**: ``Linear(256, 1)`` on the mean feature of the observation's images.

An observation holds n images (1 per step in per-example mode, B_T in batched mode). The
log-probability and entropy of an action are the *mean* over its n images of the per-image
values (label and weight bin summed), so PPO's ratio, clip range and entropy coefficient keep the
per-image scale of the per-example mode: the clipped ratio is the geometric mean of the per-image
ratios instead of their product, which with B_T = 100 independent choices would leave the clip
range after a negligible change of each one.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch.distributions import Categorical

from auxbench.foundations.hierarchy import block_label_information, masked_softmax
from auxbench.methods.rl_aux.env import WEIGHT_BINS
from auxbench.models import build_model

FEATURES = 256
WEIGHT_INITS = ("unit", "uniform")
UNIT_BIN = (WEIGHT_BINS - 1) // 2
"""The bin of λᵢ = 2^(10 · 0.5 − 5) = 1."""


class ImageFeatures(BaseFeaturesExtractor):
    """The main network's trunk with a head to ``features_dim`` features per image."""

    def __init__(
        self,
        observation_space: spaces.Dict,
        model: str = "small",
        width: float = 1.0,
        features_dim: int = FEATURES,
    ):
        super().__init__(observation_space, features_dim)
        _, channels, height, _ = observation_space["images"].shape
        self.network = build_model(model, channels, {"features": features_dim}, width, height)

    def per_image(self, images: torch.Tensor) -> torch.Tensor:
        """(M, C, H, W) images → (M, features_dim)."""
        return torch.relu(self.network(images)["features"])

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """(N, n, C, H, W) observed images → (N, n, features_dim)."""
        images = observations["images"]
        return self.per_image(images.flatten(0, 1)).unflatten(0, images.shape[:2])


class BlockLabelDistribution:
    """Independent categoricals per image: a sub-label within its block and, optionally, a weight
    bin. Actions are laid out as the environment's: n sub-labels, then n weight bins."""

    def __init__(self, label_logits: torch.Tensor, weight_logits: torch.Tensor | None = None):
        self.labels = Categorical(logits=label_logits)  # batch shape (N, n), ψ categories
        self.weights = None if weight_logits is None else Categorical(logits=weight_logits)

    def _split(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.labels.batch_shape[-1]
        actions = actions.long()
        return actions[..., :n], actions[..., n:]

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """Mean over the observation's images of log π(sub-label) [+ log π(weight bin)]: (N,)."""
        labels, bins = self._split(actions)
        per_image = self.labels.log_prob(labels)
        if self.weights is not None:
            per_image = per_image + self.weights.log_prob(bins)
        return per_image.mean(dim=-1)

    def entropy(self) -> torch.Tensor:
        """Mean per-image entropy: (N,)."""
        per_image = self.labels.entropy()
        if self.weights is not None:
            per_image = per_image + self.weights.entropy()
        return per_image.mean(dim=-1)

    def get_actions(self, deterministic: bool = False) -> torch.Tensor:
        """Sampled (or most likely) actions, (N, n) or (N, 2n)."""
        parts = [self.labels, *([self.weights] if self.weights is not None else [])]
        chosen = [p.probs.argmax(dim=-1) if deterministic else p.sample() for p in parts]
        return torch.cat(chosen, dim=-1)


class AuxLabelPolicy(ActorCriticPolicy):
    """Actor-critic for ``AuxLabelEnv`` (see the module doc); PPO uses ``forward``,
    ``evaluate_actions``, ``predict_values`` and ``get_distribution``."""

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.MultiDiscrete,
        lr_schedule,
        *,
        num_classes: int,
        psi: int,
        weighted: bool = False,
        weight_init: str = "unit",
        weight_init_std: float = 2.0,
        model: str = "small",
        width: float = 1.0,
        features_dim: int = FEATURES,
        **kwargs: Any,
    ):
        self.num_classes, self.psi, self.weighted = num_classes, psi, weighted
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f"unknown weight_init {weight_init!r}; choose one of {WEIGHT_INITS}")
        self.weight_init, self.weight_init_std = weight_init, weight_init_std
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            features_extractor_class=ImageFeatures,
            features_extractor_kwargs={
                "model": model,
                "width": width,
                "features_dim": features_dim,
            },
            **kwargs,
        )

    def _build(self, lr_schedule) -> None:
        features = self.features_dim
        self.label_net = nn.Linear(features, self.num_classes * self.psi)
        self.weight_net = nn.Linear(features, WEIGHT_BINS) if self.weighted else None
        if self.weight_net is not None and self.weight_init == "unit":
            with torch.no_grad():
                self.weight_net.weight.mul_(0.01)
                bins = torch.arange(WEIGHT_BINS, dtype=torch.float32)
                self.weight_net.bias.copy_(-0.5 * ((bins - UNIT_BIN) / self.weight_init_std) ** 2)
        self.value_net = nn.Linear(features, 1)
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    # --- per image -------------------------------------------------------------------------------

    def _block_logits(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(..., F) features, (...) primary labels → (..., ψ) logits of the label's block."""
        logits = self.label_net(features).unflatten(-1, (self.num_classes, self.psi))
        index = labels.long()[..., None, None].expand(*labels.shape, 1, self.psi)
        return logits.gather(-2, index).squeeze(-2)

    def _distribution(
        self, obs: dict[str, torch.Tensor]
    ) -> tuple[BlockLabelDistribution, torch.Tensor]:
        features = self.features_extractor(obs)  # (N, n, F)
        weights = None if self.weight_net is None else self.weight_net(features)
        labels = self._block_logits(features, obs["labels"])
        return BlockLabelDistribution(labels, weights), features

    def block_probs(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(M, ψ) probabilities of each image's sub-labels within its primary class's block."""
        features = self.features_extractor.per_image(images)
        return torch.softmax(self._block_logits(features, labels), dim=-1)

    def label_probs(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(M, C·ψ) probabilities of the auxiliary classes for images of primary ``labels``."""
        logits = self.label_net(self.features_extractor.per_image(images))
        return masked_softmax(logits, labels, self.psi)

    def most_likely(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Deterministic labelling: each image's most likely sub-label and weight bin (or None)."""
        features = self.features_extractor.per_image(images)
        sub_labels = self._block_logits(features, labels).argmax(dim=-1)
        bins = None if self.weight_net is None else self.weight_net(features).argmax(dim=-1)
        return sub_labels, bins

    # --- what PPO calls --------------------------------------------------------------------------

    def forward(self, obs, deterministic: bool = False):
        distribution, features = self._distribution(obs)
        actions = distribution.get_actions(deterministic)
        return actions, self.value_net(features.mean(dim=1)), distribution.log_prob(actions)

    def evaluate_actions(self, obs, actions):
        distribution, features = self._distribution(obs)
        values = self.value_net(features.mean(dim=1))
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs) -> BlockLabelDistribution:
        return self._distribution(obs)[0]

    def predict_values(self, obs) -> torch.Tensor:
        return self.value_net(self.features_extractor(obs).mean(dim=1))

    def _predict(self, observation, deterministic: bool = False) -> torch.Tensor:
        return self.get_distribution(observation).get_actions(deterministic)


class LabelPPO(PPO):
    """stable-baselines3's PPO, and after each of its updates ``n_epochs`` passes (as many as
    PPO's own) over the rollout's images of a differentiable regulariser on the policy: gradient
    ascent on ``information_coef · block_label_information`` (``auxbench.foundations.hierarchy``),
    with PPO's optimiser, minibatch size and gradient clipping. It pushes the policy to spread each
    class's images over its ψ sub-labels with confident per-image choices, so that the
    Train-Main labelling by each image's most likely sub-label uses every auxiliary class.
    ``information_coef = 0`` is plain PPO."""

    def __init__(self, *args: Any, information_coef: float = 0.0, **kwargs: Any):
        self.information_coef = information_coef
        super().__init__(*args, **kwargs)

    def train(self) -> None:
        super().train()
        if self.information_coef > 0:
            self.regularise()

    def regularise(self) -> None:
        policy = self.policy
        observations = self.rollout_buffer.observations
        shape = self.observation_space["images"].shape[1:]
        images = torch.as_tensor(observations["images"]).reshape(-1, *shape)
        labels = torch.as_tensor(observations["labels"]).reshape(-1).long()
        per_step = self.observation_space["images"].shape[0]
        policy.set_training_mode(True)
        chunks = [
            chunk
            for _ in range(self.n_epochs)
            for chunk in torch.randperm(len(labels)).split(self.batch_size * per_step)
        ]
        for chunk in chunks:
            probs = policy.block_probs(images[chunk].to(self.device), labels[chunk].to(self.device))
            information = block_label_information(
                probs, labels[chunk].to(self.device), self.policy.num_classes
            )
            loss = -self.information_coef * information
            policy.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), self.max_grad_norm)
            policy.optimizer.step()
        self.logger.record("train/label_information", float(information.detach()))
