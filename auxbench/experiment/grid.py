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

A config may also list ``published`` figures (``published_entries``): what a paper reports for a
setting of the grid, under the evaluation protocol the paper used, for the aggregation to set
against the measured seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auxbench.config import TrainConfig, make_config
from auxbench.data import DATASETS
from auxbench.data.user_sets import UserDataset, dataset_names
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
    published_entries(grid, source)
    grid_users(grid, source)
    points = []
    for dataset in dataset_names(grid["datasets"]):
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
    user = grid_users(grid, source).get(point["dataset"])
    if user is not None:
        values["user_dataset"] = user.to_entry()
    return check_method(make_config(values, source))


def grid_users(grid: dict[str, Any], source: str = "config") -> dict[str, UserDataset]:
    """The user datasets the grid's ``datasets`` list declares (its mappings), by name;
    ``ConfigError`` for a bad entry, a dense one (it belongs under ``dense.datasets``), a
    built-in dataset's name or a name listed twice."""
    users: dict[str, UserDataset] = {}
    names = dataset_names(grid.get("datasets") or [])
    for i, entry in enumerate(grid.get("datasets") or []):
        where = f"{source}: datasets[{i}]"
        if names.count(names[i]) > 1:
            raise ConfigError(f"{where}: {names[i]!r} is listed twice; list each dataset once")
        if isinstance(entry, str):
            continue
        user = UserDataset.from_entry(entry, where)
        if user.is_dense:
            raise ConfigError(
                f"{where} ({user.name}).kind: a dense dataset belongs under dense.datasets"
            )
        if user.name in DATASETS:
            raise ConfigError(
                f"{where}.name: {user.name!r} is a built-in dataset's name; give yours another"
            )
        users[user.name] = user
    return users


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


# How a run's test accuracy is read off its epochs (the tables' ``protocol`` column): at the epoch
# with the best validation accuracy, the mean of the last 15 epochs (the RL-AUX tables), or the
# highest test accuracy of any epoch (optimistic; what the Auto-λ code reports).
PROTOCOLS = ("best_val", "last15", "best_test")
# What a published figure measures, in the paper's unit: the primary test accuracy in percent, or
# a multi-domain run's Δ_MTL in percent (against equal weighting, as the summary computes it).
PUBLISHED_METRICS = ("test_acc", "delta_mtl")
PUBLISHED_REQUIRED = ("source", "dataset", "method", "protocol", "metric", "value")
PUBLISHED_KEYS = (*PUBLISHED_REQUIRED, "weighting", "lam")


def published_entries(grid: dict[str, Any], source: str = "config") -> list[dict[str, Any]]:
    """The config's ``published`` list, checked against the grid and completed: ``weighting``
    defaults to fixed, ``lam`` to TrainConfig's λ where λ applies and to None where it does not.
    Each problem raises a one-line ``ConfigError`` naming the entry and the key."""
    entries = grid.get("published") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: 'published' must be a list of entries, not {entries!r}")
    return [
        _published_entry(grid, entry, f"{source}: published[{i}]")
        for i, entry in enumerate(entries)
    ]


def _published_entry(grid: dict[str, Any], entry: Any, where: str) -> dict[str, Any]:
    """One checked and completed ``published`` entry (``published_entries``)."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping with keys {', '.join(PUBLISHED_REQUIRED)}")
    missing = [key for key in PUBLISHED_REQUIRED if entry.get(key) is None]
    unknown = sorted(set(map(str, entry)) - set(PUBLISHED_KEYS))
    if missing or unknown:
        problem = f"lacks '{missing[0]}'" if missing else f"has an unknown key '{unknown[0]}'"
        raise ConfigError(f"{where} {problem}; an entry has {', '.join(PUBLISHED_KEYS)}")
    method, weighting = str(entry["method"]), str(entry.get("weighting") or FIXED)
    checks = (
        ("protocol", entry["protocol"], PROTOCOLS),
        ("metric", entry["metric"], PUBLISHED_METRICS),
        ("dataset", entry["dataset"], dataset_names(grid.get("datasets") or [])),
        ("method", method, [str(name) for name in grid.get("methods") or []]),
        ("weighting", weighting, weightings_of(grid, method)),
    )
    for key, value, allowed in checks:
        if value not in allowed:
            raise ConfigError(
                f"{where}: {key} {value!r} is not one of {', '.join(map(str, allowed))}"
                + (" (the config's)" if key in ("dataset", "method", "weighting") else "")
            )
    value = entry["value"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: value {value!r} must be a number (the paper's figure)")
    if entry["metric"] == "test_acc" and not 0 <= value <= 100:
        raise ConfigError(f"{where}: value {value!r} must be an accuracy in percent (0 to 100)")
    if entry["metric"] == "delta_mtl" and entry["protocol"] != "best_val":
        raise ConfigError(
            f"{where}: metric delta_mtl is measured at the best-validation epoch only; "
            "set protocol: best_val"
        )
    return {
        **{key: entry[key] for key in PUBLISHED_REQUIRED},
        "method": method,
        "weighting": weighting,
        "lam": _published_lam(grid, entry.get("lam"), method, weighting, where),
        "value": float(value),
    }


def _published_lam(grid: dict[str, Any], lam: Any, method: str, weighting: str, where: str):
    """A published entry's λ: None where λ does not apply, else the entry's (default
    TrainConfig's), which must be one of the config's ``lams``."""
    if not uses_lambda(method, weighting):
        if lam is not None:
            raise ConfigError(
                f"{where}: λ means nothing for {method} with {weighting} weights; drop 'lam'"
            )
        return None
    lam = TrainConfig().lam if lam is None else lam
    if isinstance(lam, bool) or not isinstance(lam, int | float):
        raise ConfigError(f"{where}: lam {lam!r} must be a number")
    lams = [float(value) for value in grid.get("lams") or []]
    if float(lam) not in lams:
        raise ConfigError(
            f"{where}: lam {lam:g} is not one of the config's lams ({', '.join(map(str, lams))})"
        )
    return float(lam)
