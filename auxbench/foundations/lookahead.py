"""The functional look-ahead shared by everything that differentiates through a training step:
MAXL's label generator (``maxl``, ``maxl-fo``, ``wa-maxl``), Auto-λ's task weights, and the
trainer that describes its optimiser to them.

One virtual step of SGD with momentum and weight decay, as ``torch.optim.SGD`` takes it (no
dampening, no Nesterov)::

    θ' = θ − lr · (g + wd · θ + momentum · buf)

where ``buf`` is the optimiser's momentum buffer (absent on its first step, when SGD uses ``g``
alone). ``virtual_step`` builds θ' from any tensors: with ``g`` computed with ``create_graph``
the result carries the graph (MAXL's exact second-order hypergradient); with detached inputs it is
a plain update (Auto-λ).

The central finite-difference hypergradient of DARTS, MAXL's first-order variant and Auto-λ
(its Eq. 7): θ' depends on a meta-parameter φ only through ``g = ∇θ L(θ, φ)``, so with
``d = ∇θ' L_meta(θ')`` and ``ε = scale / ‖d‖``::

    ∂ L_meta(θ') / ∂φ = −lr · ∇φ (∇θ L(θ, φ) · d)
                      ≈ −lr · ∇φ (L(θ + εd, φ) − L(θ − εd, φ)) / 2ε

``central_difference`` returns ``−lr · (f(θ + εd) − f(θ − εd)) / 2ε`` for any ``f`` (a scalar
whose φ-gradient is wanted, or a vector of task losses). Momentum and weight decay change ``d``
(through θ') but not this formula, since neither depends on φ.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class SGDSettings:
    """What a virtual step needs of the real optimiser: its lr, momentum and weight decay, and the
    momentum buffers by parameter name (None, or a missing name, where it has none yet)."""

    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    momentum_buffers: Mapping[str, torch.Tensor | None] | None = None

    @classmethod
    def of(
        cls, optimizer: torch.optim.Optimizer, named_params: Mapping[str, torch.Tensor]
    ) -> SGDSettings:
        """The settings of ``optimizer``'s first parameter group (that of the network) and its
        momentum buffers for ``named_params``."""
        group = optimizer.param_groups[0]
        return cls(
            lr=group["lr"],
            momentum=group.get("momentum", 0.0),
            weight_decay=group.get("weight_decay", 0.0),
            momentum_buffers={
                name: optimizer.state.get(p, {}).get("momentum_buffer")
                for name, p in named_params.items()
            },
        )


def virtual_step(params: Params, grads: Mapping[str, torch.Tensor], sgd: SGDSettings) -> Params:
    """θ' = θ − lr (g + wd · θ + momentum · buf) for every parameter in ``grads``; the others are
    returned as they are. Differentiable in ``params`` and ``grads`` (see the module doc)."""
    buffers = sgd.momentum_buffers or {}
    ahead = dict(params)
    for name, grad in grads.items():
        step = grad + sgd.weight_decay * params[name]
        if buffers.get(name) is not None:
            step = step + sgd.momentum * buffers[name]
        ahead[name] = params[name] - sgd.lr * step
    return ahead


def gradients(
    loss: torch.Tensor,
    params: Mapping[str, torch.Tensor],
    create_graph: bool = False,
    retain_graph: bool | None = None,
) -> Params:
    """∇ ``loss`` with respect to each of ``params`` (zeros where it does not depend on one);
    ``create_graph`` to differentiate through them, ``retain_graph`` to backward ``loss`` again."""
    grads = torch.autograd.grad(
        loss,
        list(params.values()),
        create_graph=create_graph,
        retain_graph=retain_graph,
        materialize_grads=True,
    )
    return dict(zip(params, grads, strict=True))


def central_difference(
    f: Callable[[Params], torch.Tensor],
    params: Params,
    direction: Mapping[str, torch.Tensor],
    scale: float,
    lr: float,
) -> torch.Tensor:
    """``−lr (f(θ + εd) − f(θ − εd)) / 2ε`` with ε = ``scale`` / ‖d‖ (d = ``direction``, moving
    only the parameters it names; see the module doc)."""
    norm = torch.linalg.vector_norm(torch.cat([d.reshape(-1) for d in direction.values()]))
    eps = scale / norm.clamp_min(torch.finfo(norm.dtype).tiny)

    def moved(by: torch.Tensor) -> Params:
        shifted = dict(params)
        for name, d in direction.items():
            shifted[name] = params[name] + by * d
        return shifted

    return -lr * (f(moved(eps)) - f(moved(-eps))) / (2 * eps)
