"""Aggregation of finished runs into tidy tables, a summary with statistics, and a DVC metrics file.

Runs are only comparable when their configs agree on everything but the fanned-out keys
(dataset, method, weighting, λ, seed); anything else is refused with a message naming the key and
the runs.

Each run's test accuracy is read off its epochs three ways, the protocols (``PROTOCOL_COLUMNS``):
at the best validation epoch, as the mean of the last 15 epochs, and as the best test epoch. Per
protocol, every setting is compared with ``single`` (fixed weights) paired by seed
(``comparisons.csv``), and the settings are ranked over blocks with the Friedman test and the
Nemenyi critical difference (``ranks.csv``, ``friedman.json``); ``docs/results/statistics.md``
describes the tables.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from auxbench.config import TrainConfig
from auxbench.experiment.grid import (
    FANNED_OUT,
    FIXED,
    PROTOCOLS,
    method_spec,
    uses_lambda,
    weighting_spec,
)
from auxbench.foundations import atomic
from auxbench.foundations.errors import ConfigError
from auxbench.foundations.metrics import delta_mtl
from auxbench.report.plots import run_label
from auxbench.report.published import published_table, read_published
from auxbench.report.stats import confidence_halfwidth, friedman_nemenyi, holm, paired_comparison

RUN_COLUMNS = (
    "test_acc_at_best_val",
    "test_acc_last15_mean",
    "val_acc_best",
    "best_epoch",
    "test_acc_final",
    "test_f1_at_best_val",
    "wall_time_s",
    "epochs_run",
    "device",
)
# Settings that may differ between runs of one comparison: the fanned-out keys (the noise task is
# part of the method's name, the gradient method part of the weighting's), and where data lies.
MAY_DIFFER = (*FANNED_OUT, "noise_task", "gradient", "data_root")
BASELINE = "single"
# Per-epoch per-task values an adaptive weighting logs: its weights, and for GCS the fraction of
# steps each auxiliary gradient was kept (``Weighting.task_logs``)
LEARNED_PREFIXES = ("weight_", "kept_")
DOMAIN_PREFIX = "test_acc_domain_"  # multi-domain runs: each domain's test accuracy
# Each protocol's per-run column of runs.csv: test accuracy at the best validation epoch, the mean
# of the last 15 epochs' (the RL-AUX tables), the highest of any epoch (what the Auto-λ code
# reports; optimistic: it selects on the test set).
PROTOCOL_COLUMNS = dict(
    zip(PROTOCOLS, ("test_acc_at_best_val", "test_acc_last15_mean", "test_acc_best_test"))
)
SETTING = ["dataset", "method", "weighting", "lam"]
ALPHA = 0.05


def read_runs(metrics_files: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read each run's ``metrics.json`` and ``history.csv``; return (runs, per-epoch history).
    Besides the metrics' ``RUN_COLUMNS`` a run gets ``test_acc_best_test``, the highest test
    accuracy of its epochs."""
    runs, histories, reference = [], [], None
    for path in sorted(Path(p) for p in metrics_files):
        metrics = json.loads(path.read_text())
        config = metrics["config"]
        reference = reference or (path, config)
        _check_comparable(reference, (path, config))
        method, weighting = method_spec(config), weighting_spec(config)
        lam = config["lam"] if uses_lambda(method, weighting) else math.nan
        keys = {
            "dataset": config["dataset"],
            "method": method,
            "weighting": weighting,
            "lam": lam,
            "seed": config["seed"],
        }
        history = pd.read_csv(path.parent / "history.csv")
        learned = {
            f"final_{column}": history[column].iloc[-1]
            for column in history.columns
            if column.startswith(LEARNED_PREFIXES)
        }
        per_domain = {
            f"{DOMAIN_PREFIX}{name}": accuracy
            for name, accuracy in metrics.get("test_acc_per_domain_at_best_val", {}).items()
        }
        runs.append(
            {
                **keys,
                **{c: metrics[c] for c in RUN_COLUMNS},
                "test_acc_best_test": history["test_acc"].max()
                if "test_acc" in history
                else math.nan,
                **learned,
                **per_domain,
                "run_dir": str(path.parent),
            }
        )
        histories.append(history.assign(**keys)[[*keys, *history.columns]])
    if not runs:
        raise ConfigError("no finished runs to aggregate")
    return pd.DataFrame(runs), pd.concat(histories, ignore_index=True)


