"""A self-contained HTML report: tables, embedded figures, the resolved config and the environment.

The first screen answers "which settings beat ``single``, by how much, how sure": a headline
table of the paired comparisons (``comparisons.csv``, protocol ``best_val``) under the title,
then the critical-difference diagram of the ranks (``ranks.csv``, ``friedman.json``). Results
aggregated before those tables existed get a one-line note and the summary instead. Shown tables
have readable headers, rounded numbers and no empty columns; every column of every table stays
in collapsible ``<details>`` (and in the CSVs).

The page has inline CSS only, no scripts and no external references; images are ``data:`` URIs.
It is written as pure ASCII (other characters become numeric entities), so it reads the same in
any locale.
"""

from __future__ import annotations

import base64
import html
import json
import math
import numbers
import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from auxbench.foundations import atomic
from auxbench.report.plots import (
    CD_MAX_LABELS,
    DEFAULT_PROTOCOL,
    PROTOCOLS,
    SINGLE,
    is_true,
    label_order,
    read_optional_csv,
    run_label,
    task_name,
    tidy,
)

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "seaborn", "snakemake", "auxbench")
INTEGER_COLUMNS = {"seed", "n_seeds", "best_epoch", "epochs_run", "epoch", "reached", "n_pairs"}


class Html(str):
    """A table cell that is already HTML (not escaped again)."""


