import itertools

import pytest
import torch
from torch import nn
from torch.autograd import grad

import auxbench.weighting.gradients  # noqa: F401  (registers the methods)
from auxbench import weighting
from auxbench.weighting.gradients import (
    CAGrad,
    GradDrop,
    PCGrad,
    conflict_averse_weights,
    project_conflicts,
)

METHODS = ["pcgrad", "cagrad", "graddrop"]


def rows(*vectors):
    return torch.tensor(vectors, dtype=torch.float64)


# PCGrad


def test_pcgrad_projects_two_conflicting_gradients_onto_each_others_normal_plane():
    grads = rows([1.0, 0.0], [-1.0, 1.0])  # g1·g2 = -1: g1' = g1 + ½ g2, g2' = g2 + g1
    first, second = project_conflicts(grads[0], [grads[1]]), project_conflicts(grads[1], [grads[0]])
    assert torch.allclose(first, torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert torch.allclose(second, torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert first @ grads[1] >= 0 and second @ grads[0] >= 0
    assert torch.allclose(PCGrad().combine(grads), torch.tensor([0.5, 1.5], dtype=torch.float64))


def test_pcgrad_sums_gradients_that_do_not_conflict():
    grads = rows([1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [3.0, 1.0, -1.0])  # all inner products >= 0
    assert torch.equal(PCGrad().combine(grads), grads.sum(dim=0))


def test_pcgrad_with_more_tasks_only_the_last_projection_is_guaranteed():
    # the second projection brings back the conflict with the first: g' = (0.6, 0.3)
    g, first, second = rows([1.0, 0.0], [-1.0, 1.0], [0.5, -1.0])
    projected = project_conflicts(g, [first, second])
    assert torch.allclose(projected, torch.tensor([0.6, 0.3], dtype=torch.float64))
    assert projected @ first < 0 and projected @ second == pytest.approx(0.0)

    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        grads = torch.randn(4, 6, generator=generator, dtype=torch.float64)
        for order in itertools.permutations(range(1, 4)):
            projected = project_conflicts(grads[0], grads[list(order)])
            assert projected @ grads[order[-1]] >= -1e-12
            assert projected.norm() <= grads[0].norm() + 1e-12


def test_pcgrad_sums_one_projection_per_task_in_a_random_order():
    grads = rows([1.0, 0.0], [-1.0, 1.0], [0.5, -1.0])
    per_task = [
        [
            project_conflicts(grads[i], grads[list(order)])
            for order in itertools.permutations(others)
        ]
        for i, others in enumerate([[1, 2], [0, 2], [0, 1]])
    ]
    possible = [sum(choice) for choice in itertools.product(*per_task)]
    results = [PCGrad(seed=seed).combine(grads) for seed in range(20)]
    assert all(any(torch.allclose(r, p) for p in possible) for r in results)
    assert len({tuple(r.tolist()) for r in results}) > 1  # the order does change


# CAGrad


def dual_objective(grads, w, c):
    """F(w) = g_w·g₀ + c‖g₀‖‖g_w‖ for one w or a batch of them (rows), from the gradients."""
    mean, combined = grads.mean(dim=0), w @ grads
    return combined @ mean + c * mean.norm() * combined.norm(dim=-1)


def paper_direction(grads, w, c):
    """The paper's d = g₀ + (c‖g₀‖ / ‖g_w‖) g_w."""
    mean, combined = grads.mean(dim=0), w @ grads
    return mean + c * mean.norm() / combined.norm() * combined


@pytest.mark.parametrize(
    "grads",
    [
        rows([1.0, 0.2, 0.0], [-0.6, 1.0, 0.3]),  # conflicting: w ≈ (0.73, 0.27)
        rows([2.0, 1.0], [-1.0, 1.5]),  # conflicting: w ≈ (0.13, 0.87)
        rows([3.0, 0.0], [0.5, 0.1]),  # agreeing: w = (0, 1), on the boundary
    ],
)
def test_cagrad_solves_the_two_task_dual_and_scales_d(grads):
    c = 0.4
    grid = torch.linspace(0, 1, 100_001, dtype=torch.float64)
    values = dual_objective(grads, torch.stack([grid, 1 - grid], dim=1), c)
    w = conflict_averse_weights(grads @ grads.T, c)
    assert w.sum().item() == pytest.approx(1.0) and (w >= 0).all()
    assert w[0].item() == pytest.approx(grid[values.argmin()].item(), abs=1e-4)
    assert dual_objective(grads, w, c) <= values.min() + 1e-12

    d = paper_direction(grads, w, c)
    assert torch.allclose(CAGrad(alpha=c).combine(grads), 2 * d / (1 + c))
    mean = grads.mean(dim=0)
    assert (d - mean).norm().item() == pytest.approx(c * mean.norm().item())  # on the ball
    assert (grads @ d).min() >= (grads @ mean).min() - 1e-12  # the worst task gains no less


def test_cagrad_matches_a_grid_search_with_three_tasks():
    grads = rows([1.0, 0.2, 0.4], [-0.6, 1.0, 0.1], [-0.2, -0.9, 0.5])  # w ≈ (0.003, 0.44, 0.56)
    w = conflict_averse_weights(grads @ grads.T, 0.4)
    steps = torch.linspace(0, 1, 401, dtype=torch.float64)
    grid = torch.cartesian_prod(steps, steps)
    grid = grid[grid.sum(dim=1) <= 1]
    grid = torch.cat([grid, 1 - grid.sum(dim=1, keepdim=True)], dim=1)
    values = dual_objective(grads, grid, 0.4)
    assert torch.allclose(w, grid[values.argmin()], atol=2.5e-3)  # within a grid step
    assert dual_objective(grads, w, 0.4) <= values.min() + 1e-12


def test_cagrad_returns_the_sum_of_equal_gradients_and_the_plain_sum_without_c():
    equal = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64).expand(3, 3)
    assert torch.allclose(CAGrad().combine(equal), equal.sum(dim=0))
    grads = rows([1.0, 0.0], [-1.0, 1.0], [0.5, -1.0])
    assert torch.allclose(CAGrad(alpha=0.0).combine(grads), grads.sum(dim=0))


# GradDrop


def test_graddrop_keeps_one_sign_per_coordinate():
    grads = torch.randn(3, 500, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    result = GradDrop().combine(grads)
    positive, negative = grads.clamp(min=0).sum(dim=0), grads.clamp(max=0).sum(dim=0)
    assert ((result == positive) | (result == negative)).all()
    assert (result == positive).any() and (result == negative).any()


def test_graddrop_keeps_the_positive_sign_with_probability_the_sign_purity():
    grads = rows([3.0] * 20_000, [-1.0] * 20_000)  # P = ½(1 + 2/4) = 0.75
    kept_positive = (GradDrop().combine(grads) == 3.0).double().mean().item()
    assert kept_positive == pytest.approx(0.75, abs=0.02)
    agreeing = rows([1.0, -2.0, 0.0], [0.5, -1.0, 0.0])  # P = 1, 0 and 0: nothing is dropped
    assert torch.equal(GradDrop().combine(agreeing), agreeing.sum(dim=0))


# all methods


@pytest.mark.parametrize("name", ["pcgrad", "graddrop"])
def test_seeded_methods_reproduce_and_their_state_round_trips(name):
    grads = torch.randn(5, 40, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    method = weighting.create("fixed", 5, gradient=name, gradient_params={"seed": 7})
    first = method.gradient.combine(grads)
    assert torch.equal(first, weighting.GRADIENTS[name](seed=7).combine(grads))
    assert not torch.equal(first, weighting.GRADIENTS[name](seed=8).combine(grads))

    restored = weighting.create("fixed", 5, gradient=name, gradient_params={"seed": 8})
    restored.load_state_dict(method.state_dict())
    for _ in range(3):
        assert torch.equal(method.gradient.combine(grads), restored.gradient.combine(grads))
    with pytest.raises(ValueError, match="no 'generator'"):
        restored.gradient.load_state_dict({})


@pytest.mark.parametrize("name", METHODS)
def test_degenerate_inputs(name):
    method = weighting.GRADIENTS[name]()
    assert torch.equal(method.combine(torch.zeros(3, 4)), torch.zeros(4))
    single = torch.tensor([[1.0, -2.0, 0.0]])
    assert torch.allclose(method.combine(single), single[0])


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="alpha"):
        CAGrad(alpha=-0.1)
    with pytest.raises(ValueError, match="alpha"):
        CAGrad(alpha=float("nan"))
    with pytest.raises(ValueError, match="seed"):
        PCGrad(seed=1.5)
    with pytest.raises(ValueError, match="seed"):
        GradDrop(seed=-1)
    with pytest.raises(ValueError, match="seed"):
        weighting.create("fixed", 2, gradient="graddrop", gradient_params={"seed": "0"})


def toy():
    """A shared layer with two heads and three task losses, in float64."""
    torch.manual_seed(0)
    shared, head_a, head_b = (nn.Linear(4, 3), nn.Linear(3, 1), nn.Linear(3, 1))
    for module in (shared, head_a, head_b):
        module.double()
    x = torch.randn(8, 4, dtype=torch.float64)
    features = torch.tanh(shared(x))
    a, b = head_a(features).squeeze(1), head_b(features).squeeze(1)
    losses = [(a - 1).pow(2).mean(), (b + 1).pow(2).mean(), (a + b).pow(2).mean()]
    return shared, [head_a, head_b], losses


@pytest.mark.parametrize("name", METHODS)
def test_end_to_end_through_a_weighting(name):
    weights = [1.0, 0.5, 2.0]
    shared, heads, losses = toy()
    params, head_params = list(shared.parameters()), [p for h in heads for p in h.parameters()]
    task_grads = torch.stack(
        [
            torch.cat([g.reshape(-1) for g in grad(w * loss, params, retain_graph=True)])
            for w, loss in zip(weights, losses, strict=True)
        ]
    )
    total = sum(w * loss for w, loss in zip(weights, losses, strict=True))
    head_grads = grad(total, head_params, retain_graph=True)

    method = weighting.create("fixed", 3, gradient=name, weights=weights)
    method.backward(losses, params)
    expected = weighting.GRADIENTS[name]().combine(task_grads)  # same seed, same draws
    assert torch.allclose(torch.cat([p.grad.reshape(-1) for p in params]), expected)
    assert all(torch.allclose(p.grad, g) for p, g in zip(head_params, head_grads, strict=True))
