"""Confidence intervals over seeds: the Student-t interval of the mean."""

from __future__ import annotations

import math

import pandas as pd
from scipy import stats


def confidence_halfwidth(values: pd.Series, level: float = 0.95) -> float:
    """Half-width of the Student-t confidence interval of the mean (NaN for fewer than 2 values)."""
    n = int(values.count())
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
