"""The dense-prediction grid (the workflow config's ``dense`` section): one run per dataset ×
architecture × setting × weighting × seed, plus the single-task baselines Δ_MTL is measured
against.

Settings, by name (Auto-λ Table 1's rows):

- ``single-<task>``: that task alone (fixed weighting); one per task of the dataset, added for
  every architecture of the grid: the baselines of Δ_MTL;
- ``multi-task``: every task of the dataset, all primary;
- ``auxiliary``: every task primary plus the noise-prediction task, auxiliary (Auto-λ [3 Tasks]);
- ``auxiliary-<task>``: that task primary, the dataset's other tasks and the noise task auxiliary
  (Auto-λ [1 Task]).

A weighting may carry a gradient method as ``<weighting>+<gradient>`` (``fixed+pcgrad``);
``weightings`` is one list for every setting or a mapping from settings to their lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auxbench.data.dense_sets import DENSE_DATASETS
from auxbench.data.user_sets import UserDataset, dataset_names
from auxbench.foundations.errors import ConfigError

SINGLE = "single-"
AUXILIARY = "auxiliary"
SETTINGS = ("multi-task", AUXILIARY)
BASELINE_WEIGHTING = "fixed"


@dataclass(frozen=True)
class DensePoint:
    """One dense run of the grid."""

    dataset: str
    architecture: str
    setting: str
    weighting: str
    seed: int

    def directory(self, results: str | Path) -> Path:
        return (
            Path(results)
            / "dense"
            / "runs"
            / self.dataset
            / self.architecture
            / self.setting
            / self.weighting
            / f"seed{self.seed}"
        )


def dataset_tasks(dataset: str, user: UserDataset | None = None) -> tuple[str, ...]:
    """The task names of dense dataset ``dataset``: a built-in one, or the user's dataset ``user``
    (from its ``tasks.yaml``)."""
    if user is not None:
        return tuple(spec.name for spec in user.dense_tasks())
    if dataset not in DENSE_DATASETS:
        raise ConfigError(
            f"dense.datasets: unknown dense dataset {dataset!r}; choose one of "
            f"{', '.join(DENSE_DATASETS)}"
        )
    return DENSE_DATASETS[dataset].tasks


def section_users(section: dict[str, Any]) -> dict[str, UserDataset]:
    """The user datasets a ``dense`` section's ``datasets`` list declares (its mappings), by name;
    ``ConfigError`` for a bad entry, one that is not ``kind: dense`` or a built-in's name."""
    users = {}
    for i, entry in enumerate(section.get("datasets") or []):
        if isinstance(entry, str):
            continue
        user = UserDataset.from_entry(entry, f"dense.datasets[{i}]")
        if not user.is_dense or user.name in DENSE_DATASETS:
            problem = (
                f"kind {user.kind!r} is a classification dataset (list it under datasets)"
                if not user.is_dense
                else f"{user.name!r} is a built-in dataset's name"
            )
            raise ConfigError(f"dense.datasets[{i}] ({user.name}): {problem}")
        users[user.name] = user
    return users


def setting_values(setting: str, tasks: tuple[str, ...]) -> dict[str, Any]:
    """The ``DenseConfig`` keys (``tasks``, ``primary_tasks``, ``noise_task``) of a setting
    (see the module doc), for a dataset with ``tasks``."""
    if setting.startswith(SINGLE) and setting[len(SINGLE) :] in tasks:
        return {"tasks": [setting[len(SINGLE) :]], "primary_tasks": None, "noise_task": False}
    if setting == "multi-task":
        return {"tasks": None, "primary_tasks": None, "noise_task": False}
    if setting == AUXILIARY:
        return {"tasks": None, "primary_tasks": None, "noise_task": True}
    if setting.startswith(AUXILIARY + "-") and setting[len(AUXILIARY) + 1 :] in tasks:
        return {
            "tasks": None,
            "primary_tasks": [setting[len(AUXILIARY) + 1 :]],
            "noise_task": True,
        }
    names = [*SETTINGS, *(f"auxiliary-{t}" for t in tasks), *(f"single-{t}" for t in tasks)]
    raise ConfigError(f"dense setting {setting!r} is unknown; choose one of {', '.join(names)}")


