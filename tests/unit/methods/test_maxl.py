import copy

import pytest
import torch
import torch.nn.functional as F
from fixtures import synthetic_config

from auxbench.data import make_synthetic
from auxbench.foundations.errors import ConfigError
from auxbench.foundations.hierarchy import masked_softmax, negative_batch_entropy, sample_weights
from auxbench.foundations.passes import TRAINING_STEP, Passes
from auxbench.methods.maxl import FiniteDifference, SecondOrder
from auxbench.tasks import Batch
from auxbench.training import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(n_train=400, n_test=100, num_classes=4, aux_per_class=2, seed=0)


def config(**overrides):
    return synthetic_config(**{"method": "maxl", "width": 0.25, "epochs": 2, **overrides})


# --- the label network's pieces ----------------------------------------------------------------


def test_masked_softmax_is_a_distribution_on_the_label_block_only():
    generator = torch.Generator().manual_seed(0)
    psi, classes = 3, 4
    logits = 1e4 * torch.randn(64, classes * psi, generator=generator).sign()  # ±1e4 everywhere
    logits[:8] = 1e4  # ties at the top of a block
    logits[8:16] = -1e4
    logits.requires_grad_()
    labels = torch.randint(0, classes, (64,), generator=generator)
    probs = masked_softmax(logits, labels, psi)
    assert torch.isfinite(probs).all()
    assert torch.allclose(probs.sum(dim=1), torch.ones(64))
    block = torch.arange(classes * psi) // psi
    outside = block.unsqueeze(0) != labels.unsqueeze(1)
    assert (probs[outside] == 0).all()
    assert (probs[~outside] >= 0).all()
    (probs * torch.randn_like(probs)).sum().backward()
    assert torch.isfinite(logits.grad).all()
    assert (logits.grad[outside] == 0).all()
    small = torch.randn(5, classes * psi, generator=generator)
    expected = F.softmax(small.reshape(5, classes, psi)[torch.arange(5), labels[:5]], dim=1)
    within = masked_softmax(small, labels[:5], psi).reshape(5, classes, psi)
    assert torch.allclose(within[torch.arange(5), labels[:5]], expected)


def test_weight_mapping_spans_two_to_the_minus_five_to_two_to_the_five():
    weights = sample_weights(torch.tensor([0.0, 0.5, 1.0]))
    assert weights.tolist() == [1 / 32, 1.0, 32.0]
    grid = sample_weights(torch.linspace(0, 1, 11))
    assert (grid.diff() > 0).all()


def test_batch_entropy_term_is_minus_the_entropy_of_the_mean_and_finite_at_zero():
    uniform = torch.full((6, 4), 0.25)
    assert negative_batch_entropy(uniform).item() == pytest.approx(-torch.log(torch.tensor(4.0)))
    one_class = torch.tensor([[1.0, 0.0, 0.0, 0.0]] * 3, requires_grad=True)
    assert negative_batch_entropy(one_class).item() == 0.0
    negative_batch_entropy(one_class).backward()
    assert torch.isfinite(one_class.grad).all()


def test_method_params_are_validated():
    data = make_synthetic(n_train=40, n_test=10)
    with pytest.raises(ConfigError, match="interleave"):
        Trainer(config(method_params={"interleave": "batch"}), data)
    with pytest.raises(ConfigError, match="psi"):
        Trainer(config(method_params={"psi": 0}), data)


# --- hypergradients ----------------------------------------------------------------------------


@pytest.fixture
def float64_maxl(synthetic):
    """A ``maxl`` trainer in float64 after a few main steps (so BN stats and heads are not at
    their initial values), with one meta batch."""
    trainer = Trainer(config(), synthetic)
    trainer.model.double()
    trainer.method.label_net.double()
    trainer.train_split.images = trainer.train_split.images.double()
    for _, batch in zip(range(3), trainer.batches(), strict=False):
        trainer.step(batch)
    batch = next(trainer.batches())
    return trainer.method, batch.images[:20], batch.labels[:20]


