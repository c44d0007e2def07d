import copy
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from fixtures import synthetic_config
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from torch import nn

from auxbench.data import make_synthetic
from auxbench.foundations.errors import ConfigError
from auxbench.methods.rl_aux.env import weight_of_bin
from auxbench.training import ENV_ID, Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(n_train=400, n_test=100, num_classes=4, aux_per_class=2, seed=0)


def config(method="rl-aux", **params):
    settings = {"reward_batch_size": 32, **params}
    return synthetic_config(
        method=method, width=0.25, epochs=2, batch_size=20, method_params=settings
    )


def trainer_for(synthetic, method="rl-aux", **params) -> Trainer:
    return Trainer(config(method, **params), synthetic)


def state_copy(trainer: Trainer):
    model = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    return model, copy.deepcopy(trainer.optimizer.state_dict())


def assert_same_state(trainer: Trainer, saved) -> None:
    model, optimizer = saved
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, model[key]), key
    now = trainer.optimizer.state_dict()
    assert now["param_groups"] == optimizer["param_groups"]
    assert now["state"].keys() == optimizer["state"].keys()
    for index, state in now["state"].items():
        for key, value in state.items():
            assert torch.equal(value, optimizer["state"][index][key]), (index, key)


# --- the environment -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["rl-aux", "wa-rl-aux"])
@pytest.mark.parametrize("mode", ["batched", "per-example"])
def test_both_env_checkers_pass(synthetic, method, mode):
    env = trainer_for(synthetic, method, mode=mode).method.env
    images_per_step = 20 if mode == "batched" else 1
    assert env.observation_space["images"].shape == (images_per_step, 1, 8, 8)
    assert len(env.action_space.nvec) == images_per_step * (2 if method == "wa-rl-aux" else 1)
    gymnasium_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=False)


def test_registered_env_builds_a_fresh_run():
    settings = synthetic_config(width=0.25, batch_size=20).to_dict()
    del settings["method"]
    settings["method_params"] = {"mode": "per-example", "psi": 3, "reward_batch_size": 16}
    env = gym.make(ENV_ID, weighted=True, **settings)
    observation, _ = env.reset(seed=1)
    assert observation["images"].shape == (1, 1, 8, 8)
    assert list(env.action_space.nvec) == [3, 21]
    rewards = [env.step(env.action_space.sample())[1] for _ in range(20)]
    assert rewards[:19] == [0.0] * 19 and rewards[19] != 0.0  # one reward per batch of B_T = 20
    env.close()


class ConstantPrimary(nn.Module):
    """A main network whose primary logits are always zero, whatever its training does."""

    def __init__(self, classes: int, aux_classes: int):
        super().__init__()
        self.classes, self.aux_classes = classes, aux_classes
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, images):
        n = images.shape[0]
        return {
            "primary": torch.zeros(n, self.classes) * self.scale.detach(),
            "aux": torch.arange(float(self.aux_classes)).expand(n, -1) * self.scale,
        }


@pytest.mark.parametrize("mode", ["batched", "per-example"])
def test_reward_is_minus_the_primary_loss_plus_the_label_entropy_bonus(synthetic, mode):
    trainer = trainer_for(synthetic, mode=mode, psi=3, entropy_coef=0.7, entropy_bonus="policy")
    env = trainer.method.env
    classes, aux_classes = synthetic.num_classes, synthetic.num_classes * 3
    trainer.model = ConstantPrimary(classes, aux_classes)
    trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=0.1)
    q = torch.arange(1.0, aux_classes + 1)
    q = q / q.sum()
    seen = []

    def fixed_distribution(images, labels):
        seen.append(len(labels))
        return q.expand(len(labels), aux_classes)

    env.label_distribution = fixed_distribution
    env.save_canonical()
    env.reset(seed=0)
    rewards = [env.step(env.action_space.sample())[1] for _ in range(env.steps_per_episode)]
    # Zero logits: p_y = 1/C, focal loss (γ = 2) = −(1 − 1/C)² log(1/C); bonus 0.7 · H(q).
    primary = (1 - 1 / classes) ** 2 * math.log(classes)
    expected = -primary + 0.7 * float(-(q * q.log()).sum())
    steps_per_batch = env.steps_per_episode // env.batches_per_episode
    for index, value in enumerate(rewards):
        if (index + 1) % steps_per_batch == 0:
            assert value == pytest.approx(expected, rel=1e-6)
        else:
            assert value == 0.0
    assert seen == [32] * env.batches_per_episode  # B_R images per reward
    assert trainer.model.scale.item() != 1.0  # the environment did train the stub


