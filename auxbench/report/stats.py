"""Statistics over seeds and settings: the Student-t interval of a mean, paired comparisons of two
settings run on the same seeds, Holm's adjustment of a family of p-values, and mean ranks with the
Friedman test and the Nemenyi critical difference.

The computations are the libraries': scipy (t quantiles, the paired t-test, the Wilcoxon
signed-rank test, the Friedman test, the studentized range), statsmodels (Holm) and
scikit-posthocs (the Nemenyi post-hoc test).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import scikit_posthocs
from scipy import stats
from statsmodels.stats.multitest import multipletests

# Below this many pairs the Wilcoxon signed-rank test is not reported (``paired_comparison``).
WILCOXON_MIN_PAIRS = 6


def confidence_halfwidth(values: pd.Series, level: float = 0.95) -> float:
    """Half-width of the Student-t confidence interval of the mean (NaN for fewer than 2 values)."""
    n = int(values.count())
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))


def paired_comparison(
    values: pd.Series, baseline: pd.Series, level: float = 0.95
) -> dict[str, float | int]:
    """Compare two per-seed series paired by their index (the seed): only seeds both have, with a
    value on both sides, count. Returns ``n_pairs``; ``mean_diff``, the mean of ``values −
    baseline`` (NaN without pairs); ``ci_low``/``ci_high``, the Student-t confidence interval of
    that mean; ``effect_size``, Cohen's d_z (the mean difference over the differences' standard
    deviation, ±inf when they are all equal and not 0); ``p_ttest``, the paired t-test's two-sided
    p (``scipy.stats.ttest_rel``); and ``p_wilcoxon``, the Wilcoxon signed-rank test's two-sided p
    (``scipy.stats.wilcoxon``). Everything but ``n_pairs`` and ``mean_diff`` is NaN for fewer than
    2 pairs. ``p_wilcoxon`` is NaN for fewer than ``WILCOXON_MIN_PAIRS`` (6) pairs: with n ≤ 5
    pairs the smallest two-sided exact p is 2 / 2ⁿ ≥ 0.0625, so the test could never reject at
    0.05 and its p would only look like evidence of no effect."""
    pairs = pd.concat({"values": values, "baseline": baseline}, axis=1, join="inner").dropna()
    differences = pairs["values"] - pairs["baseline"]
    n = len(differences)
    result: dict[str, float | int] = {
        "n_pairs": n,
        "mean_diff": float(differences.mean()) if n else math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "effect_size": math.nan,
        "p_ttest": math.nan,
        "p_wilcoxon": math.nan,
    }
    if n < 2:
        return result
    mean, sd = float(differences.mean()), float(differences.std(ddof=1))
    halfwidth = confidence_halfwidth(differences, level)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # equal differences: t is ±inf or NaN
        p_ttest = float(stats.ttest_rel(pairs["values"], pairs["baseline"]).pvalue)
        p_wilcoxon = (
            float(stats.wilcoxon(pairs["values"], pairs["baseline"]).pvalue)
            if n >= WILCOXON_MIN_PAIRS
            else math.nan
        )
    if sd > 0:
        effect = mean / sd
    else:
        effect = math.nan if mean == 0 else math.copysign(math.inf, mean)
    result.update(
        ci_low=mean - halfwidth,
        ci_high=mean + halfwidth,
        effect_size=effect,
        p_ttest=p_ttest,
        p_wilcoxon=p_wilcoxon,
    )
    return result


def holm(pvalues: Any) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values
    (``statsmodels.stats.multitest.multipletests(method="holm")``), in the given order. NaN
    p-values stay NaN and are not counted in the family."""
    pvalues = np.asarray(pvalues, dtype=float)
    adjusted = np.full(pvalues.shape, math.nan)
    present = ~np.isnan(pvalues)
    if present.any():
        adjusted[present] = multipletests(pvalues[present], method="holm")[1]
    return adjusted


def mean_ranks(table: pd.DataFrame) -> pd.Series:
    """Each column's mean rank over the rows (blocks) of ``table``: rank 1 is the highest value in
    a row, ties get the mean of the ranks they span."""
    return table.rank(axis=1, ascending=False, method="average").mean(axis=0)


def nemenyi_critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """The Nemenyi critical difference of mean ranks for ``k`` settings over ``n`` blocks:
    q_α·sqrt(k(k+1)/(6n)), with q_α the studentized range's upper-α quantile for k groups and
    infinite degrees of freedom over √2 (``scipy.stats.studentized_range``)."""
    q_alpha = stats.studentized_range.ppf(1 - alpha, k, math.inf) / math.sqrt(2)
    return float(q_alpha * math.sqrt(k * (k + 1) / (6 * n)))


def friedman_nemenyi(table: pd.DataFrame, alpha: float = 0.05) -> dict[str, Any]:
    """Mean ranks of the columns of ``table`` (rows: blocks, columns: settings, higher is
    better; ``mean_ranks``), the Friedman test over the blocks (``scipy.stats.
    friedmanchisquare``), the Nemenyi critical difference at ``alpha``
    (``nemenyi_critical_difference``) and the pairwise Nemenyi p-values
    (``scikit_posthocs.posthoc_nemenyi_friedman``). Rows with a missing value are dropped first.
    Returns ``n_blocks``, ``n_methods``, ``labels``, ``mean_ranks`` ({label: rank}),
    ``statistic``, ``p_value``, ``critical_difference`` and ``nemenyi_p`` ({label: {label: p}});
    the last four are None for fewer than 3 settings or 2 blocks, and ``statistic`` and
    ``p_value`` also where every block is one tie."""
    table = table.dropna(axis=0, how="any")
    n, k = table.shape
    if not n:
        table = table.iloc[:, :0]  # no blocks: nothing to rank
        k = 0
    ranks = mean_ranks(table)
    result: dict[str, Any] = {
        "n_blocks": int(n),
        "n_methods": int(k),
        "labels": [str(label) for label in table.columns],
        "mean_ranks": {str(label): float(rank) for label, rank in ranks.items()},
        "statistic": None,
        "p_value": None,
        "critical_difference": None,
        "nemenyi_p": None,
    }
    if k < 3 or n < 2:
        return result
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # every block tied: the statistic is NaN
        friedman = stats.friedmanchisquare(*(table[column].to_numpy() for column in table))
    nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(table.to_numpy())
    labels = result["labels"]
    result.update(
        statistic=_number(friedman.statistic),
        p_value=_number(friedman.pvalue),
        critical_difference=nemenyi_critical_difference(k, n, alpha),
        nemenyi_p={
            labels[i]: {labels[j]: float(nemenyi.iloc[i, j]) for j in range(k)} for i in range(k)
        },
    )
    return result


def _number(value: float) -> float | None:
    """``value`` as a float, None where it is NaN (JSON has no NaN)."""
    return None if math.isnan(value) else float(value)