BLANK = "&ndash;"
BLANK_CELL = Html(BLANK)  # a missing value
DEFAULT_CAPTIONS = {
    "workflow": "Results of the auxbench benchmark: every method trained on the same splits "
    "with several seeds. Test accuracy is read at the epoch with the best validation accuracy.",
    "headline": "Each setting against the single-task baseline single on the same seeds: Δ is "
    "the mean paired difference in accuracy points (×100) with its 95% t-CI, p the paired "
    "t-test's, Holm-adjusted over the settings of a dataset; cost is the wall time relative to "
    "single.",
    "cd": "Mean rank of each setting over the blocks (1 = best); a bar joins settings whose "
    "ranks the Nemenyi test does not tell apart.",
    "published": "The papers' numbers next to ours, in the paper's unit and by the paper's "
    "protocol: measured is the mean over seeds with its 95% t-CI; inside CI says whether the "
    "published value lies in that interval.",
    "protocols": "A protocol says which epoch's test accuracy a run reports.",
    "summary": "One row per dataset, method, weighting and λ: mean and 95% t-CI over seeds of "
    "the test accuracy (percent); Δ and Welch's p compare with single without pairing seeds.",
    "curves": "Validation and test accuracy per epoch; line: mean over seeds, band: 95% t-CI.",
    "accuracy": "Test accuracy at the best validation epoch, best first: mean ± 95% t-CI over "
    "seeds, coloured by the paired comparison with single; dots: individual seeds.",
    "lambda": "Test accuracy at the best validation epoch against λ (log-2 axis), mean ± 95% "
    "t-CI; the dashed line is the single-task mean.",
    "time": "Training wall time per run; bar: mean over seeds, dots: individual seeds.",
    "weights": "What each adaptive weighting learned, per task and epoch (mean over seeds, band: "
    "95% t-CI).",
    "generator": "What the label generators and RL-AUX's agents log for themselves, per epoch "
    "(mean over seeds, band: 95% t-CI).",
    "diagnostics": "Other values the methods log per epoch (mean over seeds, band: 95% t-CI).",
    "bench": "What each method costs per step and epoch, against single and against its "
    "algorithmic minimum in passes of the main network, and its peak memory (auxbench bench).",
    "rltrack": "The RL track: A2C from pixels with auxiliary tasks on its shared encoder, per "
    "environment and weighting method: normalised area under the return-vs-steps curve (the mean "
    "return over training), environment steps to reach the return threshold (over the seeds that "
    "reached it) and the final return; mean and 95% t-CI half-width over seeds.",
    "rltrack-return": "Episode return against environment steps; line: mean over seeds, band: "
    "95% t-CI; dashed: the return threshold.",
    "rltrack-weights": "OL-AUX's auxiliary task weights over training, mean over seeds.",
    "manipulation": "The manipulation track (OL-AUX §5.3-5.6): DDPG + hindsight experience "
    "replay on goal-conditioned RGBD images with auxiliary tasks on the shared encoder, per "
    "environment and method: normalised area under the success-rate-vs-steps curve, environment "
    "steps to the success threshold (over the seeds that reached it) and the final success rate; "
    "mean and 95% t-CI half-width over seeds. Paired: each method minus no auxiliary losses, "
    "paired by seed, with its 95% t-CI and Holm's p over the methods of an environment.",
    "manipulation-success": "Evaluation success rate against environment steps (Fig. 3); line: "
    "mean over seeds, band: 95% t-CI; dashed: the success threshold.",
    "manipulation-single": "Each auxiliary task alone with gradient balancing (Fig. 4), against "
    "none and all tasks; line: mean over seeds, band: 95% t-CI.",
    "manipulation-ablation": "OL-AUX-5, OL-AUX-1 (β/5) and OL-AUX-5 (Ablation: one step of w every "
    "5 updates on 5 times the data) (Fig. 6); line: mean over seeds, band: 95% t-CI.",
    "manipulation-weights": "OL-AUX's learned auxiliary task weights over training (Fig. 5), "
    "mean over seeds, band: 95% t-CI.",
    "dense": "Dense prediction (Split / MTAN): each task's first metric on the test split at the "
    "best-validation epoch, and Δ_MTL in % against the single-task runs of the same grid (Auto-λ's "
    "convention: one metric per task; LibMTL's: a task's metrics averaged first; Nash-MTL's: all "
    "metrics averaged), mean ± 95% t-CI half-width over seeds; vs Equal: the paired difference in "
    "Auto-λ's Δ_MTL from fixed weighting in the same setting, its paired t-test p and Holm's p.",
    "dense-metrics": "Each task's validation metric per epoch per setting, with the task's "
    "single-task baseline (black); line: mean over seeds, band: 95% t-CI.",
    "dense-weights": "The task weights each adaptive weighting learned per epoch (mean over "
    "seeds, band: 95% t-CI); the noise task is the auxiliary one of the auxiliary setting.",
    "dense-delta": "Δ_MTL (Auto-λ's convention) at the best-validation epoch per setting and "
    "weighting: mean over seeds with its 95% t-CI; dots: seeds.",
}
TITLES = {
    "accuracy": "Test accuracy",
    "curves": "Learning curves",
    "lambda": "λ ablation",
    "time": "Wall time",
    "weights": "Learned task weights",
    "generator": "Label generators and agents",
    "diagnostics": "Other logs of the methods",
    "cd": "Critical-difference diagram",
    "rltrack-return": "RL track: return vs environment steps",
    "rltrack-weights": "RL track: learned auxiliary weights",
    "manipulation-success": "Manipulation: success rate vs environment steps",
    "manipulation-single": "Manipulation: each auxiliary task alone",
    "manipulation-ablation": "Manipulation: OL-AUX ablations",
    "manipulation-weights": "Manipulation: learned auxiliary weights",
    "dense-metrics": "Dense prediction: validation metrics per epoch",
    "dense-weights": "Dense prediction: learned task weights",
    "dense-delta": "Dense prediction: Δ_MTL",
}
METRICS = {"test_acc": "test accuracy (%)", "delta_mtl": "Δ_MTL vs equal weighting (%)"}
PROTOCOL_SHORT = {
    "best_val": "best val.",
    "last15": "last 15",
    "best_test": "best test (optimistic)",
}
BLOCKS = {"dataset": "each a dataset", "dataset×seed": "each a (dataset, seed) pair"}
# Readable headers of the raw columns shown outside <details>; others are tidied
HEADERS = {
    "env": "environment",
    "method": "method",
    "n_seeds": "seeds",
    "auc_mean": "normalised AUC (mean)",
    "auc_ci95": "normalised AUC (95% CI ±)",
    "steps_to_threshold_mean": "steps to the threshold (mean)",
    "steps_to_threshold_ci95": "steps to the threshold (95% CI ±)",
    "final_return_mean": "final return (mean)",
    "final_return_ci95": "final return (95% CI ±)",
    "reached": "seeds reaching the threshold",
    "width": "width (× channels)",
    "parameters": "parameters",
    "epoch_s": "epoch [s]",
    "step_s": "step [s]",
    "vs_single": "× single",
    "minimum_passes": "minimum passes per step",
    "minimum_step_s": "minimum step [s]",
    "vs_minimum": "× minimum",
    "peak_memory_mib": "peak memory [MiB]",
    "exponent": "exponent k (time ∝ parameters^k)",
}
FIGURE_ORDER = ("accuracy", "curves", "lambda", "time", "weights", "generator", "diagnostics")
CSS = """
body { font-family: system-ui, sans-serif; margin: 0.75rem auto 2rem; max-width: 1200px;
       color: #222; padding: 0 1rem; line-height: 1.4; }
h1 { border-bottom: 2px solid #ccc; margin: 0.25rem 0 0.3rem; font-size: 1.6rem; }
h2 { margin: 1.5rem 0 0.4rem; }
nav.toc { font-size: 0.85rem; margin: 0.2rem 0 0.5rem; }
nav.toc a { margin-right: 0.8rem; white-space: nowrap; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.4rem 0 0.8rem; }
th, td { border: 1px solid #ccc; padding: 0.15rem 0.5rem; text-align: left; }
th { background: #f0f0f0; }
td.label { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafafa; }
.scroll { overflow-x: auto; }
section.headline { background: #e6f0fa; border: 1px solid #9dbfe0; border-radius: 6px;
                   padding: 0.1rem 1rem 0.3rem; margin: 0.3rem 0 1rem; }
section.headline h2 { margin: 0.4rem 0 0.2rem; font-size: 1.25rem; }
section.headline p { margin: 0.2rem 0; }
section.headline table { background: #fff; margin: 0.3rem 0; }
section.headline td, section.headline th { padding: 0.05rem 0.5rem; line-height: 1.3; }
.badge { display: inline-block; padding: 0 0.4rem; border-radius: 3px; font-size: 0.8rem;
         white-space: nowrap; }
.better { background: #d9f0d3; color: #1b5e20; }
.worse { background: #fbd5d5; color: #8b1a1a; }
.ns { background: #eee; color: #555; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 0.9rem; }
details { margin: 0.3rem 0 0.8rem; }
summary { cursor: pointer; color: #1f4e79; }
pre { background: #f6f6f6; padding: 0.75rem; overflow-x: auto; }
"""


def environment_info() -> dict[str, Any]:
    """Versions of Python and the main packages, the platform, CPU count and the CUDA device."""
    import torch

    info: dict[str, Any] = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            if package != "snakemake":
                info[package] = "not installed"
    info["platform"] = platform.platform()
    info["cpu_count"] = os.cpu_count()
    info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return info


