"""Algorithmic minimum cost of a training step, counted in passes of the main network.

Every method and weighting states what one step of the main network needs at the least (the
benchmark divides the measured time by it). The units are passes of a network the size of the
main network over one training batch (B_T images):

- ``forward``: a forward pass that keeps the autograd graph;
- ``backward``: the backward pass of one loss through the whole network (every head and the trunk);
- ``task_backward``: the backward of a single task's loss to the shared parameters (the trunk and
  that task's head), as needed for per-task gradients;
- ``inference``: a forward pass without autograd.

Passes over other batch sizes count pro rata (256 images = 2.56 passes at B_T = 100); networks that
mirror the main network (MAXL's label network, RL-AUX's agent) count as the main network. A double
backward (a Hessian-vector product through a gradient's graph) counts as one forward and one
backward, the usual cost of Pearlmutter's trick.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class Passes:
    """A number of each kind of pass (see the module doc); add them and scale them."""

    forward: float = 0.0
    backward: float = 0.0
    task_backward: float = 0.0
    inference: float = 0.0

    def __add__(self, other: Passes) -> Passes:
        return Passes(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __mul__(self, factor: float) -> Passes:
        return Passes(*(getattr(self, f.name) * factor for f in fields(self)))

    __rmul__ = __mul__

    def seconds(self, pass_times: dict[str, float]) -> float:
        """The time these passes take at ``pass_times`` (seconds per pass, by kind)."""
        return sum(count * pass_times[kind] for kind, count in asdict(self).items() if count)

    def describe(self) -> str:
        """E.g. ``1 forward + 3 task_backward``."""
        parts = [f"{count:g} {kind}" for kind, count in asdict(self).items() if count]
        return " + ".join(parts) or "nothing"


TRAINING_STEP = Passes(forward=1, backward=1)
