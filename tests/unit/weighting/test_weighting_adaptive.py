import io
import math

import pytest
import torch
from torch import nn

from auxbench import weighting
from auxbench.weighting import GradientMethod, register
from auxbench.weighting.dwa import DWA
from auxbench.weighting.gcs import GCS
from auxbench.weighting.gradnorm import GradNorm
from auxbench.weighting.uncertainty import Uncertainty

CLASSES = {"uncertainty": Uncertainty, "dwa": DWA, "gcs": GCS, "gradnorm": GradNorm}

METHODS = {
    "uncertainty": {},
    "dwa": {"temperature": 2.0},
    "gcs": {"lam": 0.5},
    "gradnorm": {"alpha": 1.5, "lr": 0.025},
}


def toy(seed=0):
    """A shared layer with two heads: three positive task losses (two on head a, one on head b)."""
    torch.manual_seed(seed)
    shared, head_a, head_b = nn.Linear(4, 3), nn.Linear(3, 1), nn.Linear(3, 1)
    x = torch.randn(8, 4)
    features = torch.tanh(shared(x))
    a, b = head_a(features).squeeze(1), head_b(features).squeeze(1)
    losses = [(a - 1).pow(2).mean(), (b + 1).pow(2).mean(), a.pow(2).mean() + 0.1]
    return shared, [head_a, head_b], losses


def grads(tensors):
    return [t.grad.clone() for t in tensors]


def params(modules):
    return [p for m in modules for p in m.parameters()]


def set_values(tensor, values):
    with torch.no_grad():
        tensor.copy_(torch.tensor(values))


def train_step(method, seed):
    """One step on ``toy(seed)`` (with plain SGD on the method's own parameters) and one epoch end;
    returns the gradients the step left on the network."""
    shared, heads, losses = toy(seed)
    method.backward(losses, list(shared.parameters()))
    with torch.no_grad():
        for param in method.parameters():
            param -= 0.1 * param.grad
            param.grad = None
    method.epoch_end([loss.item() for loss in losses])
    return grads(params([shared, *heads]))


@pytest.mark.parametrize("name", METHODS)
def test_methods_register_and_are_created_by_name(name):
    method = weighting.create(name, 3, primary=[0], **METHODS[name])
    assert type(method) is CLASSES[name] and weighting.WEIGHTINGS[name] is CLASSES[name]
    assert method.name == name and method.weights.shape == (3,)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        weighting.create("dwa", 2, temperature=0)
    with pytest.raises(ValueError, match="lam must be > 0"):
        weighting.create("gcs", 2, lam=-1)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        weighting.create("gradnorm", 2, alpha=-0.5)
    with pytest.raises(ValueError, match="lr must be > 0"):
        weighting.create("gradnorm", 2, lr=0)
    with pytest.raises(ValueError, match="min_weight must be in"):
        weighting.create("gradnorm", 2, min_weight=0)
    method = weighting.create("dwa", 2)
    with pytest.raises(ValueError, match="expects 2 mean losses"):
        method.epoch_end([1.0])
    with pytest.raises(ValueError, match="mean losses > 0"):
        method.epoch_end([1.0, 0.0])
    with pytest.raises(ValueError, match="weights must be > 0"):
        weighting.create("uncertainty", 2).weights = torch.tensor([1.0, 0.0])


def test_uncertainty_matches_its_formula():
    method = weighting.create("uncertainty", 3)
    (log_variances,) = method.parameters()
    assert log_variances.requires_grad and log_variances.tolist() == [0.0, 0.0, 0.0]
    s = [0.3, -0.2, 0.1]
    set_values(log_variances, s)
    multipliers = [0.5 * math.exp(-si) for si in s]
    assert method.weights.tolist() == pytest.approx(multipliers)
    assert method.logs()["weight_1"] == pytest.approx(multipliers[1])

    shared, heads, losses = toy()
    values = [loss.item() for loss in losses]
    total = method.backward(losses, list(shared.parameters()))
    got = grads(params([shared, *heads]))
    assert total.item() == pytest.approx(
        sum(0.5 * math.exp(-si) * li + 0.5 * si for si, li in zip(s, values, strict=True))
    )
    # d/dsᵢ (½·exp(−sᵢ)·Lᵢ + ½·sᵢ) = ½ − ½·exp(−sᵢ)·Lᵢ
    expected_s_grad = [0.5 - 0.5 * math.exp(-si) * li for si, li in zip(s, values, strict=True)]
    assert log_variances.grad.tolist() == pytest.approx(expected_s_grad)

    shared, heads, losses = toy()
    sum(m * loss for m, loss in zip(multipliers, losses, strict=True)).backward()
    expected = grads(params([shared, *heads]))
    assert all(torch.allclose(g, e) for g, e in zip(got, expected, strict=True))


