"""Figures of the aggregated tables: learning curves, accuracy, λ ablation, wall time and the
methods' own per-epoch logs (generator entropy, agent reward, learned weights, ...).

Figures are built as plain ``matplotlib.figure.Figure`` objects drawn by the Agg canvas, so no
pyplot state or GUI backend is touched and nothing stays open after a figure is saved.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from auxbench.experiment.grid import FIXED
from auxbench.report.stats import confidence_halfwidth

DPI = 110
SINGLE = "single"
SEEDS_STYLE = {"color": "0.15", "size": 4, "alpha": 0.8, "jitter": 0.15}
COMMON_COLUMNS = {"dataset", "method", "lam", "seed", "label", "epoch", "lr", "epoch_time_s"}
COMMON_PREFIXES = ("train_", "val_", "test_")


def run_label(method: str, lam: float, weighting: str = FIXED) -> str:
    """A run's label in plots: the method, ``[weighting]`` unless fixed, and ``λ=<lam>`` where λ
    applies (e.g. ``human λ=0.5``, ``human [dwa+pcgrad]``)."""
    label = method if weighting == FIXED else f"{method} [{weighting}]"
    return label if pd.isna(lam) else f"{label} λ={lam:g}"


def with_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``label`` column from its ``method``, ``weighting`` and ``lam`` columns."""
    keys = zip(frame["method"], frame["lam"], frame["weighting"], strict=True)
    return frame.assign(label=[run_label(*key) for key in keys])


def label_order(frame: pd.DataFrame) -> list[str]:
    """Labels of ``frame`` in plotting order: ``single`` first, then by method, fixed weights
    before the others, and ascending λ."""
    keys = frame[["method", "weighting", "lam"]].drop_duplicates()
    keys = keys.assign(
        not_single=keys["method"].ne(SINGLE), not_fixed=keys["weighting"].ne(FIXED)
    ).sort_values(["not_single", "method", "not_fixed", "weighting", "lam"], na_position="first")
    return [
        run_label(m, lam, w)
        for m, w, lam in keys[["method", "weighting", "lam"]].itertuples(index=False)
    ]


def make_figures(tables_dir: Path, out_dir: Path) -> list[Path]:
    """Write every figure for each dataset of ``tables_dir`` into ``out_dir``; return their paths.

    Per dataset: ``curves_``, ``accuracy_``, ``lambda_`` (only when some method has λ values),
    ``time_`` and ``diagnostics_<dataset>.png`` (only when some method logs values of its own).
    """
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    runs = with_labels(pd.read_csv(tables_dir / "runs.csv"))
    history = with_labels(pd.read_csv(tables_dir / "history.csv"))
    summary = with_labels(pd.read_csv(tables_dir / "summary.csv"))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for dataset in sorted(runs["dataset"].unique()):
        d_runs = runs[runs["dataset"] == dataset]
        order = label_order(d_runs)
        palette = dict(zip(order, colours(len(order)), strict=True))
        figures = {
            "curves": _curves(history[history["dataset"] == dataset], order, palette),
            "accuracy": _accuracy(d_runs, summary[summary["dataset"] == dataset], order, palette),
            "lambda": _lambda(summary[summary["dataset"] == dataset]),
            "time": _wall_time(d_runs, order, palette),
            "diagnostics": _diagnostics(history[history["dataset"] == dataset], order, palette),
        }
        for kind, fig in figures.items():
            if fig is None:
                continue
            fig.suptitle(dataset)
            path = out_dir / f"{kind}_{dataset}.png"
            fig.savefig(path)
            written.append(path)
    return written


def colours(n: int) -> list:
    """``n`` distinguishable colours (tab10 up to 10, else husl)."""
    return sns.color_palette("tab10" if n <= 10 else "husl", n)


def new_figure(
    width: float, height: float, ncols: int = 1, nrows: int = 1, sharey: bool = True
) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure with an Agg canvas and its axes, flattened."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, np.atleast_1d(fig.subplots(nrows, ncols, sharey=sharey)).ravel()


def _bar_height(n_labels: int) -> float:
    return 1.6 + 0.45 * n_labels


def t_interval(values: pd.Series) -> tuple[float, float]:
    """Mean ± half-width of the Student-t 95% CI, as seaborn's ``errorbar`` callable expects."""
    mean, half = values.mean(), confidence_halfwidth(pd.Series(values))
    return mean - half, mean + half


