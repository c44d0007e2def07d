"""The experiment grid: datasets × methods × λ × seeds, as written in ``config/config.yaml``.

λ fans out only for methods where it means something; seeds always fan out. The Snakemake workflow
turns each grid point into one training job whose results live in ``run_directory``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auxbench.config import ConfigError, make_config
from auxbench.methods import METHODS

FANNED_OUT = ("dataset", "method", "lam", "seed")
NO_LAMBDA = "-"
"""The λ wildcard of methods that have no λ."""


def grid_points(grid: dict[str, Any], source: str = "config") -> list[dict[str, Any]]:
    """Every run of the grid as ``{dataset, method, lam, seed}`` (``lam`` is ``NO_LAMBDA`` where unused).

    Each point's full training config is validated here, before any job starts.
    """
    for key in ("datasets", "methods", "lams", "seeds"):
        if not grid.get(key):
            raise ConfigError(f"{source}: '{key}' must be a non-empty list")
    points = []
    for dataset in grid["datasets"]:
        for method in grid["methods"]:
            uses_lambda = method in METHODS and METHODS[method].uses_lambda
            for lam in grid["lams"] if uses_lambda else [NO_LAMBDA]:
                for seed in grid["seeds"]:
                    point = {"dataset": dataset, "method": method, "lam": lam, "seed": seed}
                    run_config(grid, point, source)
                    points.append(point)
    return points


def run_config(grid: dict[str, Any], point: dict[str, Any], source: str = "config"):
    """The validated ``TrainConfig`` of one grid point (wildcard values may be strings)."""
    values = {**grid.get("train", {}), "dataset": point["dataset"], "method": point["method"]}
    values["seed"] = int(point["seed"])
    if str(point["lam"]) != NO_LAMBDA:
        values["lam"] = float(point["lam"])
    if grid.get("data_root"):
        values["data_root"] = grid["data_root"]
    return make_config(values, source)


def run_directory(results: str | Path, point: dict[str, Any]) -> Path:
    """``<results>/runs/<dataset>/<method>/lam<λ>/seed<seed>``: where one run writes its files."""
    lam = point["lam"] if str(point["lam"]) == NO_LAMBDA else f"{float(point['lam']):g}"
    return (
        Path(results)
        / "runs"
        / point["dataset"]
        / point["method"]
        / f"lam{lam}"
        / f"seed{point['seed']}"
    )
