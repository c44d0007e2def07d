"""The manipulation track: the embedded goal environment, HER relabelling, the continuous
auxiliary tasks, gradient routing in AuxDDPG, and exact resume of a DDPG + HER run."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

from auxbench.cli import main
from auxbench.foundations.errors import ConfigError
from auxbench.rltrack import goal_run
from auxbench.rltrack.ddpg import GoalImageHerBuffer
from auxbench.rltrack.goal_envs import REACH_ID, EpisodeSeeds, PixelReach, pool_flow, sparse_reward
from auxbench.rltrack.goal_run import GoalRun, make_goal_config, method_weighting
from auxbench.rltrack.tasks import Transitions, make_task

TINY = {
    "steps": 96,
    "size": 16,
    "batch_size": 8,
    "learning_starts": 24,
    "buffer_size": 200,
    "curve_points": 4,
    "eval_episodes": 2,
    "latent": 8,
    "updates_per_step": 0.25,
}


# --- the embedded environment -----------------------------------------------------------------


def test_pixel_reach_draws_the_ball_where_it_is():
    env = PixelReach(size=32, radius=0.18)
    image = env.draw(np.array([0.0, 0.0]))
    assert image.shape == (4, 32, 32) and image.dtype == np.uint8
    # the arena's centre lies between pixels 15 and 16: both are ball, the corners floor
    assert image[0, 15, 15] > 150 and image[1, 15, 15] < 60  # red ball
    assert image[3, 15, 15] < 255 and image[3, 0, 0] == 255  # nearer than the floor
    # radius 0.18 = 2.88 px: pixel centres up to 2.88 px from (16, 16) in pixel units
    # per quadrant the offsets (½,½) (½,1½) (1½,½) (½,2½) (2½,½) (1½,1½): 6 × 4
    assert env.ball_mask(np.zeros(2)).sum() == 24
    moved = env.draw(np.array([0.5, 0.0]))  # x + 0.5 = 8 px to the right
    assert (moved[:, 15, 23] == image[:, 15, 15]).all()


def test_pixel_reach_flow_on_a_hand_built_transition():
    env = PixelReach(size=32, speed=0.25)
    env.reset(seed=0)
    env.position = np.array([0.0, 0.0])
    env.goal = np.array([0.5, 0.5])
    obs, reward, terminated, truncated, info = env.step(np.array([1.0, -1.0]))
    assert np.allclose(env.position, [0.25, -0.25])
    # every ball pixel of the first frame moved 4 px right (columns) and 4 px down (rows)
    full = env.pixel_flow(np.zeros(2), env.position)
    mask = env.ball_mask(np.zeros(2))
    assert np.allclose(full[0][mask], 4.0) and np.allclose(full[1][mask], 4.0)
    assert np.allclose(full[:, ~mask], 0.0)
    assert np.allclose(obs["flow"], pool_flow(full))
    assert obs["flow"].shape == (2, 8, 8)
    assert obs["flow"].sum() == pytest.approx(2 * 4.0 * mask.sum() / 16)
    assert reward == -1.0 and info["is_success"] == 0.0 and not terminated and not truncated
    assert env.observation_space.contains(obs)


def test_pixel_reach_walls_and_reward():
    env = PixelReach(size=16)
    env.reset(seed=1)
    env.position = np.array([0.8, 0.0])
    obs, *_ = env.step(np.array([1.0, 0.0]))
    assert env.position[0] == pytest.approx(1.0 - env.radius)  # clipped at the wall
    assert obs["achieved_goal"][0] == pytest.approx(1.0 - env.radius)
    achieved = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    desired = np.array([[0.1, 0.0], [0.15, 0.0], [0.2, 0.0]])
    assert sparse_reward(achieved, desired, 0.15).tolist() == [0.0, 0.0, -1.0]
    assert env.compute_reward(np.zeros(2), np.array([0.3, 0.0]), {}) == -1.0


def test_goal_image_shows_the_ball_at_the_goal():
    env = gym.make(REACH_ID, size=16)
    obs, _ = env.reset(seed=3)
    unwrapped = env.unwrapped
    assert (obs["goal_image"] == unwrapped.draw(unwrapped.goal)).all()
    assert not (obs["goal_image"] == obs["observation"]).all()
    assert (obs["flow"] == 0).all()


def test_episode_seeds_make_each_episode_independent_of_history():
    first = EpisodeSeeds(PixelReach(size=16), seed=5)
    second = EpisodeSeeds(PixelReach(size=16), seed=5)
    starts = [first.reset()[0]["achieved_goal"] for _ in range(3)]
    second.episodes = 2  # a resumed run: two episodes already played
    assert np.array_equal(second.reset()[0]["achieved_goal"], starts[2])
    other = EpisodeSeeds(PixelReach(size=16), seed=5, index=1)
    assert not np.array_equal(other.reset()[0]["achieved_goal"], starts[0])


# --- HER ----------------------------------------------------------------------------------------


def hand_built_buffer(episode: int = 10) -> tuple[GoalImageHerBuffer, PixelReach]:
    """One episode in a HER buffer: at step t the ball's achieved goal is (t/100, 0) and its next
    observation is an image filled with t + 1; the episode's own goal is far away (1, 1)."""
    env = PixelReach(size=16)
    vec = DummyVecEnv([lambda: env])
    buffer = GoalImageHerBuffer(
        100, env.observation_space, env.action_space, env=vec, n_sampled_goal=9
    )
    goal_image = np.full((1, 4, 16, 16), 200, dtype=np.uint8)

    def obs(t: int) -> dict[str, np.ndarray]:
        return {
            "observation": np.full((1, 4, 16, 16), t, dtype=np.uint8),
            "goal_image": goal_image,
            "achieved_goal": np.array([[t / 100, 0.0]], dtype=np.float32),
            "desired_goal": np.array([[1.0, 1.0]], dtype=np.float32),
            "flow": np.zeros((1, 2, 4, 4), dtype=np.float32),
        }

    for t in range(episode):
        done = np.array([t == episode - 1])
        infos = [{"TimeLimit.truncated": bool(done[0])}]
        buffer.add(obs(t), obs(t + 1), np.zeros((1, 2)), np.array([-1.0]), done, infos)
    return buffer, env


