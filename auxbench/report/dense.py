"""Tables and figures over the dense-prediction runs (``auxbench dense-train``): every task's
metrics, Δ_MTL under the three conventions against the single-task baselines of the same grid,
each weighting against Equal paired by seed, published vs measured, and the learned weights.

- ``dense_runs.csv``: one row per run and protocol (``best_val``: the test metrics at the epoch
  of the best validation score; ``final``: the last epoch's) with every evaluated task's metrics
  (``<metric>_<task>``) and, except for single-task runs, ``delta_autolambda``,
  ``delta_libmtl``, ``delta_nashmtl`` (in %; ``auxbench.foundations.dense_metrics``) against
  the **seed-mean** single-task runs of the same dataset, architecture and protocol, and
  ``delta_published`` against the published single-task baselines when the section gives them.
- ``dense_summary.csv`` / ``.md``: per dataset × architecture × setting × weighting × protocol,
  the seeds, each task's first metric and each Δ_MTL as mean and 95% t-CI half-width, and the
  paired difference of ``delta_autolambda`` from Equal (``fixed``) in the same setting: mean, CI,
  paired t-test p and Holm's p over the dataset × architecture × protocol family.
- ``dense_history.csv``: every run's per-epoch history with its keys.
- ``dense_published.csv``: with a ``published`` list, the paper's figures beside the measured
  mean ± CI.
- Figures ``dense-metrics_<dataset>.png`` (each task's first validation metric per epoch),
  ``dense-weights_<dataset>.png`` (the learned task weights per epoch) and
  ``dense-delta_<dataset>.png`` (Δ_MTL with its CI per setting and weighting).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from auxbench.experiment.dense_grid import BASELINE_WEIGHTING, SINGLE, setting_name
from auxbench.experiment.grid import weighting_spec
from auxbench.foundations import atomic
from auxbench.foundations.dense_metrics import CONVENTIONS, delta_mtl_dense
from auxbench.report.plots import new_figure, panel_colours, t_interval
from auxbench.report.stats import confidence_halfwidth, holm, paired_comparison

PROTOCOLS = ("best_val", "final")
SUFFIX = {"best_val": "_at_best_val", "final": "_final"}
KEYS = ["dataset", "architecture", "setting", "weighting"]


def read_runs(run_dirs: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(runs, histories, facts) of the runs' directories: one row per run and protocol with
    every evaluated task's test metrics; facts: per dataset, each task's first metric and each
    metric's direction."""
    rows, histories, facts = [], [], {}
    for directory in map(Path, run_dirs):
        metrics = json.loads((directory / "metrics.json").read_text())
        config = metrics["config"]
        keys = {
            "dataset": metrics["dataset"],
            "architecture": metrics["architecture"],
            "setting": setting_name(config, metrics["tasks"]),
            "weighting": weighting_spec(config),
            "seed": config["seed"],
        }
        known = facts.setdefault(metrics["dataset"], {"metric": {}, "lower_is_better": {}})
        known["lower_is_better"].update(metrics["lower_is_better"])
        for task, about in metrics["tasks"].items():
            if about["metric"] is not None:
                known["metric"][task] = about["metric"]
        for protocol in PROTOCOLS:
            values = {
                key.removeprefix("test_").removesuffix(SUFFIX[protocol]): value
                for key, value in metrics.items()
                if key.startswith("test_") and key.endswith(SUFFIX[protocol])
            }
            rows.append(
                {
                    **keys,
                    "protocol": protocol,
                    "best_epoch": metrics["best_epoch"],
                    "wall_time_s": metrics["wall_time_s"],
                    **values,
                }
            )
        history = pd.read_csv(directory / "history.csv")
        histories.append(history.assign(**keys))
    return pd.DataFrame(rows), pd.concat(histories, ignore_index=True), facts


