"""Figures of the aggregated tables: learning curves, accuracy, λ ablation, wall time, the
critical-difference diagram of the settings' ranks, the learned task weights and the label
generators' own per-epoch logs (generator entropy, agent reward, ...).

Every panel is titled in words (``column_title``), draws at most ``MAX_COLOURS`` colours (runs
are split into panels of at most that many) and zooms its accuracy axis to the data.

Figures are built as plain ``matplotlib.figure.Figure`` objects drawn by the Agg canvas, so no
pyplot state or GUI backend is touched and nothing stays open after a figure is saved.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import scikit_posthocs as sp
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from auxbench.experiment.grid import FIXED
from auxbench.experiment.grid import PROTOCOLS as GRID_PROTOCOLS
from auxbench.report.stats import confidence_halfwidth

DPI = 110
SINGLE = "single"
SEEDS_STYLE = {"color": "0.55", "size": 4, "alpha": 0.8, "jitter": 0.15}
COMMON_COLUMNS = {"dataset", "method", "lam", "seed", "label", "epoch", "lr", "epoch_time_s"}
COMMON_PREFIXES = ("train_", "val_", "test_")
# At most this many colours in one panel; ``single``, drawn in black, is one of them
MAX_COLOURS = 8
SINGLE_COLOUR = "black"
# The critical-difference diagram draws at most this many best-ranked settings (and single)
CD_MAX_LABELS = 12
# The protocols of comparisons.csv, ranks.csv and friedman.json (the tables contract)
# (``auxbench.experiment.grid.PROTOCOLS``), each in words
PROTOCOLS = dict(
    zip(
        GRID_PROTOCOLS,
        (
            "test accuracy at the best validation epoch",
            "mean test accuracy of the last 15 epochs",
            "best test accuracy over the epochs (optimistic)",
        ),
        strict=True,
    )
)
DEFAULT_PROTOCOL = GRID_PROTOCOLS[0]
# Significance of a setting against ``single`` (comparisons.csv) and its colour
SIGNIFICANCE_COLOURS = {
    "baseline": SINGLE_COLOUR,
    "better": "#1a9850",
    "worse": "#d73027",
    "not significant": "#4575b4",
}
# Per-task logs of a weighting (``Weighting.task_logs`` and ``logs``): ``<kind>_<task>``
WEIGHT_KINDS = {
    "weight": "learned task weights",
    "kept": "GCS: fraction of steps each auxiliary gradient was kept",
    "cosine": "GCS: mean cosine of each auxiliary gradient with the primary gradient",
    "alignment": "OL-AUX: alignment of each auxiliary gradient with the primary gradient",
}
PER_TASK_TITLES = {
    "weight": "learned weight of the {task} task",
    "kept": "GCS: fraction of steps the {task} gradient was kept",
    "cosine": "GCS: mean cosine of the {task} gradient with the primary gradient",
    "alignment": "OL-AUX: alignment of the {task} gradient with the primary gradient",
}
# The label generators' and RL-AUX agents' logs (``after_epoch`` of the methods)
GENERATOR_PREFIXES = ("gen_", "agent_", "aux_")
COLUMN_TITLES = {
    "gen_entropy": "MAXL: entropy of the generated labels' mean distribution",
    "gen_classes_used": "MAXL: auxiliary classes the generator uses",
    "gen_meta_loss": "MAXL: primary loss after the virtual step (meta loss)",
    "aux_weight_mean": "per-example auxiliary weight, mean",
    "aux_weight_std": "per-example auxiliary weight, standard deviation",
    "aux_classes_used": "auxiliary classes used to train the main network",
    "aux_chosen_entropy": "RL-AUX, Train-Main: entropy of the chosen auxiliary labels",
    "agent_reward": "RL-AUX agent: mean reward per labelled batch",
    "agent_chosen_entropy": "RL-AUX agent: entropy of the chosen auxiliary labels",
    "agent_policy_entropy": "RL-AUX agent: policy entropy per image",
    "agent_label_entropy": "RL-AUX agent: entropy of the batch-mean label distribution",
    "agent_classes_used": "RL-AUX agent: auxiliary classes chosen",
    "agent_weight_mean": "WA-RL-AUX agent: per-example weight, mean",
    "agent_weight_std": "WA-RL-AUX agent: per-example weight, standard deviation",
    "train_loss": "training loss",
    "train_acc": "training accuracy",
    "val_acc": "validation accuracy",
    "test_acc": "test accuracy",
    "epoch_time_s": "time per epoch [s]",
    "lr": "learning rate",
}
TASK_NAMES = {"aux": "auxiliary", "primary": "primary", "noise": "noise"}


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


def task_name(task: str) -> str:
    """A task's name in words: ``aux`` → ``auxiliary``, an index ``2`` → ``#2``."""
    return f"#{task}" if task.isdigit() else TASK_NAMES.get(task, task)