def test_her_relabels_nine_in_ten_with_a_later_goal_and_its_image():
    np.random.seed(0)
    buffer, env = hand_built_buffer()
    batch = buffer.sample(1000)
    desired = batch.observations["desired_goal"].numpy()
    relabelled = ~np.all(desired == [1.0, 1.0], axis=1)
    assert relabelled.sum() == 900  # her_ratio = 1 − 1/(9 + 1)
    step = np.round(batch.observations["observation"][:, 0, 0, 0].numpy()).astype(int)
    later = np.round(desired[relabelled, 0] * 100).astype(int) - 1  # the goal's transition
    assert (later >= step[relabelled]).all()  # "future": the same or a later step
    # the goal image of a relabelled goal is that later transition's next observation
    images = batch.observations["goal_image"][relabelled, 0, 0, 0].numpy()
    assert np.array_equal(images, later + 1)
    assert torch.equal(batch.observations["goal_image"], batch.next_observations["goal_image"])
    assert (batch.observations["goal_image"][~relabelled] == 200).all()
    # rewards recomputed from the ground-truth goal states: 0 within 0.15 of the new goal
    next_achieved = batch.next_observations["achieved_goal"].numpy()
    expected = sparse_reward(next_achieved, desired, env.threshold)
    assert np.array_equal(batch.rewards.numpy().ravel(), expected)
    assert (batch.rewards.numpy().ravel()[relabelled] == 0).mean() > 0.5
    assert (batch.rewards.numpy().ravel()[~relabelled] == -1).all()


# --- auxiliary tasks on a hand-built transition -------------------------------------------------


def zero_heads(task) -> None:
    for param in task.parameters():
        torch.nn.init.zeros_(param)


def test_continuous_tasks_targets():
    torch.manual_seed(0)
    n, latent = 4, 3
    z, z_next = torch.randn(n, latent), torch.randn(n, latent)
    actions = torch.tensor([[0.5, -1.0], [1.0, 0.0], [0.0, 0.0], [-0.5, 0.5]])
    flow = torch.randn(n, 2, 2, 2)
    batch = Transitions(
        images=torch.rand(n, 4, 8, 8),
        raw=torch.rand(n, 4, 8, 8) * 255,
        z=z,
        z_next=z_next,
        actions=actions,
        rewards=torch.zeros(n),
        valid=torch.tensor([True, True, True, False]),
        encode=lambda images: images.flatten(1)[:, :latent],
        policy_loss=torch.tensor(0.0),
        flow=flow,
    )
    tasks = {
        name: make_task(name, latent, 2, (4, 8, 8), continuous=True, flow_shape=(2, 2, 2))
        for name in ("forward", "inverse", "flow")
    }
    for task in tasks.values():
        zero_heads(task)  # every prediction 0: the loss is the target's mean square
    valid = batch.valid
    assert tasks["inverse"].loss(batch).item() == pytest.approx(actions[valid].pow(2).mean().item())
    assert tasks["flow"].loss(batch).item() == pytest.approx(flow[valid].pow(2).mean().item())
    assert tasks["forward"].loss(batch).item() == pytest.approx(z_next[valid].pow(2).mean().item())
    # the forward head takes the continuous action itself (latent + 2 inputs)
    assert tasks["forward"].head[0].in_features == latent + 2
    with pytest.raises(ValueError, match="exact optical flow"):
        make_task("flow", latent, 2, (4, 8, 8), continuous=True)


