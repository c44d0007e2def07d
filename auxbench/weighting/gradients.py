"""Gradient methods: PCGrad, CAGrad and GradDrop combine the task gradients on shared parameters.

Each method gets the (tasks, n) matrix whose row gᵢ is the gradient of the i-th *weighted* loss
wᵢLᵢ on the shared parameters, so it composes with any weighting (as in Table 5 of the Auto-λ
paper), and returns one (n,) direction on the scale of the plain sum Σᵢ gᵢ.

``pcgrad``: Yu et al. 2020, "Gradient Surgery for Multi-Task Learning". For each task i, gᵢ'
starts at gᵢ and, for every other task j in a random order, whenever gᵢ'·gⱼ < 0 it is projected
onto the normal plane of the original gⱼ: gᵢ' ← gᵢ' − (gᵢ'·gⱼ / ‖gⱼ‖²) gⱼ. The direction is Σᵢ gᵢ'.

``cagrad``: Liu et al. 2021, "Conflict-Averse Gradient Descent for Multi-task Learning". With
g₀ = (1/K) Σᵢ gᵢ and √φ = c‖g₀‖, the update d maximises the worst task's improvement minᵢ gᵢ·d
within the ball ‖d − g₀‖ ≤ √φ. Its dual is

    min over w in the simplex of F(w) = g_w·g₀ + √φ ‖g_w‖,    g_w = Σᵢ wᵢ gᵢ,

and d = g₀ + (√φ / ‖g_w‖) g_w. The direction returned is K d / (1 + c) (see ``CAGrad``).

``graddrop``: Chen et al. 2020, "Just Pick a Sign: Optimizing Deep Multitask Models with Gradient
Sign Dropout". Per coordinate, the sign purity is P = ½(1 + Σᵢ gᵢ / Σᵢ |gᵢ|) (0 where every gᵢ is
0) and U ~ Uniform(0, 1); the positive components are kept where P > U, the negative ones
elsewhere, and the direction is the sum of the kept components. The paper drops gradients at a
layer of activations; here it acts on the gradients of the shared parameters themselves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from auxbench.weighting.base import GradientMethod, register

# CAGrad's simplex problem: projected gradient descent with backtracking, at most this many steps
CAGRAD_STEPS = 500
CAGRAD_HALVINGS = 60  # step-size halvings per step before a step is taken anyway
CAGRAD_TOLERANCE = 1e-12  # stop once no weight moves by more than this


class SeededMethod(GradientMethod):
    """A gradient method drawing its randomness from its own generator, seeded with ``seed``; the
    generator's state is part of ``state_dict`` so that a restored method continues identically.
    Draws are made on the CPU, so a seed gives the same draws whatever device the gradients are on.
    """

    def __init__(self, seed: int = 0):
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"{self.name}: seed must be an integer >= 0, got {seed!r}")
        self.generator = torch.Generator().manual_seed(seed)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" not in state:
            raise ValueError(f"{self.name}: the state has no 'generator' to restore")
        self.generator.set_state(state["generator"])


def project_conflicts(grad: torch.Tensor, others: Iterable[torch.Tensor]) -> torch.Tensor:
    """``grad`` after PCGrad's surgery against each of ``others`` in turn: whenever the current
    vector conflicts with one (negative inner product), its component along that one is removed."""
    projected = grad
    for other in others:
        dot, norm_sq = projected @ other, other @ other
        conflict = (dot < 0) & (norm_sq > 0)  # a zero (or underflowing) gradient is skipped
        projected = projected - torch.where(conflict, dot / norm_sq, 0.0) * other
    return projected


@register
class PCGrad(SeededMethod):
    """PCGrad: Σᵢ gᵢ', each gᵢ' being gᵢ projected away from the other tasks' gradients it
    conflicts with, visited in a random order drawn per task from the method's generator.

    Each projection can only shorten the vector, so ‖gᵢ'‖ ≤ ‖gᵢ‖. With two tasks gᵢ'·gⱼ ≥ 0; with
    more, only the last projection is sure to hold: gᵢ' does not conflict with the last task of its
    order, but a later projection can bring back a conflict with an earlier one (or with gᵢ).
    """

    name = "pcgrad"
    description = "PCGrad: project each task gradient off the others it conflicts with (Yu et al.)"

    def combine(self, grads: torch.Tensor) -> torch.Tensor:
        n_tasks = grads.shape[0]
        total = torch.zeros_like(grads[0])
        for i in range(n_tasks):
            order = torch.randperm(n_tasks, generator=self.generator).tolist()
            total += project_conflicts(grads[i], (grads[j] for j in order if j != i))
        return total


def project_to_simplex(vector: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of a 1-D ``vector`` onto the probability simplex (the sort-based
    algorithm: subtract the threshold that makes the positive part sum to 1)."""
    descending = vector.sort(descending=True).values
    excess = descending.cumsum(0) - 1
    ranks = torch.arange(1, len(vector) + 1, dtype=vector.dtype)
    support = int((descending - excess / ranks > 0).sum())  # entries that stay positive
    return (vector - excess[support - 1] / support).clamp(min=0)


