"""The manipulation track's tables and figures from hand-written run files: the summary over
seeds, each method against none paired by seed with Holm's correction, and which figures are
drawn for which methods."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from auxbench.report.manipulation import aggregate

STEPS = [100, 200, 300, 400]
BOUNDS = [(0.1, 0.9), (0.0, 0.7), (0.2, 1.0)]  # per seed: the curves' low and high


def write_run(root, method, seed, success, reached=None, env="reach"):
    """A run directory as ``GoalRun.train`` writes it: ``success`` per curve point."""
    directory = root / env / method / f"seed{seed}"
    directory.mkdir(parents=True)
    curve = pd.DataFrame({"step": STEPS, "success": success, "train_success": success})
    if method.startswith("olaux"):
        curve["weight_forward"] = np.linspace(1.0, 0.5, len(STEPS))
        curve["weight_inverse"] = np.linspace(1.0, 1.5, len(STEPS))
    curve.to_csv(directory / "curve.csv", index=False)
    metrics = {
        "env": env,
        "method": method,
        "seed": seed,
        "auc": float(np.mean(success)),
        "steps_to_threshold": reached,
        "threshold": 0.8,
        "final_success": success[-1],
        "env_steps": STEPS[-1],
        "wall_time_s": 10.0 + seed,
    }
    (directory / "metrics.json").write_text(json.dumps(metrics))
    return directory


@pytest.fixture
def runs(tmp_path):
    made = []
    for seed, (low, high) in enumerate(BOUNDS):
        made.append(write_run(tmp_path, "none", seed, [low, low, high - 0.2, high - 0.1]))
        reached = 300 if high >= 0.8 else None
        made.append(write_run(tmp_path, "balance", seed, [low, high, high, high], reached))
        made.append(write_run(tmp_path, "olaux5", seed, [low, high, 1.0, 1.0], 200))
        made.append(write_run(tmp_path, "olaux5-ablation", seed, [low, low, high, 1.0], 300))
        made.append(write_run(tmp_path, "only-forward", seed, [low, low, low, high]))
    return made


def test_summary_and_paired_comparisons(runs, tmp_path):
    tables, figures = tmp_path / "tables", tmp_path / "figures"
    summary = aggregate(runs, tables, figures).set_index("method")
    assert list(summary.index) == ["none", "balance", "olaux5", "olaux5-ablation", "only-forward"]
    assert (summary["n_seeds"] == 3).all()
    # balance reached the threshold on seeds 0 and 2 only (high 0.9 and 1.0)
    assert summary.loc["balance", "reached"] == 2
    assert summary.loc["balance", "steps_to_threshold_mean"] == 300
    assert summary.loc["olaux5", "final_success_mean"] == pytest.approx(1.0)
    auc_none = [np.mean([low, low, high - 0.2, high - 0.1]) for low, high in BOUNDS]
    assert summary.loc["none", "auc_mean"] == pytest.approx(np.mean(auc_none))

    paired = pd.read_csv(tables / "manipulation_paired.csv")
    assert set(paired["metric"]) == {"auc", "final_success"}
    auc = paired[paired["metric"] == "auc"].set_index("method")
    assert "none" not in auc.index and (auc["n_pairs"] == 3).all()
    olaux = [np.mean([low, high, 1.0, 1.0]) for low, high in BOUNDS]
    differences = np.subtract(olaux, auc_none)
    assert auc.loc["olaux5", "mean_diff"] == pytest.approx(differences.mean())
    assert auc.loc["olaux5", "p_ttest"] == pytest.approx(stats.ttest_rel(olaux, auc_none).pvalue)
    # Holm over the four methods of the environment: never below the raw p, monotone in it
    assert (auc["p_holm"] >= auc["p_ttest"] - 1e-12).all()
    ordered = auc.sort_values("p_ttest")
    assert ordered["p_holm"].is_monotonic_increasing
    smallest = ordered.iloc[0]
    assert smallest["p_holm"] == pytest.approx(min(1.0, 4 * smallest["p_ttest"]))


def test_figures_follow_the_methods_present(runs, tmp_path):
    figures = tmp_path / "figures"
    aggregate(runs, tmp_path / "tables", figures)
    assert sorted(path.name for path in figures.iterdir()) == [
        "manipulation-ablation_reach.png",
        "manipulation-single_reach.png",
        "manipulation-success_reach.png",
        "manipulation-weights_reach.png",
    ]
    # without single tasks or a second ablation there are no such figures
    only_main = [path for path in runs if path.parent.name in ("none", "olaux5")]
    fewer = tmp_path / "fewer"
    aggregate(only_main, tmp_path / "tables2", fewer)
    assert sorted(path.name for path in fewer.iterdir()) == [
        "manipulation-success_reach.png",
        "manipulation-weights_reach.png",
    ]
