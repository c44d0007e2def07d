"""The Snakemake workflow and the DVC pipeline, run for real on the synthetic dataset."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from auxbench.experiment.dense_grid import dense_points
from auxbench.methods import METHODS

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
# Local runs: a stand-in scontrol that fails at once (see it for why; the SLURM tests use ENV)
NO_CONTROLLER = REPO / "tests" / "slurm" / "no-controller"
LOCAL_ENV = {**ENV, "PATH": f"{NO_CONTROLLER}:{ENV['PATH']}"}
MARKER = "NOT-CONFIGURED.txt"  # in the results folder of a config section left out
WORKFLOW_FILES = (
    "Snakefile",
    "workflow",
    "profiles",
    "dvc.yaml",
    ".dvcignore",
    "auxbench",
    "data/user/README.md",  # the folder of users' datasets, a dependency of DVC's data stage
)
# The quick smoke grid (6 training jobs on the synthetic dataset), shared with users.
SYNTHETIC = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())


def run(command, cwd=REPO, check=True, env=LOCAL_ENV):
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def copy_project(tmp_path, config):
    """A copy of the workflow files with ``config`` as config/config.yaml."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, tmp_path / name)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def expected_training_jobs(config):
    """Counted from the config's text: λ fans out for fixed weights (with or without a gradient
    method) of a method that uses λ or has the noise task."""
    grid = yaml.safe_load(Path(config).read_text())
    weightings = grid.get("weightings", ["fixed"])
    per_dataset = 0
    for method in grid["methods"]:
        name, _, noise = method.partition("+")
        listed = weightings.get(method, ["fixed"]) if isinstance(weightings, dict) else weightings
        for weighting in listed:
            fans_out = weighting.split("+")[0] == "fixed" and (METHODS[name].uses_lambda or noise)
            per_dataset += len(grid["lams"]) if fans_out else 1
    return len(grid["datasets"]) * per_dataset * len(grid["seeds"])


def test_lint_is_clean_and_rules_are_snakefmt_formatted():
    lint = run([BIN / "snakemake", "--lint"])
    assert "Lints for" not in lint.stdout + lint.stderr
    smk = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    run([BIN / "snakefmt", "--check", *smk])


@pytest.mark.parametrize(
    "config",
    sorted(str(p.relative_to(REPO)) for p in (REPO / "config").glob("**/*.yaml")),
)
def test_dry_run_has_one_training_job_per_grid_point(config, tmp_path):
    elsewhere = [f"results={tmp_path / 'results'}", f"prepared={tmp_path / 'prepared'}"]
    dry = run([BIN / "snakemake", "-n", "-p", "--configfile", config, "--config", *elsewhere])
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.stdout, flags=re.MULTILINE))
    assert int(counts["train"]) == expected_training_jobs(REPO / config)
    grid = yaml.safe_load((REPO / config).read_text())
    dense = grid.get("dense")
    dense_datasets = set(dense["datasets"]) - set(grid["datasets"]) if dense else set()
    assert int(counts["prepare_data"]) == len(grid["datasets"]) + len(dense_datasets)
    assert int(counts.get("dense_train", 0)) == (len(dense_points(dense)) if dense else 0)
    assert int(counts.get("dense_aggregate", 0)) == ("--dense-tables" in dry.stdout) == bool(dense)
    for rule in ("aggregate", "plots", "report"):
        assert int(counts[rule]) == 1
    rltrack = grid.get("rltrack")
    expected_rltrack = (
        len(rltrack["envs"]) * len(rltrack["methods"]) * len(rltrack["seeds"]) if rltrack else 0
    )
    assert int(counts.get("rltrack_train", 0)) == expected_rltrack
    assert (
        int(counts.get("rltrack_aggregate", 0))
        == ("--rltrack-tables" in dry.stdout)
        == bool(rltrack)
    )
    manipulation = grid.get("manipulation")
    expected_manipulation = (
        len(manipulation["envs"]) * len(manipulation["methods"]) * len(manipulation["seeds"])
        if manipulation
        else 0
    )
    assert int(counts.get("manipulation_train", 0)) == expected_manipulation
    assert (
        int(counts.get("manipulation_aggregate", 0))
        == ("--manipulation-tables" in dry.stdout)
        == bool(manipulation)
    )
    assert int(counts.get("bench", 0)) == ("--bench " in dry.stdout) == ("bench" in grid)
    # the folders DVC versions of each absent section get a marker instead
    markers = (
        (0 if rltrack else 2)
        + (0 if "bench" in grid else 1)
        + (0 if dense else 2)
        + (0 if manipulation else 2)
    )
    assert int(counts.get("not_configured", 0)) == markers
    # A config given with --configfile replaces the embedded default instead of merging into it.
    settings = yaml.safe_load((REPO / config).read_text())["train"]
    assert ("train_limit" in dry.stdout) == ("train_limit" in settings)


