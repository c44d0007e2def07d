import copy
import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from auxbench import weighting
from auxbench.foundations.lookahead import SGDSettings
from auxbench.weighting import autolambda, olaux  # noqa: F401  (registers the methods)


class Adversarial(nn.Module):
    """OL-AUX §5.1: main L0 = |p − x|², helpful L1 = |p − x − 0.5|², harmful L2 = −L0."""

    def __init__(self, start=(1.0, 1.0)):
        super().__init__()
        self.point = nn.Parameter(torch.tensor(start, dtype=torch.float64))

    def forward(self, target):
        main = (self.point - target).pow(2).sum()
        return [main, (self.point - target - 0.5).pow(2).sum(), -main]


class TwoHeads(nn.Module):
    """A shared layer and two heads; tasks: head a → y, head b → z, head a → 0."""

    def __init__(self):
        super().__init__()
        self.shared, self.head_a, self.head_b = nn.Linear(3, 4), nn.Linear(4, 1), nn.Linear(4, 1)

    def forward(self, batch):
        x, y, z = batch
        features = torch.tanh(self.shared(x))
        a, b = self.head_a(features).squeeze(1), self.head_b(features).squeeze(1)
        return [(a - y).pow(2).mean(), (b - z).pow(2).mean(), a.pow(2).mean()]


def two_heads(seed=0):
    """The model and four batches (z is related to y, so task 1 can help task 0)."""
    torch.manual_seed(seed)
    model = TwoHeads().double()
    xs, ys = torch.randn(4, 8, 3, dtype=torch.float64), torch.randn(4, 8, dtype=torch.float64)
    return model, [(x, y, x.sum(dim=1) + y) for x, y in zip(xs, ys, strict=True)]


def sgd(model, lr=0.1, momentum=0.9, weight_decay=1e-2):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def meta_step(model, optimizer, batch, meta_batch):
    """``MetaStep`` exactly as a trainer builds it."""
    params = dict(model.named_parameters())
    return weighting.MetaStep(
        params=params,
        task_losses=lambda params, b: functional_call(model, params, (b,)),
        batch=batch,
        meta_batch=meta_batch,
        sgd=SGDSettings.of(optimizer, params),
    )


def train(method, model, optimizer, batches, steps, shared=None, task_params=None):
    """``steps`` training steps cycling through ``batches`` (meta batch: the next one)."""
    shared = list(model.parameters()) if shared is None else shared
    for step in range(steps):
        batch, after = batches[step % len(batches)], batches[(step + 1) % len(batches)]
        meta = meta_step(model, optimizer, batch, after) if method.needs_meta else None
        optimizer.zero_grad()
        method.backward(model(batch), shared, task_params=task_params, meta=meta)
        optimizer.step()


# --- both methods on a helpful and a harmful auxiliary task --------------------------------------


@pytest.mark.parametrize(
    ("name", "net_lr", "params"),
    [
        ("olaux", 0.05, {"beta": 0.05, "log_losses": False}),
        ("autolambda", 0.1, {"lr": 0.05}),
    ],
)
def test_the_harmful_task_is_weighted_down_and_the_primary_loss_beats_equal_weights(
    name, net_lr, params
):
    target = torch.zeros(2, dtype=torch.float64)

    def primary_loss_after_training(method):
        model = Adversarial()
        train(method, model, torch.optim.SGD(model.parameters(), lr=net_lr), [target], 40)
        return float(model(target)[0].detach())

    learned = weighting.create(name, 3, **params)
    start = learned.weights.clone()
    learned_loss = primary_loss_after_training(learned)
    equal_loss = primary_loss_after_training(weighting.create("fixed", 3))
    assert learned.weights[2] < start[2]
    assert learned.weights[2] < learned.weights[1]
    assert learned_loss < 0.2 * equal_loss


# --- OL-AUX ---------------------------------------------------------------------------------------