# --- the agent ------------------------------------------------------------------------------


def test_aux_gradients_reach_the_encoder_and_not_the_other_heads():
    config = make_goal_config({**TINY, "method": "balance"})
    model = goal_run.build_agent(config)
    model.learn(36)  # three episodes in the buffer
    losses, _ = model.losses(model.replay_buffer.sample(8))
    assert len(losses) == 1 + len(model.task_names) == 6
    encoder = list(model.encoder.parameters())
    critic = [p for q in model.critic.q_networks for p in q.parameters()]
    actor = list(model.actor.mu.parameters())
    heads = {
        name: list(task.parameters())
        for name, task in zip(model.task_names, model.policy.aux_tasks, strict=True)
    }
    every = encoder + critic + actor + [p for ps in heads.values() for p in ps]

    def norms(loss) -> list[float]:
        grads = torch.autograd.grad(loss, every, retain_graph=True, allow_unused=True)
        return [0.0 if g is None else g.norm().item() for g in grads]

    sizes = [len(encoder), len(critic), len(actor)]
    for name, loss in zip(model.task_names, losses[1:], strict=True):
        grads = norms(loss)
        enc, rest = sum(grads[: sizes[0]]), grads[sizes[0] :]
        assert enc > 0, name
        assert sum(rest[: sizes[1] + sizes[2]]) == 0, name  # not the critic nor the actor
        offset = sizes[1] + sizes[2]
        for other, params in heads.items():
            part = sum(rest[offset : offset + len(params)])
            assert (part > 0) == (other == name), (name, other)
            offset += len(params)
    # L_Q reaches the encoder and the critic, never the actor or the task heads
    grads = norms(losses[0])
    assert sum(grads[: sizes[0]]) > 0 and sum(grads[sizes[0] : sizes[0] + sizes[1]]) > 0
    assert sum(grads[sizes[0] + sizes[1] :]) == 0


def test_methods_and_their_weightings():
    assert method_weighting("olaux1", 0.01) == (
        "olaux",
        {"horizon": 1, "log_losses": True, "beta": pytest.approx(0.002)},
    )
    name, params = method_weighting("olaux5-ablation", 0.01)
    assert name == "olaux"
    assert params["beta"] == 0.01 and params["mode"] == "ablation"
    assert method_weighting("only-flow", 0.01)[0] == "fixed"
    config = make_goal_config({"method": "only-flow"})
    assert config.run_tasks == ["flow"]
    assert make_goal_config({"method": "none"}).run_tasks == []
    assert make_goal_config({"method": "balance"}).run_tasks == [
        "forward",
        "inverse",
        "egomotion",
        "autoencoder",
        "flow",
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"method": "olaux9"}, "manipulation method"),
        ({"method": "only-depth"}, "auxiliary task of only-depth"),
        ({"tasks": ["reward"]}, "auxiliary task for reach"),
        ({"threshold": 2}, "threshold is a success rate"),
        ({"env": "pong"}, "goal environment"),
        ({"gamma": 1.0}, "gamma"),
        ({"speed": 1.0}, "speed"),
    ],
)
def test_config_rejects_bad_values(values, message):
    with pytest.raises(ConfigError, match=message):
        make_goal_config(values)


