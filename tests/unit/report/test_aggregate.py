import json
import math

import pandas as pd
import pytest
from scipy import stats

from auxbench.config import TrainConfig
from auxbench.foundations.errors import ConfigError
from auxbench.report.aggregate import aggregate
from auxbench.report.stats import confidence_halfwidth

ACCURACY = {("single", None): [0.80, 0.82, 0.81], ("human", 1.0): [0.85, 0.86, 0.84]}


def write_run(
    root,
    method,
    lam,
    seed,
    accuracy,
    learned=None,
    per_domain=None,
    test_history=None,
    **config_overrides,
):
    config = TrainConfig(dataset="synthetic", method=method, seed=seed, **config_overrides)
    if lam is not None:
        config.lam = lam
    weighting = config.weighting + (f"+{config.gradient}" if config.gradient else "")
    directory = root / method / weighting / str(lam) / str(seed)
    directory.mkdir(parents=True)
    test_acc = test_history or [0.5, accuracy]
    history = pd.DataFrame(
        {"epoch": range(1, len(test_acc) + 1), "val_acc": 0.5, "test_acc": test_acc}
    )
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


# Comparisons, ranks and the Friedman test (results/tables/{comparisons,ranks}.csv, friedman.json)

T_975 = {2: 4.302652729911275}  # the Student-t 97.5% quantile, from a t table
Q_005_K3 = 2.343  # the Nemenyi q_0.05 for 3 settings (Demšar 2006, table 5a)


def on_dataset(path, dataset):
    """The run of ``path`` moved to another dataset (only its config says which)."""
    metrics = json.loads(path.read_text())
    metrics["config"]["dataset"] = dataset
    path.write_text(json.dumps(metrics))
    return path


def test_comparisons_are_paired_by_seed_and_holm_adjusted_per_dataset_and_protocol(tmp_path):
    runs = tmp_path / "runs"
    files = [write_run(runs, "single", None, s, a) for s, a in enumerate([0.80, 0.82, 0.81])]
    # human: seed 3 has no baseline and is left out; seed 0's best test epoch is its first
    human = [0.85, 0.86, 0.84, 0.99]
    files += [
        write_run(runs, "human", 1.0, s, a, test_history=[0.90, a] if s == 0 else None)
        for s, a in enumerate(human)
    ]
    files += [write_run(runs, "random-aux", 1.0, s, a) for s, a in enumerate([0.79, 0.80])]
    aggregate(files, tmp_path / "tables", tmp_path / "metrics.json")
    table = pd.read_csv(tmp_path / "tables" / "comparisons.csv")
    assert list(table.columns) == [
        "dataset", "method", "weighting", "lam", "protocol", "baseline", "n_pairs", "mean_diff",
        "ci_low", "ci_high", "effect_size", "p_ttest", "p_wilcoxon", "p_holm", "significant",
        "cost_ratio",
    ]  # fmt: skip
    assert len(table) == 2 * 3  # two settings (not the baseline) × three protocols
    row = table.set_index(["method", "protocol"])
    best = row.loc[("human", "best_val")]
    # differences 0.85-0.80, 0.86-0.82, 0.84-0.81 = 0.05, 0.04, 0.03: mean 0.04, sd 0.01
    se = 0.01 / math.sqrt(3)
    t = 0.04 / se  # 4√3 = 6.928, 2 degrees of freedom
    p_human = 1 - t / math.sqrt(t**2 + 2)  # two-sided, closed-form t_2: 2·(1 - F(t)) = 0.020204
    assert best["baseline"] == "single" and best["n_pairs"] == 3
    assert best["mean_diff"] == pytest.approx(0.04)
    assert best["ci_low"] == pytest.approx(0.04 - T_975[2] * se)
    assert best["ci_high"] == pytest.approx(0.04 + T_975[2] * se)
    assert best["effect_size"] == pytest.approx(4.0)  # 0.04 / 0.01
    assert best["p_ttest"] == pytest.approx(p_human, rel=1e-6)
    assert pd.isna(best["p_wilcoxon"])  # 3 pairs
    # random-aux: differences -0.01, -0.02: mean -0.015, sd 0.00707, t = -3 with 1 degree of
    # freedom (Cauchy): p = 2·(1/2 − atan(3)/π) = 0.204833
    p_random = 1 - 2 * math.atan(3) / math.pi
    random = row.loc[("random-aux", "best_val")]
    assert random["n_pairs"] == 2 and random["mean_diff"] == pytest.approx(-0.015)
    assert random["p_ttest"] == pytest.approx(p_random, rel=1e-6)
    # Holm over the dataset's best_val rows: 0.020204·2 = 0.040408, then max(0.204833, 0.040408)
    assert best["p_holm"] == pytest.approx(2 * p_human, rel=1e-6) and best["significant"]
    assert random["p_holm"] == pytest.approx(p_random, rel=1e-6) and not random["significant"]
    # wall time 10 + seed: single (10+11+12)/3 = 11; human (10+11+12+13)/4 = 11.5; random 10.5
    assert best["cost_ratio"] == pytest.approx(11.5 / 11)
    assert random["cost_ratio"] == pytest.approx(10.5 / 11)
    # last15 is 0.01 below best_val on both sides: the same differences
    assert row.loc[("human", "last15"), "mean_diff"] == pytest.approx(0.04)
    # best_test: seed 0's best epoch is 0.90, so the differences are 0.10, 0.04, 0.03
    assert row.loc[("human", "best_test"), "mean_diff"] == pytest.approx(0.17 / 3)
    runs_table = pd.read_csv(tmp_path / "tables" / "runs.csv").set_index(["method", "seed"])
    assert runs_table.loc[("human", 0), "test_acc_best_test"] == pytest.approx(0.90)
    assert runs_table.loc[("human", 1), "test_acc_best_test"] == pytest.approx(0.86)