def _objective(method, images, labels):
    """The generator objective computed with ordinary module calls on a copy of the main network
    and a copy of its optimiser, which takes its real step (momentum and weight decay included):
    L_pri(θ') + c Σ p̄ log p̄, θ' = SGD's step from θ on L_total(θ, φ)."""
    model = copy.deepcopy(method.trainer.model).train()
    real = method.trainer.optimizer
    group = real.param_groups[0]
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=group["lr"],
        momentum=group["momentum"],
        weight_decay=group["weight_decay"],
    )
    optimizer.load_state_dict(copy.deepcopy(real.state_dict()))
    primary_task, aux_task = method.trainer.tasks[0], method.aux_task
    batch = Batch(images, {"label": labels})
    generated = method.label_net(images, labels)
    with torch.enable_grad():
        outputs = model(images)
        total = primary_task.loss(outputs["primary"], batch)
        aux = aux_task.loss_with(outputs["aux"], generated.probs, generated.weights)
        total = total + method.aux_weight * aux
        grads = torch.autograd.grad(total, list(model.parameters()))
    for param, grad in zip(model.parameters(), grads, strict=True):
        param.grad = grad.detach()
    optimizer.step()
    primary = primary_task.loss(model(images)["primary"], batch)
    return float(primary + method.entropy_weight * negative_batch_entropy(generated.probs))


def _directional_difference(method, images, labels, direction, h=1e-5):
    params = list(method.label_net.parameters())
    values = []
    with torch.no_grad():
        for sign in (1, -1):
            for param, v in zip(params, direction, strict=True):
                param += sign * h * v
            values.append(_objective(method, images, labels))
            for param, v in zip(params, direction, strict=True):
                param -= sign * h * v
    return (values[0] - values[1]) / (2 * h)


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


@pytest.mark.parametrize("entropy_weight", [0.0, 0.2])
def test_exact_hypergradient_matches_central_finite_differences(float64_maxl, entropy_weight):
    method, images, labels = float64_maxl
    method.entropy_weight = entropy_weight
    grads, _ = method.generator_gradients(Batch(images, {"label": labels}))
    generator = torch.Generator().manual_seed(1)
    for _ in range(2):
        direction = [
            torch.randn(p.shape, generator=generator, dtype=p.dtype)
            for p in method.label_net.parameters()
        ]
        norm = _flat(direction).norm()
        direction = [v / norm for v in direction]  # a unit step: small enough to miss ReLU kinks
        analytic = float(_flat(grads) @ _flat(direction))
        numeric = _directional_difference(method, images, labels, direction)
        assert abs(analytic - numeric) < 1e-4 * abs(numeric), (analytic, numeric)


def test_first_order_agrees_with_exact_in_direction(float64_maxl):
    method, images, labels = float64_maxl
    method.entropy_weight = 0.0  # compare the hypergradients alone
    exact, _ = method.generator_gradients(Batch(images, {"label": labels}))
    method.hypergradient = FiniteDifference()
    approximate, _ = method.generator_gradients(Batch(images, {"label": labels}))
    cosine = F.cosine_similarity(_flat(exact), _flat(approximate), dim=0)
    assert cosine > 0.95
    method.hypergradient = SecondOrder()


