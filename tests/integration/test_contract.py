"""The plug-in contract, checked for every registered method, weighting and gradient method: the
network's heads are the run's tasks and their fixed weights are the weighting's, the trainer's
state round-trips through a checkpoint, one epoch trains, and a run that crashes after an epoch
resumes to exactly the result of an uninterrupted one."""

import math

import pytest
import torch
from fixtures import TIMING_KEYS, Crash, crash_after, synthetic_config, without_timing

from auxbench.data import make_synthetic
from auxbench.methods import METHODS
from auxbench.training import Trainer
from auxbench.training.checkpoint import CHECKPOINT_NAME
from auxbench.weighting import GRADIENTS, WEIGHTINGS

pytestmark = pytest.mark.usefixtures("one_thread")


# One case per plug-in: each method with fixed weights (λ = 0.5), each weighting and each
# gradient method (with DWA) on the primary + human auxiliary + noise tasks.
CASES = {
    **{f"method={name}": {"method": name, "lam": 0.5} for name in sorted(METHODS)},
    **{
        f"weighting={name}": {"method": "human", "noise_task": True, "weighting": name}
        for name in sorted(WEIGHTINGS)
    },
    **{
        f"gradient={name}": {
            "method": "human",
            "noise_task": True,
            "weighting": "dwa",
            "gradient": name,
        }
        for name in sorted(GRADIENTS)
    },
}
RL_SETTINGS = {"reward_batch_size": 16, "ppo_n_steps": 4, "ppo_batch_size": 2, "ppo_epochs": 1}


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(n_train=240, n_test=40, num_classes=4, aux_per_class=2, seed=0)


def config(case, **overrides):
    values = {"width": 0.25, "epochs": 2, "batch_size": 30, "method_params": RL_SETTINGS}
    return synthetic_config(**{**values, **CASES[case], **overrides})


def tensors_equal(a, b):
    """Nested states equal, tensors exactly."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(tensors_equal(x, y) for x, y in zip(a, b, strict=True))
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return a == b or both_nan  # NaN logs (GCS: a primary task is never gated) compare equal


@pytest.mark.parametrize("case", list(CASES))
def test_heads_are_the_tasks_and_fixed_weights_are_theirs(synthetic, case):
    trainer = Trainer(config(case), synthetic)
    tasks = trainer.tasks
    assert tasks[0].primary and not any(task.primary for task in tasks[1:])
    assert list(trainer.model.heads) == [task.name for task in tasks]
    for task in tasks:
        assert trainer.model.heads[task.name][-1].out_features == task.outputs, task
    assert trainer.weighting.n_tasks == len(tasks)
    if trainer.config.weighting == "fixed":
        expected = [task.fixed_weight(trainer.config.lam) for task in tasks]
        assert trainer.weighting.weights.tolist() == pytest.approx(expected)


@pytest.mark.parametrize("case", list(CASES))
def test_one_epoch_trains_and_the_state_round_trips(synthetic, case, tmp_path):
    trainer = Trainer(config(case, epochs=1), synthetic)
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainer.fit()
    row = trainer.history[0]
    assert torch.isfinite(torch.tensor(row["train_loss"]))
    assert 0 <= row["val_acc"] <= 1 and 0 <= row["test_acc"] <= 1
    moved = [
        name for name, p in trainer.model.named_parameters() if not torch.equal(p, before[name])
    ]
    assert "trunk" in " ".join(moved) and "heads.primary" in " ".join(moved)

    state = trainer.state_dict()
    fresh = Trainer(config(case, epochs=1), synthetic)
    fresh.load_state_dict(state)
    assert tensors_equal(fresh.state_dict(), state)


@pytest.mark.parametrize("case", list(CASES))
def test_a_crash_after_an_epoch_resumes_to_the_uninterrupted_result(
    synthetic, case, tmp_path, monkeypatch
):
    straight = Trainer(config(case), synthetic)
    expected = straight.fit(tmp_path / "straight")

    monkeypatch.setattr("auxbench.training.loop.inject_fault", crash_after(1))
    with pytest.raises(Crash):
        Trainer(config(case), synthetic).fit(tmp_path / "resumed")
    assert (tmp_path / "resumed" / CHECKPOINT_NAME).is_file()
    monkeypatch.undo()
    resumed = Trainer(config(case), synthetic)
    metrics = resumed.fit(tmp_path / "resumed")

    assert tensors_equal(without_timing(resumed.history), without_timing(straight.history))
    assert tensors_equal(
        {k: v for k, v in metrics.items() if k not in TIMING_KEYS},
        {k: v for k, v in expected.items() if k not in TIMING_KEYS},
    )
    for a, b in zip(resumed.model.parameters(), straight.model.parameters(), strict=True):
        assert torch.equal(a, b)
