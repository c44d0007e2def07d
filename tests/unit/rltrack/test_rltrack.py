"""The RL track (auxbench.rltrack): environments, auxiliary tasks, AuxA2C, curve metrics, CLI."""

import math
import warnings
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env

from auxbench.cli import main
from auxbench.rltrack.a2c import AuxA2C, SmallCNN
from auxbench.rltrack.curves import area_under_curve, steps_to_threshold
from auxbench.rltrack.envs import CATCH_ID, PixelCatch, make_pixel_env
from auxbench.rltrack.run import build_agent, make_rltrack_config
from auxbench.rltrack.tasks import (
    PIXEL_TASKS,
    AuxTask,
    Transitions,
    make_task,
    reconstruction_target,
    reward_class,
    translate,
)


def catch_model(tasks, weighting_name="fixed", n_envs=4, seed=0, **params):
    env = make_vec_env(lambda: make_pixel_env("catch"), n_envs=n_envs, seed=seed)
    return AuxA2C(
        "CnnPolicy",
        env,
        tasks=tasks,
        weighting_name=weighting_name,
        weighting_params=params,
        policy_kwargs={"features_extractor_class": SmallCNN},
        n_steps=5,
        seed=seed,
        device="cpu",
    )


class Recorder(AuxTask):
    """Keeps the last batch; a loss on z that stays > 0."""

    name = "recorder"

    def loss(self, batch):
        self.batch = batch
        return batch.z.pow(2).mean() + 1.0


class Adversarial(AuxTask):
    """The negated A2C policy-gradient loss."""

    name = "adversarial"

    def loss(self, batch):
        return -batch.policy_loss


def test_catch_passes_both_env_checkers_and_pays_plus_or_minus_one():
    env = gym.make(CATCH_ID)
    gym_check_env(env.unwrapped)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SB3 warns that 16×10 is below NatureCNN's 36×36
        sb3_check_env(PixelCatch())
    observation, _ = env.reset(seed=3)
    assert observation.shape == (1, 16, 10) and observation.dtype == np.uint8
    returns = []
    for _ in range(20):
        env.reset()
        total, done, length = 0.0, False, 0
        while not done:
            _, reward, done, _, _ = env.step(1)
            total, length = total + reward, length + 1
        assert length == 7
        returns.append(total)
    assert set(returns) == {-1.0, 1.0}


@pytest.mark.parametrize("name", ["breakout", "pong", "seaquest"])
def test_atari_envs_are_preprocessed_to_four_84x84_grey_frames(name):
    env = make_pixel_env(name)
    observation, _ = env.reset(seed=0)
    assert observation.shape == (4, 84, 84) and observation.dtype == np.uint8
    for _ in range(3):
        observation, *_ = env.step(env.action_space.sample())
    assert observation.shape == (4, 84, 84)
    env.close()


def hand_transitions(encode=None):
    """Three transitions on 10×10 images; the last one's o_{t+1} is in the next episode."""
    raw = torch.zeros(3, 1, 10, 10)
    raw[:, 0, 4, 4] = 255.0
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    z_next = torch.tensor([[2.0, 0.0], [0.0, 2.0], [9.0, 9.0]], requires_grad=True)
    return Transitions(
        images=raw / 255.0,
        raw=raw,
        z=z,
        z_next=z_next,
        actions=torch.tensor([0, 2, 1]),
        rewards=torch.tensor([-1.0, 0.0, 3.0]),
        valid=torch.tensor([True, True, False]),
        encode=encode or (lambda images: images.flatten(1)[:, :2]),
        policy_loss=torch.tensor(0.0),
    )


