import json
import os
import shlex
import sys
from pathlib import Path

import yaml

from auxbench.data import DataError
from auxbench.data.user_sets import dataset_names, require_files, verify
from auxbench.experiment.dense_grid import check_published, dense_points, section_users
from auxbench.experiment.grid import (
    NO_LAMBDA,
    grid_points,
    grid_users,
    run_directory,
    split_method,
    split_weighting,
)
from auxbench.foundations.errors import ConfigError

RESULTS = config["results"]


def checked(function, *args):
    """``function(*args)``, the workflow ended with the one-line message of a ``ConfigError`` or
    ``DataError`` (no traceback) before any job starts."""
    try:
        return function(*args)
    except (ConfigError, DataError) as error:
        sys.exit(f"auxbench: error: {error}")


wildcard_constraints:
    dataset="[^/]+",
    method="[^/]+",
    weighting="[^/]+",
    lam="[^/]+",
    seed="[0-9]+",
    env="[^/]+",
    architecture="[^/]+",
    setting="[^/]+",


PREPARED = config["prepared"]
RUN_DIRECTORIES = [
    run_directory(RESULTS, point) for point in checked(grid_points, config)
]
DATASET_NAMES = dataset_names(config["datasets"])


def set_flags(settings):
    """A mapping as ``--set KEY=VALUE`` flags (values as JSON)."""
    return " ".join(
        f"--set {shlex.quote(f'{key}={json.dumps(value)}')}"
        for key, value in settings.items()
    )


def train_settings(wildcards):
    """The config's shared training settings as ``--set`` flags, with the declaration of a
    user's dataset."""
    settings = dict(config["train"])
    if config.get("data_root"):
        settings["data_root"] = config["data_root"]
    if wildcards.dataset in USER_DATASETS:
        settings["user_dataset"] = USER_DATASETS[wildcards.dataset].to_entry()
    return set_flags(settings)


def lambda_flag(wildcards):
    """``--lam λ`` for methods that use λ; nothing for the others."""
    return "" if wildcards.lam == NO_LAMBDA else f"--lam {wildcards.lam}"


def method_flags(wildcards):
    """``--method NAME``, and ``--set noise_task=true`` for ``NAME+noise``."""
    name, noise = split_method(wildcards.method)
    return f"--method {name}" + (" --set noise_task=true" if noise else "")


def weighting_flags(wildcards):
    """``--weighting NAME`` and, for ``NAME+GRADIENT``, ``--gradient GRADIENT``."""
    name, gradient = split_weighting(wildcards.weighting)
    return f"--weighting {name}" + (f" --gradient {gradient}" if gradient else "")


def data_flags(wildcards):
    """The data root and the expected checksum of a dataset, when the config gives them."""
    flags = []
    if config.get("data_root"):
        flags.append(f"--root {shlex.quote(config['data_root'])}")
    if wildcards.dataset in config["checksums"]:
        flags.append(f"--expect {config['checksums'][wildcards.dataset]}")
    if wildcards.dataset in USER_DATASETS:
        entry = json.dumps(USER_DATASETS[wildcards.dataset].to_entry())
        flags.append(f"--user-dataset {shlex.quote(entry)}")
    return " ".join(flags)


def prepare_inputs(wildcards):
    """A user dataset's files (images, arrays, CSVs, tasks.yaml), so that a changed one reruns
    its preparation and, through its manifest, every job that used it; none for a built-in.
    """
    user = USER_DATASETS.get(wildcards.dataset)
    return [str(path) for path in user.files()] if user is not None else []


def bench_tables(extension="csv"):
    """The benchmark's tables (none when the config has no `bench` section)."""
    if "bench" not in config:
        return []
    tables = ["costs"] + (["scaling"] if config["bench"]["scaling"] else [])
    return [f"{RESULTS}/bench/{table}.{extension}" for table in tables]


def bench_scaling_output():
    """The scaling table as a named output, when the config asks for the scaling series."""
    if not config["bench"]["scaling"]:
        return {}
    path = f"{RESULTS}/bench/scaling.csv"
    return {"scaling": report(path, caption="../report/bench.rst", category="Cost")}


def bench_dataset():
    """The benchmark's dataset: the `bench` section's, else the grid's first (built-in ones
    only: `auxbench bench` loads by name)."""
    name = config["bench"].get("dataset", DATASET_NAMES[0])
    if name in USER_DATASETS:
        sys.exit(
            f"auxbench: error: bench.dataset: {name!r} is a user dataset; the cost benchmark "
            "runs on a built-in one, so set bench.dataset (e.g. fashion-mnist)"
        )
    return name