def write_report(
    tables_dir: Path,
    figures: list[Path],
    config: dict,
    environment: dict,
    out_path: Path,
    captions_dir: Path | None = None,
    rltrack_tables: Path | None = None,
    bench_dir: Path | None = None,
    dense_tables: Path | None = None,
    manipulation_tables: Path | None = None,
) -> Path:
    """Write the self-contained HTML report to ``out_path`` (atomically) and return the path.

    ``tables_dir`` holds the tables of ``auxbench aggregate``: runs, history and summary, and
    where present comparisons.csv, ranks.csv, friedman.json and published.csv. ``figures``: the
    PNGs to embed (``cd_<protocol>.png`` go with the ranks, the others under "Figures"). With
    ``rltrack_tables`` (a directory holding ``rltrack_summary.csv``) a section on the RL track
    follows the summary, and with ``manipulation_tables`` (``manipulation_summary.csv`` and
    ``manipulation_paired.csv``) one on the manipulation track; ``bench_dir``: where ``auxbench bench --out`` wrote its tables
    (``costs.csv`` and, with the scaling series, ``scaling.csv``), shown in a "Cost" section.

    Captions come from ``captions_dir/<kind>.rst`` when present (``kind`` is the figure name's
    prefix before ``_``, or the section's name: ``workflow``, ``headline``, ``cd``,
    ``published``, ``protocols``, ``summary``, ...), else built-ins.
    """
    tables_dir, figures = Path(tables_dir), [Path(path) for path in figures]
    summary = pd.read_csv(tables_dir / "summary.csv")
    runs = pd.read_csv(tables_dir / "runs.csv")
    comparisons = read_optional_csv(tables_dir / "comparisons.csv")
    ranks = read_optional_csv(tables_dir / "ranks.csv")
    published = read_optional_csv(tables_dir / "published.csv")
    friedman_path = tables_dir / "friedman.json"
    friedman = json.loads(friedman_path.read_text()) if friedman_path.exists() else None
    cd_figures = {path.stem.partition("_")[2]: path for path in figures if _kind(path) == "cd"}
    figures = [path for path in figures if _kind(path) != "cd"]

    def caption(kind: str) -> str:
        return _caption(captions_dir, kind)

    datasets = ", ".join(sorted(runs["dataset"].unique()))
    facts = (
        f"{len(runs)} runs of {summary.shape[0]} settings on {datasets}; "
        f"{runs['method'].nunique()} methods, {runs['weighting'].nunique()} weightings, "
        f"{_seed_range(summary)} seeds per setting."
    )
    config_text = yaml.safe_dump(
        json.loads(json.dumps(config, default=str)), sort_keys=False, allow_unicode=True
    )
    sections: list[tuple[str, str, list[str]]] = []  # (id, title, body)
    if comparisons is not None:
        sections.append(("headline", "", _headline(comparisons, caption("headline"))))
        sections.append(
            ("ranks", "Ranks", _ranks_section(ranks, friedman, cd_figures, caption("cd")))
        )
    else:
        sections.append(("headline", "", _fallback_headline(tables_dir, summary, caption)))
    if published is not None:
        sections.append(
            ("published", "Published vs measured", _published(published, caption("published")))
        )
    if comparisons is not None:
        sections.append(("summary", "Summary", _summary_section(summary, caption("summary"))))
        sections.append(
            (
                "protocols",
                "Protocols",
                _protocols(comparisons, friedman, cd_figures, caption("protocols")),
            )
        )
    sections.append(("runs", "Runs", _runs_section(runs, caption("runs"))))
    if rltrack_tables is not None:
        sections.append(
            ("rltrack", "RL track", _rltrack_section(rltrack_tables, caption("rltrack")))
        )
    if manipulation_tables is not None:
        sections.append(
            (
                "manipulation",
                "Manipulation track",
                _manipulation_section(manipulation_tables, caption("manipulation")),
            )
        )
    if dense_tables is not None:
        sections.append(
            ("dense", "Dense prediction", _dense_section(dense_tables, caption("dense")))
        )
    if figures:
        sections.append(("figures", "Figures", _figures_section(figures, caption)))
    if bench_dir is not None:
        sections.append(("cost", "Cost", _bench_section(bench_dir, caption("bench"))))
    sections.append(
        (
            "about",
            "About these results",
            [_paragraphs(caption("workflow")), _facts_table(runs)],
        )
    )
    sections.append(("configuration", "Configuration", [f"<pre>{_e(config_text)}</pre>"]))
    environment_frame = pd.DataFrame(
        {"key": list(environment), "value": list(environment.values())}
    )
    sections.append(("environment", "Environment", [_table(environment_frame)]))

    toc = " ".join(
        f'<a href="#{_e(key)}">{_e(title or _headline_title(comparisons))}</a>'
        for key, title, _ in sections
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>auxbench report: {_e(datasets)}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>auxbench report</h1>",
        f'<p class="note">{_e(facts)}</p>',
        f'<nav class="toc" id="contents"><b>Contents:</b> {toc}</nav>',
    ]
    for key, title, body in sections:
        if key == "headline":
            parts += body
        else:
            parts += [f'<section id="{_e(key)}">', f"<h2>{_e(title)}</h2>", *body, "</section>"]
    parts.append("</body></html>")
    page = "\n".join(parts) + "\n"
    out_path = Path(out_path)
    atomic.write_text(out_path, page.encode("ascii", "xmlcharrefreplace").decode("ascii"))
    return out_path


# --- the headline --------------------------------------------------------------------------------


def _headline_title(comparisons: pd.DataFrame | None) -> str:
    return f"Which settings beat {SINGLE}?" if comparisons is not None else "Summary"


