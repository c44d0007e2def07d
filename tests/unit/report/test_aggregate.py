import json

import pandas as pd
import pytest
from scipy import stats

from auxbench.config import TrainConfig
from auxbench.foundations.errors import ConfigError
from auxbench.report.aggregate import aggregate
from auxbench.report.stats import confidence_halfwidth

ACCURACY = {("single", None): [0.80, 0.82, 0.81], ("human", 1.0): [0.85, 0.86, 0.84]}


def write_run(root, method, lam, seed, accuracy, learned=None, per_domain=None, **config_overrides):
    config = TrainConfig(dataset="synthetic", method=method, seed=seed, **config_overrides)
    if lam is not None:
        config.lam = lam
    weighting = config.weighting + (f"+{config.gradient}" if config.gradient else "")
    directory = root / method / weighting / str(lam) / str(seed)
    directory.mkdir(parents=True)
    history = pd.DataFrame({"epoch": [1, 2], "val_acc": [0.5, 0.6], "test_acc": [0.5, accuracy]})
    if learned is not None:
        history["weight_noise"] = [1.0, learned]
    history.to_csv(directory / "history.csv", index=False)
    metrics = {
        "test_acc_at_best_val": accuracy,
        "test_acc_last15_mean": accuracy - 0.01,
        "val_acc_best": 0.6,
        "best_epoch": 2,
        "test_acc_final": accuracy,
        "test_f1_at_best_val": accuracy,
        "wall_time_s": 10.0 + seed,
        "epochs_run": 2,
        "device": "cpu",
        "config": config.to_dict(),
    }
    if per_domain is not None:
        metrics["test_acc_per_domain_at_best_val"] = per_domain
    (directory / "metrics.json").write_text(json.dumps(metrics))
    return directory / "metrics.json"


def write_grid(root):
    return [
        write_run(root, method, lam, seed, acc)
        for (method, lam), accuracies in ACCURACY.items()
        for seed, acc in enumerate(accuracies)
    ]


def test_summary_statistics_match_scipy(tmp_path):
    files = write_grid(tmp_path / "runs")
    summary = aggregate(files, tmp_path / "tables", tmp_path / "metrics.json")
    human = summary[summary["method"] == "human"].iloc[0]
    single = summary[summary["method"] == "single"].iloc[0]
    assert human["n_seeds"] == 3 and human["lam"] == 1.0 and pd.isna(single["lam"])
    assert human["test_acc_mean"] == pytest.approx(0.85)
    assert human["test_acc_ci95"] == pytest.approx(
        confidence_halfwidth(pd.Series(ACCURACY[("human", 1.0)]))
    )
    assert human["diff_vs_single"] == pytest.approx(0.85 - 0.81)
    welch = stats.ttest_ind(ACCURACY[("human", 1.0)], ACCURACY[("single", None)], equal_var=False)
    assert human["p_welch"] == pytest.approx(welch.pvalue)
    assert pd.isna(single["p_welch"])
    runs = pd.read_csv(tmp_path / "tables" / "runs.csv")
    history = pd.read_csv(tmp_path / "tables" / "history.csv")
    assert len(runs) == 6 and len(history) == 12
    assert {"dataset", "method", "weighting", "lam", "seed", "epoch"} <= set(history.columns)
    assert "| human" in (tmp_path / "tables" / "summary.md").read_text()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["synthetic"]["human@1"]["test_acc_mean"] == pytest.approx(0.85)


def test_runs_with_different_settings_are_refused(tmp_path):
    files = write_grid(tmp_path / "runs")
    files.append(write_run(tmp_path / "other", "single", None, 9, 0.8, epochs=99))
    with pytest.raises(ConfigError, match="'epochs' is 99 in .*other.* but 15 in"):
        aggregate(files, tmp_path / "tables", tmp_path / "metrics.json")
    assert not (tmp_path / "tables").exists()


def test_weightings_are_separate_rows_and_lambda_only_applies_to_fixed(tmp_path):
    files = write_grid(tmp_path / "runs")
    files += [
        write_run(
            tmp_path / "runs",
            "human",
            0.5,
            seed,
            acc,
            0.1 * seed,
            weighting="dwa",
            gradient="pcgrad",
        )
        for seed, acc in enumerate([0.87, 0.88, 0.86])
    ]
    summary = aggregate(files, tmp_path / "tables", tmp_path / "metrics.json")
    adaptive = summary[summary["weighting"] == "dwa+pcgrad"].iloc[0]
    assert adaptive["method"] == "human" and pd.isna(adaptive["lam"])  # λ means nothing here
    assert adaptive["diff_vs_single"] == pytest.approx(0.87 - 0.81)  # vs single, fixed weights
    assert adaptive["final_weight_noise_mean"] == pytest.approx(0.1)  # last epoch, seeds 0-2
    fixed = summary[(summary["method"] == "human") & (summary["weighting"] == "fixed")]
    assert fixed.iloc[0]["lam"] == 1.0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["synthetic"]) == {"single", "human@1", "human+dwa+pcgrad"}


def test_a_setting_missing_from_an_older_run_counts_as_its_default(tmp_path):
    files = write_grid(tmp_path / "runs")
    metrics = json.loads(files[0].read_text())
    del (
        metrics["config"]["schedule"],
        metrics["config"]["noise_task"],
    )  # written before they existed
    files[0].write_text(json.dumps(metrics))
    summary = aggregate(files, tmp_path / "tables", tmp_path / "metrics.json")
    assert set(summary["method"]) == {"single", "human"}


def test_multi_domain_runs_get_delta_mtl_against_equal_weighting(tmp_path):
    equal = [{"a": 0.50, "b": 0.80}, {"a": 0.54, "b": 0.76}]  # seed means 0.52 and 0.78
    files = [
        write_run(tmp_path / "runs", "single", None, seed, 0.65 + seed / 100, per_domain=domains)
        for seed, domains in enumerate(equal)
    ]
    weighted = [{"a": 0.572, "b": 0.78}, {"a": 0.52, "b": 0.936}]  # Δ_MTL 5% and 10%
    files += [
        write_run(
            tmp_path / "runs",
            "single",
            None,
            seed,
            0.7 + seed / 100,
            per_domain=domains,
            weighting="dwa",
        )
        for seed, domains in enumerate(weighted)
    ]
    summary = aggregate(files, tmp_path / "tables", tmp_path / "metrics.json").set_index(
        "weighting"
    )
    assert summary.loc["dwa", "delta_mtl_vs_equal_mean"] == pytest.approx(7.5)
    expected_ci = confidence_halfwidth(pd.Series([5.0, 10.0]))
    assert summary.loc["dwa", "delta_mtl_vs_equal_ci95"] == pytest.approx(expected_ci)
    assert summary.loc["fixed", "delta_mtl_vs_equal_mean"] == pytest.approx(0.0, abs=1e-12)
    runs = pd.read_csv(tmp_path / "tables" / "runs.csv")
    assert {"test_acc_domain_a", "test_acc_domain_b"} <= set(runs.columns)


def test_single_domain_runs_have_no_delta_mtl(tmp_path):
    summary = aggregate(write_grid(tmp_path / "runs"), tmp_path / "tables", tmp_path / "m.json")
    assert not any(column.startswith("delta_mtl") for column in summary.columns)
