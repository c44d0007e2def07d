"""Sample-efficiency metrics of a return-vs-steps curve (steps ascending, NaN before any episode
has finished)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _finite(steps: Sequence[float], returns: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    steps, returns = np.asarray(steps, dtype=float), np.asarray(returns, dtype=float)
    if steps.shape != returns.shape or steps.ndim != 1:
        raise ValueError(
            f"steps and returns must be 1-D of one length: {steps.shape}, {returns.shape}"
        )
    if np.any(np.diff(steps) <= 0):
        raise ValueError("steps must be strictly increasing")
    keep = np.isfinite(returns)
    return steps[keep], returns[keep]


def steps_to_threshold(steps: Sequence[float], returns: Sequence[float], threshold: float) -> float:
    """The first step at which the return reaches ``threshold``; NaN if it never does."""
    steps, returns = _finite(steps, returns)
    reached = np.flatnonzero(returns >= threshold)
    return float(steps[reached[0]]) if len(reached) else math.nan


def area_under_curve(steps: Sequence[float], returns: Sequence[float]) -> float:
    """The normalised area under the curve: the trapezoid integral of the return over the steps
    divided by the span of steps, i.e. the mean return over training (NaN with < 2 points)."""
    steps, returns = _finite(steps, returns)
    if len(steps) < 2:
        return math.nan
    area = float(np.sum((returns[1:] + returns[:-1]) / 2 * np.diff(steps)))
    return area / float(steps[-1] - steps[0])