def headline_frame(comparisons: pd.DataFrame, protocol: str = DEFAULT_PROTOCOL) -> pd.DataFrame:
    """The headline table's rows: every setting of ``comparisons`` but the baseline under
    ``protocol``, by dataset and then by Δ (largest first, missing last), with its label."""
    rows = comparisons[comparisons["protocol"] == protocol]
    rows = rows[~((rows["method"] == SINGLE) & (rows["weighting"] == "fixed"))]
    rows = rows.assign(
        label=[run_label(m, lam, w) for m, lam, w in rows[["method", "lam", "weighting"]].values]
    )
    return rows.sort_values(
        ["dataset", "mean_diff"], ascending=[True, False], na_position="last", ignore_index=True
    )


def _headline(comparisons: pd.DataFrame, caption: str) -> list[str]:
    """The headline block: the paired comparisons with ``single`` under the default protocol."""
    rows = headline_frame(comparisons)
    several = rows["dataset"].nunique() > 1
    cells = pd.DataFrame(
        {
            **({"dataset": rows["dataset"]} if several else {}),
            "setting": rows["label"],
            "Δ vs single, points [95% CI]": [
                _points_ci(d, lo, hi)
                for d, lo, hi in rows[["mean_diff", "ci_low", "ci_high"]].values
            ],
            "p (Holm)": [_p(p) for p in rows["p_holm"]],
            "verdict": [
                _verdict(sig, d, n)
                for sig, d, n in rows[["significant", "mean_diff", "n_pairs"]].values
            ],
            "cost × single": [_ratio(r) for r in rows.get("cost_ratio", [math.nan] * len(rows))],
            "seed pairs": [_int(n) for n in rows["n_pairs"]],
        }
    )
    if rows.empty:
        body = f'<p class="note">No setting besides {SINGLE} under {DEFAULT_PROTOCOL}.</p>'
    else:
        numeric = set(cells.columns) - {"dataset", "setting", "verdict"}
        table = _display_table(cells, numeric, table_id="headline-table")
        body = f'{table}<p class="note">{_e(headline_verdict(rows))}</p>'
    return [
        '<section id="headline" class="headline">',
        f"<h2>{_e(_headline_title(comparisons))}</h2>",
        (
            f'<p class="note"><b>Protocol: {_e(PROTOCOLS[DEFAULT_PROTOCOL])}</b> '
            f"({DEFAULT_PROTOCOL}). {_e(caption)}</p>"
        ),
        body,
        "</section>",
    ]


def headline_verdict(rows: pd.DataFrame) -> str:
    """The headline table in one sentence: how many settings are significantly better or worse
    than ``single``, and how many could not be compared (fewer than 2 seed pairs)."""
    compared = rows[rows["n_pairs"].fillna(0) >= 2]
    significant = compared["significant"].map(is_true)
    better = int((significant & compared["mean_diff"].gt(0)).sum())
    worse = int((significant & compared["mean_diff"].lt(0)).sum())
    text = (
        f"{better} of {len(compared)} settings significantly better than {SINGLE}, {worse} "
        f"significantly worse (Holm-adjusted p < 0.05)."
    )
    missing = len(rows) - len(compared)
    if missing:
        text += f" {missing} without 2 seeds in common with {SINGLE}: not compared."
    return text


def _fallback_headline(tables_dir: Path, summary: pd.DataFrame, caption) -> list[str]:
    """Without comparisons.csv: a one-line note, then the summary in the headline's place."""
    return [
        '<section id="headline" class="headline">',
        "<h2>Summary</h2>",
        (
            f'<p class="note">No comparisons.csv or friedman.json in {_e(tables_dir)} (results '
            "aggregated by an older auxbench; rerun <code>auxbench aggregate</code> for paired "
            "comparisons and ranks): showing the summary.</p>"
        ),
        *_summary_section(summary, caption("summary")),
        "</section>",
    ]


def _ranks_section(
    ranks: pd.DataFrame | None, friedman: dict | None, cd_figures: dict, caption: str
) -> list[str]:
    """The critical-difference diagram of the default protocol with its Friedman test."""
    entry = (friedman or {}).get(DEFAULT_PROTOCOL)
    if friedman is None or ranks is None:
        return ['<p class="note">No ranks.csv or friedman.json next to comparisons.csv.</p>']
    parts = [_cd(entry, cd_figures.get(DEFAULT_PROTOCOL), DEFAULT_PROTOCOL, caption)]
    shown = ranks[ranks["protocol"] == DEFAULT_PROTOCOL].sort_values("mean_rank")
    if not shown.empty:
        table = _display_table(
            pd.DataFrame(
                {
                    "setting": shown["label"],
                    "mean rank (1 = best)": [f"{r:.2f}" for r in shown["mean_rank"]],
                    "blocks": [_int(n) for n in shown["n_blocks"]],
                }
            ),
            numeric={"mean rank (1 = best)", "blocks"},
        )
        parts.append(f"<details><summary>Every setting's mean rank ({len(shown)})</summary>")
        parts += [table, "</details>"]
    return parts