def test_dwa_matches_its_formula():
    method = weighting.create("dwa", 3, temperature=2.0)

    def expected(before, last, temperature=2.0):
        exps = [math.exp(b / a / temperature) for a, b in zip(before, last, strict=True)]
        return [3 * e / sum(exps) for e in exps]

    assert method.weights.tolist() == [1.0, 1.0, 1.0]
    method.epoch_end([1.0, 2.0, 4.0])
    assert method.weights.tolist() == [1.0, 1.0, 1.0]  # still 1 in the second epoch
    method.epoch_end([0.5, 2.0, 3.0])
    assert method.weights.tolist() == pytest.approx(expected([1.0, 2.0, 4.0], [0.5, 2.0, 3.0]))
    method.epoch_end([0.25, 1.0, 3.0])
    weights = expected([0.5, 2.0, 3.0], [0.25, 1.0, 3.0])
    assert method.weights.tolist() == pytest.approx(weights)
    assert sum(weights) == pytest.approx(3.0) and weights[2] > weights[0]

    shared, _, losses = toy()
    total = method.backward(losses, list(shared.parameters()))
    assert total.item() == pytest.approx(sum(w * loss.item() for w, loss in zip(weights, losses)))

    cooler = weighting.create("dwa", 3, temperature=0.5)
    for mean_losses in ([1.0, 2.0, 4.0], [0.5, 2.0, 3.0]):
        cooler.epoch_end(mean_losses)
    assert cooler.weights.tolist() == pytest.approx(
        expected([1.0, 2.0, 4.0], [0.5, 2.0, 3.0], temperature=0.5)
    )


def gcs_problem():
    """Shared w = (1, 2), heads h1 = 2, h2 = 1. Gradients on w: L0 → (3, 0), L1 → h1·(1, 1) =
    (2, 2), L2 → h2·(−1, 3) = (−1, 3); on the heads: ∂L1/∂h1 = w·(1, 1) = 3, ∂L2/∂h2 = w·(−1, 3) = 5."""
    w = nn.Parameter(torch.tensor([1.0, 2.0]))
    h1, h2 = nn.Parameter(torch.tensor(2.0)), nn.Parameter(torch.tensor(1.0))
    losses = [w @ torch.tensor([3.0, 0.0]), h1 * w.sum(), h2 * (w @ torch.tensor([-1.0, 3.0]))]
    return w, [h1, h2], losses


@pytest.mark.parametrize("give_task_params", [False, True])
def test_gcs_keeps_aligned_and_drops_opposed_auxiliary_gradients(give_task_params):
    w, heads, losses = gcs_problem()
    method = weighting.create("gcs", 3, primary=[0], lam=0.5)
    method.backward(losses, [w], task_params=heads if give_task_params else None)
    # cos((3,0), (2,2)) = 1/√2 > 0: kept; cos((3,0), (−1,3)) = −1/√10 < 0: dropped
    assert w.grad.tolist() == pytest.approx([3 + 0.5 * 2, 0 + 0.5 * 2])
    assert [h.grad.item() for h in heads] == pytest.approx([0.5 * 3, 0.5 * 5])
    logs = method.logs()
    assert logs["cosine_1"] == pytest.approx(1 / math.sqrt(2))
    assert logs["cosine_2"] == pytest.approx(-1 / math.sqrt(10))
    assert "cosine_0" not in logs and logs["weight_2"] == 0.5

    # with tasks 0 and 1 primary, the primary gradient is (5, 2): task 2's cosine turns positive
    w, heads, losses = gcs_problem()
    method = weighting.create("gcs", 3, primary=[0, 1], lam=0.5)
    method.backward(losses, [w], task_params=heads if give_task_params else None)
    assert w.grad.tolist() == pytest.approx([5 + 0.5 * -1, 2 + 0.5 * 3])
    assert [h.grad.item() for h in heads] == pytest.approx([3, 0.5 * 5])
    assert method.logs()["cosine_2"] == pytest.approx(1 / math.sqrt(29 * 10))