class Linear(nn.Module):
    """θ ∈ R²; L0 = |θ|²/2, L1 = c1·θ, L2 = c2·θ: gradients θ, c1 = (1, 0), c2 = (0, −1)."""

    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(2, dtype=torch.float64))

    def forward(self):
        t = self.theta
        return [t.pow(2).sum() / 2, t[0], -t[1]]


def test_olaux_moves_the_weights_every_horizon_steps_by_the_summed_dot_products():
    model = Linear()
    method = weighting.create("olaux", 3, beta=0.5, horizon=3, log_losses=False)
    # θ per step → ∇L0·c1 = θ₀, ∇L0·c2 = −θ₁
    thetas = [(1.0, 0.0), (0.0, 1.0), (2.0, 2.0), (1.0, 1.0), (1.0, 1.0), (1.0, 1.0)]
    weights, shared_grads = [], []
    for theta in thetas:
        with torch.no_grad():
            model.theta.copy_(torch.tensor(theta))
        model.theta.grad = None
        method.backward(model(), [model.theta])
        weights.append(method.weights.tolist())
        shared_grads.append(model.theta.grad.tolist())
    # sums over steps 1–3: c1 · (1 + 0 + 2) = 3, c2 · (0 − 1 − 2) = −3; steps 4–6: 3 and −3
    assert weights[:2] == [[1.0, 1.0, 1.0]] * 2
    assert weights[2] == pytest.approx([1.0, 1.0 + 0.5 * 3, 1.0 - 0.5 * 3])
    assert weights[3:5] == [weights[2]] * 2
    assert weights[5] == pytest.approx([1.0, 2.5 + 0.5 * 3, -0.5 - 0.5 * 3])  # no clamp at 0
    # step 3's backward still uses the old weights, step 4's the new ones: ∇ = θ + w1 c1 + w2 c2
    assert shared_grads[2] == pytest.approx([2.0 + 1.0, 2.0 - 1.0])
    assert shared_grads[3] == pytest.approx([1.0 + 2.5, 1.0 + 0.5])
    assert method.logs() == pytest.approx(
        {
            "weight_0": 1.0,
            "weight_1": 4.0,
            "weight_2": -2.0,
            "alignment_1": 1.0,
            "alignment_2": -1.0,
        }
    )


def test_olaux_log_balances_the_losses_and_sums_several_primary_tasks():
    theta = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    # log L0 = log |θ|² (∇ = 2θ/|θ|² = (2, 0)); log L1 = θ₁ (∇ = (0, 1)); log L2 = θ₀ + θ₁
    losses = [theta.pow(2).sum(), theta[1].exp(), theta.sum().exp()]
    method = weighting.create("olaux", 3, primary=[0, 1], beta=0.1, horizon=1)
    total = method.backward(losses, [theta])
    assert total.item() == pytest.approx(0.0 + 0.0 + 1.0)
    assert theta.grad.tolist() == pytest.approx([2.0 + 1.0, 1.0 + 1.0])
    assert method.weights.tolist() == pytest.approx([1.0, 1.0, 1.0 + 0.1 * (2.0 + 1.0)])
    with pytest.raises(ValueError, match="positive losses, got 0.0 for task 1"):
        method.backward([theta.pow(2).sum(), theta[1], theta.sum()], [theta])


def test_olaux_rejects_bad_settings():
    with pytest.raises(ValueError, match="beta"):
        weighting.create("olaux", 2, beta=0.0)
    with pytest.raises(ValueError, match="horizon"):
        weighting.create("olaux", 2, horizon=0)
    with pytest.raises(ValueError, match="mode must be 'nstep'"):
        weighting.create("olaux", 2, mode="smooth")


def extra_linear_losses(theta):
    """The ablation's extra losses on θ ∈ R²: L0 = |θ|²/2, L1 = 2θ₀ + θ₁, L2 = θ₀θ₁; gradients
    θ, (2, 1) and (θ₁, θ₀)."""
    return [theta.pow(2).sum() / 2, 2 * theta[0] + theta[1], theta[0] * theta[1]]


