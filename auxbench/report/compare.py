"""Run a datasets × methods × λ × seeds grid through the trainer and write a summary table.

This is the direct path behind ``make demo``; the Snakemake workflow fans the same runs out as jobs.
A run whose ``metrics.json`` exists is not trained again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from auxbench import io as atomic
from auxbench.config import ConfigError, make_config
from auxbench.methods import METHODS
from auxbench.report.stats import summarise
from auxbench.train import train

GRID_KEYS = ("datasets", "methods", "lams", "seeds", "train")
METRICS = ("test_acc_at_best_val", "test_acc_last15_mean")


def grid_runs(grid: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """Expand the grid into run settings; λ fans out only for methods that use it."""
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(GRID_KEYS)}"
        )
    missing = [key for key in GRID_KEYS[:4] if not grid.get(key)]
    if missing:
        raise ConfigError(f"{source}: {', '.join(missing)} must be non-empty lists")
    runs = []
    for dataset in grid["datasets"]:
        for method in grid["methods"]:
            uses_lambda = METHODS[method].uses_lambda if method in METHODS else False
            for lam in grid["lams"] if uses_lambda else [None]:
                for seed in grid["seeds"]:
                    values = {
                        **grid.get("train", {}),
                        "dataset": dataset,
                        "method": method,
                        "seed": seed,
                    }
                    if lam is not None:
                        values["lam"] = lam
                    make_config(values, source)  # fail before any training starts
                    runs.append(values)
    return runs


def run_directory(root: Path, values: dict[str, Any]) -> Path:
    """Where one run's results live: ``root/runs/<dataset>/<method>/lam<λ>/seed<seed>``."""
    lam = f"lam{values['lam']:g}" if "lam" in values else "lam-"
    return root / "runs" / values["dataset"] / values["method"] / lam / f"seed{values['seed']}"


def run_grid(grid: dict[str, Any], out: Path, source: str = "config") -> str:
    """Train every run not yet done, then write ``runs.csv`` and ``summary.md``; return the summary."""
    out = Path(out)
    rows = []
    for values in grid_runs(grid, source):
        directory = run_directory(out, values)
        if not (directory / "metrics.json").is_file():
            train(make_config(values, source), directory)
        metrics = json.loads((directory / "metrics.json").read_text())
        rows.append(
            {
                "dataset": values["dataset"],
                "method": values["method"],
                "lam": values.get("lam"),
                "seed": values["seed"],
                **{name: metrics[name] for name in METRICS},
                "best_epoch": metrics["best_epoch"],
                "wall_time_s": metrics["wall_time_s"],
            }
        )
    runs = pd.DataFrame(rows)
    atomic.write_text(out / "runs.csv", runs.to_csv(index=False))
    sections = ["# auxbench comparison", "", f"Config: `{source}`. Mean ± 95% CI over seeds.", ""]
    for metric in METRICS:
        table = summarise(runs, ["dataset", "method", "lam"], metric)
        sections += [f"## {metric}", "", table.to_markdown(index=False, floatfmt=".4f"), ""]
    summary = "\n".join(sections)
    atomic.write_text(out / "summary.md", summary)
    return summary