def conflict_averse_weights(gram: torch.Tensor, c: float) -> torch.Tensor:
    """The w on the simplex minimising CAGrad's dual F(w) = g_w·g₀ + c‖g₀‖‖g_w‖, given only the
    (tasks, tasks) Gram matrix ``gram[i, j] = gᵢ·gⱼ``: g_w·g₀ = wᵀG1/K, ‖g₀‖² = 1ᵀG1/K² and
    ‖g_w‖² = wᵀGw.

    F is convex; it is minimised in float64 by projected gradient descent with a backtracking
    line search (Beck and Teboulle's sufficient-decrease test) from the uniform weights, at most
    ``CAGRAD_STEPS`` steps. Scaling G leaves the minimiser unchanged (F is homogeneous), so G is
    first normalised to a largest diagonal entry of 1. All-zero gradients give uniform weights.
    """
    gram = gram.detach().to("cpu", torch.float64)
    n_tasks = gram.shape[0]
    weights = torch.full((n_tasks,), 1.0 / n_tasks, dtype=torch.float64)
    largest = gram.diagonal().max()
    if largest <= 0:
        return weights
    gram = gram / largest
    dot_mean = gram.mean(dim=1)  # gᵢ·g₀
    radius = c * math.sqrt(max(dot_mean.mean().item(), 0.0))  # c‖g₀‖

    def objective(w: torch.Tensor) -> torch.Tensor:
        return w @ dot_mean + radius * (w @ gram @ w).clamp(min=0).sqrt()

    step = 1.0
    for _ in range(CAGRAD_STEPS):
        value = objective(weights)
        combined_norm = (weights @ gram @ weights).clamp(min=1e-30).sqrt()
        slope = dot_mean + radius * (gram @ weights) / combined_norm
        for _ in range(CAGRAD_HALVINGS):
            candidate = project_to_simplex(weights - step * slope)
            move = candidate - weights
            if objective(candidate) <= value + slope @ move + (move @ move) / (2 * step):
                break
            step /= 2
        weights = candidate
        if move.abs().max() < CAGRAD_TOLERANCE:
            break
        step *= 2  # let the step grow back where F is flatter
    return weights


@register
class CAGrad(GradientMethod):
    """CAGrad with c = ``alpha`` (default 0.4; c = 0 is plain gradient descent).

    Scale: the paper's d is on the scale of the mean gradient g₀, and its Algorithm 1 steps along d
    itself. d lies within c‖g₀‖ of g₀ and equals (1 + c) g₀ when all task gradients are equal, so
    the direction returned is K d / (1 + c): all-equal gradients give exactly their sum, as the
    other combinations do, and c = 0 gives the plain sum. (A 1/(1 + c²) rescale would not.)
    Where g_w = 0, d = g₀.
    """

    name = "cagrad"
    description = "CAGrad: conflict-averse direction near the mean gradient, c = 0.4 (Liu et al.)"

    def __init__(self, alpha: float = 0.4):
        if not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"cagrad: alpha (the paper's c) must be finite and >= 0, got {alpha}")
        self.alpha = float(alpha)

    def combine(self, grads: torch.Tensor) -> torch.Tensor:
        n_tasks = grads.shape[0]
        mean = grads.mean(dim=0)
        weights = conflict_averse_weights(grads @ grads.T, self.alpha).to(grads)
        combined = weights @ grads
        combined_norm = combined.norm()
        direction = mean  # the paper's d
        if combined_norm > 0:
            direction = mean + (self.alpha * mean.norm() / combined_norm) * combined
        return direction * (n_tasks / (1 + self.alpha))


@register
class GradDrop(SeededMethod):
    """GradDrop: per coordinate, only the positive or only the negative task components are kept,
    the positive ones with probability P (the sign purity), using the method's generator."""

    name = "graddrop"
    description = "GradDrop: keep one sign per coordinate, chosen by sign purity (Chen et al.)"

    def combine(self, grads: torch.Tensor) -> torch.Tensor:
        positive = grads.clamp(min=0).sum(dim=0)
        negative = grads.clamp(max=0).sum(dim=0)
        magnitude = positive - negative  # Σᵢ |gᵢ|
        purity = torch.where(magnitude > 0, 0.5 * (1 + (positive + negative) / magnitude), 0.0)
        uniform = torch.rand(grads.shape[1], generator=self.generator, dtype=grads.dtype)
        return torch.where(purity > uniform.to(grads.device), positive, negative)
