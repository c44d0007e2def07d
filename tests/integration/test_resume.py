"""Resumable training, preemption and faults: nothing is lost and nothing is silently wrong."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from fixtures import TIMING_KEYS, Crash, crash_after, synthetic_config, without_timing

from auxbench.data import make_synthetic
from auxbench.foundations.errors import ConfigError
from auxbench.training import Trainer
from auxbench.training import checkpoint as checkpoints
from auxbench.training.checkpoint import CHECKPOINT_NAME, PREEMPTED_EXIT_CODE, NonFiniteLoss

pytestmark = pytest.mark.usefixtures("one_thread")

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(n_train=300, n_test=60, num_classes=4, aux_per_class=2, seed=0)


def config(**overrides):
    values = {"method": "human", "width": 0.25, "epochs": 3, "batch_size": 30}
    return synthetic_config(**{**values, **overrides})


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"method": "maxl"},
        {"method": "rl-aux", "method_params": {"reward_batch_size": 16}},
        {"noise_task": True, "weighting": "autolambda", "gradient": "pcgrad"},
        {"weighting": "dwa"},
    ],
    ids=["human", "maxl", "rl-aux", "autolambda+pcgrad", "dwa"],
)
def test_a_crashed_run_resumes_to_the_same_result(synthetic, tmp_path, monkeypatch, overrides):
    straight = Trainer(config(**overrides), synthetic)
    expected = straight.fit(tmp_path / "straight")

    monkeypatch.setattr("auxbench.training.loop.inject_fault", crash_after(2))
    with pytest.raises(Crash):
        Trainer(config(**overrides), synthetic).fit(tmp_path / "resumed")
    assert (tmp_path / "resumed" / CHECKPOINT_NAME).is_file()
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    resumed = Trainer(config(**overrides), synthetic)
    metrics = resumed.fit(tmp_path / "resumed")

    assert without_timing(resumed.history) == without_timing(straight.history)
    for key in set(expected) - TIMING_KEYS:
        assert metrics[key] == expected[key], key
    for a, b in zip(resumed.model.parameters(), straight.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not (tmp_path / "resumed" / CHECKPOINT_NAME).exists()  # done: metrics.json says so


def test_a_checkpoint_of_another_config_is_refused(synthetic, tmp_path, monkeypatch):
    monkeypatch.setattr("auxbench.training.loop.inject_fault", crash_after(1))
    with pytest.raises(Crash):
        Trainer(config(), synthetic).fit(tmp_path)
    with pytest.raises(ConfigError, match=r"different run: 'lr' is 0.05 there but 0.1 here"):
        Trainer(config(lr=0.1), synthetic).fit(tmp_path)
    longer = Trainer(config(epochs=4), synthetic)  # training longer is allowed
    longer.fit(tmp_path)
    assert len(longer.history) == 4


def test_a_truncated_checkpoint_gives_a_clear_error(synthetic, tmp_path):
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ConfigError, match="cannot be read .* delete it"):
        Trainer(config(), synthetic).fit(tmp_path)


def test_running_out_of_disk_keeps_the_previous_checkpoint(synthetic, tmp_path, monkeypatch):
    saves = []
    real_save = torch.save

    def save(obj, path, *args, **kwargs):
        saves.append(path)
        if len(saves) == 2:  # the second epoch's checkpoint hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(OSError, match="No space left"):
        Trainer(config(), synthetic).fit(tmp_path)
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert len(state["history"]) == 1  # epoch 1's checkpoint, intact
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written temp files left


def test_a_non_finite_loss_names_epoch_batch_and_term(synthetic, tmp_path):
    trainer = Trainer(config(noise_task=True), synthetic)
    real_losses = trainer.task_losses
    calls = []

    def poisoned(batch, outputs, overrides=None):
        losses = real_losses(batch, outputs, overrides)
        calls.append(1)
        if len(calls) >= 4:
            losses[2] = losses[2] * float("nan")
        return losses

    trainer.task_losses = poisoned
    with pytest.raises(NonFiniteLoss, match=r"epoch 1, batch 3: the 'noise' loss is not finite"):
        trainer.fit(tmp_path)
    assert not (tmp_path / "metrics.json").exists()


def test_rng_state_round_trips():
    state = checkpoints.rng_state()
    draws = (torch.rand(3), np.random.rand(3), random.random())
    checkpoints.set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(draws[0], again[0]) and (draws[1] == again[1]).all()
    assert draws[2] == again[2]


# --- real processes ------------------------------------------------------------------------------


def train_command(out: Path, config_file: Path) -> list[str]:
    return [str(BIN / "auxbench"), "train", "--config", str(config_file), "--out", str(out)]


LONG_RUN = 40  # epochs: far more than can pass between a checkpoint and the signal that follows


def write_config(path: Path, epochs: int = LONG_RUN, **overrides) -> Path:
    values = {**config(epochs=epochs, **overrides).to_dict()}
    path.write_text(yaml.safe_dump(values))
    return path


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def run_to_end(out: Path, config_file: Path) -> dict:
    subprocess.run(train_command(out, config_file), check=True, capture_output=True, timeout=300)
    return json.loads((out / "metrics.json").read_text())


def test_sigkill_mid_epoch_then_restart_gives_identical_metrics(tmp_path):
    config_file = write_config(tmp_path / "run.yaml")
    expected = run_to_end(tmp_path / "straight", config_file)
    out = tmp_path / "killed"
    process = subprocess.Popen(
        train_command(out, config_file), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    wait_for(out / CHECKPOINT_NAME, process)
    # Right after epoch 1's checkpoint: the run is in epoch 2, with many epochs still to go.
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (out / "metrics.json").exists()
    metrics = run_to_end(out, config_file)
    for key in set(expected) - TIMING_KEYS:
        assert metrics[key] == expected[key], key


def test_sigterm_checkpoints_and_exits_with_the_preemption_code(tmp_path):
    config_file = write_config(tmp_path / "run.yaml")
    out = tmp_path / "preempted"
    process = subprocess.Popen(
        train_command(out, config_file), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for(out / CHECKPOINT_NAME, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == PREEMPTED_EXIT_CODE, stderr
    assert "run the same command again to resume" in stderr
    state = torch.load(out / CHECKPOINT_NAME, weights_only=True)
    assert 1 <= len(state["history"]) < LONG_RUN and not (out / "metrics.json").exists()
    assert len(run_to_end(out, config_file)) > 0


def test_a_second_sigterm_stops_at_once_and_the_run_resumes(tmp_path):
    # Batches of 2: epochs of hundreds of steps, so the second signal lands mid-epoch.
    config_file = write_config(tmp_path / "run.yaml", batch_size=2)
    out = tmp_path / "stopped"
    process = subprocess.Popen(
        train_command(out, config_file), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for(out / CHECKPOINT_NAME, process)
    process.send_signal(signal.SIGTERM)
    seen = []
    for line in process.stderr:  # the first signal's warning, then the second signal at once
        seen.append(line)
        if "send it again or press Ctrl-C to stop now" in line:
            process.send_signal(signal.SIGTERM)
            break
    _, rest = process.communicate(timeout=120)
    stderr = "".join(seen) + rest
    assert process.returncode == PREEMPTED_EXIT_CODE, stderr
    assert "stopped at once on SIGTERM during epoch" in stderr, stderr
    assert "Traceback" not in stderr
    state = torch.load(out / CHECKPOINT_NAME, weights_only=True)
    done = len(state["history"])
    assert 1 <= done < LONG_RUN and not (out / "metrics.json").exists()
    # Resume for one more epoch only (a resumed run may change `epochs`): the checkpoint is whole.
    metrics = run_to_end(
        out, write_config(tmp_path / "one-more.yaml", epochs=done + 1, batch_size=2)
    )
    assert metrics["epochs_run"] == done + 1


def test_fault_injection_dies_once_after_the_named_epoch(tmp_path):
    config_file = write_config(tmp_path / "run.yaml", epochs=3)
    out = tmp_path / "faulty"
    env = {**os.environ, checkpoints.FAULT_AFTER_EPOCH: "2"}
    first = subprocess.run(
        train_command(out, config_file), check=False, env=env, capture_output=True
    )
    assert first.returncode == 1 and not (out / "metrics.json").exists()
    second = subprocess.run(
        train_command(out, config_file), check=False, env=env, capture_output=True, text=True
    )
    assert second.returncode == 0
    assert "resuming" in second.stderr