def test_gcs_logs_the_fraction_of_each_epochs_steps_an_auxiliary_gradient_was_kept():
    method = weighting.create("gcs", 3, primary=[0])
    assert math.isnan(method.logs()["kept_1"])  # no step yet
    for flipped in (False, True, True, False):  # in epoch 1, task 1 opposes the primary in 2 of 4
        w, _, losses = gcs_problem()
        method.backward([losses[0], -losses[1] if flipped else losses[1], losses[2]], [w])
    method.epoch_end([0.0] * 3)
    epoch_1 = method.logs()  # after epoch_end: still the epoch that ended
    assert [epoch_1["kept_1"], epoch_1["kept_2"]] == [0.5, 0.0]
    assert math.isnan(epoch_1["kept_0"])  # primary: never gated
    assert epoch_1["cosine_1"] == pytest.approx(0.0)  # ±1/√2, twice each
    assert epoch_1["cosine_2"] == pytest.approx(-1 / math.sqrt(10))
    w, _, losses = gcs_problem()
    method.backward(losses, [w])  # the next step starts epoch 2's window
    assert method.logs()["kept_1"] == 1.0
    assert method.logs()["cosine_1"] == pytest.approx(1 / math.sqrt(2))


def gradnorm_step(method, scales, offsets):
    """Losses Lᵢ = scaleᵢ·w² + offsetᵢ at w = 1: ‖∇_w Lᵢ‖ = 2·scaleᵢ, Lᵢ = scaleᵢ + offsetᵢ."""
    w = nn.Parameter(torch.tensor([1.0]))
    losses = [s * w.pow(2).sum() + o for s, o in zip(scales, offsets, strict=True)]
    method.backward(losses, [w])
    return w.grad.item()


def adam_reference(gradients, lr):
    """Weights at 1 after torch's Adam steps on the given gradients, renormalised to sum to n."""
    weights = torch.ones(len(gradients[0]), requires_grad=True)
    optimizer = torch.optim.Adam([weights], lr=lr)
    for gradient in gradients:
        weights.grad = torch.tensor(gradient)
        optimizer.step()
        with torch.no_grad():
            weights.mul_(len(weights) / weights.sum())
    return weights.detach().tolist()


def test_gradnorm_raises_the_weight_of_the_task_with_the_smaller_gradient():
    method = weighting.create("gradnorm", 2, lr=0.025)
    # G = (2, 20), equal loss ratios: target mean(G) = 11 for both; ∂L_grad/∂w = (−2, +20)
    network_grad = gradnorm_step(method, scales=[1.0, 10.0], offsets=[0.0, 0.0])
    assert network_grad == pytest.approx(1 * 2 + 1 * 20)  # this step still used w = (1, 1)
    w0, w1 = method.weights.tolist()
    assert w0 > 1 > w1 and w0 + w1 == pytest.approx(2.0)
    assert [w0, w1] == pytest.approx(adam_reference([[-2.0, 20.0]], lr=0.025))
    assert method.loss_weights().tolist() == [1.0, 1.0]

    # the next step's network update uses the updated weights
    network_grad = gradnorm_step(method, scales=[1.0, 10.0], offsets=[0.0, 0.0])
    assert network_grad == pytest.approx(w0 * 2 + w1 * 20)


