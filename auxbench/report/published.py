"""Published against measured: the figures a paper reports (a workflow config's ``published``
list, checked by ``auxbench.experiment.grid.published_entries``) set against the seeds run here,
under the paper's protocol and in the paper's unit (percent).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auxbench.config import read_yaml
from auxbench.experiment.grid import published_entries
from auxbench.report.stats import confidence_halfwidth

COLUMNS = [
    "source",
    "dataset",
    "method",
    "weighting",
    "lam",
    "protocol",
    "metric",
    "published",
    "measured_mean",
    "measured_ci95",
    "n_seeds",
    "difference",
    "published_in_ci",
]


def read_published(path: Path) -> list[dict[str, Any]]:
    """The checked and completed ``published`` entries of the workflow config at ``path`` (a
    ``config/paper/*.yaml`` file or the workflow's resolved ``results/config.yaml``); a config
    without the list has none."""
    return published_entries(read_yaml(path), str(path))


def published_table(
    runs: pd.DataFrame,
    entries: list[dict[str, Any]],
    protocol_columns: dict[str, str],
    delta_mtl_column: str,
) -> pd.DataFrame:
    """``published.csv``: one row per entry with the seeds of its setting (dataset, method,
    weighting and λ equal; ``runs`` as ``read_runs`` builds them, with the per-run Δ_MTL column
    ``delta_mtl_column`` where there are domains). ``test_acc`` is the protocol's column
    (``protocol_columns``) times 100, ``delta_mtl`` the Δ_MTL column (already in percent). Columns:
    the entry's keys, ``published`` (its value), ``measured_mean``, ``measured_ci95`` (the 95%
    t-interval's half-width), ``n_seeds``, ``difference`` (measured − published) and
    ``published_in_ci`` (whether the published value lies in the measured interval; False
    without an interval, i.e. with fewer than 2 seeds)."""
    rows = []
    for entry in entries:
        setting = (
            (runs["dataset"] == entry["dataset"])
            & (runs["method"] == entry["method"])
            & (runs["weighting"] == entry["weighting"])
            & (
                runs["lam"].isna()
                if entry["lam"] is None
                else np.isclose(runs["lam"].astype(float), entry["lam"])
            )
        )
        if entry["metric"] == "delta_mtl":
            column, scale = delta_mtl_column, 1.0
        else:
            column, scale = protocol_columns[entry["protocol"]], 100.0
        values = (
            runs.loc[setting, column] * scale
            if column in runs
            else pd.Series(dtype=float)  # no run has domains: no Δ_MTL
        ).dropna()
        mean, ci95 = values.mean(), confidence_halfwidth(values)
        difference = mean - entry["value"]
        rows.append(
            {
                **{key: entry[key] for key in ("source", "dataset", "method", "weighting")},
                "lam": math.nan if entry["lam"] is None else entry["lam"],
                "protocol": entry["protocol"],
                "metric": entry["metric"],
                "published": entry["value"],
                "measured_mean": mean,
                "measured_ci95": ci95,
                "n_seeds": len(values),
                "difference": difference,
                "published_in_ci": bool(abs(difference) <= ci95),  # False where either is NaN
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)