def friedman_text(entry: dict | None, protocol: str) -> str:
    """The Friedman test and Nemenyi CD of ``entry`` (friedman.json) in one sentence."""
    if not entry or entry.get("critical_difference") is None:
        return (
            f"No Friedman test for the protocol {protocol}: it needs at least 3 settings "
            "present in at least 2 blocks."
        )
    blocks = BLOCKS.get(entry.get("blocks"), entry.get("blocks"))
    statistic, p_value = entry.get("statistic"), entry.get("p_value")
    test = (
        f"χ² = {float(statistic):.2f}, p = {_p(p_value)}"
        if statistic is not None and p_value is not None
        else "no statistic (every block is one tie)"
    )
    text = (
        f"Friedman test over {entry['n_blocks']} blocks, {blocks}, and {entry['n_methods']} "
        f"settings: {test}; Nemenyi critical difference CD = "
        f"{float(entry['critical_difference']):.2f} ranks at α = 0.05."
    )
    if int(entry["n_methods"]) > CD_MAX_LABELS:
        text += (
            f" The diagram shows the {CD_MAX_LABELS} best-ranked settings (and {SINGLE}); the "
            "table below lists all."
        )
    return text


def _cd(entry: dict | None, figure: Path | None, protocol: str, caption: str) -> str:
    text = f"{caption} {friedman_text(entry, protocol)}".strip()
    if figure is None:
        return f'<p class="note">{_e(text)}</p>'
    title = f"Critical-difference diagram: {PROTOCOLS.get(protocol, protocol)}"
    return _figure_html(figure, title, text, f"cd-{protocol}")


# --- published, summary, protocols, runs ---------------------------------------------------------


def _published(published: pd.DataFrame, caption: str) -> list[str]:
    """Published values next to the measured mean ± CI, their difference and whether the
    published value lies in our interval, each with its protocol."""
    labels = [
        run_label(m, lam, w) for m, lam, w in published[["method", "lam", "weighting"]].values
    ]
    cells = pd.DataFrame(
        {
            "source": published["source"],
            "dataset": published["dataset"],
            "setting": labels,
            "protocol": [_protocol_name(p) for p in published["protocol"]],
            "metric": [METRICS.get(m, m) for m in published["metric"]],
            "published": [_fixed(v, 2) for v in published["published"]],
            "measured (mean ± 95% CI)": [
                _mean_ci(m, c, 2) for m, c in published[["measured_mean", "measured_ci95"]].values
            ],
            "seeds": [_int(n) for n in published["n_seeds"]],
            "difference (measured − published)": [_signed(d, 2) for d in published["difference"]],
            "published inside our CI": [
                _inside(inside, ci)
                for inside, ci in published[["published_in_ci", "measured_ci95"]].values
            ],
        }
    )
    numeric = {
        "published",
        "measured (mean ± 95% CI)",
        "seeds",
        "difference (measured − published)",
    }
    return [_paragraphs(caption), _display_table(cells, numeric, table_id="published-table")]


def _inside(inside: Any, ci: float) -> Html:
    if _isnan(ci):
        return Html('<span class="badge ns">no CI (under 2 seeds)</span>')
    word = "better" if is_true(inside) else "worse"
    return Html(f'<span class="badge {word}">{"yes" if is_true(inside) else "no"}</span>')


def _summary_section(summary: pd.DataFrame, caption: str) -> list[str]:
    """The summary in words (accuracy in percent), the learned weights, and every raw column."""
    ordered = _ordered(summary)
    several = ordered["dataset"].nunique() > 1
    has_mtl = "delta_mtl_vs_equal_mean" in ordered
    cells = pd.DataFrame(
        {
            **({"dataset": ordered["dataset"]} if several else {}),
            "setting": ordered["label"],
            "seeds": [_int(n) for n in ordered["n_seeds"]],
            "test acc. % at best val. (mean ± 95% CI)": [
                _mean_ci(m * 100, c * 100, 2)
                for m, c in ordered[["test_acc_mean", "test_acc_ci95"]].values
            ],
            "std (points)": [_fixed(s * 100, 2) for s in ordered["test_acc_std"]],
            "last-15 mean % (mean ± 95% CI)": [
                _mean_ci(m * 100, c * 100, 2)
                for m, c in ordered[["last15_mean", "last15_ci95"]].values
            ],
            "Δ vs single, points (unpaired)": [
                _signed(d * 100, 2) for d in ordered["diff_vs_single"]
            ],
            "p (Welch)": [_p(p) for p in ordered["p_welch"]],
            "wall time [s]": [_fixed(t, 1) for t in ordered["wall_time_s_mean"]],
            **(
                {
                    "Δ_MTL vs equal weighting, % (mean ± 95% CI)": [
                        _mean_ci(m, c, 2)
                        for m, c in ordered[
                            ["delta_mtl_vs_equal_mean", "delta_mtl_vs_equal_ci95"]
                        ].values
                    ]
                }
                if has_mtl
                else {}
            ),
        }
    )
    numeric = set(cells.columns) - {"dataset", "setting"}
    parts = [_paragraphs(caption), _display_table(cells, numeric, table_id="summary")]
    learned = [c for c in ordered.columns if re.fullmatch(r"final_(weight|kept)_.+_mean", c)]
    rows = ordered[ordered[learned].notna().any(axis=1)] if learned else ordered.iloc[:0]
    if not rows.empty:
        weights = pd.DataFrame(
            {
                **({"dataset": rows["dataset"]} if several else {}),
                "setting": rows["label"],
                **{_learned_header(c): [_learned(c, v) for v in rows[c]] for c in learned},
            }
        )
        parts += [
            "<h3>Learned weights at the last epoch</h3>",
            (
                '<p class="note">Mean over seeds of each task&#39;s weight at the last epoch, and '
                "for GCS the share of the last epoch&#39;s steps each auxiliary gradient was "
                "kept.</p>"
            ),
            _display_table(weights, set(weights.columns) - {"dataset", "setting"}, "weights"),
        ]
    parts += [
        "<details><summary>summary.csv, every column</summary>",
        _table(summary, table_id="summary-raw"),
        "</details>",
    ]
    return parts