def test_ranks_over_seeds_of_one_dataset_with_the_friedman_test(tmp_path):
    accuracy = {
        ("single", None): [0.80, 0.82, 0.81],
        ("human", 1.0): [0.85, 0.86, 0.84],
        ("random-aux", 1.0): [0.79, 0.83, 0.80],
    }
    files = [
        write_run(tmp_path / "runs", method, lam, seed, acc)
        for (method, lam), accuracies in accuracy.items()
        for seed, acc in enumerate(accuracies)
    ]
    aggregate(files, tmp_path / "tables", tmp_path / "metrics.json")
    # one dataset: the blocks are its seeds. Ranks (1 = best) per seed:
    # seed 0: human 1, single 2, random-aux 3; seed 1: human 1, random-aux 2, single 3;
    # seed 2: human 1, single 2, random-aux 3 → mean ranks 1, 7/3, 8/3
    ranks = pd.read_csv(tmp_path / "tables" / "ranks.csv")
    assert list(ranks.columns) == ["label", "mean_rank", "n_blocks", "protocol"]
    best_val = ranks[ranks["protocol"] == "best_val"].set_index("label")
    assert best_val["mean_rank"].to_dict() == pytest.approx(
        {"human λ=1": 1.0, "single": 7 / 3, "random-aux λ=1": 8 / 3}
    )
    assert set(best_val["n_blocks"]) == {3}
    assert set(ranks["protocol"]) == {"best_val", "last15", "best_test"}
    friedman = json.loads((tmp_path / "tables" / "friedman.json").read_text())
    entry = friedman["best_val"]
    assert entry["blocks"] == "dataset×seed" and entry["n_blocks"] == 3
    assert entry["n_methods"] == 3
    # χ² = 12N/(k(k+1))·Σ R_j² − 3N(k+1) = 3·(1 + 49/9 + 64/9) − 36 = 14/3; χ²(2): p = e^(-x/2)
    assert entry["statistic"] == pytest.approx(14 / 3)
    assert entry["p_value"] == pytest.approx(math.exp(-7 / 3))
    # CD = 2.343·sqrt(3·4/(6·3))
    assert entry["critical_difference"] == pytest.approx(Q_005_K3 * math.sqrt(2 / 3), rel=1e-3)
    assert entry["mean_ranks"]["human λ=1"] == pytest.approx(1.0)
    assert set(entry["nemenyi_p"]) == set(entry["labels"]) == set(best_val.index)


def test_ranks_over_datasets_use_seed_means_and_only_labels_in_every_block(tmp_path):
    seed_values = {
        "a": {("single", None): [0.81], ("human", 1.0): [0.85], ("random-aux", 1.0): [0.80]},
        "b": {
            ("single", None): [0.69, 0.71],  # mean 0.70
            ("human", 1.0): [0.68, 0.70],  # mean 0.69
            ("random-aux", 1.0): [0.74, 0.76],  # mean 0.75
        },
    }
    files = [
        on_dataset(write_run(tmp_path / dataset, method, lam, seed, acc), dataset)
        for dataset, settings in seed_values.items()
        for (method, lam), accuracies in settings.items()
        for seed, acc in enumerate(accuracies)
    ]
    # a λ only dataset a has: not in every block, so not ranked
    files.append(on_dataset(write_run(tmp_path / "a", "human", 0.5, 0, 0.99), "a"))
    aggregate(files, tmp_path / "tables", tmp_path / "metrics.json")
    # a: human 1, single 2, random-aux 3; b: random-aux 1, single 2, human 3 → all mean 2
    ranks = pd.read_csv(tmp_path / "tables" / "ranks.csv")
    best_val = ranks[ranks["protocol"] == "best_val"].set_index("label")["mean_rank"]
    assert best_val.to_dict() == {"human λ=1": 2.0, "random-aux λ=1": 2.0, "single": 2.0}
    entry = json.loads((tmp_path / "tables" / "friedman.json").read_text())["best_val"]
    assert entry["blocks"] == "dataset" and entry["n_blocks"] == 2
    assert "human λ=0.5" not in entry["labels"]
    # equal mean ranks: χ² = 12·2/(3·4)·(3·2²) − 3·2·4 = 0
    assert entry["statistic"] == pytest.approx(0.0, abs=1e-12)


def test_fewer_than_three_labels_leave_the_friedman_entries_empty(tmp_path):
    aggregate(write_grid(tmp_path / "runs"), tmp_path / "tables", tmp_path / "metrics.json")
    friedman = json.loads((tmp_path / "tables" / "friedman.json").read_text())
    assert set(friedman) == {"best_val", "last15", "best_test"}
    for entry in friedman.values():
        assert entry["n_methods"] == 2 and entry["n_blocks"] == 3
        assert entry["statistic"] is None and entry["critical_difference"] is None


def test_the_markdown_summary_names_each_rows_protocol(tmp_path):
    aggregate(write_grid(tmp_path / "runs"), tmp_path / "tables", tmp_path / "metrics.json")
    lines = (tmp_path / "tables" / "summary.md").read_text().splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert "protocol" in header and "p_holm" in header
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    protocol = header.index("protocol")
    assert [row[protocol] for row in rows[:3]] == ["best_val", "last15", "best_test"]
    assert rows[0][header.index("method")] == "single"  # the baseline first
    human_last15 = next(r for r in rows if r[1] == "human" and r[protocol] == "last15")
    assert human_last15[header.index("test_acc_mean")] == "0.8400"  # 0.85 − 0.01
