"""A self-contained HTML report: tables, embedded figures, the resolved config and the environment.

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

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "seaborn", "snakemake", "auxbench")
INTEGER_COLUMNS = {"seed", "n_seeds", "best_epoch", "epochs_run", "epoch", "reached"}
DEFAULT_CAPTIONS = {
    "workflow": "Results of the auxbench benchmark: every method trained on the same splits "
    "with several seeds. Test accuracy is read at the epoch with the best validation accuracy.",
    "summary": "One row per dataset, method, weighting and λ: mean, standard deviation and 95% t-CI "
    "half-width over seeds; diff_vs_single and p_welch compare with the single-task baseline.",
    "curves": "Validation and test accuracy per epoch; line: mean over seeds, band: 95% t-CI.",
    "accuracy": "Test accuracy at the best validation epoch; bar: mean over seeds, whiskers: "
    "95% t-CI, dots: individual seeds.",
    "lambda": "Test accuracy at the best validation epoch against λ (log-2 axis), mean ± 95% "
    "t-CI; the dashed line is the single-task mean.",
    "time": "Training wall time per run; bar: mean over seeds, dots: individual seeds.",
    "bench": "What each method costs per step and epoch, against single and against its "
    "algorithmic minimum in passes of the main network, and its peak memory (auxbench bench).",
    "rltrack": "The RL track: A2C from pixels with auxiliary tasks on its shared encoder, per "
    "environment and weighting method: normalised area under the return-vs-steps curve (the mean "
    "return over training), environment steps to reach the return threshold (over the seeds that "
    "reached it) and the final return; mean and 95% t-CI half-width over seeds.",
    "rltrack-return": "Episode return against environment steps; line: mean over seeds, band: "
    "95% t-CI; dashed: the return threshold.",
    "rltrack-weights": "OL-AUX's auxiliary task weights over training, mean over seeds.",
}
TITLES = {
    "curves": "Learning curves",
    "accuracy": "Test accuracy",
    "lambda": "λ ablation",
    "time": "Wall time",
    "rltrack-return": "RL track: return vs environment steps",
    "rltrack-weights": "RL track: learned auxiliary weights",
}
CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222;
       padding: 0 1rem; line-height: 1.45; }
h1 { border-bottom: 2px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
.scroll { overflow-x: auto; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 0.9rem; }
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
) -> Path:
    """Write the self-contained HTML report to ``out_path`` (atomically) and return the path.

    With ``rltrack_tables`` (a directory holding ``rltrack_summary.csv``) a section on the RL
    track follows the summary; ``bench_dir``: where ``auxbench bench --out`` wrote its tables (``costs.csv``
    and, with the scaling series, ``scaling.csv``), shown in a "Cost" section.

    Captions come from ``captions_dir/<kind>.rst`` when present (``kind`` is the figure name's
    prefix before ``_``, or ``workflow``/``summary`` for the intro and table), else built-ins.
    """
    tables_dir, figures = Path(tables_dir), [Path(path) for path in figures]
    summary = pd.read_csv(tables_dir / "summary.csv")
    runs = pd.read_csv(tables_dir / "runs.csv")

    def caption(kind: str) -> str:
        return _caption(captions_dir, kind)

    datasets = ", ".join(sorted(runs["dataset"].unique()))
    methods = ", ".join(sorted(runs["method"].unique()))
    weightings = ", ".join(sorted(runs["weighting"].unique()))
    facts = (
        f"{len(runs)} runs; datasets: {datasets}; methods: {methods}; weightings: {weightings}; "
        f"seeds per setting: {_seed_range(summary)}."
    )
    config_text = yaml.safe_dump(
        json.loads(json.dumps(config, default=str)), sort_keys=False, allow_unicode=True
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>auxbench report: {_e(datasets)}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>auxbench report</h1>",
        _paragraphs(caption("workflow")),
        f'<p class="note">{_e(facts)}</p>',
        "<h2>Summary</h2>",
        _paragraphs(caption("summary")),
        _table(summary, table_id="summary"),
        f"<details><summary>All runs ({len(runs)})</summary>",
        _table(runs, table_id="runs"),
        "</details>",
        *_rltrack_section(rltrack_tables, caption("rltrack")),
        "<h2>Figures</h2>",
        *(_figure(path, caption(path.stem.partition("_")[0])) for path in figures),
        *_bench_section(bench_dir, caption("bench")),
        "<h2>Configuration</h2>",
        f"<pre>{_e(config_text)}</pre>",
        "<h2>Environment</h2>",
        _table(pd.DataFrame({"key": list(environment), "value": list(environment.values())})),
        "</body></html>",
    ]
    page = "\n".join(parts) + "\n"
    out_path = Path(out_path)
    atomic.write_text(out_path, page.encode("ascii", "xmlcharrefreplace").decode("ascii"))
    return out_path


def _bench_section(bench_dir: Path | None, caption: str) -> list[str]:
    """The "Cost" section: the benchmark's tables, if it wrote any."""
    if bench_dir is None:
        return []
    tables = [Path(bench_dir) / f"{name}.csv" for name in ("costs", "scaling")]
    tables = [path for path in tables if path.exists()]
    if not tables:
        raise FileNotFoundError(
            f"no costs.csv or scaling.csv in {bench_dir} (auxbench bench --out)"
        )
    parts = ["<h2>Cost</h2>", _paragraphs(caption)]
    for path in tables:
        frame = pd.read_csv(path)
        setting = frame.pop("setting").iloc[0] if "setting" in frame else ""
        parts += [f'<p class="note">{_e(path.stem)}: {_e(setting)}</p>', _table(frame)]
    return parts


def _rltrack_section(rltrack_tables: Path | None, caption: str) -> list[str]:
    """The RL track's section: its summary table, if the workflow ran the track."""
    if rltrack_tables is None:
        return []
    summary = pd.read_csv(Path(rltrack_tables) / "rltrack_summary.csv")
    return [
        "<h2>RL track: reinforcement learning from pixels</h2>",
        _paragraphs(caption),
        _table(summary, table_id="rltrack-summary"),
    ]


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


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _paragraphs(text: str) -> str:
    return "\n".join(f"<p>{_e(p)}</p>" for p in text.split("\n\n") if p)


def _seed_range(summary: pd.DataFrame) -> str:
    low, high = int(summary["n_seeds"].min()), int(summary["n_seeds"].max())
    return str(low) if low == high else f"{low}-{high}"


def _cell(column: str, value: Any) -> str:
    """One ``<td>``: numbers right-aligned, λ as ``:g``, counts as integers, floats to 4 decimals."""
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


def _figure(path: Path, caption: str) -> str:
    kind, _, dataset = path.stem.partition("_")
    title = f"{TITLES.get(kind, kind)}: {dataset}" if dataset else TITLES.get(kind, kind)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f"<figure><h3>{_e(title)}</h3>"
        f'<img src="data:image/png;base64,{data}" alt="{_e(title)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )
