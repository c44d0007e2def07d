"""Compare two variants of a method run with the same seeds: per-epoch means of chosen history
columns and the final metrics, each variant's mean ± 95% t-interval over seeds, and B − A paired
by seed (a paired t-test; seeds share the split, the initial weights and the batch order).

    python tools/compare_variants.py A_DIR B_DIR [--columns agent_reward,aux_classes_used]

A_DIR and B_DIR each hold ``seed<k>/`` run directories (``history.csv``, ``metrics.json``), as
``auxbench train --out A_DIR/seed<k>`` writes them. Only seeds present in both are compared.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

METRICS = ("test_acc_at_best_val", "test_acc_last15_mean")


def mean_ci(values: np.ndarray) -> str:
    """``mean ± half-width`` of the 95% t-interval (just the mean for one value)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return f"{values.mean():.4f}"
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return f"{values.mean():.4f} ± {half:.4f}"


def paired(a: np.ndarray, b: np.ndarray) -> str:
    difference = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if len(difference) < 2 or np.allclose(difference, difference[0]):
        return f"{difference.mean():+.4f}"
    p = stats.ttest_rel(b, a).pvalue
    return f"{mean_ci(difference)} (p = {p:.2f})"


def load_runs(directory: Path) -> dict[int, tuple[pd.DataFrame, dict]]:
    runs = {}
    for run in sorted(directory.glob("seed*")):
        if (run / "metrics.json").exists():
            seed = int(run.name.removeprefix("seed"))
            history = pd.read_csv(run / "history.csv")
            runs[seed] = (history, json.loads((run / "metrics.json").read_text()))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--columns", default="agent_reward,aux_classes_used")
    args = parser.parse_args(argv)
    a_runs, b_runs = load_runs(args.a), load_runs(args.b)
    seeds = sorted(set(a_runs) & set(b_runs))
    if not seeds:
        print(f"no seed has finished runs in both {args.a} and {args.b}", file=sys.stderr)
        return 1
    print(f"A = {args.a}, B = {args.b}, seeds {', '.join(map(str, seeds))}\n")
    print("| quantity | A | B | B − A, paired |")
    print("|---|---|---|---|")
    for column in args.columns.split(","):
        if column not in a_runs[seeds[0]][0] or column not in b_runs[seeds[0]][0]:
            print(f"| `{column}` | not logged by both | | |")
            continue
        epochs = len(a_runs[seeds[0]][0])
        for epoch in range(epochs):
            a = np.array([a_runs[s][0][column].iloc[epoch] for s in seeds])
            b = np.array([b_runs[s][0][column].iloc[epoch] for s in seeds])
            print(
                f"| `{column}`, epoch {epoch + 1} | {mean_ci(a)} | {mean_ci(b)} | {paired(a, b)} |"
            )
    for metric in METRICS:
        a = np.array([a_runs[s][1][metric] for s in seeds])
        b = np.array([b_runs[s][1][metric] for s in seeds])
        print(f"| `{metric}` | {mean_ci(a)} | {mean_ci(b)} | {paired(a, b)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
