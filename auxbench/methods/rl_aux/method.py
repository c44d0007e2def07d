"""RL-AUX (Goldfeder, So & Lipson): a PPO agent labels each training image with an auxiliary
class, trained by the main network's primary-task progress (``auxbench.methods.rl_aux``).

Schedule (the paper's appendix B): before every epoch of the main network the agent trains for an
epoch in **Train-Agent** mode: it labels the training batches (sampling its policy), the
environment trains a copy of the run's state on them and rewards the agent, PPO updates the agent;
at the end the main network and its optimiser go back to the saved canonical state. The epoch of
the main network is then the **Train-Main** mode: the agent labels every batch deterministically
(its most likely sub-label and weight bin), no rewards are computed, and the result becomes the
next canonical state. ``epochs`` counts Train-Main epochs; each costs one Train-Agent epoch more.

- ``rl-aux``: the agent chooses auxiliary labels; loss = primary + λ · focal(aux).
- ``wa-rl-aux``: it also chooses per-sample weights 2^(10w − 5), w ∈ {0, 0.05, …, 1} (21 bins);
  loss = primary + mean(λᵢ · focal(aux)).

``config.method_params`` (all optional): ``psi`` (the dataset's class hierarchy's where it has
one, else 5), ``mode`` (``batched``: one environment step
labels a batch of B_T = ``batch_size`` images; ``per-example``: one image per step, the paper's
interface), ``reward_batch_size`` (B_R, 256), ``entropy_bonus`` (``chosen``: the entropy of the
sub-labels chosen for each class in the batch; ``policy``: RL-AUX's entropy of the policy's
batch-mean distribution, which does not depend on the action; ``none``), ``entropy_coef`` (1.0,
its weight in the reward), ``information_coef`` (1.0; 0 turns it off: after each PPO update,
``ppo_epochs`` passes over the rollout's images of gradient ascent on this coefficient times the
mutual information between an image and its sub-label within its class, with PPO's optimiser;
it makes the Train-Main labels, each image's most likely sub-label, use every auxiliary class,
which the reward's bonus alone does not: ``policy.LabelPPO``), ``weight_init`` (weight-aware only: ``unit``, the default, starts the
weight head's distribution centred on the bin of λᵢ = 1 with a spread of ``weight_init_std`` = 2
bins, as WA-MAXL's sigmoid starts at λᵢ = 1; ``uniform``: every bin equally likely),
``reset_every`` (``epoch``; ``batch``: the paper's reset ablation), and PPO's ``ppo_lr`` (3e-4),
``ppo_ent_coef`` (0.01), ``ppo_n_steps`` (32 batches of B_T images per rollout), ``ppo_batch_size``
(8 batches per minibatch), ``ppo_epochs`` (4 passes over a rollout), ``ppo_gamma`` (0.99) and
``ppo_gae_lambda`` (0.95) per labelled image, ``ppo_clip_range`` (0.2). Rollout sizes count
batches of B_T images in both modes (per-example mode steps B_T times as often); γ and the GAE λ
are per image, so batched mode uses γ^B_T and λ^B_T per step: the same discounting of later
batches as per-example mode.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from auxbench.foundations.hierarchy import chosen_label_entropy
from auxbench.foundations.passes import Passes
from auxbench.methods.base import TrainerView, method_params, register
from auxbench.methods.labels import DEFAULT_PSI, GeneratedLabelMethod, with_hierarchy_psi
from auxbench.methods.rl_aux.env import (
    BONUSES,
    MODES,
    RESETS,
    AuxLabelEnv,
    EnvSettings,
    LabelStats,
    weight_of_bin,
)
from auxbench.methods.rl_aux.policy import WEIGHT_INITS, AuxLabelPolicy, LabelPPO
from auxbench.tasks import Batch

DEFAULT_PARAMS: dict[str, Any] = {
    "psi": DEFAULT_PSI,
    "mode": "batched",
    "reward_batch_size": 256,
    "entropy_bonus": "chosen",
    "entropy_coef": 1.0,
    "information_coef": 1.0,
    "weight_init": "unit",
    "weight_init_std": 2.0,
    "reset_every": "epoch",
    "ppo_lr": 3e-4,
    "ppo_ent_coef": 0.01,
    "ppo_n_steps": 32,
    "ppo_batch_size": 8,
    "ppo_epochs": 4,
    "ppo_gamma": 0.99,
    "ppo_gae_lambda": 0.95,
    "ppo_clip_range": 0.2,
}


class RlAuxMethod(GeneratedLabelMethod):
    """Shared RL-AUX machinery; ``weighted`` adds the per-sample weight action."""

    weighted: ClassVar[bool] = False

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.params = method_params(
            config.method_params,
            with_hierarchy_psi(DEFAULT_PARAMS, dataset),
            self.name,
            choices={
                "mode": MODES,
                "reset_every": RESETS,
                "entropy_bonus": BONUSES,
                "weight_init": WEIGHT_INITS,
            },
            integers=("psi", "reward_batch_size", "ppo_n_steps", "ppo_batch_size", "ppo_epochs"),
            positive=("ppo_lr", "weight_init_std"),
            non_negative=("entropy_coef", "information_coef", "ppo_ent_coef"),
            unit_interval=("ppo_gamma", "ppo_gae_lambda", "ppo_clip_range"),
        )
        self.psi: int = self.params["psi"]

    def setup(self, trainer: TrainerView) -> None:
        params, config = self.params, self.config
        settings = EnvSettings(
            psi=self.psi,
            weighted=self.weighted,
            mode=params["mode"],
            batch_size=config.batch_size,
            reward_batch_size=params["reward_batch_size"],
            entropy_coef=params["entropy_coef"],
            entropy_bonus=params["entropy_bonus"],
            reset_every=params["reset_every"],
        )
        self.env = AuxLabelEnv(trainer, settings, seed=config.seed + 4)
        self.agent = self._agent(trainer)
        self.policy: AuxLabelPolicy = trainer.placed(self.agent.policy)
        self.env.label_distribution = self.policy.label_probs
        self.env.save_canonical()
        self.main_stats = LabelStats(self.env.stats.num_aux_classes, trainer.device)

    def _agent(self, trainer: TrainerView) -> LabelPPO:
        """PPO with rollouts of whole batches that fit in one episode (see the module doc)."""
        params, env = self.params, self.env
        per_batch = self.config.batch_size // env.settings.images_per_step  # steps per batch
        if env.steps_per_episode < 2:
            raise ValueError(
                f"{self.name} needs at least 2 environment steps per epoch; the training split "
                f"gives {env.batches_per_episode} batch(es) of {self.config.batch_size}"
            )
        n_steps = min(params["ppo_n_steps"] * per_batch, env.steps_per_episode)
        batch_size = min(params["ppo_batch_size"] * per_batch, n_steps)
        n_steps -= n_steps % batch_size  # whole minibatches
        self.agent_steps = (env.steps_per_episode // n_steps) * n_steps
        batched = env.settings.mode == "batched"
        discount = self.config.batch_size if batched else 1
        return LabelPPO(
            AuxLabelPolicy,
            env,
            learning_rate=params["ppo_lr"],
            n_steps=n_steps,
            batch_size=batch_size,
            n_epochs=params["ppo_epochs"],
            gamma=params["ppo_gamma"] ** discount,
            gae_lambda=params["ppo_gae_lambda"] ** discount,
            clip_range=params["ppo_clip_range"],
            ent_coef=params["ppo_ent_coef"],
            information_coef=params["information_coef"],
            policy_kwargs={
                "num_classes": self.dataset.num_classes,
                "psi": self.psi,
                "weighted": self.weighted,
                "weight_init": params["weight_init"],
                "weight_init_std": params["weight_init_std"],
                "model": self.config.model,
                "width": self.config.width,
            },
            device=trainer.device,
            verbose=0,  # no seed: the trainer seeded the global streams, the env has its own
        )

    def minimum_passes(self, step: Passes) -> Passes:
        """Per training step, one step in each mode. Train-Agent: the agent labels the batch
        (inference), the main network steps, the reward evaluates the main network on B_R images
        (B_R / B_T inference; twice that with the ``policy`` bonus, which also runs the agent
        there), and PPO runs ``ppo_epochs`` forward and backward passes of the agent over every
        labelled image (twice that with the information regulariser, which makes as many passes
        of its own). Train-Main: the agent's labels (inference)
        and the step. The agent's backbone mirrors the main network's."""
        regularised = 2 if self.params["information_coef"] > 0 else 1
        ppo = regularised * self.params["ppo_epochs"] * Passes(forward=1, backward=1)
        evaluated = 2 if self.params["entropy_bonus"] == "policy" else 1
        reward = evaluated * self.params["reward_batch_size"] / self.config.batch_size
        return 2 * step + ppo + Passes(inference=2 + reward)

    # --- Train-Agent mode ------------------------------------------------------------------------

    def before_epoch(self, epoch: int) -> dict[str, float]:
        """One Train-Agent epoch from the canonical state, which is restored afterwards, with the
        trainer's random streams: the agent's steps of the main network draw their batches from
        the environment's streams, but a weighting that looks ahead (Auto-λ) draws its meta
        batches from the trainer's, which the Train-Main epoch then finds as they were."""
        streams = {name: g.get_state() for name, g in self.env.trainer.generators().items()}
        self.env.save_canonical()
        self.env.stats.reset()
        self.agent.learn(total_timesteps=self.agent_steps, reset_num_timesteps=True)
        self.env.restore_canonical()
        for name, generator in self.env.trainer.generators().items():
            generator.set_state(streams[name])
        return self.env.stats.summary("agent")

    # --- Train-Main mode -------------------------------------------------------------------------

    @torch.no_grad()
    def label(self, images: torch.Tensor, labels: torch.Tensor):
        """The agent's deterministic auxiliary classes ψ·y + a and weights (None unless weighted)."""
        self.policy.set_training_mode(False)
        sub_labels, bins = self.policy.most_likely(images, labels)
        weights = None if bins is None else weight_of_bin(bins)
        return self.psi * labels + sub_labels, weights

    def targets(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        targets, weights = self.label(batch.images, batch.labels)
        if self.recording:
            self.main_stats.record_labels(targets, weights)
            sub_labels = targets - self.psi * batch.labels
            classes = self.dataset.num_classes
            chosen = chosen_label_entropy(batch.labels, sub_labels, self.psi, classes)
            self.main_stats.chosen_entropy.append(chosen)  # no sync: read at the epoch's end
        return targets, weights

    def after_epoch(self, epoch: int) -> dict[str, float]:
        logs = self.main_stats.summary("aux")
        self.main_stats.reset()
        return logs

    # --- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.policy.optimizer.state_dict(),
            "env_generators": self.env.generator_states(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.policy.optimizer.load_state_dict(state["optimizer"])
        self.env.set_generator_states(state["env_generators"])


@register
class RlAux(RlAuxMethod):
    name = "rl-aux"
    description = "RL-AUX: a PPO agent generates the auxiliary labels"
    uses_lambda = True


@register
class WeightAwareRlAux(RlAuxMethod):
    name = "wa-rl-aux"
    description = "weight-aware RL-AUX: a PPO agent generates auxiliary labels and weights"
    uses_lambda = False
    weighted = True
