"""Tables and figures over the manipulation track's runs (``auxbench manipulation-train``; OL-AUX
§5.3-5.6): per environment × method, the mean and 95% t-CI over seeds of the area under the
success-rate curve, the steps to the success threshold and the final success rate; each method
against no auxiliary losses paired by seed (t-CI, Holm over an environment's methods); the success
rate against environment steps for the main methods (Fig. 3), each task alone (Fig. 4) and the
ablations (Fig. 6); and OL-AUX's learned weights (Fig. 5)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from auxbench.foundations import atomic
from auxbench.report.plots import colours, new_figure, t_interval
from auxbench.report.rltrack import read_runs as read_track_runs
from auxbench.report.rltrack import weights_figure
from auxbench.report.stats import confidence_halfwidth, holm, paired_comparison
from auxbench.rltrack.goal_run import METHODS, SINGLE
from auxbench.rltrack.tasks import TABLE1_TASKS

RUN_COLUMNS = ["env", "method", "seed", "auc", "steps_to_threshold", "threshold", "final_success"]
METRICS = ("auc", "steps_to_threshold", "final_success")
# the metrics compared paired by seed (steps to threshold is missing where a seed never got there)
PAIRED = ("auc", "final_success")
BASELINE = "none"
ORDER = [*METHODS, *(SINGLE + task for task in TABLE1_TASKS)]
ABLATIONS = ("olaux5", "olaux1", "olaux5-ablation")


def read_runs(run_dirs: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, curves) of the run directories (each with ``metrics.json`` and ``curve.csv``)."""
    return read_track_runs(run_dirs, RUN_COLUMNS)


def method_order(methods) -> list[str]:
    """``methods`` in ``ORDER``: the methods of ``goal_run.METHODS``, then the single tasks."""
    present = set(methods)
    return [name for name in ORDER if name in present]


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per environment × method: seeds, the mean and 95% t-CI half-width of each metric
    (steps to threshold over the seeds that reached it), how many seeds reached the threshold,
    and the mean wall time."""
    rows = []
    for env in sorted(runs["env"].unique()):
        env_runs = runs[runs["env"] == env]
        for method in method_order(env_runs["method"]):
            group = env_runs[env_runs["method"] == method]
            row = {"env": env, "method": method, "n_seeds": len(group)}
            for metric in METRICS:
                values = group[metric].dropna()
                row[f"{metric}_mean"] = values.mean()
                row[f"{metric}_ci95"] = confidence_halfwidth(values)
            row["reached"] = int(group["steps_to_threshold"].notna().sum())
            row["wall_time_s_mean"] = group["wall_time_s"].mean()
            rows.append(row)
    return pd.DataFrame(rows)


def paired_with_baseline(runs: pd.DataFrame) -> pd.DataFrame:
    """Each method minus ``none`` in the same environment, paired by seed, per metric of
    ``PAIRED``: mean difference, 95% t-CI, the paired t-test's p and Holm's p over the
    environment's methods (one family per environment and metric)."""
    rows = []
    for env in sorted(runs["env"].unique()):
        env_runs = runs[runs["env"] == env].set_index("seed")
        baseline = env_runs[env_runs["method"] == BASELINE]
        if baseline.empty:
            continue
        for metric in PAIRED:
            family = []
            for method in method_order(env_runs["method"]):
                if method == BASELINE:
                    continue
                values = env_runs.loc[env_runs["method"] == method, metric]
                result = paired_comparison(values, baseline[metric])
                family.append({"env": env, "metric": metric, "method": method, **result})
            adjusted = holm([row["p_ttest"] for row in family])
            for row, p_holm in zip(family, adjusted, strict=True):
                row["p_holm"] = p_holm
            rows += family
    columns = ["env", "metric", "method", "n_pairs", "mean_diff", "ci_low", "ci_high"]
    frame = pd.DataFrame(rows, columns=[*columns, "effect_size", "p_ttest", "p_wilcoxon", "p_holm"])
    return frame[[*columns, "p_ttest", "p_holm"]]


def _success(curves: pd.DataFrame, methods: list[str], threshold: float, palette, title) -> Figure:
    fig, (ax,) = new_figure(7.5, 4.2)
    sns.lineplot(
        data=curves[curves["method"].isin(methods)],
        x="step",
        y="success",
        hue="method",
        hue_order=methods,
        palette=palette,
        errorbar=t_interval,
        ax=ax,
    )
    ax.axhline(threshold, color="0.4", linestyle="--", linewidth=1, label="threshold")
    ax.set(title=title, xlabel="environment steps", ylabel="success rate", ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    return fig


def _weights(curves: pd.DataFrame) -> Figure | None:
    olaux = [m for m in method_order(curves["method"]) if METHODS.get(m, ("",))[0] == "olaux"]
    return weights_figure(curves, olaux)


def figures_of(curves: pd.DataFrame, threshold: float, palette: dict) -> dict[str, Figure]:
    """The figures of one environment's curves, by kind (only those with something to show)."""
    present = method_order(curves["method"])
    main = [m for m in present if not m.startswith(SINGLE) and m not in ABLATIONS[1:]]
    single = [m for m in present if m.startswith(SINGLE)]
    ablation = [m for m in present if m in ABLATIONS]
    band = "mean over seeds, band: 95% t-CI"
    drawn: dict[str, Figure | None] = {
        "manipulation-success": _success(
            curves, main, threshold, palette, f"Success rate ({band})"
        ),
        "manipulation-single": _success(
            curves,
            [m for m in present if m in ("none", "balance")] + single,
            threshold,
            palette,
            f"Each auxiliary task alone, gradient balancing ({band})",
        )
        if single
        else None,
        "manipulation-ablation": _success(
            curves, ablation, threshold, palette, f"OL-AUX ablations ({band})"
        )
        if len(ablation) > 1
        else None,
        "manipulation-weights": _weights(curves),
    }
    return {kind: fig for kind, fig in drawn.items() if fig is not None}


def aggregate(run_dirs: list[Path], tables: Path, figures: Path) -> pd.DataFrame:
    """Write ``manipulation_runs.csv``, ``manipulation_curves.csv``, ``manipulation_summary.csv``,
    ``manipulation_summary.md`` and ``manipulation_paired.csv`` into ``tables`` and
    ``manipulation-<kind>_<env>.png`` into ``figures``; return the summary."""
    runs, curves = read_runs(run_dirs)
    runs = runs.sort_values(["env", "method", "seed"], ignore_index=True)
    summary = summarise(runs)
    tables, figures = Path(tables), Path(figures)
    atomic.write_text(tables / "manipulation_runs.csv", runs.to_csv(index=False))
    atomic.write_text(tables / "manipulation_curves.csv", curves.to_csv(index=False))
    atomic.write_text(tables / "manipulation_summary.csv", summary.to_csv(index=False))
    atomic.write_text(
        tables / "manipulation_paired.csv", paired_with_baseline(runs).to_csv(index=False)
    )
    atomic.write_text(
        tables / "manipulation_summary.md", summary.to_markdown(index=False, floatfmt=".3f")
    )
    figures.mkdir(parents=True, exist_ok=True)
    order = method_order(runs["method"])
    palette = dict(zip(order, colours(len(order)), strict=True))
    for env in sorted(runs["env"].unique()):
        threshold = float(runs.loc[runs["env"] == env, "threshold"].iloc[0])
        for kind, fig in figures_of(curves[curves["env"] == env], threshold, palette).items():
            fig.suptitle(env)
            fig.savefig(figures / f"{kind}_{env}.png")
    return summary
