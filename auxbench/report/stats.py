"""Summary statistics over seeds: mean, standard deviation and a t-based 95% confidence interval."""

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


def summarise(runs: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """One row per group of ``by``: mean, std, 95% CI half-width and number of seeds of ``value``."""
    grouped = runs.groupby(by, dropna=False)[value]
    table = grouped.agg(mean="mean", std="std", n="count")
    table["ci95"] = grouped.apply(confidence_halfwidth)
    return table.reset_index()