def test_bad_config_fails_naming_the_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({**SYNTHETIC, "sedes": [0]}))
    result = run([BIN / "snakemake", "-n", "--configfile", config], check=False)
    assert result.returncode != 0 and "sedes" in result.stdout + result.stderr
    config.write_text(yaml.safe_dump({**SYNTHETIC, "methods": ["single", "nope"]}))
    result = run([BIN / "snakemake", "-n", "--configfile", config], check=False)
    assert result.returncode != 0 and "unknown method 'nope'" in result.stdout + result.stderr


def test_end_to_end_run_writes_tables_figures_and_report(tmp_path):
    bench = {"methods": ["human"], "steps": 2, "repeats": 1}
    project = copy_project(tmp_path, {**SYNTHETIC, "bench": bench})
    run([BIN / "snakemake", "--cores", "2"], cwd=project)
    results = project / "results"
    costs = pd.read_csv(results / "bench" / "costs.csv")
    assert list(costs["method"]) == ["single", "human"] and (costs["vs_minimum"] > 0).all()
    runs = pd.read_csv(results / "tables" / "runs.csv")
    assert len(runs) == expected_training_jobs(project / "config" / "config.yaml") == 6
    summary = pd.read_csv(results / "tables" / "summary.csv")
    assert set(summary["method"]) == {"single", "human"} and (summary["n_seeds"] == 2).all()
    figures = {p.name for p in (results / "figures").glob("*.png")}
    assert {"curves_synthetic.png", "accuracy_synthetic.png", "lambda_synthetic.png"} <= figures
    html = (results / "report" / "index.html").read_text()
    assert 'id="summary"' in html and "data:image/png;base64," in html
    assert "<h2>Cost</h2>" in html and "vs_minimum" in html
    assert not (results / "bench" / MARKER).exists()
    absent = ("rltrack", "figures-rltrack", "dense", "figures-dense", "manipulation")
    for folder in (*absent, "figures-manipulation"):  # no such sections
        assert [path.name for path in (results / folder).iterdir()] == [MARKER]
    assert (project / "data" / "prepared" / "synthetic.json").is_file()
    run([BIN / "snakemake", "--cores", "1", "--report", "snakemake-report.zip"], cwd=project)
    assert (project / "snakemake-report.zip").stat().st_size > 0
    # Nothing left to do: a second run schedules no job.
    again = run([BIN / "snakemake", "--cores", "2", "-n"], cwd=project)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_job_that_dies_once_is_retried_and_resumes(tmp_path):
    project = copy_project(tmp_path, {**SYNTHETIC, "methods": ["single"], "seeds": [0]})
    faulty = {**LOCAL_ENV, "AUXBENCH_FAULT_AFTER_EPOCH": "1"}
    result = subprocess.run(
        [BIN / "snakemake", "--cores", "1", "--retries", "1"],
        cwd=project,
        env=faulty,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = project / "results" / "runs" / "synthetic" / "single" / "fixed" / "lam-" / "seed0"
    assert (run_dir / ".fault-injected-after-epoch-1").exists()  # the first attempt died
    log = project / "results" / "logs" / "train" / "synthetic" / "single" / "fixed" / "lam-"
    assert "resuming" in (log / "seed0.log").read_text()  # the retry resumed, not restarted
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == [1, 2]


def dvc_outs(project):
    """The paths dvc.lock records as the benchmark stage's outputs."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {out["path"] for out in lock["stages"]["benchmark"]["outs"]}


def test_dvc_repro_skips_reruns_and_round_trips_through_a_remote(tmp_path):
    project = copy_project(tmp_path / "project", {**SYNTHETIC, "methods": ["single"]})
    run(["git", "init", "-q"], cwd=project)
    run([BIN / "dvc", "init", "-q"], cwd=project)
    run([BIN / "dvc", "repro"], cwd=project)
    results = project / "results"
    model = results / "runs" / "synthetic" / "single" / "fixed" / "lam-" / "seed0" / "model.pt"
    assert model.is_file() and (results / "metrics.json").is_file()
    # The RL track's and the benchmark's folders are versioned even without their sections.
    optional = {
        "results/rltrack",
        "results/figures-rltrack",
        "results/manipulation",
        "results/figures-manipulation",
        "results/bench",
    }
    assert optional | {"results/runs", "results/tables", "results/report"} <= dvc_outs(project)
    for folder in optional:
        assert [path.name for path in (project / folder).iterdir()] == [MARKER]

    second = run([BIN / "dvc", "repro"], cwd=project)
    assert "didn't change, skipping" in second.stdout
    assert "Running stage" not in second.stdout

    config = yaml.safe_load((project / "config" / "config.yaml").read_text())
    (project / "config" / "config.yaml").write_text(yaml.safe_dump({**config, "weightings": {}}))
    status = run([BIN / "dvc", "status", "benchmark"], cwd=project)
    assert "weightings" in status.stdout  # any key of the config is a parameter of the stage

    config["seeds"] = [0, 1, 2]
    config["bench"] = {"methods": ["human"], "steps": 2, "repeats": 1}
    settings = {"n_envs": 2, "curve_points": 2, "tasks": ["forward"]}
    config["rltrack"] = {
        "envs": ["catch"],
        "methods": ["none"],
        "seeds": [0],
        "steps": 40,
        "settings": settings,
    }
    tiny = {"size": 16, "batch_size": 8, "learning_starts": 24, "buffer_size": 100}
    config["manipulation"] = {
        "envs": ["reach"],
        "methods": ["olaux5"],
        "seeds": [0],
        "steps": 48,
        "settings": {**tiny, "curve_points": 2, "eval_episodes": 2, "latent": 8},
    }
    (project / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    third = run([BIN / "dvc", "repro"], cwd=project)
    assert "Running stage 'benchmark'" in third.stdout
    assert len(pd.read_csv(results / "tables" / "runs.csv")) == 3
    rltrack_run = results / "rltrack" / "runs" / "catch" / "none" / "seed0" / "metrics.json"
    assert rltrack_run.is_file() and (results / "tables" / "rltrack_summary.csv").is_file()
    assert (results / "figures-rltrack" / "rltrack-return_catch.png").is_file()
    manipulation_run = results / "manipulation" / "runs" / "reach" / "olaux5" / "seed0"
    assert json.loads((manipulation_run / "metrics.json").read_text())["env_steps"] == 48
    assert (results / "tables" / "manipulation_summary.csv").is_file()
    assert (results / "figures-manipulation" / "manipulation-success_reach.png").is_file()
    assert 'id="manipulation"' in (results / "report" / "index.html").read_text()
    assert (results / "bench" / "costs.csv").is_file()
    assert not any((project / folder / MARKER).exists() for folder in optional)

    remote = tmp_path / "remote"
    run([BIN / "dvc", "remote", "add", "-d", "local", remote], cwd=project)
    run([BIN / "dvc", "push"], cwd=project)
    saved = model.read_bytes(), rltrack_run.read_bytes()
    for folder in ("runs", "rltrack", "bench"):
        shutil.rmtree(results / folder)
    shutil.rmtree(project / "data" / "prepared")
    shutil.rmtree(project / ".dvc" / "cache")
    run([BIN / "dvc", "pull"], cwd=project)
    assert (model.read_bytes(), rltrack_run.read_bytes()) == saved
    assert (results / "bench" / "costs.csv").is_file()
    assert (project / "data" / "prepared" / "synthetic.json").is_file()