def bonus_after_one_step(env, action) -> float:
    """The reward's bonus for ``action`` from the episode's first state (same seed, same network)."""
    env.reset(seed=0)
    info = {}
    for _ in range(env.steps_per_episode // env.batches_per_episode):
        _, _, _, _, info = env.step(action)
    return info["bonus"]


@pytest.mark.parametrize("mode", ["batched", "per-example"])
def test_the_chosen_bonus_depends_on_the_action_and_the_papers_term_does_not(synthetic, mode):
    bonuses = {}
    for bonus in ("chosen", "policy"):
        env = trainer_for(synthetic, mode=mode, psi=3, entropy_bonus=bonus).method.env
        n = env.settings.images_per_step
        same = np.zeros(n, dtype=np.int64)  # every image gets sub-label 0
        spread = np.arange(n) % 3 if n > 1 else np.ones(1, dtype=np.int64)
        if n == 1:  # per-example: one image a step; spread the batch's labels over the steps
            first = bonus_after_one_step(env, same)
            env.reset(seed=0)
            for step in range(env.steps_per_episode // env.batches_per_episode):
                _, _, _, _, info = env.step(np.array([step % 3]))
            bonuses[bonus] = (first, info["bonus"])
        else:
            bonuses[bonus] = (bonus_after_one_step(env, same), bonus_after_one_step(env, spread))
    collapsed, spread = bonuses["chosen"]
    assert collapsed == 0.0 and spread > 0.5  # ln 3 ≈ 1.1 at best
    paper_collapsed, paper_spread = bonuses["policy"]
    assert paper_collapsed == pytest.approx(paper_spread, rel=1e-6)  # the action changes nothing


def test_the_guard_makes_the_train_main_labels_use_more_auxiliary_classes(tmp_path):
    data = make_synthetic(n_train=1000, n_test=100, num_classes=4, aux_per_class=2, seed=0)
    used = {}
    for name, params in {
        "guard": {},
        "paper": {"entropy_bonus": "policy", "information_coef": 0.0},
        "off": {"entropy_bonus": "none", "information_coef": 0.0},
    }.items():
        trainer = Trainer(
            synthetic_config(
                method="rl-aux", epochs=4, method_params={"psi": 5, "ppo_lr": 3e-3, **params}
            ),
            data,
        )
        trainer.fit(tmp_path / name)
        used[name] = int(trainer.history[-1]["aux_classes_used"])
    # Out of 4 × 5 = 20 auxiliary classes.
    assert used["guard"] >= used["paper"] + 4 and used["guard"] >= used["off"] + 4, used


def test_weight_aware_agent_starts_at_unit_weights_unless_told_uniform(synthetic):
    batch = None
    means = {}
    for init in ("unit", "uniform"):
        trainer = trainer_for(synthetic, "wa-rl-aux", weight_init=init)
        method = trainer.method
        batch = batch or next(trainer.batches())
        _, weights = method.label(batch.images, batch.labels)
        with torch.no_grad():
            features = method.policy.features_extractor.per_image(batch.images)
            probs = torch.softmax(method.policy.weight_net(features), dim=-1)
        means[init] = float((probs * weight_of_bin(torch.arange(21))).sum(dim=-1).mean())
        if init == "unit":
            assert torch.equal(weights, torch.ones_like(weights))  # Train-Main: argmax bin, λᵢ = 1
    assert 0.8 < means["unit"] < 1.5  # sampled weights centred on 1
    assert means["uniform"] > 3.0  # about the uniform mean of 2^(10w − 5), 4.6


def test_weight_bins_span_two_to_the_minus_five_to_two_to_the_five():
    weights = weight_of_bin(torch.arange(21))
    assert weights[0].item() == 2.0**-5 and weights[10].item() == 1.0
    assert weights[20].item() == 2.0**5
    assert torch.all(weights[1:] > weights[:-1])


# --- the schedule --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["rl-aux", "wa-rl-aux"])
def test_train_agent_epoch_restores_the_canonical_network_bit_for_bit(synthetic, method):
    trainer = trainer_for(synthetic, method)
    trainer.train_epoch()  # momentum buffers exist now
    policy_before = [p.detach().clone() for p in trainer.method.policy.parameters()]
    steps = []
    original_step = trainer.step
    trainer.step = lambda *args: steps.append(1) or original_step(*args)
    saved = state_copy(trainer)
    logs = trainer.method.before_epoch(1)
    assert len(steps) == trainer.method.agent_steps > 0  # the agent's epoch trained (batched)
    assert_same_state(trainer, saved)
    policy_after = list(trainer.method.policy.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(policy_before, policy_after, strict=True))
    assert np.isfinite(logs["agent_reward"]) and logs["agent_classes_used"] >= 1
    if method == "wa-rl-aux":
        assert 2.0**-5 <= logs["agent_weight_mean"] <= 2.0**5


def test_reset_every_batch_reloads_the_canonical_network_after_each_step(synthetic):
    for reset_every, stays in (("batch", True), ("epoch", False)):
        trainer = trainer_for(synthetic, reset_every=reset_every)
        env = trainer.method.env
        env.reset(seed=0)
        saved = state_copy(trainer)
        env.step(env.action_space.sample())
        same = all(torch.equal(v, saved[0][k]) for k, v in trainer.model.state_dict().items())
        assert same is stays, reset_every


def test_train_main_labels_are_deterministic_and_the_policy_mode(synthetic):
    trainer = trainer_for(synthetic, "wa-rl-aux", psi=3)
    method = trainer.method
    batch = next(trainer.batches())
    targets, weights = method.label(batch.images, batch.labels)
    method.policy.set_training_mode(True)
    again, again_weights = method.label(batch.images, batch.labels)
    assert torch.equal(targets, again) and torch.equal(weights, again_weights)
    assert torch.equal(targets // 3, batch.labels)  # within the primary class's block
    with torch.no_grad():
        method.policy.set_training_mode(False)
        probs = method.policy.label_probs(batch.images, batch.labels)
    assert torch.equal(targets, probs.argmax(dim=1))


def test_fit_logs_the_agent_and_the_labels(synthetic, tmp_path):
    trainer = trainer_for(synthetic, "wa-rl-aux")
    metrics = trainer.fit(tmp_path)
    row = trainer.history[-1]
    for key in (
        "agent_reward",
        "agent_chosen_entropy",
        "agent_classes_used",
        "agent_weight_mean",
        "aux_classes_used",
        "aux_chosen_entropy",
        "aux_weight_mean",
        "aux_weight_std",
    ):
        assert np.isfinite(row[key]), key
    assert 0 <= metrics["test_acc_at_best_val"] <= 1
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert "policy" in state["method"]


def test_same_seed_same_history(synthetic):
    first = trainer_for(synthetic)
    first.fit()
    second = trainer_for(synthetic)
    second.fit()
    drop = ("epoch_time_s",)
    strip = [{k: v for k, v in row.items() if k not in drop} for row in first.history]
    assert strip == [{k: v for k, v in row.items() if k not in drop} for row in second.history]


# --- learning ------------------------------------------------------------------------------------


class SubLabelZeroReward(gym.Wrapper):
    """Reward = the fraction of the step's images given sub-label 0: depends only on the labels."""

    def __init__(self, env):
        super().__init__(env)
        self.rewards = []

    def step(self, action):
        observation, _, terminated, truncated, info = self.env.step(action)
        n = self.env.unwrapped.settings.images_per_step
        value = float(np.mean(np.asarray(action)[:n] == 0))
        self.rewards.append(value)
        return observation, value, terminated, truncated, info


def test_ppo_mean_reward_rises_when_the_reward_depends_on_the_labels(synthetic):
    trainer = trainer_for(synthetic, psi=4, ppo_lr=3e-3, information_coef=0.0)
    method = trainer.method
    wrapped = SubLabelZeroReward(method.env)
    method.agent.set_env(wrapped)
    per_episode = []
    for _ in range(12):
        wrapped.rewards.clear()
        method.agent.learn(total_timesteps=method.agent_steps, reset_num_timesteps=True)
        per_episode.append(float(np.mean(wrapped.rewards)))
    assert per_episode[0] < 0.35  # about 1/ψ at first
    assert np.mean(per_episode[-3:]) > per_episode[0] + 0.25, per_episode


# --- settings and cost ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [{"mode": "sideways"}, {"reset_every": "never"}, {"psi": 0}, {"ppo_gamma": 1.5}],
)
def test_bad_method_params_are_refused(synthetic, params):
    with pytest.raises(ConfigError, match=next(iter(params))):
        trainer_for(synthetic, **params)