def _per_epoch(ax, rows: pd.DataFrame, column: str, order, palette, legend: bool) -> None:
    """``column`` against the epoch, one line per run label (mean over seeds, 95% t-CI band)."""
    sns.lineplot(
        data=rows,
        x="epoch",
        y=column,
        hue="label",
        hue_order=[label for label in order if label in set(rows["label"])],
        palette=palette,
        errorbar=t_interval,
        ax=ax,
        legend=legend,
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _curves(history: pd.DataFrame, order: list[str], palette: dict) -> Figure | None:
    """Validation and test accuracy per epoch: mean over seeds with a 95% t-CI band."""
    if history.empty:
        return None
    fig, axes = new_figure(11, 4.2, ncols=2)
    for ax, column, name in zip(axes, ("val_acc", "test_acc"), ("Validation", "Test"), strict=True):
        _per_epoch(ax, history, column, order, palette, legend=True)
        ax.set(title=f"{name} accuracy (mean over seeds, band: 95% t-CI)", ylabel="accuracy")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes:
        ax.get_legend().remove()
    fig.legend(handles, labels, loc="outside right upper", title="run")
    return fig


def _bars_with_seeds(ax, means: pd.Series, runs: pd.DataFrame, column: str, order, palette):
    """Horizontal bars of ``means`` (indexed by label) with each run's ``column`` as a dot."""
    sns.barplot(
        x=means.reindex(order).to_numpy(),
        y=order,
        hue=order,
        order=order,
        hue_order=order,
        palette=palette,
        errorbar=None,
        legend=False,
        alpha=0.85,
        ax=ax,
    )
    sns.stripplot(data=runs, x=column, y="label", order=order, ax=ax, **SEEDS_STYLE)
    ax.set_ylabel("")
    ax.grid(axis="x", alpha=0.3)


def _accuracy(runs, summary: pd.DataFrame, order, palette) -> Figure:
    """Test accuracy at the best validation epoch: summary mean with its 95% t-CI, seeds as dots."""
    summary = summary.set_index("label")
    order = [label for label in order if label in summary.index]
    means = summary.loc[order, "test_acc_mean"]
    ci = summary.loc[order, "test_acc_ci95"].to_numpy(dtype=float)
    fig, (ax,) = new_figure(8, _bar_height(len(order)))
    _bars_with_seeds(ax, means, runs, "test_acc_at_best_val", order, palette)
    for bars in ax.containers:  # one container per label (hue)
        ax.bar_label(bars, fmt="%.4f", label_type="center", fontsize=8)
    ax.errorbar(means, range(len(order)), xerr=ci, fmt="none", ecolor="black", capsize=4)
    ax.set(
        title="Test accuracy at best validation epoch\n(mean ± 95% t-CI; dots: seeds)",
        xlabel="test accuracy",
    )
    ax.set_xlim(0, max(1.0, float(np.nanmax(means + np.nan_to_num(ci)))))
    return fig


def _lambda(summary: pd.DataFrame) -> Figure | None:
    """Test accuracy against λ (log-2 axis) per method and weighting where λ applies, with
    ``single``'s mean as reference.

    λ ≤ 0 has no place on a log axis and is left out.
    """
    swept = summary[summary["lam"].gt(0)].sort_values(["method", "weighting", "lam"])
    if swept.empty:
        return None
    fig, (ax,) = new_figure(7, 4.5)
    series = list(swept.groupby(["method", "weighting"], sort=False))
    for ((method, weighting), rows), colour in zip(series, colours(len(series)), strict=True):
        ax.errorbar(
            rows["lam"],
            rows["test_acc_mean"],
            yerr=rows["test_acc_ci95"].to_numpy(dtype=float),
            marker="o",
            capsize=4,
            color=colour,
            label=run_label(method, math.nan, weighting),
        )
    is_single = summary["method"].eq(SINGLE) & summary["weighting"].eq(FIXED)
    single = summary.loc[is_single, "test_acc_mean"]
    if not single.empty:
        ax.axhline(single.iloc[0], color="0.3", linestyle="--", label=f"{SINGLE} (mean)")
    ax.set_xscale("log", base=2)
    lams = sorted(swept["lam"].unique())
    ax.set_xticks(lams, [f"{lam:g}" for lam in lams])
    ax.set(
        title="λ ablation: test accuracy at best validation epoch (mean ± 95% t-CI)",
        xlabel="λ (log₂ scale)",
        ylabel="test accuracy",
    )
    ax.grid(alpha=0.3)
    ax.legend(title="method")
    return fig


def _wall_time(runs: pd.DataFrame, order, palette) -> Figure:
    """Training wall time per run label: mean over seeds as bars, seeds as dots."""
    fig, (ax,) = new_figure(8, _bar_height(len(order)))
    means = runs.groupby("label")["wall_time_s"].mean()
    _bars_with_seeds(ax, means, runs, "wall_time_s", order, palette)
    ax.set(title="Training wall time (mean over seeds; dots: seeds)", xlabel="wall time [s]")
    return fig


def method_columns(history: pd.DataFrame) -> list[str]:
    """History columns some method logs for itself (everything but the trainer's own columns)."""
    return [
        column
        for column in history.columns
        if column not in COMMON_COLUMNS
        and not column.startswith(COMMON_PREFIXES)
        and pd.api.types.is_numeric_dtype(history[column])
        and history[column].notna().any()
    ]


def _diagnostics(history: pd.DataFrame, order: list[str], palette: dict) -> Figure | None:
    """One panel per method-specific column: its value per epoch, mean over seeds with a 95%
    t-CI band, for the runs that log it."""
    columns = method_columns(history)
    if not columns:
        return None
    ncols = min(3, len(columns))
    nrows = -(-len(columns) // ncols)
    fig, axes = new_figure(4.2 * ncols + 2, 3.2 * nrows, ncols, nrows, sharey=False)
    for ax, column in zip(axes, columns, strict=False):
        _per_epoch(ax, history[history[column].notna()], column, order, palette, legend=False)
        ax.set(title=column, ylabel="")
    for ax in axes[len(columns) :]:
        ax.set_visible(False)
    present = [
        label
        for label in order
        if label in set(history.loc[history[columns].notna().any(axis=1), "label"])
    ]
    handles = [Line2D([], [], color=palette[label]) for label in present]
    fig.legend(handles, present, loc="outside right upper", title="run")
    return fig