def _task_metrics(row: pd.Series, tasks: list[str]) -> dict[str, dict[str, float]]:
    """{task: {metric: value}} of a run's row, for the columns ``<metric>_<task>`` it has."""
    out: dict[str, dict[str, float]] = {}
    for column, value in row.items():
        if not isinstance(value, float) or math.isnan(value):
            continue
        for task in tasks:
            if str(column).endswith(f"_{task}"):
                out.setdefault(task, {})[str(column)[: -len(task) - 1]] = value
    return out


def add_deltas(
    runs: pd.DataFrame, facts: dict[str, Any], published_baselines: dict | None = None
) -> pd.DataFrame:
    """``runs`` with the Δ_MTL columns (see the module doc)."""
    runs = runs.copy()
    for convention in (*CONVENTIONS, "published"):
        runs[f"delta_{convention}"] = math.nan
    singles = runs[runs["setting"].str.startswith(SINGLE)]
    for (dataset, architecture, protocol), group in runs.groupby(
        ["dataset", "architecture", "protocol"]
    ):
        about = facts[dataset]
        tasks = list(about["metric"])
        baselines: dict[str, dict[str, float]] = {}
        mine = singles[
            (singles["dataset"] == dataset)
            & (singles["architecture"] == architecture)
            & (singles["protocol"] == protocol)
        ]
        for setting, runs_of in mine.groupby("setting"):
            task = setting[len(SINGLE) :]
            means = runs_of.mean(numeric_only=True)
            baselines[task] = _task_metrics(means, [task]).get(task, {})
        for index, row in group.iterrows():
            if row["setting"].startswith(SINGLE):
                continue
            measured = _task_metrics(row, tasks)
            if measured and all(task in baselines for task in measured):
                for convention in CONVENTIONS:
                    runs.loc[index, f"delta_{convention}"] = delta_mtl_dense(
                        measured,
                        baselines,
                        about["lower_is_better"],
                        convention,
                        {task: about["metric"][task] for task in measured},
                    )
            reference = (published_baselines or {}).get(dataset)
            if reference and all(task in measured for task in reference):
                chosen = {
                    task: {m: measured[task][m] for m in reference[task]} for task in reference
                }
                runs.loc[index, "delta_published"] = delta_mtl_dense(
                    chosen, reference, about["lower_is_better"], "nashmtl"
                )
    return runs


def summarise(runs: pd.DataFrame, facts: dict[str, Any]) -> pd.DataFrame:
    """One row per dataset × architecture × setting × weighting × protocol (see the module
    doc)."""
    rows = []
    deltas = [f"delta_{c}" for c in (*CONVENTIONS, "published")]
    for keys, group in runs.groupby([*KEYS, "protocol"], sort=False):
        row = dict(zip([*KEYS, "protocol"], keys, strict=True))
        row["n_seeds"] = group["seed"].nunique()
        for task, metric in facts[row["dataset"]]["metric"].items():
            column = f"{metric}_{task}"
            if column in group and group[column].notna().any():
                row[f"{column}_mean"] = group[column].mean()
                row[f"{column}_ci95"] = confidence_halfwidth(group[column])
        for column in deltas:
            if group[column].notna().any():
                row[f"{column}_mean"] = group[column].mean()
                row[f"{column}_ci95"] = confidence_halfwidth(group[column])
        row["wall_time_s_mean"] = group["wall_time_s"].mean()
        rows.append(row)
    summary = pd.DataFrame(rows)
    return _against_equal(summary, runs)