def tidy(column: str) -> str:
    """A column name without underscores and unit suffixes: ``foo_bar_s`` → ``foo bar [s]``."""
    text = re.sub(r"_s$", " [s]", column)
    return text.replace("_", " ")


def column_title(column: str) -> str:
    """A per-epoch column in words: the known logs of ``COLUMN_TITLES``, a weighting's per-task
    ``<kind>_<task>`` logs (``kept_aux`` → ``GCS: fraction of steps the auxiliary gradient was
    kept``), anything else tidied (``foo_bar`` → ``foo bar``)."""
    if column in COLUMN_TITLES:
        return COLUMN_TITLES[column]
    kind, _, task = column.partition("_")
    if kind in PER_TASK_TITLES and task:
        return PER_TASK_TITLES[kind].format(task=task_name(task))
    return tidy(column)


def colours(n: int) -> list:
    """``n`` distinguishable colours (tab10 up to 10, else husl)."""
    return sns.color_palette("tab10" if n <= 10 else "husl", n)


def panel_colours(labels: list[str]) -> dict[str, tuple]:
    """A colour per label of one panel (at most ``MAX_COLOURS``): ``single`` black, the others
    tab10 without its grey."""
    palette = [c for i, c in enumerate(sns.color_palette("tab10", 10)) if i != 7]
    others = iter(palette)
    return {label: SINGLE_COLOUR if label == SINGLE else next(others) for label in labels}