def test_entropy_term_is_part_of_the_first_order_gradient(float64_maxl):
    method, images, labels = float64_maxl
    method.hypergradient = FiniteDifference()
    with_entropy, _ = method.generator_gradients(Batch(images, {"label": labels}))
    method.entropy_weight = 0.0
    without, _ = method.generator_gradients(Batch(images, {"label": labels}))
    params = list(method.label_net.parameters())
    entropy = 0.2 * negative_batch_entropy(method.label_net(images, labels).probs)
    expected = torch.autograd.grad(entropy, params)
    difference = _flat(with_entropy) - _flat(without)
    assert difference.norm() > 1e-3 * _flat(without).norm()
    assert torch.allclose(difference, _flat(expected), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("method_name", ["maxl", "maxl-fo", "wa-maxl"])
def test_generator_step_leaves_the_main_network_and_its_bn_stats_untouched(synthetic, method_name):
    trainer = Trainer(config(method=method_name), synthetic)
    trainer.model.train()
    batch = next(trainer.batches())
    before = copy.deepcopy(trainer.model.state_dict())
    label_before = copy.deepcopy(trainer.method.label_net.network.heads.state_dict())
    trainer.method.generator_step(batch)
    after = trainer.model.state_dict()
    assert any("running_mean" in name for name in after)
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert all(p.grad is None for p in trainer.model.parameters())
    label_after = trainer.method.label_net.network.heads.state_dict()
    assert any(not torch.equal(label_before[k], label_after[k]) for k in label_before)


# --- end to end --------------------------------------------------------------------------------


def test_maxl_generator_uses_most_auxiliary_classes(synthetic, tmp_path):
    params = {"gen_lr": 0.1}  # few, tiny epochs: a larger generator step than MAXL's 1e-3
    trainer = Trainer(config(epochs=3, method_params=params), synthetic)
    metrics = trainer.fit(tmp_path)
    history = trainer.history
    aux_classes = trainer.model.heads["aux"][-1].out_features
    assert aux_classes == 5 * synthetic.num_classes
    assert history[-1]["gen_classes_used"] > aux_classes / 2
    assert history[-1]["gen_entropy"] > history[0]["gen_entropy"]
    assert history[-1]["gen_entropy"] <= torch.log(torch.tensor(float(aux_classes))) + 1e-9
    assert metrics["test_acc_at_best_val"] > 0.5  # chance is 0.25

    saved = torch.load(tmp_path / "model.pt", weights_only=False)["method"]
    fresh = Trainer(config(method_params=params), synthetic)
    fresh.method.load_state_dict(saved)
    for name, value in trainer.method.label_net.state_dict().items():
        assert torch.equal(fresh.method.label_net.state_dict()[name], value)
    assert fresh.method.scheduler.last_epoch == 3


@pytest.mark.parametrize(
    ("method_name", "params"),
    [("maxl-fo", {}), ("wa-maxl", {}), ("maxl", {"interleave": "step", "meta_split": "val"})],
)
def test_variants_train_end_to_end_and_log_per_epoch(synthetic, method_name, params):
    trainer = Trainer(config(method=method_name, method_params=params), synthetic)
    trainer.fit()
    keys = {"gen_entropy", "gen_classes_used", "gen_meta_loss"}
    if method_name == "wa-maxl":
        keys |= {"aux_weight_mean", "aux_weight_std"}
    for row in trainer.history:
        assert keys <= set(row)
        assert all(torch.isfinite(torch.tensor(float(row[key]))) for key in keys)
    if method_name == "wa-maxl":
        assert 1 / 32 <= trainer.history[-1]["aux_weight_mean"] <= 32
        assert trainer.history[-1]["aux_weight_std"] > 0
        assert trainer.method.aux_task.fixed_weight(trainer.config.lam) == 1.0


def test_lambda_weights_the_auxiliary_loss_except_for_wa_maxl(synthetic):
    lam = {"maxl": 0.5, "maxl-fo": 0.5, "wa-maxl": 1.0}
    for name, expected in lam.items():
        trainer = Trainer(config(method=name, lam=0.5), synthetic)
        assert [task.fixed_weight(0.5) for task in trainer.tasks] == [1.0, expected]
        assert trainer.weighting.weights.tolist() == [1.0, expected]


@pytest.mark.parametrize(
    "method, params, generator_steps, generator",
    [
        ("maxl", {}, 1.0, Passes(forward=4, backward=4)),
        ("maxl-fo", {}, 1.0, Passes(forward=5, backward=3)),
        ("maxl", {"interleave": "step", "meta_split": "val"}, 1.0, Passes(forward=4, backward=4)),
        ("maxl", {"meta_split": "val"}, None, Passes(forward=4, backward=4)),
    ],
)
def test_minimum_passes_count_one_generator_step_per_step_or_a_validation_epoch(
    synthetic, method, params, generator_steps, generator
):
    trainer = Trainer(config(method=method, method_params=params), synthetic)
    if generator_steps is None:  # one generator epoch over validation per training epoch
        generator_steps = len(trainer.val_split) / len(trainer.train_split)
    expected = TRAINING_STEP + Passes(inference=1) + generator_steps * generator
    assert trainer.method.minimum_passes(TRAINING_STEP) == expected