def test_olaux_ablation_moves_the_weights_every_horizon_steps_by_the_extra_dot_products():
    model = Linear()
    passes = []
    model.theta.register_hook(lambda grad: passes.append(1))
    method = weighting.create("olaux", 3, beta=0.5, horizon=3, log_losses=False, mode="ablation")
    asked, weights, shared_grads = [], [], []
    # θ per step: steps 1–2 would add θ₀ and −θ₁ (≠ 0) to an N-step sum; nothing accumulates here
    for step, theta in enumerate([(1.0, 2.0), (3.0, -1.0), (1.0, 3.0), (2.0, 2.0)], start=1):
        with torch.no_grad():
            model.theta.copy_(torch.tensor(theta))
        model.theta.grad = None
        asked.append(method.alignment_batches())
        extra = extra_linear_losses(model.theta) if asked[-1] else None
        passes.clear()
        method.backward(model(), [model.theta], extra_losses=extra)
        weights.append(method.weights.tolist())
        shared_grads.append(model.theta.grad.tolist())
        if step == 1:
            assert len(passes) == 1  # an ordinary step is one plain backward: no per-task pass
    assert asked == [0, 0, 3, 0]
    assert weights[:2] == [[1.0, 1.0, 1.0]] * 2
    # step 3 at θ = (1, 3): ∇L0 = (1, 3); ∇L0·(2, 1) = 5, ∇L0·(θ₁, θ₀) = ∇L0·(3, 1) = 6
    assert weights[2] == pytest.approx([1.0, 1.0 + 0.5 * 5, 1.0 + 0.5 * 6])
    assert weights[3] == weights[2]
    # step 3's backward uses the old weights: ∇ = θ + c1 + c2 = (1 + 1, 3 − 1); step 4 the new
    assert shared_grads[2] == pytest.approx([2.0, 2.0])
    assert shared_grads[3] == pytest.approx([2.0 + 3.5, 2.0 - 4.0])
    assert method.logs()["alignment_1"] == pytest.approx(5.0)
    assert method.logs()["alignment_2"] == pytest.approx(6.0)
    # steps 5 and 6: step 6 moves the weights again, and without extra losses it refuses
    method.backward(model(), [model.theta])
    assert method.alignment_batches() == 3
    model.theta.grad = None
    with pytest.raises(ValueError, match="step 6 moves the weights and needs extra_losses"):
        method.backward(model(), [model.theta])
    assert model.theta.grad is None and method.weights.tolist() == pytest.approx(weights[2])
    with pytest.raises(ValueError, match="expects 3 extra_losses"):
        method.backward(model(), [model.theta], extra_losses=extra_linear_losses(model.theta)[:2])


def test_olaux_ablation_logs_the_extra_losses_and_ignores_the_steps_own_alignment():
    theta = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    # the step's losses: log ∇ of task 1 = (1, 0) and task 2 = (0, 1), against log ∇L0 = (2, 0):
    # N-step alignments 2 and 0. The extra losses: L0 = |θ|² (∇log = (2, 0)), L1 = exp θ₁
    # (∇log = (0, 1)), L2 = exp(θ₀ + θ₁) (∇log = (1, 1)): alignments 0 and 2
    losses = [theta.pow(2).sum(), theta[0].exp(), theta[1].exp()]
    extra = [theta.pow(2).sum(), theta[1].exp(), theta.sum().exp()]
    method = weighting.create("olaux", 3, beta=0.1, horizon=1, mode="ablation")
    assert method.alignment_batches() == 1
    method.backward(losses, [theta], extra_losses=extra)
    assert method.weights.tolist() == pytest.approx([1.0, 1.0 + 0.1 * 0.0, 1.0 + 0.1 * 2.0])
    assert theta.grad.tolist() == pytest.approx([2.0 + 1.0, 0.0 + 1.0])  # old weights
    with pytest.raises(ValueError, match="extra_losses: log_losses needs positive losses"):
        method.backward(losses, [theta], extra_losses=[extra[0], theta[1], extra[2]])