def setting_weightings(section: dict[str, Any], setting: str) -> list[str]:
    """The weightings a setting runs with: the section's list, or the setting's entry in its
    mapping (a setting without one: fixed)."""
    weightings = section["weightings"]
    if isinstance(weightings, dict):
        unknown = sorted(set(weightings) - set(section["settings"]))
        if unknown:
            raise ConfigError(
                f"dense.weightings: {', '.join(unknown)} is not one of dense.settings "
                f"({', '.join(section['settings'])})"
            )
        weightings = weightings.get(setting, [BASELINE_WEIGHTING])
    return list(weightings)


def dense_points(section: dict[str, Any]) -> list[DensePoint]:
    """Every run of a ``dense`` section: the single-task baselines of each dataset and
    architecture (fixed weighting), then each setting × weighting; every one × seed."""
    points = []
    users = section_users(section)
    for dataset in dataset_names(section["datasets"]):
        tasks = dataset_tasks(dataset, users.get(dataset))
        for setting in section["settings"]:
            setting_values(setting, tasks)  # a clear error for an unknown setting, before any job
        for architecture in section["architectures"]:
            runs = [(f"{SINGLE}{task}", BASELINE_WEIGHTING) for task in tasks]
            runs += [
                (setting, weighting)
                for setting in section["settings"]
                for weighting in setting_weightings(section, setting)
            ]
            for setting, weighting in runs:
                for seed in section["seeds"]:
                    points.append(DensePoint(dataset, architecture, setting, weighting, seed))
    return points


def setting_name(config: dict[str, Any], tasks: dict[str, dict[str, Any]]) -> str:
    """The setting name (see the module doc) of a run's resolved config, given its tasks ({name:
    {primary, ...}} as ``metrics.json`` lists them); ``custom`` for any other choice."""
    trained = [name for name in tasks if name != "noise"]
    primary = [name for name in trained if tasks[name]["primary"]]
    noise = bool(config.get("noise_task"))
    if config.get("tasks") and len(trained) == 1 and not noise:
        return f"{SINGLE}{trained[0]}"
    if config.get("tasks") is None and len(primary) == len(trained):
        return AUXILIARY if noise else "multi-task"
    if config.get("tasks") is None and noise and len(primary) == 1:
        return f"{AUXILIARY}-{primary[0]}"
    return "custom"


def check_published(section: dict[str, Any]) -> None:
    """Every ``published`` entry of a ``dense`` section must name a run of its grid and columns
    ``dense_runs.csv`` has (``<metric>_<task>`` of the dataset's tasks, or a ``delta_*``); a
    ``ConfigError`` names the entry otherwise."""
    runs = {(p.dataset, p.architecture, p.setting, p.weighting) for p in dense_points(section)}
    for number, entry in enumerate(section.get("published") or [], 1):
        key = tuple(entry.get(k) for k in ("dataset", "architecture", "setting", "weighting"))
        if key not in runs:
            raise ConfigError(
                f"dense.published entry {number} ({entry.get('source')}): "
                f"{'/'.join(map(str, key))} is not a run of the dense grid; add it to the grid "
                "or fix the entry"
            )
        tasks = dataset_tasks(entry["dataset"], section_users(section).get(entry["dataset"]))
        for column in entry["values"]:
            if not (column.startswith("delta_") or column.rpartition("_")[2] in tasks):
                raise ConfigError(
                    f"dense.published entry {number} ({entry.get('source')}): column {column!r} "
                    f"is neither <metric>_<task> of {', '.join(tasks)} nor a delta_* column"
                )