def test_a_run_writes_its_curve_and_metrics(tmp_path):
    config = make_goal_config({**TINY, "method": "olaux5"})
    metrics = goal_run.run(config, tmp_path)
    curve = pd.read_csv(tmp_path / "curve.csv")
    assert list(curve["step"]) == [24, 48, 72, 96]
    assert set(curve.columns) >= {"success", "train_success", "weight_flow", "loss_inverse"}
    assert curve["success"].between(0, 1).all()
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["env_steps"] == 96 and saved["method"] == "olaux5"
    assert saved["final_weights"] == metrics["final_weights"]
    # OL-AUX moved its weights after the first updates
    assert any(w != 1.0 for w in saved["final_weights"].values())
    assert not (tmp_path / "checkpoint").exists()


@pytest.mark.parametrize("method", ["olaux5", "olaux5-ablation"])
def test_resume_after_a_crash_is_exact(tmp_path, monkeypatch, method):
    config = make_goal_config({**TINY, "method": method, "checkpoint_every": 24})
    whole = GoalRun(config, tmp_path / "whole")
    whole.train()

    crashed = tmp_path / "crashed"
    original = goal_run.GoalRecorder._on_step

    def crash(self):
        if self.num_timesteps == 60:  # after the checkpoint at step 48, before the next
            raise RuntimeError("simulated crash")
        return original(self)

    monkeypatch.setattr(goal_run.GoalRecorder, "_on_step", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        GoalRun(config, crashed).train()
    assert (crashed / "checkpoint" / "replay.pkl").exists()
    monkeypatch.setattr(goal_run.GoalRecorder, "_on_step", original)
    resumed = GoalRun(config, crashed)
    metrics = resumed.train()
    assert metrics["resumed"]
    assert pd.read_csv(crashed / "curve.csv").equals(pd.read_csv(tmp_path / "whole/curve.csv"))
    for (name, a), (_, b) in zip(
        whole.model.policy.state_dict().items(),
        resumed.model.policy.state_dict().items(),
        strict=True,
    ):
        assert torch.equal(a, b), name
    assert torch.equal(whole.model.weighting.weights, resumed.model.weighting.weights)
    buffers = (whole.model.replay_buffer, resumed.model.replay_buffer)
    assert np.array_equal(*(b.observations["observation"] for b in buffers))
    assert np.array_equal(*(b.actions for b in buffers))


def test_a_checkpoint_of_other_settings_is_refused(tmp_path, monkeypatch):
    config = make_goal_config({**TINY, "method": "balance", "checkpoint_every": 24})
    original = goal_run.GoalRecorder._on_step

    def crash(self):
        if self.num_timesteps == 60:
            raise RuntimeError("simulated crash")
        return original(self)

    monkeypatch.setattr(goal_run.GoalRecorder, "_on_step", crash)
    with pytest.raises(RuntimeError):
        GoalRun(config, tmp_path).train()
    other = make_goal_config({**TINY, "method": "balance", "checkpoint_every": 24, "seed": 1})
    with pytest.raises(ConfigError, match="a checkpoint of other settings"):
        GoalRun(other, tmp_path).train()


# --- the command line and the tables ------------------------------------------------------------


def test_manipulation_train_and_aggregate_write_runs_tables_and_figures(tmp_path):
    runs = []
    settings = [f"--set={key}={value}" for key, value in TINY.items() if key != "steps"]
    for method in ("none", "olaux5"):
        for seed in (0, 1):
            out = tmp_path / "runs" / method / str(seed)
            flags = ["--env", "reach", "--method", method, "--seed", str(seed), "--steps", "96"]
            assert main(["manipulation-train", *flags, *settings, "--out", str(out)]) == 0
            runs.append(str(out))
    tables, figures = tmp_path / "tables", tmp_path / "figures"
    command = ["manipulation-aggregate", *runs, "--tables", str(tables), "--figures", str(figures)]
    assert main(command) == 0
    summary = pd.read_csv(tables / "manipulation_summary.csv")
    assert list(summary["method"]) == ["none", "olaux5"] and set(summary["n_seeds"]) == {2}
    paired = pd.read_csv(tables / "manipulation_paired.csv")
    assert set(paired["method"]) == {"olaux5"} and set(paired["n_pairs"]) == {2}
    assert sorted(p.name for p in figures.iterdir()) == [
        "manipulation-success_reach.png",
        "manipulation-weights_reach.png",
    ]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--method", "olaux9"], "manipulation method"),
        (["--set", "bogus=1"], "bogus"),
        (["--env", "pong"], "goal environment"),
    ],
)
def test_manipulation_train_rejects_bad_input(flags, message, tmp_path, capsys):
    assert main(["manipulation-train", *flags, "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not (tmp_path / "metrics.json").exists()
