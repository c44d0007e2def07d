import pytest
import torch
from torch import nn

from auxbench import weighting
from auxbench.weighting import GradientMethod, register


def toy(seed=0):
    """A shared layer with two heads: three task losses (two on head a, one on head b)."""
    torch.manual_seed(seed)
    shared, head_a, head_b = nn.Linear(4, 3), nn.Linear(3, 1), nn.Linear(3, 1)
    x = torch.randn(16, 4)
    features = torch.tanh(shared(x))
    a, b = head_a(features).squeeze(1), head_b(features).squeeze(1)
    losses = [(a - 1).pow(2).mean(), (b + 1).pow(2).mean(), a.pow(2).mean()]
    return shared, [head_a, head_b], losses


def grads(modules):
    return [p.grad.clone() for m in modules for p in m.parameters()]


def test_fixed_backward_equals_the_weighted_sum():
    shared, heads, losses = toy()
    method = weighting.create("fixed", 3, primary=[0], lam=0.5)
    assert method.weights.tolist() == [1.0, 0.5, 0.5]
    total = method.backward(losses, list(shared.parameters()))
    got = grads([shared, *heads])
    shared, heads, losses = toy()
    (losses[0] + 0.5 * losses[1] + 0.5 * losses[2]).backward()
    expected = grads([shared, *heads])
    assert all(torch.allclose(g, e) for g, e in zip(got, expected, strict=True))
    assert total.item() == pytest.approx((losses[0] + 0.5 * losses[1] + 0.5 * losses[2]).item())


@pytest.mark.parametrize("name", ["fixed", "uncertainty", "dwa", "gcs", "gradnorm", "olaux"])
def test_weightings_ask_for_no_extra_data_and_ignore_extra_losses(name):
    """``extra_losses`` changes nothing for a method that did not ask for it
    (``alignment_batches() == 0``); a list of the wrong length is refused."""
    results = []
    for extra in (None, "given"):
        shared, heads, losses = toy()
        method = weighting.create(name, 3)
        assert method.alignment_batches() == 0
        extra_losses = [2 * loss for loss in toy(seed=1)[2]] if extra else None
        method.backward(losses, list(shared.parameters()), extra_losses=extra_losses)
        results.append((grads([shared, *heads]), method.weights.clone()))
    (plain, plain_weights), (given, given_weights) = results
    assert torch.equal(plain_weights, given_weights)
    assert all(torch.equal(g, e) for g, e in zip(plain, given, strict=True))
    shared, heads, losses = toy()
    with pytest.raises(ValueError, match="expects 3 extra_losses"):
        weighting.create(name, 3).backward(
            losses, list(shared.parameters()), extra_losses=losses[:2]
        )


@register
class Halve(GradientMethod):
    name = "test-halve"

    def combine(self, grads):
        return 0.5 * grads.sum(dim=0)


@pytest.mark.parametrize("give_task_params", [False, True])
def test_a_gradient_method_replaces_only_the_shared_gradient(give_task_params):
    shared, heads, losses = toy()
    method = weighting.create("fixed", 3, gradient="test-halve")
    task_params = [p for h in heads for p in h.parameters()] if give_task_params else None
    method.backward(losses, list(shared.parameters()), task_params=task_params)
    got_shared, got_heads = grads([shared]), grads(heads)
    shared, heads, losses = toy()
    sum(losses).backward()
    assert all(torch.allclose(g, 0.5 * e) for g, e in zip(got_shared, grads([shared]), strict=True))
    assert all(torch.allclose(g, e) for g, e in zip(got_heads, grads(heads), strict=True))


def test_state_round_trips_and_names_are_checked():
    method = weighting.create("fixed", 2, weights=[1.0, 0.25])
    other = weighting.create("fixed", 2)
    other.load_state_dict(method.state_dict())
    assert other.weights.tolist() == [1.0, 0.25]
    with pytest.raises(ValueError, match="unknown weighting 'nope'"):
        weighting.create("nope", 2)
    with pytest.raises(ValueError, match="unknown gradient method"):
        weighting.create("fixed", 2, gradient="nope")
    with pytest.raises(ValueError, match="primary"):
        weighting.create("fixed", 2, primary=[2])
    with pytest.raises(ValueError, match="expects 2 losses"):
        method.backward([torch.zeros((), requires_grad=True)], [])


@pytest.mark.parametrize("name, settings", [("olaux", {"log_losses": False}), ("gradnorm", {})])
def test_per_task_gradients_are_reused_for_the_step(name, settings):
    """The step's shared gradient is assembled from the per-task gradients ``update`` computed:
    the same gradient as a plain backward of Σ wᵢLᵢ, with one pass per task through the trunk."""
    torch.manual_seed(0)
    trunk, heads = nn.Linear(4, 3), nn.ModuleList(nn.Linear(3, 1) for _ in range(3))
    x = torch.randn(8, 4)
    passes = []
    trunk.weight.register_hook(lambda grad: passes.append(1))
    method = weighting.create(name, 3, primary=[0], **settings)
    features = torch.tanh(trunk(x))
    losses = [(head(features) - k).pow(2).mean() for k, head in enumerate(heads)]
    used = method.loss_weights().clone()
    method.backward(losses, list(trunk.parameters()), task_params=list(heads.parameters()))
    assert len(passes) == 3
    reused = [p.grad.clone() for p in [*trunk.parameters(), *heads.parameters()]]

    trunk.zero_grad(), heads.zero_grad()
    features = torch.tanh(trunk(x))
    losses = [(head(features) - k).pow(2).mean() for k, head in enumerate(heads)]
    sum(w * loss for w, loss in zip(used, losses, strict=True)).backward()
    plain = [p.grad for p in [*trunk.parameters(), *heads.parameters()]]
    for got, expected in zip(reused, plain, strict=True):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("log_losses", [True, "auxiliary"])
def test_fixed_log_losses_balances_the_logged_losses(log_losses):
    theta = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    # L0 = |θ|² (∇ = (2, 0), ∇log = (2, 0)); L1 = exp θ₁ (∇log = (0, 1)); L2 = exp(θ₀ + θ₁)
    # (∇log = (1, 1)); with weights 1, logging L0 or not gives the same gradient at θ = (1, 0)
    losses = [theta.pow(2).sum(), theta[1].exp(), theta.sum().exp()]
    method = weighting.create("fixed", 3, log_losses=log_losses)
    total = method.backward(losses, [theta])
    logged_primary = 0.0 if log_losses is True else 1.0
    assert total.item() == pytest.approx(logged_primary + 0.0 + 1.0)
    assert theta.grad.tolist() == pytest.approx([2.0 + 1.0, 1.0 + 1.0])
    assert method.weights.tolist() == [1.0, 1.0, 1.0]


def test_fixed_log_losses_leaves_the_primary_loss_unlogged_when_asked():
    theta = torch.tensor([2.0], requires_grad=True)
    losses = [-3.0 * theta.sum(), theta.pow(2).sum()]  # a negative primary loss, as A2C's can be
    method = weighting.create("fixed", 2, log_losses="auxiliary")
    method.backward(losses, [theta])
    # ∇(−3θ) + ∇ log θ² = −3 + 2/θ
    assert theta.grad.item() == pytest.approx(-3.0 + 1.0)
    with pytest.raises(ValueError, match="positive losses, got -6.0 for task 0"):
        weighting.create("fixed", 2, log_losses=True).backward(losses, [theta])
    with pytest.raises(ValueError, match="log_losses must be"):
        weighting.create("fixed", 2, log_losses="primary")