def test_dynamics_targets_are_the_next_latent_and_the_action_within_an_episode():
    batch = hand_transitions()
    forward = make_task("forward", 2, 3, (1, 10, 10))
    loss = forward.loss(batch)
    predicted = forward.head(torch.cat([batch.z, torch.eye(3)[batch.actions]], dim=1))
    expected = (predicted[:2] - batch.z_next[:2]).pow(2).mean()
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert batch.z.grad.abs().sum() > 0 and batch.z_next.grad is None  # the target is detached

    inverse = make_task("inverse", 2, 3, (1, 10, 10))
    logits = inverse.head(torch.cat([batch.z, batch.z_next], dim=1))
    expected = torch.nn.functional.cross_entropy(logits[:2], torch.tensor([0, 2]))
    assert inverse.loss(batch).item() == pytest.approx(expected.item())
    batch.actions[2] = 0  # the masked transition's action does not matter
    assert inverse.loss(batch).item() == pytest.approx(expected.item())


def test_egomotion_autoencoder_and_reward_targets():
    image = torch.zeros(1, 1, 10, 10)
    image[0, 0, 4, 4] = 1.0
    moved = translate(image.repeat(5, 1, 1, 1), torch.arange(5), shift=1)
    spots = [tuple(int(i) for i in torch.nonzero(m[0])[0]) for m in moved]
    assert spots == [(4, 4), (3, 4), (5, 4), (4, 3), (4, 5)]  # none, up, down, left, right

    seen = []
    batch = hand_transitions(encode=lambda raw: seen.append(raw) or raw.flatten(1)[:, :2])
    egomotion = make_task("egomotion", 2, 3, (1, 10, 10))
    torch.manual_seed(0)
    egomotion.loss(batch)
    torch.manual_seed(0)
    classes = torch.randint(5, (3,))
    assert torch.equal(seen[0], translate(batch.raw, classes, shift=1))

    blocks = torch.arange(4.0).reshape(1, 1, 2, 2).repeat_interleave(21, 2).repeat_interleave(21, 3)
    target = reconstruction_target(blocks).reshape(21, 21)  # 42×42 pooled 2×2 → 21×21
    assert target[0, 0] == 0.0 and target[0, 20] == 1.0 and target[20, 20] == 3.0
    assert target[0, 10] == 0.5 and target[10, 0] == 1.0  # pixels 20, 21 straddle two blocks
    assert target[10, 10] == pytest.approx((0 + 1 + 2 + 3) / 4)
    assert reconstruction_target(batch.images).shape == (3, 100)  # small images stay whole

    assert reward_class(batch.rewards).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown auxiliary task 'depth'"):
        make_task("depth", 2, 3, (1, 10, 10))
    with pytest.raises(ValueError, match="needs an environment with exact optical flow"):
        make_task("flow", 2, 3, (1, 10, 10))


def test_next_observations_come_from_the_same_env_and_are_masked_at_episode_ends():
    recorder = Recorder(64, 3, (1, 16, 10))
    model = catch_model([recorder], n_envs=3)
    model.learn(15)  # one rollout of 5 steps × 3 envs
    batch = recorder.batch
    steps = batch.raw.shape[0] // 3

    def ball(image):
        row, column = np.unravel_index(int(image[0].argmax()), image[0].shape)
        return row // 2, column // 2

    next_raw = torch.cat([batch.raw[3:], torch.as_tensor(model._last_obs)])
    assert steps == 5
    for i in range(len(batch.raw)):
        (row, column), (next_row, next_column) = ball(batch.raw[i]), ball(next_raw[i])
        assert bool(batch.valid[i]) == (row < 6)  # the step from row 6 ends the episode
        if batch.valid[i]:
            assert (next_row, next_column) == (row + 1, column)
        else:
            assert next_row == 0