def test_olaux_ablation_costs_the_plain_step_plus_the_extra_data_on_average():
    nstep = weighting.create("olaux", 3)
    ablation = weighting.create("olaux", 3, mode="ablation")
    assert nstep.minimum_passes().describe() == "1 forward + 3 task_backward"
    # per step: 1 forward + 1 backward; every 5th step 5 batches forward + 3 task backwards on them
    assert ablation.minimum_passes().describe() == "2 forward + 1 backward + 3 task_backward"
    assert nstep.alignment_batches() == 0


# --- Auto-λ ---------------------------------------------------------------------------------------


def exact_hypergradient(model, meta, lam, primary):
    """d/dλ Σ_{primary} Lᵢ(θ'(λ), meta batch), autograd through the virtual SGD step."""
    theta = {name: p.detach() for name, p in model.named_parameters()}

    def weighted(params, lam):
        losses = functional_call(model, params, (meta.batch,))
        return sum(w * loss for w, loss in zip(lam, losses, strict=True))

    def after_step(lam):
        grads = torch.func.grad(weighted)(theta, lam)
        sgd = meta.sgd
        ahead = {
            name: p
            - sgd.lr
            * (grads[name] + sgd.weight_decay * p + sgd.momentum * sgd.momentum_buffers[name])
            for name, p in theta.items()
        }
        losses = functional_call(model, ahead, (meta.meta_batch,))
        return sum(losses[i] for i in primary)

    return torch.func.grad(after_step)(lam)


def test_autolambda_finite_difference_matches_the_exact_hypergradient():
    model, batches = two_heads()
    optimizer = sgd(model)
    method = weighting.create("autolambda", 3, primary=[0], init=0.5)
    train(weighting.create("fixed", 3), model, optimizer, batches, 2)  # fills momentum buffers
    meta = meta_step(model, optimizer, batches[2], batches[3])
    assert all(buf is not None for buf in meta.sgd.momentum_buffers.values())

    got = method.hypergradient(meta)
    expected = exact_hypergradient(model, meta, method.weights.double(), method.primary)
    assert torch.linalg.vector_norm(got - expected) < 1e-3 * torch.linalg.vector_norm(expected)
    assert method.logs()["meta_loss"] > 0

    # the virtual step is the optimiser's real step on Σ λᵢ Lᵢ
    ahead = method.virtual_step(meta)
    optimizer.zero_grad()
    method.weighted_total(model(batches[2])).backward()
    optimizer.step()
    for name, p in model.named_parameters():
        assert torch.allclose(ahead[name], p.detach())


def test_autolambda_learns_every_weight_from_0_1_with_adam():
    model, batches = two_heads()
    method = weighting.create("autolambda", 3, lr=0.01)
    assert method.weights.tolist() == pytest.approx([0.1] * 3)
    meta = meta_step(model, sgd(model), batches[0], batches[1])
    hypergradient = method.hypergradient(meta)
    method.backward(model(batches[0]), list(model.shared.parameters()), meta=meta)
    # Adam's first step moves each weight by lr against the sign of its hypergradient
    expected = 0.1 - 0.01 * torch.sign(hypergradient).float()
    assert method.weights.tolist() == pytest.approx(expected.tolist(), abs=1e-6)
    with pytest.raises(ValueError, match="needs meta"):
        method.backward(model(batches[0]), list(model.shared.parameters()))


@pytest.mark.parametrize(
    ("setting", "value"), [("lr", 0.0), ("fd_scale", -1.0), ("init", -0.1), ("init", math.inf)]
)
def test_autolambda_rejects_bad_settings(setting, value):
    with pytest.raises(ValueError, match=setting):
        weighting.create("autolambda", 2, **{setting: value})


# --- both: checkpoints and gradient methods ------------------------------------------------------

SETTINGS = {"olaux": {"beta": 0.01, "horizon": 3}, "autolambda": {"lr": 0.01}}