def _against_equal(summary: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Each setting's weightings against Equal (``fixed``) in the same setting, on
    ``delta_autolambda`` paired by seed; Holm over each dataset × architecture × protocol."""
    for column in ("vs_equal_diff", "vs_equal_ci_low", "vs_equal_ci_high", "p_ttest", "p_holm"):
        summary[column] = math.nan
    indexed = runs.set_index([*KEYS, "protocol", "seed"])["delta_autolambda"]
    for index, row in summary.iterrows():
        if row["weighting"] == BASELINE_WEIGHTING or row["setting"].startswith(SINGLE):
            continue
        key = tuple(row[k] for k in [*KEYS, "protocol"])
        equal = (*key[:3], BASELINE_WEIGHTING, key[4])
        if equal not in indexed.droplevel("seed").index:
            continue
        result = paired_comparison(indexed.loc[key], indexed.loc[equal])
        summary.loc[index, "vs_equal_diff"] = result["mean_diff"]
        summary.loc[index, "vs_equal_ci_low"] = result["ci_low"]
        summary.loc[index, "vs_equal_ci_high"] = result["ci_high"]
        summary.loc[index, "p_ttest"] = result["p_ttest"]
    for _, family in summary.groupby(["dataset", "architecture", "protocol"]):
        summary.loc[family.index, "p_holm"] = holm(family["p_ttest"].to_numpy())
    return summary


def published_table(runs: pd.DataFrame, published: list[dict[str, Any]]) -> pd.DataFrame:
    """The ``published`` entries (source, dataset, architecture, setting, weighting, protocol,
    and ``values``: {column: figure} with columns as in ``dense_runs.csv``, e.g.
    ``miou_semantic``, ``delta_published``) beside the measured mean and CI."""
    rows = []
    for entry in published:
        mask = pd.Series(True, index=runs.index)
        for key in (*KEYS, "protocol"):
            mask &= runs[key] == entry.get(key, "best_val" if key == "protocol" else None)
        group = runs[mask]
        for column, figure in entry["values"].items():
            values = group[column].dropna() if column in group else pd.Series(dtype=float)
            mean = values.mean() if len(values) else math.nan
            half = confidence_halfwidth(values)
            rows.append(
                {
                    "source": entry["source"],
                    **{key: entry.get(key) for key in (*KEYS, "protocol")},
                    "column": column,
                    "published": figure,
                    "measured_mean": mean,
                    "measured_ci95": half,
                    "n_seeds": len(values),
                    "difference": mean - figure,
                    "published_in_ci": bool(abs(mean - figure) <= half)
                    if not math.isnan(half)
                    else False,
                }
            )
    return pd.DataFrame(rows)


def _label(frame: pd.DataFrame) -> pd.Series:
    return frame["setting"] + " · " + frame["weighting"]


def _metric_curves(history: pd.DataFrame, facts: dict[str, Any]) -> Figure | None:
    """Each task's first validation metric per epoch (mean over seeds, band: 95% t-CI): a row
    per setting (its weightings and the task's single-task baseline), a column per task."""
    tasks = [t for t in facts["metric"] if f"val_{facts['metric'][t]}_{t}" in history]
    settings = [s for s in history["setting"].unique() if not s.startswith(SINGLE)]
    if not tasks or not settings:
        return None
    fig, axes = new_figure(4.2 * len(tasks), 3.0 * len(settings), len(tasks), len(settings), False)
    axes = axes.reshape(len(settings), len(tasks))
    for r, setting in enumerate(settings):
        for c, task in enumerate(tasks):
            column = f"val_{facts['metric'][task]}_{task}"
            shown = history[
                (history["setting"] == setting) | (history["setting"] == f"{SINGLE}{task}")
            ].dropna(subset=[column])
            shown = shown.assign(
                run=shown["weighting"].where(shown["setting"] == setting, "single")
            )
            labels = sorted(shown["run"].unique(), key=lambda x: (x != "single", x))
            sns.lineplot(
                data=shown,
                x="epoch",
                y=column,
                hue="run",
                hue_order=labels,
                palette=panel_colours(labels),
                errorbar=t_interval,
                ax=axes[r, c],
            )
            axes[r, c].set(title=f"{setting}: {task}", ylabel=f"validation {facts['metric'][task]}")
            axes[r, c].grid(alpha=0.3)
    return fig


def _weights(history: pd.DataFrame) -> Figure | None:
    """The learned task weights per epoch (mean over seeds): a panel per setting × weighting
    that changes them, a line per task."""
    columns = [c for c in history.columns if c.startswith("weight_")]
    if not columns:
        return None
    changing = history[history[columns].notna().any(axis=1)]
    panels = list(changing.groupby(["setting", "weighting"], sort=True).groups)
    if not panels:
        return None
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = new_figure(4.2 * ncols, 3.0 * nrows, ncols, nrows, False)
    for ax, (setting, weighting) in zip(axes, panels, strict=False):
        part = changing[(changing["setting"] == setting) & (changing["weighting"] == weighting)]
        long = part.melt(
            id_vars=["epoch", "seed"], value_vars=columns, var_name="task", value_name="weight"
        ).dropna()
        long["task"] = long["task"].str.removeprefix("weight_")
        sns.lineplot(data=long, x="epoch", y="weight", hue="task", errorbar=t_interval, ax=ax)
        ax.set(title=f"{setting} · {weighting}")
        ax.grid(alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return fig


def _deltas(runs: pd.DataFrame) -> Figure | None:
    """Δ_MTL (Auto-λ's convention) per setting and weighting: mean over seeds and 95% t-CI."""
    shown = runs[(runs["protocol"] == "best_val") & runs["delta_autolambda"].notna()]
    if shown.empty:
        return None
    weightings = sorted(shown["weighting"].unique())
    fig, (ax,) = new_figure(1.2 + 0.9 * shown["setting"].nunique() * len(weightings) / 2, 3.8)
    sns.barplot(
        data=shown,
        x="setting",
        y="delta_autolambda",
        hue="weighting",
        hue_order=weightings,
        palette=panel_colours(weightings),
        errorbar=t_interval,
        ax=ax,
    )
    sns.stripplot(
        data=shown,
        x="setting",
        y="delta_autolambda",
        hue="weighting",
        hue_order=weightings,
        dodge=True,
        palette=dict.fromkeys(weightings, "0.3"),
        size=3,
        legend=False,
        ax=ax,
    )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(ylabel="Δ_MTL vs single-task (%)", title="Δ_MTL at the best-validation epoch")
    ax.grid(alpha=0.3, axis="y")
    return fig


def aggregate(
    run_dirs: list[Path],
    tables: Path,
    figures: Path,
    published: list[dict[str, Any]] | None = None,
    published_baselines: dict | None = None,
) -> pd.DataFrame:
    """Write the tables and figures of the module doc; return the summary."""
    runs, history, facts = read_runs(run_dirs)
    runs = add_deltas(runs, facts, published_baselines)
    runs = runs.sort_values([*KEYS, "protocol", "seed"], ignore_index=True)
    summary = summarise(runs, facts)
    tables, figures = Path(tables), Path(figures)
    atomic.write_text(tables / "dense_runs.csv", runs.to_csv(index=False))
    atomic.write_text(tables / "dense_history.csv", history.to_csv(index=False))
    atomic.write_text(tables / "dense_summary.csv", summary.to_csv(index=False))
    atomic.write_text(tables / "dense_summary.md", summary.to_markdown(index=False, floatfmt=".4g"))
    if published:
        table = published_table(runs, published)
        atomic.write_text(tables / "dense_published.csv", table.to_csv(index=False))
    figures.mkdir(parents=True, exist_ok=True)
    for dataset in sorted(runs["dataset"].unique()):
        drawn = {
            "dense-metrics": _metric_curves(history[history["dataset"] == dataset], facts[dataset]),
            "dense-weights": _weights(history[history["dataset"] == dataset]),
            "dense-delta": _deltas(runs[runs["dataset"] == dataset]),
        }
        for kind, fig in drawn.items():
            if fig is not None:
                fig.suptitle(dataset)
                fig.savefig(figures / f"{kind}_{dataset}.png")
    return summary