def test_auxiliary_gradients_reach_the_encoder_and_only_their_own_head():
    recorder = Recorder(64, 3, (1, 16, 10))
    model = catch_model([*PIXEL_TASKS, recorder])
    model.learn(20)
    heads = list(model.policy.aux_tasks)[:-1]
    encoder = list(model.policy.features_extractor.parameters())
    for param in model.policy.parameters():  # the training step reached every head and φ
        assert param.grad is not None
    for task in heads:
        assert sum(p.grad.abs().sum() for p in task.parameters()) > 0
    encode = model.policy.extract_features
    next_raw = torch.cat([recorder.batch.raw[4:], torch.as_tensor(model._last_obs)])
    batch = replace(recorder.batch, z=encode(recorder.batch.raw), z_next=encode(next_raw))
    for task in heads:
        params = [*encoder, *(p for head in heads for p in head.parameters())]
        grads = torch.autograd.grad(task.loss(batch), params, retain_graph=True, allow_unused=True)
        by_param = dict(zip(map(id, params), grads, strict=True))
        assert sum(by_param[id(p)].abs().sum() for p in encoder) > 0, task.name
        for other in heads:
            got = [by_param[id(p)] for p in other.parameters()]
            if other is task:
                assert sum(g.abs().sum() for g in got if g is not None) > 0
            else:
                assert all(g is None for g in got), (task.name, other.name)


def test_olaux_drives_down_the_weight_of_the_negated_policy_loss():
    model = catch_model(
        [Adversarial(64, 3, (1, 16, 10))], "olaux", beta=1.0, horizon=5, log_losses=False
    )
    weights = []
    for _ in range(4):
        model.learn(100, reset_num_timesteps=False)
        weights.append(float(model.weighting.weights[1]))
    assert weights[-1] < weights[0] < 1.0