@pytest.mark.parametrize("name", SETTINGS)
def test_state_round_trips_mid_run(name):
    model, batches = two_heads()
    optimizer = sgd(model)
    method = weighting.create(name, 3, **SETTINGS[name])
    train(method, model, optimizer, batches, 4)  # olaux: mid-horizon; autolambda: Adam state
    state = method.state_dict()

    twin_model = copy.deepcopy(model)
    twin_optimizer = sgd(twin_model)
    twin_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # buffers not shared
    twin = weighting.create(name, 3, **SETTINGS[name])
    twin.load_state_dict(state)
    assert twin.logs() == method.logs()

    train(method, model, optimizer, batches, 5)
    train(twin, twin_model, twin_optimizer, batches, 5)
    assert torch.equal(method.weights, twin.weights)
    assert method.logs() == twin.logs()
    for p, q in zip(model.parameters(), twin_model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(method.weights, state["weights"])  # the weights did move after saving


def train_ablation(method, model, optimizer, batches, steps, start=0):
    """``steps`` steps as ``train``, and when the method asks (``alignment_batches``) the extra
    losses on that many of the following batches taken together."""
    for step in range(start, start + steps):
        k = method.alignment_batches()
        extra = None
        if k:
            chosen = [batches[(step + j) % len(batches)] for j in range(1, k + 1)]
            extra = model(tuple(torch.cat(parts) for parts in zip(*chosen, strict=True)))
        optimizer.zero_grad()
        method.backward(
            model(batches[step % len(batches)]), list(model.parameters()), extra_losses=extra
        )
        optimizer.step()


def test_olaux_ablation_state_round_trips_mid_run():
    settings = {"beta": 0.01, "horizon": 3, "mode": "ablation"}
    model, batches = two_heads()
    optimizer = sgd(model)
    method = weighting.create("olaux", 3, **settings)
    train_ablation(method, model, optimizer, batches, 4)  # one update, then mid-horizon
    state = method.state_dict()
    assert state["mode"] == "ablation" and state["steps"] == 4
    moved = method.weights.clone()
    assert not torch.equal(moved, torch.ones(3))

    twin_model = copy.deepcopy(model)
    twin_optimizer = sgd(twin_model)
    twin_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    twin = weighting.create("olaux", 3, **settings)
    twin.load_state_dict(state)
    assert twin.logs() == method.logs() and twin.alignment_batches() == 0

    train_ablation(method, model, optimizer, batches, 2, start=4)  # step 6 moves the weights
    train_ablation(twin, twin_model, twin_optimizer, batches, 2, start=4)
    assert torch.equal(method.weights, twin.weights) and not torch.equal(method.weights, moved)
    for p, q in zip(model.parameters(), twin_model.parameters(), strict=True):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="state is of mode 'ablation'"):
        weighting.create("olaux", 3).load_state_dict(state)


@weighting.register
class CountingSum(weighting.GradientMethod):
    name = "test-meta-sum"

    def __init__(self):
        self.calls = 0

    def combine(self, grads):
        self.calls += 1
        return grads.sum(dim=0)


@pytest.mark.parametrize("name", SETTINGS)
def test_composes_with_a_gradient_method(name):
    runs = []
    for gradient in (None, "test-meta-sum"):
        model, batches = two_heads()
        method = weighting.create(name, 3, gradient=gradient, **SETTINGS[name])
        heads = [*model.head_a.parameters(), *model.head_b.parameters()]
        train(method, model, sgd(model), batches, 3, list(model.shared.parameters()), heads)
        runs.append((method, list(model.parameters())))
    (plain, plain_params), (composed, composed_params) = runs
    assert composed.gradient.calls == 3
    assert not torch.equal(composed.weights, weighting.create(name, 3, **SETTINGS[name]).weights)
    assert torch.allclose(plain.weights, composed.weights)
    for p, q in zip(plain_params, composed_params, strict=True):
        assert torch.allclose(p, q)