def bench_flags(wildcards):
    """`auxbench bench` flags from the config's `bench` section."""
    bench = config["bench"]
    flags = [
        f"--dataset {shlex.quote(bench_dataset())}",
        f"--model {shlex.quote(config['train'].get('model', 'small'))}",
        f"--methods {shlex.quote(','.join(bench['methods']))}",
        f"--steps {bench['steps']} --repeats {bench['repeats']}",
    ]
    if bench["scaling"]:
        flags.append(f"--scaling {shlex.quote(','.join(bench['scaling']))}")
        flags.append(f"--widths {','.join(str(width) for width in bench['widths'])}")
    if config.get("data_root"):
        flags.append(f"--data-root {shlex.quote(config['data_root'])}")
    return " ".join(flags)


# The two RL tracks, each one run per environment × method × seed under results/<key>/runs:
# A2C (config key `rltrack`; workflow/rules/rltrack.smk) and DDPG + HER (config key
# `manipulation`; workflow/rules/manipulation.smk).
def track_runs(key):
    """The run directories of the RL-track section ``key`` (none without the section)."""
    section = config.get(key)
    if not section:
        return []
    return [
        f"{RESULTS}/{key}/runs/{env}/{method}/seed{seed}"
        for env in section["envs"]
        for method in section["methods"]
        for seed in section["seeds"]
    ]


RLTRACK = config.get("rltrack")
RLTRACK_RUNS = track_runs("rltrack")
MANIPULATION = config.get("manipulation")
MANIPULATION_RUNS = track_runs("manipulation")


def rltrack_settings(wildcards):
    """The `rltrack.settings` mapping as ``--set`` flags."""
    return set_flags(RLTRACK.get("settings", {}))


def manipulation_settings(wildcards):
    """The `manipulation.settings` mapping as ``--set`` flags."""
    return set_flags(MANIPULATION.get("settings", {}))


# The dense-prediction grid (config key `dense`; workflow/rules/dense.smk).
DENSE = config.get("dense")
if DENSE:
    checked(
        check_published, DENSE
    )  # a published figure of no run: an error before any job
DENSE_RUNS = (
    [point.directory(RESULTS) for point in checked(dense_points, DENSE)]
    if DENSE
    else []
)
DENSE_NAMES = dataset_names(DENSE["datasets"]) if DENSE else []


def dense_settings(wildcards):
    """The `dense.train` mapping (and the data root, and a user dataset's declaration) as
    ``--set`` flags."""
    settings = dict(DENSE.get("train", {}))
    if config.get("data_root"):
        settings["data_root"] = config["data_root"]
    if wildcards.dataset in USER_DATASETS:
        settings["user_dataset"] = USER_DATASETS[wildcards.dataset].to_entry()
    return set_flags(settings)


# Users' own datasets (`datasets:` / `dense.datasets:` entries with a name, kind and path;
# docs/user-data.md), by name. The main process reads each one completely before any job starts
# (a bad file is a one-line error naming it), and remembers under USER_CHECKS, by the files'
# sizes and modification times, which ones read cleanly, so that it reads them again only when
# something changed.
USER_CHECKS = Path(".snakemake") / "auxbench" / "user-datasets"


def user_datasets():
    """The classification grid's and the dense grid's user datasets, by name."""
    classification = checked(grid_users, config)
    dense = checked(section_users, DENSE) if DENSE else {}
    for name in sorted(set(classification) & set(dense)):
        if classification[name] != dense[name]:
            sys.exit(
                f"auxbench: error: datasets and dense.datasets both declare {name!r}; give "
                "each dataset its own name"
            )
    return {**classification, **dense}


USER_DATASETS = user_datasets()
if workflow.is_main_process:
    for user in USER_DATASETS.values():
        checked(require_files, user)
        checked(verify, user, USER_CHECKS)


# The results folders of the optional config sections. DVC versions every one of them (dvc.yaml),
# so the workflow always writes them: for a section the config lacks, a folder holds only the
# marker NOT_CONFIGURED, which says so.
NOT_CONFIGURED = "NOT-CONFIGURED.txt"
SECTION_FOLDERS = {
    "rltrack": ["rltrack", "figures-rltrack"],
    "bench": ["bench"],
    "dense": ["dense", "figures-dense"],
    "manipulation": ["manipulation", "figures-manipulation"],
}
UNCONFIGURED_FOLDERS = {
    folder: section
    for section, folders in SECTION_FOLDERS.items()
    if section not in config
    for folder in folders
}


def not_configured_markers():
    """The marker of each results folder whose config section is absent."""
    return [f"{RESULTS}/{folder}/{NOT_CONFIGURED}" for folder in UNCONFIGURED_FOLDERS]
