"""The experiment grid: datasets × methods × weightings × λ × seeds, as written in
``config/config.yaml``.

A method entry is a registered method, or ``NAME+noise`` for the method with Auto-λ's
noise-prediction task added (e.g. ``human+noise``). A weighting entry is ``NAME`` or
``NAME+GRADIENT`` (e.g. ``dwa+pcgrad``): how the task losses are weighted and, optionally, the
gradient method combining them on the shared parameters. ``weightings`` is either one list for
every method or a mapping from method entries to their lists (unlisted methods: fixed weights).
λ fans out only where it means something (fixed weights, and a method or the noise task that uses
λ); seeds always fan out. The Snakemake workflow turns each grid point into one training job whose
results live in ``run_directory``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auxbench.config import TrainConfig, make_config
from auxbench.foundations.errors import ConfigError
from auxbench.methods import METHODS, check_method

FANNED_OUT = ("dataset", "method", "weighting", "lam", "seed")
NO_LAMBDA = "-"
"""The λ wildcard of runs that have no λ."""
FIXED = "fixed"
DEFAULT_WEIGHTINGS = [FIXED]


NOISE_SUFFIX = "+noise"


def split_method(spec: str) -> tuple[str, bool]:
    """``NAME[+noise]`` → (method, whether the noise task is added)."""
    spec = str(spec)
    if spec.endswith(NOISE_SUFFIX):
        return spec[: -len(NOISE_SUFFIX)], True
    return spec, False


def method_spec(config: TrainConfig | dict[str, Any]) -> str:
    """The grid's name for a run's auxiliary tasks: ``method`` or ``method+noise``."""
    values = config if isinstance(config, dict) else config.to_dict()
    return values["method"] + (NOISE_SUFFIX if values.get("noise_task") else "")


def split_weighting(spec: str) -> tuple[str, str | None]:
    """``NAME[+GRADIENT]`` → (weighting, gradient method or None)."""
    name, _, gradient = str(spec).partition("+")
    return name, gradient or None


def weighting_spec(config: TrainConfig | dict[str, Any]) -> str:
    """The grid's name for a run's weighting: ``weighting`` or ``weighting+gradient``."""
    values = config if isinstance(config, dict) else config.to_dict()
    gradient = values.get("gradient")
    return values.get("weighting", FIXED) + (f"+{gradient}" if gradient else "")


def uses_lambda(method: str, weighting: str) -> bool:
    """Whether λ means something for a run (``method`` as in the grid, ``NAME[+noise]``): fixed
    weights, and a method that weights its auxiliary loss by λ or the noise task (weighted by λ)."""
    name, noise = split_method(method)
    method_uses = name in METHODS and METHODS[name].uses_lambda
    return split_weighting(weighting)[0] == FIXED and (method_uses or noise)


def weightings_of(grid: dict[str, Any], method: str) -> list[str]:
    """The weightings ``method`` runs with: the grid's list, or its entry in the mapping."""
    weightings = grid.get("weightings") or DEFAULT_WEIGHTINGS
    if isinstance(weightings, dict):
        return list(weightings.get(method) or DEFAULT_WEIGHTINGS)
    return list(weightings)


def grid_points(grid: dict[str, Any], source: str = "config") -> list[dict[str, Any]]:
    """Every run of the grid as ``{dataset, method, weighting, lam, seed}`` (``lam`` is
    ``NO_LAMBDA`` where unused). Each point's full training config is validated here, before any
    job starts."""
    for key in ("datasets", "methods", "lams", "seeds"):
        if not grid.get(key):
            raise ConfigError(f"{source}: '{key}' must be a non-empty list")
    weightings = grid.get("weightings")
    if isinstance(weightings, dict):
        unknown = sorted(set(weightings) - set(map(str, grid["methods"])))
        if unknown:
            raise ConfigError(
                f"{source}: 'weightings' names methods that are not in 'methods': "
                f"{', '.join(unknown)}"
            )
    points = []
    for dataset in grid["datasets"]:
        for method in grid["methods"]:
            for weighting in weightings_of(grid, method):
                lams = grid["lams"] if uses_lambda(method, weighting) else [NO_LAMBDA]
                for lam in lams:
                    for seed in grid["seeds"]:
                        point = {
                            "dataset": dataset,
                            "method": method,
                            "weighting": weighting,
                            "lam": lam,
                            "seed": seed,
                        }
                        run_config(grid, point, source)
                        points.append(point)
    return points


def run_config(grid: dict[str, Any], point: dict[str, Any], source: str = "config"):
    """The validated ``TrainConfig`` of one grid point (wildcard values may be strings)."""
    values = {**grid.get("train", {}), "dataset": point["dataset"]}
    values["method"], values["noise_task"] = split_method(point["method"])
    values["weighting"], values["gradient"] = split_weighting(point.get("weighting", FIXED))
    values["seed"] = int(point["seed"])
    if str(point["lam"]) != NO_LAMBDA:
        values["lam"] = float(point["lam"])
    if grid.get("data_root"):
        values["data_root"] = grid["data_root"]
    return check_method(make_config(values, source))


def run_directory(results: str | Path, point: dict[str, Any]) -> Path:
    """``<results>/runs/<dataset>/<method>/<weighting>/lam<λ>/seed<seed>``: where one run writes
    its files."""
    lam = point["lam"] if str(point["lam"]) == NO_LAMBDA else f"{float(point['lam']):g}"
    return (
        Path(results)
        / "runs"
        / point["dataset"]
        / point["method"]
        / str(point.get("weighting", FIXED))
        / f"lam{lam}"
        / f"seed{point['seed']}"
    )
