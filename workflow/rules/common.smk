import json
import shlex

from auxbench.grid import NO_LAMBDA, grid_points, run_directory

RESULTS = config["results"]
PREPARED = config["prepared"]
RUN_DIRECTORIES = [run_directory(RESULTS, point) for point in grid_points(config)]


def train_settings(wildcards):
    """The config's shared training settings as ``--set KEY=VALUE`` flags (values as JSON)."""
    settings = dict(config["train"])
    if config.get("data_root"):
        settings["data_root"] = config["data_root"]
    return " ".join(
        f"--set {shlex.quote(f'{key}={json.dumps(value)}')}"
        for key, value in settings.items()
    )


def lambda_flag(wildcards):
    """``--lam λ`` for methods that use λ; nothing for the others."""
    return "" if wildcards.lam == NO_LAMBDA else f"--lam {wildcards.lam}"


def data_flags(wildcards):
    """The data root and the expected checksum of a dataset, when the config gives them."""
    flags = []
    if config.get("data_root"):
        flags.append(f"--root {shlex.quote(config['data_root'])}")
    if wildcards.dataset in config["checksums"]:
        flags.append(f"--expect {config['checksums'][wildcards.dataset]}")
    return " ".join(flags)