def _protocols(
    comparisons: pd.DataFrame, friedman: dict | None, cd_figures: dict, caption: str
) -> list[str]:
    """The three protocols in words, and in ``<details>`` every setting's paired comparison
    under each of them, the other protocols' rank diagrams and comparisons.csv itself."""
    present = [p for p in PROTOCOLS if p in set(comparisons["protocol"])]
    items = "".join(f"<li><b>{p}</b>: {_e(PROTOCOLS[p])}</li>" for p in PROTOCOLS)
    parts = [
        _paragraphs(caption),
        f"<ul>{items}</ul>",
    ]
    keys = ["dataset", "method", "weighting", "lam", "label"]
    values = ["mean_diff", "ci_low", "ci_high", "p_holm", "significant", "n_pairs"]
    table = None
    for protocol in present:
        rows = headline_frame(comparisons, protocol)[[*keys, *values]]
        rows = rows.rename(columns={column: f"{column}:{protocol}" for column in values})
        table = rows if table is None else table.merge(rows, on=keys, how="outer")
    if table is None:
        return parts
    if f"mean_diff:{DEFAULT_PROTOCOL}" in table:
        table = table.sort_values(
            ["dataset", f"mean_diff:{DEFAULT_PROTOCOL}"], ascending=[True, False]
        )
    several = table["dataset"].nunique() > 1
    cells = {**({"dataset": table["dataset"]} if several else {}), "setting": table["label"]}
    numeric = set()
    for protocol in present:
        header = f"{PROTOCOL_SHORT.get(protocol, protocol)}: Δ points [95% CI], p (Holm)"
        column = {name: table[f"{name}:{protocol}"] for name in values}
        cells[header] = [
            _delta_and_p(*row) for row in zip(*(column[name] for name in values), strict=True)
        ]
        numeric.add(header)
    parts += [
        "<details><summary>Every setting against single under each protocol</summary>",
        _display_table(pd.DataFrame(cells), numeric, table_id="protocols-table"),
    ]
    for protocol in PROTOCOLS:
        if protocol != DEFAULT_PROTOCOL and friedman is not None and protocol in friedman:
            parts.append(_cd(friedman.get(protocol), cd_figures.get(protocol), protocol, ""))
    parts += [
        "</details>",
        "<details><summary>comparisons.csv, every column</summary>",
        _table(comparisons, table_id="comparisons-raw"),
        "</details>",
    ]
    return parts


def _runs_section(runs: pd.DataFrame, caption: str) -> list[str]:
    return [
        _paragraphs(caption),
        f"<details><summary>All runs ({len(runs)}), every column of runs.csv</summary>",
        _table(runs, table_id="runs"),
        "</details>",
    ]


def _facts_table(runs: pd.DataFrame) -> str:
    """The datasets, methods, weightings and devices the runs cover."""
    present = [c for c in ("dataset", "method", "weighting", "device") if c in runs]
    frame = pd.DataFrame(
        {
            "what": [f"{column}s" for column in present],
            "values": [", ".join(sorted(map(str, runs[c].dropna().unique()))) for c in present],
        }
    )
    return _display_table(frame, set())


