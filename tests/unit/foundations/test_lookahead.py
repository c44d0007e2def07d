"""The functional look-ahead: the virtual step is the optimiser's real step, and the central
difference is the directional derivative it approximates."""

import pytest
import torch

from auxbench.foundations.lookahead import (
    SGDSettings,
    central_difference,
    gradients,
    virtual_step,
)


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.9, 5e-3)])
def test_the_virtual_step_is_the_step_sgd_takes(momentum, weight_decay):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum, weight_decay=weight_decay)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    for step in range(3):  # the first step has no momentum buffer; the later ones do
        params = {name: p.detach().clone() for name, p in model.named_parameters()}
        loss = torch.nn.functional.cross_entropy(model(x), y)
        grads = gradients(loss, dict(model.named_parameters()), retain_graph=True)
        settings = SGDSettings.of(sgd, dict(model.named_parameters()))
        assert (settings.lr, settings.momentum, settings.weight_decay) == (
            0.1,
            momentum,
            weight_decay,
        )
        has_buffer = [b is not None for b in settings.momentum_buffers.values()]
        assert all(has_buffer) == (step > 0 and momentum > 0)
        ahead = virtual_step(params, grads, settings)
        sgd.zero_grad()
        loss.backward()
        sgd.step()
        for name, p in model.named_parameters():
            torch.testing.assert_close(ahead[name], p.detach(), rtol=1e-6, atol=1e-7)


def test_the_virtual_step_carries_the_graph_for_a_second_order_hypergradient():
    theta = {"w": torch.tensor([1.0, -2.0], requires_grad=True)}
    phi = torch.tensor(0.5, requires_grad=True)
    grads = gradients((phi * theta["w"] ** 2).sum(), theta, create_graph=True)
    ahead = virtual_step(theta, grads, SGDSettings(lr=0.1))
    (dphi,) = torch.autograd.grad(ahead["w"].sum(), phi)
    # w' = w − 0.1 · 2φw, so dΣw'/dφ = −0.2 Σw
    assert float(dphi) == pytest.approx(-0.2 * (1.0 - 2.0))


def test_gradients_are_zero_for_parameters_the_loss_does_not_use():
    used, unused = torch.ones(2, requires_grad=True), torch.ones(3, requires_grad=True)
    grads = gradients((used * 3).sum(), {"used": used, "unused": unused})
    assert grads["used"].tolist() == [3.0, 3.0] and grads["unused"].tolist() == [0.0] * 3


def test_the_central_difference_is_minus_lr_times_the_directional_derivative():
    a = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    theta = {"w": torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64), "fixed": a.clone()}
    direction = {"w": torch.tensor([1.0, 0.5, -2.0], dtype=torch.float64)}

    def f(params):  # a quadratic: the central difference is exact up to rounding
        return (a * params["w"] ** 2).sum() + params["fixed"].sum()

    got = central_difference(f, theta, direction, scale=0.01, lr=0.1)
    expected = -0.1 * float((2 * a * theta["w"] * direction["w"]).sum())
    assert float(got) == pytest.approx(expected, rel=1e-9)