def chunks(items: list, size: int) -> list[list]:
    """``items`` split into the fewest consecutive chunks of at most ``size``, of even length."""
    n = -(-len(items) // size)
    parts, start = [], 0
    for i in range(n):
        end = start + len(items) // n + (i < len(items) % n)
        parts.append(list(items[start:end]))
        start = end
    return parts


def label_groups(frame: pd.DataFrame, size: int = MAX_COLOURS - 1) -> list[tuple[str, list[str]]]:
    """Panels of runs: (title, labels) with at most ``size`` labels besides ``single``. Runs with
    fixed weights form one group, each method's adaptive weightings another; larger groups are
    split evenly (``(1 of 2)`` in the title)."""
    order = label_order(frame)
    keys = frame[["method", "weighting", "lam"]].drop_duplicates()
    group_of = {
        run_label(m, lam, w): ("fixed weights" if w == FIXED else f"{m}: adaptive weightings")
        for m, w, lam in keys.itertuples(index=False)
    }
    names = list(dict.fromkeys(group_of[label] for label in order if label != SINGLE))
    groups = []
    for name in names:
        members = [label for label in order if label != SINGLE and group_of[label] == name]
        parts = chunks(members, size)
        for i, part in enumerate(parts, start=1):
            suffix = f" ({i} of {len(parts)})" if len(parts) > 1 else ""
            groups.append((f"{name}{suffix}", part))
    return groups


def new_figure(
    width: float, height: float, ncols: int = 1, nrows: int = 1, sharey: bool = True
) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure with an Agg canvas and its axes, flattened."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, np.atleast_1d(fig.subplots(nrows, ncols, sharey=sharey)).ravel()


def _bar_height(n_labels: int) -> float:
    return 1.6 + 0.32 * n_labels


def t_interval(values: pd.Series) -> tuple[float, float]:
    """Mean ± half-width of the Student-t 95% CI, as seaborn's ``errorbar`` callable expects."""
    mean, half = values.mean(), confidence_halfwidth(pd.Series(values))
    return mean - half, mean + half


def zoomed_limits(values, margin: float = 0.08) -> tuple[float, float]:
    """Axis limits around the finite ``values`` with ``margin`` of their range on each side
    (an accuracy axis zoomed to the data, not 0 to 1)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    pad = margin * (high - low) if high > low else max(abs(high) * 0.01, 0.005)
    return low - pad, high + pad


def figures(tables_dir: Path) -> Iterator[tuple[str, Figure]]:
    """Every figure of ``tables_dir`` as (file stem, figure).

    Per dataset: ``accuracy_``, ``curves_``, ``lambda_`` (only when some method has λ values),
    ``time_``, ``weights_`` (the adaptive weightings' per-task logs), ``generator_`` (the label
    generators' and agents' logs) and ``diagnostics_`` (any other logs of a method). With
    ``ranks.csv`` and ``friedman.json``: ``cd_<protocol>`` per protocol with a Friedman test.
    """
    tables_dir = Path(tables_dir)
    runs = with_labels(pd.read_csv(tables_dir / "runs.csv"))
    history = with_labels(pd.read_csv(tables_dir / "history.csv"))
    summary = with_labels(pd.read_csv(tables_dir / "summary.csv"))
    comparisons = read_optional_csv(tables_dir / "comparisons.csv")
    for dataset in sorted(runs["dataset"].unique()):
        d_runs = runs[runs["dataset"] == dataset]
        d_history = history[history["dataset"] == dataset]
        d_summary = summary[summary["dataset"] == dataset]
        columns = method_columns(d_history)
        weights = [c for c in columns if c.partition("_")[0] in WEIGHT_KINDS]
        generator = [c for c in columns if c.startswith(GENERATOR_PREFIXES)]
        other = [c for c in columns if c not in weights and c not in generator]
        drawn = {
            "accuracy": _accuracy(d_runs, d_summary, significance(comparisons, dataset)),
            "curves": _curves(d_history, d_runs),
            "lambda": _lambda(d_summary),
            "time": _wall_time(d_runs),
            "weights": _weights(d_history, weights),
            "generator": _per_column(d_history, generator),
            "diagnostics": _per_column(d_history, other),
        }
        for kind, fig in drawn.items():
            if fig is not None:
                fig.suptitle(dataset)
                yield f"{kind}_{dataset}", fig
    friedman_path = tables_dir / "friedman.json"
    ranks = read_optional_csv(tables_dir / "ranks.csv")
    if ranks is not None and friedman_path.exists():
        friedman = json.loads(friedman_path.read_text())
        for protocol in PROTOCOLS:
            entry = friedman.get(protocol)
            fig = cd_diagram(ranks[ranks["protocol"] == protocol], entry, protocol)
            if fig is not None:
                yield f"cd_{protocol}", fig


def make_figures(tables_dir: Path, out_dir: Path) -> list[Path]:
    """Write every figure of ``figures(tables_dir)`` into ``out_dir`` as PNG; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, fig in figures(tables_dir):
        path = out_dir / f"{stem}.png"
        fig.savefig(path)
        written.append(path)
    return written


def read_optional_csv(path: Path) -> pd.DataFrame | None:
    """The table at ``path``, or None where the aggregation did not write it (older results)."""
    return pd.read_csv(path) if path.exists() else None


def is_true(value) -> bool:
    """A boolean cell read from CSV: ``True``/``"True"``/``"true"``, else False (NaN included)."""
    return value is True or value is np.True_ or str(value).strip().lower() == "true"


def significance(
    comparisons: pd.DataFrame | None, dataset: str, protocol: str = DEFAULT_PROTOCOL
) -> dict[str, str]:
    """Each label's standing against ``single`` on ``dataset`` (comparisons.csv): ``better``,
    ``worse`` (Holm-adjusted p < 0.05) or ``not significant``; empty without comparisons."""
    if comparisons is None:
        return {}
    rows = comparisons[(comparisons["dataset"] == dataset) & (comparisons["protocol"] == protocol)]
    standing = {}
    for row in rows.itertuples(index=False):
        if is_true(row.significant):
            verdict = "better" if row.mean_diff > 0 else "worse"
        else:
            verdict = "not significant"
        standing[run_label(row.method, row.lam, row.weighting)] = verdict
    return standing


def _per_epoch(
    ax, rows: pd.DataFrame, column: str, labels: list[str], palette: dict, hue: str = "label"
) -> None:
    """``column`` against the epoch, one line per value of ``hue`` among ``labels`` (mean over
    seeds, 95% t-CI band)."""
    present = set(rows[hue])
    sns.lineplot(
        data=rows[rows[hue].isin(labels)],
        x="epoch",
        y=column,
        hue=hue,
        hue_order=[label for label in labels if label in present],
        palette=palette,
        errorbar=t_interval,
        ax=ax,
        legend=False,
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _legend(ax, labels: list[str], palette: dict, title: str = "run") -> None:
    """A legend of ``labels``' colours to the right of ``ax``."""
    handles = [Line2D([], [], color=palette[label]) for label in labels]
    ax.legend(handles, labels, title=title, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)


def _curves(history: pd.DataFrame, runs: pd.DataFrame) -> Figure | None:
    """Validation and test accuracy per epoch, one row of panels per group of runs (at most
    ``MAX_COLOURS`` each, ``single`` in every row): mean over seeds with a 95% t-CI band."""
    if history.empty:
        return None
    groups = label_groups(runs) or [("single", [])]
    has_single = SINGLE in set(runs["label"])
    fig, axes = new_figure(12, 1.0 + 3.1 * len(groups), ncols=2, nrows=len(groups))
    for row, (name, members) in enumerate(groups):
        labels = ([SINGLE] if has_single else []) + members
        palette = panel_colours(labels)
        for col, (column, split) in enumerate((("val_acc", "Validation"), ("test_acc", "Test"))):
            ax = axes[2 * row + col]
            _per_epoch(ax, history, column, labels, palette)
            ax.set(title=f"{split} accuracy\n{name}", ylabel="accuracy")
        _legend(axes[2 * row + 1], labels, palette)
    return fig


def _accuracy(runs: pd.DataFrame, summary: pd.DataFrame, standing: dict[str, str]) -> Figure:
    """Test accuracy at the best validation epoch, best first: the summary mean with its 95% t-CI
    and each seed as a dot, coloured by the paired comparison with ``single`` where there is
    one; the axis spans the data, and a dashed line marks ``single``'s mean."""
    summary = summary.set_index("label").sort_values("test_acc_mean", ascending=False)
    order = list(summary.index)
    means = summary["test_acc_mean"].to_numpy(dtype=float)
    ci = summary["test_acc_ci95"].to_numpy(dtype=float)
    fig, (ax,) = new_figure(8.5, _bar_height(len(order)))
    sns.stripplot(data=runs, x="test_acc_at_best_val", y="label", order=order, ax=ax, **SEEDS_STYLE)
    categories = {
        label: "baseline"
        if label == SINGLE
        else standing.get(label, "not significant" if standing else "mean")
        for label in order
    }
    styles = {**SIGNIFICANCE_COLOURS, "mean": SIGNIFICANCE_COLOURS["not significant"]}
    names = {
        "baseline": "single (the baseline)",
        "better": "better than single (Holm p < 0.05)",
        "worse": "worse than single (Holm p < 0.05)",
        "not significant": "not significantly different",
        "mean": "mean ± 95% t-CI",
    }
    for category, colour in styles.items():
        rows = [i for i, label in enumerate(order) if categories[label] == category]
        if rows:
            ax.errorbar(
                means[rows],
                rows,
                xerr=np.nan_to_num(ci[rows]),
                fmt="o",
                color=colour,
                capsize=4,
                label=names[category],
            )
    if SINGLE in summary.index:
        ax.axvline(summary.loc[SINGLE, "test_acc_mean"], color="0.4", linestyle="--", lw=1)
    ax.set_xlim(
        zoomed_limits(
            np.concatenate([means - np.nan_to_num(ci), means + np.nan_to_num(ci)]).tolist()
            + runs["test_acc_at_best_val"].tolist()
        )
    )
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.set(
        title="Test accuracy at the best validation epoch, best first\n"
        "(mean ± 95% t-CI over seeds; grey dots: seeds; dashed: single's mean)",
        xlabel="test accuracy",
        ylabel="",
    )
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    return fig


def _lambda(summary: pd.DataFrame) -> Figure | None:
    """Test accuracy against λ (log-2 axis) per method and weighting where λ applies, in panels
    of at most ``MAX_COLOURS - 1`` series, with ``single``'s mean as the dashed reference.

    λ ≤ 0 has no place on a log axis and is left out.
    """
    swept = summary[summary["lam"].gt(0)].sort_values(["method", "weighting", "lam"])
    if swept.empty:
        return None
    series = swept[["method", "weighting"]].drop_duplicates()
    fixed = series[series["weighting"] == FIXED]
    adaptive = series[series["weighting"] != FIXED]
    size = MAX_COLOURS - 1  # and single's line
    panels = [("fixed weights", part) for part in chunks(_keys(fixed), size)]
    for method, rows in adaptive.groupby("method", sort=False):
        panels += [(f"{method}: adaptive weightings", part) for part in chunks(_keys(rows), size)]
    ncols = min(2, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = new_figure(6.5 * ncols + 1, 1.0 + 3.6 * nrows, ncols, nrows, sharey=True)
    is_single = summary["method"].eq(SINGLE) & summary["weighting"].eq(FIXED)
    single = summary.loc[is_single, "test_acc_mean"]
    lams = sorted(swept["lam"].unique())
    for ax, (name, keys) in zip(axes, panels, strict=False):
        palette = panel_colours([run_label(m, math.nan, w) for m, w in keys])
        for method, weighting in keys:
            rows = swept[(swept["method"] == method) & (swept["weighting"] == weighting)]
            label = run_label(method, math.nan, weighting)
            ax.errorbar(
                rows["lam"],
                rows["test_acc_mean"],
                yerr=rows["test_acc_ci95"].to_numpy(dtype=float),
                marker="o",
                capsize=4,
                color=palette[label],
                label=label,
            )
        if not single.empty:
            ax.axhline(single.iloc[0], color="0.4", linestyle="--", label=f"{SINGLE} (mean)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(lams, [f"{lam:g}" for lam in lams])
        ax.set(
            title=f"λ ablation: {name}\n"
            "(test accuracy at the best validation epoch, mean ± 95% t-CI)",
            xlabel="λ (log₂ scale)",
            ylabel="test accuracy",
        )
        ax.grid(alpha=0.3)
        ax.legend(title="method", fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return fig


def _keys(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(frame[["method", "weighting"]].itertuples(index=False, name=None))


def _wall_time(runs: pd.DataFrame) -> Figure:
    """Training wall time per run label: mean over seeds as bars, seeds as dots; ``single``'s
    bar is dark grey, the others one colour."""
    order = label_order(runs)
    fig, (ax,) = new_figure(8.5, _bar_height(len(order)))
    means = runs.groupby("label")["wall_time_s"].mean().reindex(order)
    palette = {label: "0.3" if label == SINGLE else "#6baed6" for label in order}
    sns.barplot(
        x=means.to_numpy(),
        y=order,
        hue=order,
        order=order,
        hue_order=order,
        palette=palette,
        errorbar=None,
        legend=False,
        ax=ax,
    )
    sns.stripplot(data=runs, x="wall_time_s", y="label", order=order, ax=ax, **SEEDS_STYLE)
    ax.set(
        title="Training wall time (mean over seeds; dots: seeds)",
        xlabel="wall time [s]",
        ylabel="",
    )
    ax.grid(axis="x", alpha=0.3)
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


def _grid(n_panels: int, width: float = 4.6, height: float = 3.2) -> tuple[Figure, np.ndarray]:
    ncols = min(3, n_panels)
    nrows = -(-n_panels // ncols)
    fig, axes = new_figure(width * ncols + 2.5, 0.6 + height * nrows, ncols, nrows, sharey=False)
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes


def _numbered(title: str, items: list) -> list[tuple[str, list]]:
    """``items`` in panels of at most ``MAX_COLOURS``, each with ``title`` and, when there are
    several, "(i of n)"."""
    parts = chunks(items, MAX_COLOURS)
    return [
        (f"{title} ({i} of {len(parts)})" if len(parts) > 1 else title, part)
        for i, part in enumerate(parts, start=1)
    ]


def _per_column(history: pd.DataFrame, columns: list[str]) -> Figure | None:
    """One panel per column (split when more than ``MAX_COLOURS`` runs log it), titled in
    words: its value per epoch, mean over seeds with a 95% t-CI band, per run that logs it."""
    order = label_order(history)
    panels = []
    for column in columns:
        logged = set(history.loc[history[column].notna(), "label"])
        labels = [label for label in order if label in logged]
        panels += [(column, name, part) for name, part in _numbered(column_title(column), labels)]
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    for ax, (column, name, labels) in zip(axes, panels, strict=False):
        palette = panel_colours(labels)
        _per_epoch(ax, history[history[column].notna()], column, labels, palette)
        ax.set(title=_wrap(name), ylabel="")
        if len(labels) > 1:
            _legend(ax, labels, palette)
        else:
            ax.set_xlabel(f"epoch ({labels[0]})")
    return fig


def _weights(history: pd.DataFrame, columns: list[str]) -> Figure | None:
    """The adaptive weightings' per-task logs: one panel per run and kind (learned weights, GCS's
    kept fractions and cosines, OL-AUX's alignments), one line per task (mean over seeds, 95%
    t-CI band), at most ``MAX_COLOURS`` tasks a panel."""
    if not columns:
        return None
    panels = []
    for label in label_order(history):
        rows = history[history["label"] == label]
        for kind, name in WEIGHT_KINDS.items():
            mine = [c for c in columns if c.partition("_")[0] == kind and rows[c].notna().any()]
            panels += [(rows, title, part) for title, part in _numbered(f"{label}: {name}", mine)]
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    for ax, (rows, name, part) in zip(axes, panels, strict=False):
        long = rows.melt(id_vars=["epoch", "seed"], value_vars=part, var_name="column")
        long["task"] = [task_name(c.partition("_")[2]) for c in long["column"]]
        tasks = list(dict.fromkeys(long["task"]))
        palette = panel_colours(tasks)
        _per_epoch(ax, long.dropna(subset=["value"]), "value", tasks, palette, hue="task")
        ax.set(title=_wrap(name), ylabel="")
        _legend(ax, tasks, palette, title="task")
    return fig


def _wrap(text: str, width: int = 46) -> str:
    """``text`` broken into lines of at most about ``width`` characters at spaces."""
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join([*lines, line])


def cd_diagram(
    ranks: pd.DataFrame, friedman: dict | None, protocol: str, max_labels: int = CD_MAX_LABELS
) -> Figure | None:
    """The critical-difference diagram (``scikit_posthocs.critical_difference_diagram``) of one
    protocol: mean ranks (1 = best) of ``ranks.csv``, settings joined by a bar when the Nemenyi
    test of ``friedman.json`` finds no difference, the Nemenyi CD above the axis. At most
    ``max_labels`` best-ranked settings are drawn, and ``single`` always; None without a test."""
    if not friedman or not friedman.get("nemenyi_p") or ranks.empty:
        return None
    mean_ranks = ranks.set_index("label")["mean_rank"].astype(float).sort_values()
    shown = list(mean_ranks.index[:max_labels])
    if SINGLE in mean_ranks.index and SINGLE not in shown:
        shown.append(SINGLE)
    p_values = pd.DataFrame(friedman["nemenyi_p"]).astype(float)
    p_values = p_values.reindex(index=shown, columns=shown).fillna(1.0)
    fig, (ax,) = new_figure(10, 1.6 + 0.3 * (-(-len(shown) // 2) + 1))
    sp.critical_difference_diagram(
        mean_ranks[shown],
        p_values,
        ax=ax,
        label_fmt_left="{label} ({rank:.2f})",
        label_fmt_right="({rank:.2f}) {label}",
        color_palette={label: "#c51b7d" if label == SINGLE else "0.2" for label in shown},
        label_props={"fontsize": 9},
    )
    cd = friedman.get("critical_difference")
    if cd is not None:  # above the axis's tick labels (the library draws it among them)
        start = float(mean_ranks[shown].iloc[0])
        ax.plot([start, start + cd], [1.3, 1.3], color="black", lw=2, marker="|", ms=10)
        ax.text(start + cd / 2, 1.5, f"critical difference CD = {cd:.2f}", ha="center", fontsize=9)
        ax.set_ylim(top=2.1)
    note = ""
    if len(mean_ranks) > max_labels:
        note = f"; the {max_labels} best-ranked of {len(mean_ranks)} settings"
        note += f" and {SINGLE}" if len(shown) > max_labels else ""
    ax.set_title(
        f"Mean rank, {PROTOCOLS.get(protocol, protocol)} (1 = best{note})\n"
        "bars join settings the Nemenyi test does not tell apart (α = 0.05)",
        fontsize=10,
        pad=28,
    )
    return fig