def _check_comparable(reference: tuple[Path, dict], other: tuple[Path, dict]) -> None:
    """Refuse runs whose configs differ beyond ``MAY_DIFFER``. A key missing from a config (one
    written before the setting existed) counts as the setting's default, the behaviour it had."""
    defaults = TrainConfig().to_dict()
    (ref_path, ref), (path, config) = reference, other
    ref, config = {**defaults, **ref}, {**defaults, **config}
    for key in sorted(set(ref) | set(config)):
        if key not in MAY_DIFFER and ref.get(key) != config.get(key):
            raise ConfigError(
                f"refusing to mix runs with different settings: '{key}' is {ref.get(key)!r} in "
                f"{ref_path.parent} but {config.get(key)!r} in {path.parent}; only "
                f"{', '.join(FANNED_OUT)} may differ. Rerun the stale runs or aggregate "
                f"them separately."
            )


def summarise_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset × method × weighting × λ: mean, std, 95% CI, seeds, the difference
    and Welch p-value against ``single`` with fixed weights, and the mean final learned weight of
    each task where a weighting learns them (``final_weight_<task>_mean``; GCS's last-epoch
    fraction of steps with the task kept, ``final_kept_<task>_mean``). Multi-domain runs
    also get Δ_MTL (``delta_mtl_vs_equal_mean``/``_ci95``, in %): each run's per-domain test
    accuracies against the seed means of ``single`` with fixed weights, i.e. equal weighting of
    the domains (``auxbench.foundations.metrics.delta_mtl``)."""
    runs = runs.assign(**_delta_mtl_vs_equal(runs))
    rows = []
    groups = runs.groupby(["dataset", "method", "weighting", "lam"], dropna=False)
    for (dataset, method, weighting, lam), group in groups:
        accuracy, last15 = group["test_acc_at_best_val"], group["test_acc_last15_mean"]
        baseline = runs[
            (runs["dataset"] == dataset)
            & (runs["method"] == BASELINE)
            & (runs["weighting"] == FIXED)
        ]
        baseline_acc = baseline["test_acc_at_best_val"]
        is_baseline = method == BASELINE and weighting == FIXED
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "weighting": weighting,
                "lam": lam,
                "n_seeds": len(group),
                "test_acc_mean": accuracy.mean(),
                "test_acc_std": accuracy.std(ddof=1),
                "test_acc_ci95": confidence_halfwidth(accuracy),
                "last15_mean": last15.mean(),
                "last15_std": last15.std(ddof=1),
                "last15_ci95": confidence_halfwidth(last15),
                "diff_vs_single": accuracy.mean() - baseline_acc.mean()
                if len(baseline)
                else math.nan,
                "p_welch": math.nan if is_baseline else _welch_p(accuracy, baseline_acc),
                "wall_time_s_mean": group["wall_time_s"].mean(),
                **{
                    f"{column}_mean": group[column].mean()
                    for column in runs.columns
                    if column.startswith(tuple(f"final_{p}" for p in LEARNED_PREFIXES))
                },
                **(
                    {
                        "delta_mtl_vs_equal_mean": group[DELTA_MTL].mean(),
                        "delta_mtl_vs_equal_ci95": confidence_halfwidth(group[DELTA_MTL]),
                    }
                    if DELTA_MTL in runs
                    else {}
                ),
            }
        )
    return pd.DataFrame(rows)


DELTA_MTL = "delta_mtl_vs_equal"


def _delta_mtl_vs_equal(runs: pd.DataFrame) -> dict[str, pd.Series]:
    """``{DELTA_MTL: per-run Δ_MTL}`` for runs with per-domain accuracies whose dataset has
    equal-weighting runs (``single``, fixed weights); nothing when no run has domains."""
    domains = [column for column in runs.columns if column.startswith(DOMAIN_PREFIX)]
    if not domains:
        return {}
    equal = runs[(runs["method"] == BASELINE) & (runs["weighting"] == FIXED)]
    reference = equal.groupby("dataset")[domains].mean()

    def delta(run: pd.Series) -> float:
        scores = run[domains].dropna()
        if run["dataset"] not in reference.index or scores.empty:
            return math.nan
        return delta_mtl(list(scores), list(reference.loc[run["dataset"], scores.index]))

    return {DELTA_MTL: runs.apply(delta, axis=1)}


def _welch_p(values: pd.Series, baseline: pd.Series) -> float:
    if len(values) < 2 or len(baseline) < 2:
        return math.nan
    return float(stats.ttest_ind(values, baseline, equal_var=False).pvalue)


def dvc_metrics(summary: pd.DataFrame) -> dict[str, Any]:
    """Nested ``{dataset: {method[+weighting][@λ]: {test_acc_mean, test_acc_ci95, last15_mean}}}``
    for DVC (``+weighting`` unless fixed)."""
    metrics: dict[str, Any] = {}
    for row in summary.itertuples():
        label = row.method if row.weighting == FIXED else f"{row.method}+{row.weighting}"
        label = label if pd.isna(row.lam) else f"{label}@{row.lam:g}"
        metrics.setdefault(row.dataset, {})[label] = {
            key: None if pd.isna(value) else round(float(value), 6)
            for key, value in (
                ("test_acc_mean", row.test_acc_mean),
                ("test_acc_ci95", row.test_acc_ci95),
                ("last15_mean", row.last15_mean),
            )
        }
    return metrics


def compare_with_baseline(runs: pd.DataFrame) -> pd.DataFrame:
    """``comparisons.csv``: for every protocol, each dataset × method × weighting × λ against
    ``single`` with fixed weights on the same dataset, paired by seed (seeds only one side has are
    left out; ``stats.paired_comparison``): n_pairs, mean_diff (setting − baseline, a fraction),
    the 95% t-interval ci_low/ci_high, Cohen's d_z as effect_size, p_ttest, p_wilcoxon, p_holm
    (Holm over the rows of one dataset and protocol), significant (p_holm < 0.05) and cost_ratio
    (the setting's mean wall time over the baseline's)."""
    rows = []
    for dataset, on_dataset in runs.groupby("dataset", sort=True):
        is_baseline = (on_dataset["method"] == BASELINE) & (on_dataset["weighting"] == FIXED)
        baseline = on_dataset[is_baseline]
        baseline_time = baseline["wall_time_s"].mean() if len(baseline) else math.nan
        settings = on_dataset[~is_baseline].groupby(SETTING, dropna=False, sort=True)
        for protocol, column in PROTOCOL_COLUMNS.items():
            reference = baseline.groupby("seed")[column].mean()
            family = []
            for (_, method, weighting, lam), group in settings:
                comparison = paired_comparison(group.groupby("seed")[column].mean(), reference)
                family.append(
                    {
                        "dataset": dataset,
                        "method": method,
                        "weighting": weighting,
                        "lam": lam,
                        "protocol": protocol,
                        "baseline": BASELINE,
                        **comparison,
                        "cost_ratio": group["wall_time_s"].mean() / baseline_time,
                    }
                )
            adjusted = holm([row["p_ttest"] for row in family])
            for row, p_holm in zip(family, adjusted, strict=True):
                row.update(p_holm=p_holm, significant=bool(p_holm < ALPHA))
            rows.extend(family)
    columns = [
        *SETTING,
        "protocol",
        "baseline",
        "n_pairs",
        "mean_diff",
        "ci_low",
        "ci_high",
        "effect_size",
        "p_ttest",
        "p_wilcoxon",
        "p_holm",
        "significant",
        "cost_ratio",
    ]
    return pd.DataFrame(rows, columns=columns)


def rank_settings(runs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``ranks.csv`` and ``friedman.json``: per protocol, each setting's (``run_label``) mean rank
    over blocks (rank 1: the best accuracy; ties averaged), and the Friedman test with the Nemenyi
    critical difference and pairwise p-values (``stats.friedman_nemenyi``). The blocks are the
    datasets (each a setting's seed mean there) when the runs cover two or more, else the
    (dataset, seed) pairs; only settings present in every block take part."""
    labelled = runs.assign(
        label=[
            run_label(method, lam, weighting)
            for method, lam, weighting in zip(
                runs["method"], runs["lam"], runs["weighting"], strict=True
            )
        ]
    )
    by_dataset = labelled["dataset"].nunique() >= 2
    blocks = ["dataset"] if by_dataset else ["dataset", "seed"]
    frames, friedman = [], {}
    for protocol, column in PROTOCOL_COLUMNS.items():
        table = labelled.pivot_table(index=blocks, columns="label", values=column, aggfunc="mean")
        table = table.dropna(axis=1, how="any")  # settings missing from a block drop out
        result = friedman_nemenyi(table, ALPHA)
        friedman[protocol] = {"blocks": "dataset" if by_dataset else "dataset×seed", **result}
        if result["n_blocks"]:
            frames.append(
                pd.DataFrame(
                    {
                        "label": list(result["mean_ranks"]),
                        "mean_rank": list(result["mean_ranks"].values()),
                        "n_blocks": result["n_blocks"],
                        "protocol": protocol,
                    }
                ).sort_values("mean_rank", kind="stable")
            )
    columns = ["label", "mean_rank", "n_blocks", "protocol"]
    ranks = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return ranks[columns], friedman