def test_gradnorm_raises_the_weight_of_the_task_that_trains_slower():
    method = weighting.create("gradnorm", 2, alpha=1.5, lr=0.025)
    gradnorm_step(method, scales=[1.0, 1.0], offsets=[0.0, 0.0])  # G = target: no move
    assert method.weights.tolist() == [1.0, 1.0]
    # equal G = (2, 2), but L̃ = (4, 1): r = (1.6, 0.4), target = 2·r^1.5 = (4.05, 0.51)
    gradnorm_step(method, scales=[1.0, 1.0], offsets=[3.0, 0.0])
    w0, w1 = method.weights.tolist()
    assert w0 > 1 > w1 and w0 + w1 == pytest.approx(2.0)
    assert [w0, w1] == pytest.approx(adam_reference([[0.0, 0.0], [-2.0, 2.0]], lr=0.025))
    assert method.initial_losses.tolist() == [1.0, 1.0]


def test_gradnorm_keeps_every_weight_positive_when_adam_overshoots_zero():
    # task 1 trains much faster (L̃ = (4, 1)): its target stays below its gradient norm, so every
    # step pushes its weight down, and with lr = 1 Adam steps straight past zero
    method = weighting.create("gradnorm", 2, lr=1.0, min_weight=1e-3)
    gradnorm_step(method, scales=[1.0, 1.0], offsets=[0.0, 0.0])
    task_1_weights = []
    for _ in range(20):
        gradnorm_step(method, scales=[1.0, 1.0], offsets=[3.0, 0.0])
        w0, w1 = method.weights.tolist()
        assert w0 + w1 == pytest.approx(2.0)
        task_1_weights.append(w1)
    assert min(task_1_weights) < 0.01  # Adam's step reached zero: the floor held it
    assert min(task_1_weights) > 0


def test_gradnorm_keeps_the_weights_summing_to_the_number_of_tasks():
    method = weighting.create("gradnorm", 3, lr=0.1)
    for step in range(4):
        train_step(method, seed=step)
        assert method.weights.sum().item() == pytest.approx(3.0)
    assert not torch.allclose(method.weights, torch.ones(3))


@pytest.mark.parametrize("name", METHODS)
def test_state_round_trips_and_training_continues_identically(name):
    method = weighting.create(name, 3, **METHODS[name])
    for step in range(3):
        train_step(method, seed=step)
    if name != "gcs":  # gcs keeps fixed weights
        assert not torch.allclose(method.weights, torch.ones(3))
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    restored = weighting.create(name, 3, **METHODS[name])
    restored.load_state_dict(torch.load(buffer))
    assert torch.equal(restored.weights, method.weights)
    for step in range(3, 5):
        got, expected = train_step(restored, seed=step), train_step(method, seed=step)
        assert all(torch.equal(g, e) for g, e in zip(got, expected, strict=True))
        assert torch.equal(restored.weights, method.weights)
        assert restored.logs() == pytest.approx(method.logs(), rel=0, abs=0, nan_ok=True)


@register
class Double(GradientMethod):
    name = "test-adaptive-double"

    def combine(self, grads):
        return 2 * grads.sum(dim=0)


@pytest.mark.parametrize("give_task_params", [False, True])
@pytest.mark.parametrize("name", METHODS)
def test_methods_compose_with_a_gradient_method(name, give_task_params):
    results = []
    for gradient in (None, "test-adaptive-double"):
        method = weighting.create(name, 3, gradient=gradient, **METHODS[name])
        method.epoch_end([1.0, 2.0, 3.0])
        method.epoch_end([0.5, 2.0, 3.5])
        shared, heads, losses = toy()
        task_params = params(heads) if give_task_params else None
        total = method.backward(losses, list(shared.parameters()), task_params=task_params)
        own = grads(method.parameters())
        results.append((total, grads(params([shared])), grads(params(heads)), own))
    (total, shared_grads, head_grads, own), (total2, shared_grads2, head_grads2, own2) = results
    assert torch.allclose(total, total2)
    assert all(torch.allclose(2 * g, g2) for g, g2 in zip(shared_grads, shared_grads2, strict=True))
    assert all(torch.allclose(g, g2) for g, g2 in zip(head_grads, head_grads2, strict=True))
    assert all(torch.allclose(g, g2) for g, g2 in zip(own, own2, strict=True))
    assert len(own) == (1 if name == "uncertainty" else 0)
