import math

import pytest
import torch
from fixtures import synthetic_config

from auxbench.data import make_synthetic
from auxbench.foundations.errors import ConfigError
from auxbench.tasks import Batch
from auxbench.training import Trainer
from auxbench.weighting import GRADIENTS, WEIGHTINGS

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(n_train=300, n_test=60, num_classes=4, aux_per_class=2, seed=0)


def config(**overrides):
    values = {"method": "human", "noise_task": True, "width": 0.25, "epochs": 2, "batch_size": 30}
    return synthetic_config(**{**values, **overrides})


def test_noise_task_is_a_fixed_random_label_per_training_image(synthetic):
    trainer = Trainer(config(noise_classes=7, lam=0.5), synthetic)
    assert trainer.task_names == ["primary", "aux", "noise"]
    assert trainer.model.heads["noise"][-1].out_features == 7
    noise = trainer.tasks[2]
    labels = noise.labels.clone()
    assert labels.shape == (len(trainer.train_split),) and int(labels.max()) < 7
    assert len(labels.unique()) == 7
    trainer.fit()
    assert torch.equal(noise.labels, labels)  # fixed for the whole run
    assert trainer.weighting.weights.tolist() == [1.0, 0.5, 0.5]  # fixed: 1, λ, λ
    batch = next(trainer.batches())
    outputs = trainer.model(batch.images)
    losses = trainer.task_losses(batch, outputs)
    expected = trainer.tasks[0].loss(
        outputs["noise"], Batch(batch.images, {"label": labels[batch.index]})
    )
    assert torch.allclose(losses[2], expected)


def test_fixed_weighting_steps_like_the_plain_weighted_sum(synthetic):
    trainer = Trainer(config(lam=0.3), synthetic)
    twin = Trainer(config(lam=0.3), synthetic)
    batch = next(trainer.batches())
    trainer.step(batch)
    outputs = twin.model(batch.images)
    losses = twin.task_losses(batch, outputs)
    twin.optimizer.zero_grad()
    (losses[0] + 0.3 * losses[1] + 0.3 * losses[2]).backward()
    twin.optimizer.step()
    for a, b in zip(trainer.model.parameters(), twin.model.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_every_weighting_trains_and_logs_its_weights(synthetic, name, tmp_path):
    trainer = Trainer(config(weighting=name), synthetic)
    metrics = trainer.fit(tmp_path)
    assert 0 <= metrics["test_acc_at_best_val"] <= 1
    row = trainer.history[-1]
    if name == "fixed":
        assert "weight_noise" not in row
    else:
        assert all(math.isfinite(row[f"weight_{task}"]) for task in trainer.task_names)
    if name == "gcs":  # the fraction of the epoch's steps each auxiliary gradient was kept
        assert all(0 <= row[f"kept_{task}"] <= 1 for task in ("aux", "noise"))
        assert math.isnan(row["kept_primary"])
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert "weights" in state["weighting"]


@pytest.mark.parametrize("gradient", sorted(g for g in GRADIENTS if not g.startswith("test-")))
def test_every_gradient_method_composes_with_a_weighting(synthetic, gradient):
    trainer = Trainer(config(weighting="dwa", gradient=gradient, epochs=1), synthetic)
    trainer.fit()
    assert math.isfinite(trainer.history[-1]["train_loss"])


def test_learned_weights_move_and_uncertainty_is_optimised_with_the_network(synthetic):
    autolambda = Trainer(config(weighting="autolambda", epochs=1), synthetic)
    autolambda.fit()
    assert not torch.allclose(autolambda.weighting.weights, torch.full((3,), 0.1))
    uncertainty = Trainer(config(weighting="uncertainty", epochs=1), synthetic)
    before = uncertainty.weighting.log_variances.detach().clone()
    uncertainty.fit()
    assert not torch.equal(uncertainty.weighting.log_variances.detach(), before)


def test_look_ahead_does_not_enter_the_method_logs(synthetic):
    plain = Trainer(config(method="maxl", noise_task=False, epochs=1), synthetic)
    plain.fit()
    ahead = Trainer(
        config(method="maxl", noise_task=False, epochs=1, weighting="autolambda"), synthetic
    )
    calls = []
    record = ahead.method._record
    ahead.method._record = lambda generated: calls.append(1) or record(generated)
    ahead.fit()
    assert len(calls) == len(range(0, len(ahead.train_split), 30))  # once per training batch


def test_rl_aux_restores_the_weighting_with_the_canonical_network(synthetic):
    trainer = Trainer(
        config(
            method="rl-aux",
            weighting="olaux",
            weighting_params={"horizon": 2},
            method_params={"reward_batch_size": 16},
        ),
        synthetic,
    )
    trainer.train_epoch()
    before = trainer.weighting.state_dict()
    trainer.method.before_epoch(1)
    after = trainer.weighting.state_dict()
    assert after["steps"] == before["steps"]
    assert torch.equal(after["weights"], before["weights"])


def test_bad_weighting_settings_are_config_errors(synthetic):
    with pytest.raises(ConfigError, match="unknown weighting 'nope'"):
        Trainer(config(weighting="nope"), synthetic)
    with pytest.raises(ConfigError, match="weighting 'dwa'.*temperature"):
        Trainer(config(weighting="dwa", weighting_params={"temperature": -1}), synthetic)
    with pytest.raises(ConfigError, match="unknown gradient 'nope'"):
        Trainer(config(gradient="nope"), synthetic)
