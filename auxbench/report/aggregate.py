"""Aggregation of finished runs into tidy tables, a summary with statistics, and a DVC metrics file.

Runs are only comparable when their configs agree on everything but the fanned-out keys
(dataset, method, weighting, λ, seed); anything else is refused with a message naming the key and
the runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from auxbench.config import TrainConfig
from auxbench.experiment.grid import FANNED_OUT, FIXED, method_spec, uses_lambda, weighting_spec
from auxbench.foundations import atomic
from auxbench.foundations.errors import ConfigError
from auxbench.foundations.metrics import delta_mtl
from auxbench.report.stats import confidence_halfwidth

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


def read_runs(metrics_files: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read each run's ``metrics.json`` and ``history.csv``; return (runs, per-epoch history)."""
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


def aggregate(metrics_files: list[Path], tables: Path, metrics_path: Path) -> pd.DataFrame:
    """Write ``runs``, ``history`` and ``summary`` tables (CSV; summary also Markdown) and metrics."""
    runs, history = read_runs(metrics_files)
    summary = summarise_runs(runs)
    tables = Path(tables)
    atomic.write_text(tables / "runs.csv", runs.to_csv(index=False))
    atomic.write_text(tables / "history.csv", history.to_csv(index=False))
    atomic.write_text(tables / "summary.csv", summary.to_csv(index=False))
    atomic.write_text(tables / "summary.md", summary.to_markdown(index=False, floatfmt=".4f"))
    atomic.write_json(metrics_path, dvc_metrics(summary))
    return summary
