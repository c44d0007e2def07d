"""Tables and figures over the RL track's runs (``auxbench rltrack-train``): per environment ×
method, the mean and 95% t-CI over seeds of the area under the curve, the steps to the return
threshold and the final return; the return against environment steps (mean over seeds, band: 95%
t-CI); the learned auxiliary weights."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from auxbench.foundations import atomic
from auxbench.report.plots import colours, new_figure, t_interval
from auxbench.report.stats import confidence_halfwidth
from auxbench.rltrack.run import METHODS

RUN_COLUMNS = ["env", "method", "seed", "auc", "steps_to_threshold", "threshold", "final_return"]
METRICS = ("auc", "steps_to_threshold", "final_return")


def read_runs(
    run_dirs: list[Path], columns: list[str] = RUN_COLUMNS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, curves) of the run directories (each with ``metrics.json`` and ``curve.csv``):
    ``columns`` of each run's metrics (and its steps and wall time), its curve with the run's
    env, method and seed."""
    runs, curves = [], []
    for directory in map(Path, run_dirs):
        metrics = json.loads((directory / "metrics.json").read_text())
        runs.append({key: metrics[key] for key in (*columns, "env_steps", "wall_time_s")})
        curve = pd.read_csv(directory / "curve.csv")
        curves.append(
            curve.assign(env=metrics["env"], method=metrics["method"], seed=metrics["seed"])
        )
    return pd.DataFrame(runs), pd.concat(curves, ignore_index=True)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per environment × method: seeds, the mean and 95% t-CI half-width of each metric
    (steps to threshold over the seeds that reached it) and how many seeds reached it."""
    rows = []
    for (env, method), group in runs.groupby(["env", "method"], sort=False):
        row = {"env": env, "method": method, "n_seeds": len(group)}
        for metric in METRICS:
            values = group[metric].dropna()
            row[f"{metric}_mean"] = values.mean()
            row[f"{metric}_ci95"] = confidence_halfwidth(values)
        row["reached"] = int(group["steps_to_threshold"].notna().sum())
        rows.append(row)
    return pd.DataFrame(rows)


def method_order(methods) -> list[str]:
    """``methods`` in the order of ``auxbench.rltrack.run.METHODS`` (none first)."""
    return [name for name in METHODS if name in set(methods)]


def _returns(curves: pd.DataFrame, threshold: float, palette: dict) -> Figure:
    fig, (ax,) = new_figure(7.5, 4.2)
    sns.lineplot(
        data=curves,
        x="step",
        y="return",
        hue="method",
        hue_order=method_order(curves["method"]),
        palette=palette,
        errorbar=t_interval,
        ax=ax,
    )
    ax.axhline(threshold, color="0.4", linestyle="--", linewidth=1, label="threshold")
    ax.set(title="Episode return (mean over seeds, band: 95% t-CI)", xlabel="environment steps")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def _weights(curves: pd.DataFrame) -> Figure | None:
    methods = [m for m in method_order(curves["method"]) if METHODS[m][0] == "olaux"]
    return weights_figure(curves, methods)


def weights_figure(curves: pd.DataFrame, methods: list[str]) -> Figure | None:
    """One panel per method of ``methods``: its ``weight_<task>`` columns against the step, mean
    over seeds with a 95% t-CI band; None without such columns or methods."""
    columns = [column for column in curves.columns if column.startswith("weight_")]
    if not columns or not methods:
        return None
    long = curves[curves["method"].isin(methods)].melt(
        id_vars=["step", "method", "seed"], value_vars=columns, var_name="task", value_name="weight"
    )
    long["task"] = long["task"].str.removeprefix("weight_")
    fig, axes = new_figure(5.5 * len(methods), 4.0, ncols=len(methods))
    for ax, method in zip(axes, methods, strict=True):
        sns.lineplot(
            data=long[long["method"] == method],
            x="step",
            y="weight",
            hue="task",
            errorbar=t_interval,
            ax=ax,
        )
        ax.set(title=f"{method}: auxiliary weights (mean over seeds)", xlabel="environment steps")
        ax.grid(alpha=0.3)
    return fig


def aggregate(run_dirs: list[Path], tables: Path, figures: Path) -> pd.DataFrame:
    """Write ``rltrack_runs.csv``, ``rltrack_curves.csv``, ``rltrack_summary.csv`` and
    ``rltrack_summary.md`` into ``tables`` and ``rltrack-return_<env>.png`` and
    ``rltrack-weights_<env>.png`` into ``figures``; return the summary."""
    runs, curves = read_runs(run_dirs)
    runs = runs.sort_values(["env", "method", "seed"], ignore_index=True)
    summary = summarise(runs)
    tables, figures = Path(tables), Path(figures)
    atomic.write_text(tables / "rltrack_runs.csv", runs.to_csv(index=False))
    atomic.write_text(tables / "rltrack_curves.csv", curves.to_csv(index=False))
    atomic.write_text(tables / "rltrack_summary.csv", summary.to_csv(index=False))
    atomic.write_text(
        tables / "rltrack_summary.md", summary.to_markdown(index=False, floatfmt=".3f")
    )
    figures.mkdir(parents=True, exist_ok=True)
    order = method_order(runs["method"])
    palette = dict(zip(order, colours(len(order)), strict=True))
    for env in sorted(runs["env"].unique()):
        env_curves = curves[curves["env"] == env]
        threshold = float(runs.loc[runs["env"] == env, "threshold"].iloc[0])
        drawn = {
            "rltrack-return": _returns(env_curves, threshold, palette),
            "rltrack-weights": _weights(env_curves),
        }
        for kind, fig in drawn.items():
            if fig is not None:
                fig.suptitle(env)
                fig.savefig(figures / f"{kind}_{env}.png")
    return summary