def protocol_summary(runs: pd.DataFrame, comparisons: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset × method × weighting × λ × protocol (``summary.md``): seeds, the mean,
    standard deviation and 95% CI of test accuracy under the protocol, and the paired comparison
    with ``single`` (mean_diff, p_holm, significant; empty for the baseline itself)."""
    rows = []
    for setting, group in runs.groupby(SETTING, dropna=False, sort=True):
        for protocol, column in PROTOCOL_COLUMNS.items():
            rows.append(
                {
                    **dict(zip(SETTING, setting, strict=True)),
                    "protocol": protocol,
                    "n_seeds": len(group),
                    "test_acc_mean": group[column].mean(),
                    "test_acc_std": group[column].std(ddof=1),
                    "test_acc_ci95": confidence_halfwidth(group[column]),
                }
            )
    keys = [*SETTING, "protocol"]
    paired = comparisons[[*keys, "n_pairs", "mean_diff", "p_holm", "significant"]]
    table = pd.DataFrame(rows).merge(paired, on=keys, how="left")
    table["n_pairs"] = table["n_pairs"].astype("Int64")
    table["significant"] = table["significant"].astype("boolean")
    first = (table["method"] == BASELINE) & (table["weighting"] == FIXED)
    return table.iloc[np.argsort(~first.to_numpy(), kind="stable")].reset_index(drop=True)


def _markdown(table: pd.DataFrame) -> str:
    """``table`` as Markdown, floats to 4 places, integers and booleans as they are and missing
    values blank."""
    cells = table.astype(object).map(
        lambda value: (
            "" if pd.isna(value) else f"{value:.4f}" if isinstance(value, float) else value
        )
    )
    return cells.to_markdown(index=False, disable_numparse=True)


def aggregate(
    metrics_files: list[Path],
    tables: Path,
    metrics_path: Path,
    published: Path | None = None,
) -> pd.DataFrame:
    """Write the ``runs``, ``history`` and ``summary`` tables (CSV; ``summary.md`` per protocol),
    ``comparisons.csv``, ``ranks.csv``, ``friedman.json``, the DVC metrics and, given a workflow
    config with a ``published`` list (``published``), ``published.csv``. Returns the summary."""
    entries = read_published(published) if published is not None else None
    runs, history = read_runs(metrics_files)
    summary = summarise_runs(runs)
    comparisons = compare_with_baseline(runs)
    ranks, friedman = rank_settings(runs)
    tables = Path(tables)
    atomic.write_text(tables / "runs.csv", runs.to_csv(index=False))
    atomic.write_text(tables / "history.csv", history.to_csv(index=False))
    atomic.write_text(tables / "summary.csv", summary.to_csv(index=False))
    atomic.write_text(
        tables / "summary.md",
        _markdown(protocol_summary(runs, comparisons)),
    )
    atomic.write_text(tables / "comparisons.csv", comparisons.to_csv(index=False))
    atomic.write_text(tables / "ranks.csv", ranks.to_csv(index=False))
    atomic.write_json(tables / "friedman.json", friedman)
    if entries is not None:
        measured = runs.assign(**_delta_mtl_vs_equal(runs))
        table = published_table(measured, entries, PROTOCOL_COLUMNS, DELTA_MTL)
        atomic.write_text(tables / "published.csv", table.to_csv(index=False))
    atomic.write_json(metrics_path, dvc_metrics(summary))
    return summary