def test_curve_metrics_on_hand_built_curves():
    steps, returns = [0, 10, 20, 30], [math.nan, 0.0, 1.0, 1.0]
    assert steps_to_threshold(steps, returns, 1.0) == 20
    assert steps_to_threshold(steps, returns, 0.0) == 10
    assert math.isnan(steps_to_threshold(steps, returns, 1.5))
    assert area_under_curve(steps, returns) == pytest.approx((0.5 * 10 + 1.0 * 10) / 20)
    assert area_under_curve([0, 10], [2.0, 2.0]) == 2.0
    assert math.isnan(area_under_curve([0, 10], [math.nan, 1.0]))
    with pytest.raises(ValueError, match="increasing"):
        area_under_curve([0, 0], [1.0, 1.0])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--env", "mario"], "unknown environment 'mario'"),
        (["--method", "best"], "unknown RL method 'best'"),
        (["--steps", "10"], "steps must be an integer >= 40"),
        (["--set", "lr=0"], "lr must be > 0"),
        (["--set", "tasks=[flow]"], "unknown auxiliary task 'flow'"),
        (["--set", "epochs=3"], "unknown key(s) epochs"),
    ],
)
def test_rltrack_train_rejects_bad_input(flags, message, tmp_path, capsys):
    assert main(["rltrack-train", "--set", "n_envs=8", *flags, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "metrics.json").exists()


def test_rltrack_train_and_aggregate_write_runs_tables_and_figures(tmp_path):
    runs = []
    for method in ("none", "olaux5"):
        for seed in (0, 1):
            out = tmp_path / "runs" / method / str(seed)
            flags = ["--env", "catch", "--method", method, "--seed", str(seed), "--steps", "400"]
            settings = ["--set", "n_envs=4", "--set", "curve_points=5"]
            assert main(["rltrack-train", *flags, *settings, "--out", str(out)]) == 0
            runs.append(str(out))
    curve = pd.read_csv(tmp_path / "runs" / "olaux5" / "0" / "curve.csv")
    assert list(curve["step"]) == [80, 160, 240, 320, 400]
    assert {f"weight_{name}" for name in PIXEL_TASKS} <= set(curve.columns)
    tables, figures = tmp_path / "tables", tmp_path / "figures"
    assert (
        main(["rltrack-aggregate", *runs, "--tables", str(tables), "--figures", str(figures)]) == 0
    )
    summary = pd.read_csv(tables / "rltrack_summary.csv")
    assert list(summary["method"]) == ["none", "olaux5"] and set(summary["n_seeds"]) == {2}
    assert sorted(p.name for p in figures.iterdir()) == [
        "rltrack-return_catch.png",
        "rltrack-weights_catch.png",
    ]


@pytest.mark.parametrize(
    ("method", "horizon", "mode", "factor"),
    [
        ("olaux1", 1, "nstep", 0.2),
        ("olaux5", 5, "nstep", 1.0),
        ("olaux5-ablation", 5, "ablation", 1.0),
    ],
)
def test_olaux_n_gets_the_papers_beta(method, horizon, mode, factor):
    """§5.6: OL-AUX-5 and its ablation use β; OL-AUX-1, which updates w five times as often, β/5."""
    model = build_agent(make_rltrack_config({"method": method, "n_envs": 2, "beta": 0.01}))
    assert model.weighting.horizon == horizon and model.weighting.mode == mode
    assert model.weighting.beta == pytest.approx(0.01 * factor)
    assert model.rollout_memory == (5 if mode == "ablation" else 0)


@pytest.mark.parametrize(("memory", "rollouts"), [(None, [5, 5, 5, 5]), (1, [2, 5, 5, 5])])
def test_olaux5_ablation_moves_w_every_5th_update_on_the_last_5_rollouts(memory, rollouts):
    """OL-AUX-5 (Ablation) on catch, 20 updates of 4 envs × 5 steps: w stays put on 4 updates in
    5; on every 5th it moves by β ∇L_A2C·∇log L_aux,i of the extra losses (computed here by
    autograd on what the weighting got), which are the losses of the last 5 rollouts (fewer when
    fewer were kept: with ``rollout_memory`` 1 the first ask finds the one before the current one,
    and the memory then grows to 5)."""
    config = {
        "method": "olaux5-ablation",
        "n_envs": 4,
        "beta": 1.0,
        "tasks": ["forward", "inverse"],
    }
    model = build_agent(make_rltrack_config(config))
    if memory is not None:
        model.rollout_memory = memory
    method, seen, calls = model.weighting, [], []
    rollout_losses, backward = model.rollout_losses, method.backward
    sizes = []  # the batch sizes the forward task is given
    forward_task = model.policy.aux_tasks[0]
    forward_loss = forward_task.loss
    forward_task.loss = lambda batch: sizes.append(len(batch.z)) or forward_loss(batch)

    def spy_rollout_losses(given):
        seen.append(list(given))
        return rollout_losses(given)

    def spy_backward(losses, shared, **kwargs):
        extra, expected = kwargs.get("extra_losses"), None
        if extra is not None:
            main = torch.cat(
                [g.flatten() for g in torch.autograd.grad(extra[0], shared, retain_graph=True)]
            )
            expected = [
                1.0 * float(main @ torch.cat([g.flatten() for g in grads]))
                for grads in (
                    torch.autograd.grad(torch.log(e), shared, retain_graph=True) for e in extra[1:]
                )
            ]
        before = method.weights.clone()
        total = backward(losses, shared, **kwargs)
        calls.append((before, method.weights.clone(), expected))
        return total

    model.rollout_losses, method.backward = spy_rollout_losses, spy_backward
    model.learn(400)
    assert len(calls) == 20 and model.num_timesteps == 400
    assert all(math.isfinite(loss) for loss in model.last_losses)
    steps, asks = [], 0  # the rollout each update trained on; the extra losses' rollouts
    for update, (before, after, expected) in enumerate(calls, start=1):
        step_rollouts = seen.pop(0)
        assert len(step_rollouts) == 1 and step_rollouts[0].size == 20
        steps.append(step_rollouts[0])
        if update % 5:
            assert expected is None and torch.equal(before, after)
            assert sizes.pop(0) == 20
            continue
        extra_rollouts = seen.pop(0)
        k = rollouts[asks]
        asks += 1
        assert len(extra_rollouts) == k and all(a is b for a, b in zip(extra_rollouts, steps[-k:]))
        assert sizes.pop(0) == 20 and sizes.pop(0) == 20 * k  # the step's batch, then the extra
        assert before[0] == after[0] == 1.0
        delta = (after - before)[1:].tolist()
        assert delta == pytest.approx(expected, rel=1e-3, abs=1e-6) and any(delta)
    assert not seen and not sizes and asks == 4
