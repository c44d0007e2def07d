"""The statistics of auxbench.report.stats against values worked out by hand below."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.stats import norm

from auxbench.report.stats import (
    friedman_nemenyi,
    holm,
    mean_ranks,
    nemenyi_critical_difference,
    paired_comparison,
)

# Student-t 97.5% quantiles from a t table (2 and 3 degrees of freedom)
T_975 = {2: 4.302652729911275, 3: 3.182446305284263}
# The Nemenyi q_0.05 for k = 3 and k = 4 settings (Demšar 2006, table 5a; three decimals)
Q_005 = {3: 2.343, 4: 2.569}


def test_paired_comparison_of_four_seeds_by_hand():
    # seeds 0-3 on both sides, given in different orders; seed 9 only on one side (left out)
    values = pd.Series([0.80, 0.83, 0.81, 0.86, 0.99], index=[0, 1, 2, 3, 9])
    baseline = pd.Series([0.82, 0.80, 0.78, 0.80], index=[3, 2, 0, 1])
    result = paired_comparison(values, baseline)
    # differences by seed: 0.80-0.78, 0.83-0.80, 0.81-0.80, 0.86-0.82 = 0.02, 0.03, 0.01, 0.04
    mean = (0.02 + 0.03 + 0.01 + 0.04) / 4  # 0.025
    squares = 0.005**2 + 0.005**2 + 0.015**2 + 0.015**2  # deviations from the mean: 5e-4
    sd = math.sqrt(squares / 3)  # 0.0129099
    se = sd / math.sqrt(4)  # 0.0064550
    t = mean / se  # sqrt(15) = 3.8730
    assert t == pytest.approx(math.sqrt(15))
    # two-sided p of t with 3 degrees of freedom, from the closed-form t_3 CDF:
    # F(t) = 1/2 + (t/(√3(1 + t²/3)) + atan(t/√3))/π; here t²/3 = 5
    p = 2 * (0.5 - (math.sqrt(5) / 6 + math.atan(math.sqrt(5))) / math.pi)  # 0.030468
    assert result["n_pairs"] == 4
    assert result["mean_diff"] == pytest.approx(0.025)
    assert result["ci_low"] == pytest.approx(mean - T_975[3] * se)  # 0.004457
    assert result["ci_high"] == pytest.approx(mean + T_975[3] * se)  # 0.045543
    assert result["effect_size"] == pytest.approx(mean / sd)  # sqrt(15)/2 = 1.9365
    assert result["p_ttest"] == pytest.approx(p, rel=1e-6)
    assert math.isnan(result["p_wilcoxon"])  # 4 pairs: no Wilcoxon


def test_paired_comparison_with_one_pair_or_none_is_nan_not_an_error():
    one = paired_comparison(pd.Series([0.9, 0.8], index=[0, 1]), pd.Series([0.7], index=[1]))
    assert one["n_pairs"] == 1 and one["mean_diff"] == pytest.approx(0.1)
    assert all(math.isnan(one[key]) for key in ("ci_low", "ci_high", "effect_size", "p_ttest"))
    none = paired_comparison(pd.Series([0.9], index=[0]), pd.Series([0.7], index=[1]))
    assert none["n_pairs"] == 0 and math.isnan(none["mean_diff"])


def test_wilcoxon_needs_six_pairs():
    five = paired_comparison(pd.Series([0.9, 0.91, 0.92, 0.93, 0.94]), pd.Series([0.8] * 5))
    assert five["n_pairs"] == 5 and math.isnan(five["p_wilcoxon"])
    six = paired_comparison(pd.Series([0.81, 0.83, 0.86, 0.90, 0.95, 0.99]), pd.Series([0.8] * 6))
    # all six differences positive and distinct: W⁻ = 0, which 1 of the 2⁶ sign patterns gives;
    # the exact two-sided p is 2/64
    assert six["n_pairs"] == 6 and six["p_wilcoxon"] == pytest.approx(2 / 64)


def test_holm_by_hand_and_nan_left_out_of_the_family():
    # the NaN is not in the family, so m = 4: sorted 0.005, 0.01, 0.03, 0.04; times (m - i) =
    # 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04; running maximum: 0.02, 0.03, 0.06, 0.06; in the given
    # order:
    adjusted = holm([0.01, math.nan, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, math.nan, 0.06, 0.06, 0.02])
    # 0.4, 0.5, 0.6 times 3, 2, 1: 1.2, 1.0, 0.6; running maximum 1.2, 1.2, 1.2; clipped at 1
    np.testing.assert_allclose(holm([0.6, 0.4, 0.5]), [1.0, 1.0, 1.0])
    assert np.isnan(holm([math.nan, math.nan])).all()


def test_mean_ranks_rank_the_highest_first_and_average_ties():
    table = pd.DataFrame({"a": [0.9, 0.7], "b": [0.9, 0.8], "c": [0.8, 0.9]})
    # block 1: a and b tie for ranks 1 and 2 (1.5 each), c 3; block 2: c 1, b 2, a 3
    assert mean_ranks(table).to_dict() == {"a": 2.25, "b": 1.75, "c": 2.0}


def _range_sf(q: float, k: int) -> float:
    """P(range of k standard normals > q), from the range's density: 1 − k∫φ(x)(Φ(x+q)−Φ(x))^(k−1)
    dx (the studentized range with infinite degrees of freedom)."""
    inside, _ = integrate.quad(
        lambda x: k * norm.pdf(x) * (norm.cdf(x + q) - norm.cdf(x)) ** (k - 1), -np.inf, np.inf
    )
    return 1 - inside


def test_friedman_and_nemenyi_by_hand():
    # 4 blocks × 3 settings, no ties; ranks (1 = highest) written out:
    table = pd.DataFrame(
        {
            "a": [0.90, 0.85, 0.90, 0.95],  # ranks 1, 2, 1, 1 → sum 5, mean 1.25
            "b": [0.80, 0.86, 0.70, 0.90],  # ranks 2, 1, 3, 2 → sum 8, mean 2.00
            "c": [0.70, 0.70, 0.80, 0.60],  # ranks 3, 3, 2, 3 → sum 11, mean 2.75
        }
    )
    n, k = 4, 3
    ranks = {"a": 1.25, "b": 2.0, "c": 2.75}
    # χ² = 12N/(k(k+1)) Σ R_j² − 3N(k+1) over mean ranks R_j = 4·13.125 − 48 = 4.5
    chi2 = 12 * n / (k * (k + 1)) * sum(r**2 for r in ranks.values()) - 3 * n * (k + 1)
    assert chi2 == pytest.approx(4.5)
    result = friedman_nemenyi(table)
    assert result["n_blocks"] == 4 and result["n_methods"] == 3
    assert result["labels"] == ["a", "b", "c"] and result["mean_ranks"] == ranks
    assert result["statistic"] == pytest.approx(4.5)
    assert result["p_value"] == pytest.approx(math.exp(-4.5 / 2))  # χ²(2 df): P(X > x) = e^(-x/2)
    # CD = q_0.05·sqrt(k(k+1)/(6N)) = 2.343·sqrt(12/24) = 1.6568
    assert result["critical_difference"] == pytest.approx(Q_005[3] * math.sqrt(0.5), rel=1e-3)
    # Nemenyi a vs c: |1.25 − 2.75| / sqrt(k(k+1)/(6N)) = 1.5/sqrt(0.5) = 2.1213 = q; the p is the
    # studentized range's tail at q·√2 = 3.0
    p = result["nemenyi_p"]
    assert p["a"]["c"] == pytest.approx(_range_sf(3.0, 3), rel=1e-4)
    assert p["a"]["c"] == p["c"]["a"] and p["b"]["b"] == 1.0
    assert p["a"]["c"] > 0.05  # 1.5 is below the critical difference 1.657


def test_the_critical_difference_follows_demsars_table():
    # k = 4 over N = 10 blocks: 2.569·sqrt(20/60) = 1.4832
    assert nemenyi_critical_difference(4, 10) == pytest.approx(
        Q_005[4] * math.sqrt(1 / 3), rel=1e-3
    )


def test_friedman_needs_three_settings_and_two_blocks():
    two_settings = friedman_nemenyi(pd.DataFrame({"a": [0.9, 0.8], "b": [0.7, 0.9]}))
    assert two_settings["statistic"] is None and two_settings["critical_difference"] is None
    assert two_settings["mean_ranks"] == {"a": 1.5, "b": 1.5}
    one_block = friedman_nemenyi(pd.DataFrame({"a": [0.9], "b": [0.7], "c": [0.8]}))
    assert one_block["n_blocks"] == 1 and one_block["p_value"] is None
    assert one_block["mean_ranks"] == {"a": 1.0, "b": 3.0, "c": 2.0}