def _ordered(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with labels, by dataset and in ``plots.label_order``."""
    labelled = summary.assign(
        label=[run_label(m, lam, w) for m, lam, w in summary[["method", "lam", "weighting"]].values]
    )
    parts = []
    for _, rows in labelled.groupby("dataset", sort=True):
        order = {label: i for i, label in enumerate(label_order(rows))}
        parts.append(rows.assign(_order=rows["label"].map(order)).sort_values("_order"))
    return pd.concat(parts, ignore_index=True).drop(columns="_order")


def _learned_header(column: str) -> str:
    kind, _, task = column.removeprefix("final_").removesuffix("_mean").partition("_")
    return f"weight: {task_name(task)}" if kind == "weight" else f"kept: {task_name(task)}"


def _learned(column: str, value: float) -> str:
    if _isnan(value):
        return BLANK_CELL
    return f"{value * 100:.0f}%" if column.startswith("final_kept_") else f"{value:.3g}"


# --- the rest: RL track, cost, figures -----------------------------------------------------------


def _bench_section(bench_dir: Path, caption: str) -> list[str]:
    """The "Cost" section: the benchmark's tables, if it wrote any."""
    tables = [Path(bench_dir) / f"{name}.csv" for name in ("costs", "scaling")]
    tables = [path for path in tables if path.exists()]
    if not tables:
        raise FileNotFoundError(
            f"no costs.csv or scaling.csv in {bench_dir} (auxbench bench --out)"
        )
    parts = [_paragraphs(caption)]
    for path in tables:
        frame = pd.read_csv(path)
        setting = frame.pop("setting").iloc[0] if "setting" in frame else ""
        parts += [f'<p class="note">{_e(path.stem)}: {_e(setting)}</p>', _shown_table(frame)]
    return parts


def _rltrack_section(rltrack_tables: Path, caption: str) -> list[str]:
    """The RL track's section: its summary table, if the workflow ran the track."""
    summary = pd.read_csv(Path(rltrack_tables) / "rltrack_summary.csv")
    return [
        "<h3>Reinforcement learning from pixels</h3>",
        _paragraphs(caption),
        _shown_table(summary, table_id="rltrack-summary"),
    ]


def _manipulation_section(tables: Path, caption: str) -> list[str]:
    """The manipulation track's section: its summary and its paired comparisons with none."""
    summary = pd.read_csv(Path(tables) / "manipulation_summary.csv")
    parts = [
        "<h3>Goal-conditioned manipulation (DDPG + HER)</h3>",
        _paragraphs(caption),
        _shown_table(summary, table_id="manipulation-summary"),
    ]
    paired = read_optional_csv(Path(tables) / "manipulation_paired.csv")
    if paired is not None and len(paired):
        parts += [
            "<p>Against no auxiliary losses, paired by seed:</p>",
            _shown_table(paired, table_id="manipulation-paired"),
        ]
    return parts


def _dense_section(dense_tables: Path, caption: str) -> list[str]:
    """The dense-prediction section: the summary at the best-validation epoch (each task's first
    metric, Δ_MTL, vs Equal), the published figures beside the measured ones, and the final
    epoch's summary in ``<details>``."""
    summary = pd.read_csv(Path(dense_tables) / "dense_summary.csv")
    parts = [_paragraphs(caption)]
    for protocol, title in (("best_val", "best-validation epoch"), ("final", "final epoch")):
        rows = summary[summary["protocol"] == protocol].drop(columns="protocol")
        table = _shown_table(rows, table_id=f"dense-{protocol}")
        if protocol == "best_val":
            parts += [f"<p>Test metrics at the {title}:</p>", table]
        else:
            parts.append(f"<details><summary>At the {title}</summary>{table}</details>")
    published = read_optional_csv(Path(dense_tables) / "dense_published.csv")
    if published is not None:
        parts += ["<p>Published vs measured:</p>", _shown_table(published, "dense-published")]
    return parts


def _kind(path: Path) -> str:
    return path.stem.partition("_")[0]


def _figures_section(figures: list[Path], caption) -> list[str]:
    """Every figure by kind (``FIGURE_ORDER`` first) and dataset, with a list of links."""
    rank = {kind: i for i, kind in enumerate(FIGURE_ORDER)}
    ordered = sorted(figures, key=lambda p: (rank.get(_kind(p), len(rank)), _kind(p), p.stem))
    links, blocks = [], []
    for path in ordered:
        kind, _, dataset = path.stem.partition("_")
        title = f"{TITLES.get(kind, tidy(kind))}: {dataset}" if dataset else TITLES.get(kind, kind)
        anchor = f"figure-{path.stem}"
        links.append(f'<li><a href="#{_e(anchor)}">{_e(title)}</a></li>')
        blocks.append(_figure_html(path, title, caption(kind), anchor))
    return [f"<ul>{''.join(links)}</ul>", *blocks]


def _figure_html(path: Path, title: str, caption: str, anchor: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure id="{_e(anchor)}"><h3>{_e(title)}</h3>'
        f'<img src="data:image/png;base64,{data}" alt="{_e(title)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def rst_to_text(source: str) -> str:
    """Plain text of a short reStructuredText caption; paragraphs stay separated by blank lines.

    Only the markup a caption uses is removed: comments and directives, roles, literals,
    hyperlink references and emphasis.
    """
    lines = [line for line in source.splitlines() if not line.lstrip().startswith("..")]
    text = "\n".join(lines)
    for pattern, replacement in (
        (r":[\w-]+:`([^`]*)`", r"\1"),  # :role:`text`
        (r"``([^`]+)``", r"\1"),  # ``literal``
        (r"`([^`<]+?)\s*<[^>]*>`_{1,2}", r"\1"),  # `text <url>`_
        (r"`([^`]+)`_{0,2}", r"\1"),  # `interpreted` or `reference`_
        (r"\*\*([^*]+)\*\*", r"\1"),
        (r"\*([^*]+)\*", r"\1"),
    ):
        text = re.sub(pattern, replacement, text)
    paragraphs = [" ".join(block.split()) for block in re.split(r"\n\s*\n", text)]
    return "\n\n".join(p for p in paragraphs if p)


def _caption(captions_dir: Path | None, kind: str) -> str:
    path = Path(captions_dir) / f"{kind}.rst" if captions_dir is not None else None
    if path is not None and path.is_file():
        return rst_to_text(path.read_text(encoding="utf-8"))
    return DEFAULT_CAPTIONS.get(kind, "")


# --- cells and tables ----------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _paragraphs(text: str) -> str:
    return "\n".join(f"<p>{_e(p)}</p>" for p in text.split("\n\n") if p)


def _seed_range(summary: pd.DataFrame) -> str:
    low, high = int(summary["n_seeds"].min()), int(summary["n_seeds"].max())
    return str(low) if low == high else f"{low}-{high}"


def _isnan(value: Any) -> bool:
    try:
        return value is None or math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def _fixed(value: float, digits: int) -> str:
    return BLANK_CELL if _isnan(value) else f"{float(value):.{digits}f}"


def _signed(value: float, digits: int) -> str:
    return BLANK_CELL if _isnan(value) else f"{float(value):+.{digits}f}"


def _int(value: float) -> str:
    return BLANK_CELL if _isnan(value) else str(int(value))


def _ratio(value: float) -> str:
    return BLANK_CELL if _isnan(value) else f"{float(value):.2f}×"


def _p(value: float) -> str:
    """A p-value: three decimals, ``<0.001`` below that."""
    if _isnan(value):
        return BLANK_CELL
    return "<0.001" if float(value) < 0.001 else f"{float(value):.3f}"


def _mean_ci(mean: float, ci: float, digits: int) -> str:
    """``mean ± ci`` (the mean alone without a CI)."""
    if _isnan(mean):
        return BLANK_CELL
    return f"{mean:.{digits}f}" if _isnan(ci) else f"{mean:.{digits}f} ± {ci:.{digits}f}"


def _points_ci(diff: float, low: float, high: float) -> str:
    """A difference of accuracies (fractions) in points with its CI: ``+1.23 [+0.40, +2.06]``."""
    if _isnan(diff):
        return BLANK_CELL
    if _isnan(low) or _isnan(high):
        return f"{diff * 100:+.2f}"
    return f"{diff * 100:+.2f} [{low * 100:+.2f}, {high * 100:+.2f}]"


def _verdict(significant: Any, diff: float, n_pairs: float, short: bool = False) -> Html:
    """A badge: ▲ better / ▼ worse than single (Holm p < 0.05), or not significant (``short``:
    the arrow alone, or n.s.)."""
    if _isnan(diff) or _isnan(n_pairs) or n_pairs < 2:
        return BLANK_CELL
    if is_true(significant):
        word = "better" if diff > 0 else "worse"
        arrow = "&#9650;" if diff > 0 else "&#9660;"
        return Html(
            f'<span class="badge {word}" title="{word}">{arrow}{"" if short else " " + word}</span>'
        )
    return Html(f'<span class="badge ns">{"n.s." if short else "not significant"}</span>')


def _delta_and_p(
    diff: float, low: float, high: float, p_holm: float, significant: Any, n_pairs: float
) -> Html:
    """One protocol's comparison in one cell: ``+1.23 [+0.40, +2.06] p 0.012`` and its badge
    (▲ better, ▼ worse, n.s.)."""
    if _isnan(diff):
        return BLANK_CELL
    text = _e(_points_ci(diff, low, high))
    if _isnan(p_holm):
        return Html(text)
    badge = _verdict(significant, diff, n_pairs, short=True)
    return Html(f"{text} p {_e(_p(p_holm))} {badge}")


def _protocol_name(protocol: str) -> str:
    return f"{protocol}: {PROTOCOLS[protocol]}" if protocol in PROTOCOLS else str(protocol)


def header(column: str) -> str:
    """A raw column's header in words: ``HEADERS``, else tidied with ``_mean`` → ``(mean)``,
    ``_ci95`` → ``(95% CI ±)`` and ``_std`` → ``(std)``."""
    if column in HEADERS:
        return HEADERS[column]
    for suffix, words in (("_mean", "mean"), ("_ci95", "95% CI ±"), ("_std", "std")):
        if column.endswith(suffix):
            return f"{tidy(column.removesuffix(suffix))} ({words})"
    return tidy(column)


def _display_table(cells: pd.DataFrame, numeric: set[str], table_id: str | None = None) -> str:
    """A shown table of ready cells (text, escaped here, or ``Html``); columns whose every cell
    is empty are left out."""
    keep = [
        column
        for column in cells.columns
        if any(
            not (isinstance(v, str) and v in ("", BLANK)) and not _isnan(v) for v in cells[column]
        )
    ]
    id_attr = f' id="{_e(table_id)}"' if table_id else ""
    head = "".join(f"<th>{_e(column)}</th>" for column in keep)

    def cell(column: str, value: Any) -> str:
        text = value if isinstance(value, Html) else _e(value)
        if column in numeric:
            return f'<td class="num">{text}</td>'
        return f'<td class="label">{text}</td>' if column == "setting" else f"<td>{text}</td>"

    body = "\n".join(
        "<tr>" + "".join(cell(c, v) for c, v in zip(keep, row, strict=True)) + "</tr>"
        for row in cells[keep].itertuples(index=False)
    )
    return (
        f'<div class="scroll"><table{id_attr}><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


def _number(value: float) -> str:
    """A float rounded by its size: 4 decimals below 1, fewer above."""
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.3f}"
    return f"{value:.4f}" if size >= 0.001 or size == 0 else f"{value:.2e}"


def _shown_table(frame: pd.DataFrame, table_id: str | None = None) -> str:
    """A raw table shown outside ``<details>``: no all-empty columns, headers in words."""
    frame = frame.dropna(axis=1, how="all")
    cells = pd.DataFrame(
        {
            header(column): [_shown_cell(column, value) for value in frame[column]]
            for column in frame.columns
        }
    )
    numeric = {header(c) for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])}
    return _display_table(cells, numeric, table_id)


def _shown_cell(column: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if math.isnan(value):
        return BLANK_CELL
    if column in INTEGER_COLUMNS or isinstance(value, numbers.Integral):
        return str(int(value))
    return _number(float(value))


def _cell(column: str, value: Any) -> str:
    """One ``<td>`` of a raw table: numbers right-aligned, λ as ``:g``, counts as integers,
    floats to 4 decimals."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"<td>{_e(value)}</td>"
    if math.isnan(value):
        return '<td class="num">&ndash;</td>'
    if column == "lam":
        text = f"{value:g}"
    elif column in INTEGER_COLUMNS or isinstance(value, numbers.Integral):
        text = str(int(value))
    else:
        text = f"{value:.4f}"
    return f'<td class="num">{text}</td>'


def _table(frame: pd.DataFrame, table_id: str | None = None) -> str:
    """A raw table: every column as it is in the CSV (inside ``<details>``, or key/value)."""
    id_attr = f' id="{_e(table_id)}"' if table_id else ""
    head = "".join(f"<th>{_e(column)}</th>" for column in frame.columns)
    body = "\n".join(
        "<tr>" + "".join(_cell(c, v) for c, v in zip(frame.columns, row, strict=True)) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return (
        f'<div class="scroll"><table{id_attr}><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )
