"""The workflow through `profiles/slurm` on a real single-node SLURM cluster on localhost.

`tests/slurm/cluster.sh start` installs Debian's SLURM and munge when they are missing (as root),
writes /etc/slurm/slurm.conf and starts munged, slurmctld and slurmd; `stop` stops them by pid.
`tests/slurm/profile` is layered over `profiles/slurm` with `--workflow-profile`: the cluster's
partition, small default resources and `squeue` for job states (no accounting database).
"""

import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from test_workflow import BIN, ENV, REPO, SYNTHETIC, copy_project, expected_training_jobs, run

CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
TEST_PROFILE = REPO / "tests" / "slurm" / "profile"
SKIP = 77  # cluster.sh: cannot run here (not root, no apt-get, a real cluster's slurm.conf)
# Training jobs ask for no GPU (the node has none), a 10-minute limit and 500 MB.
CONFIG = {
    **SYNTHETIC,
    "lams": [1.0],
    "resources": {"gpu": 0, "runtime": 10, "mem_mb": 500},
}
SNAKEMAKE = [BIN / "snakemake", "--profile", "profiles/slurm", "--workflow-profile", TEST_PROFILE]


def cluster(command):
    return subprocess.run(
        ["bash", CLUSTER, command], capture_output=True, text=True, check=False, timeout=900
    )


@pytest.fixture(scope="module")
def slurm():
    """The cluster, started for this module and stopped (by pid) after it."""
    started = cluster("start")
    if started.returncode == SKIP:
        reason = re.findall(r"SKIP: (.*)", started.stderr)
        pytest.skip(f"no SLURM cluster: {reason[-1] if reason else started.stderr.strip()}")
    try:
        assert started.returncode == 0, f"cluster.sh start failed:\n{started.stderr[-5000:]}"
        yield
    finally:
        stopped = cluster("stop")
        assert stopped.returncode == 0, f"cluster.sh stop failed:\n{stopped.stderr[-3000:]}"


def slurm_jobs(project):
    """(job id, state, comment) of the SLURM jobs run in ``project``; finished ones included."""
    listing = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T|%k|%Z"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    jobs = []
    for line in listing.splitlines():
        job, state, comment, workdir = line.split("|", 3)
        if Path(workdir).resolve() == project.resolve():
            jobs.append((int(job), state, comment.strip()))
    return sorted(jobs)


def train_jobs(project):
    return [job for job in slurm_jobs(project) if job[2].startswith("rule_train_")]


def test_the_dag_runs_through_slurm_with_the_slurm_profile(slurm, tmp_path, capsys):
    project = copy_project(tmp_path, CONFIG)
    start = time.monotonic()
    result = run([*SNAKEMAKE, "--verbose"], cwd=project, env=ENV)
    seconds = time.monotonic() - start
    log = result.stdout + result.stderr

    html = (project / "results" / "report" / "index.html").read_text()
    assert 'id="summary"' in html and "data:image/png;base64," in html
    runs = pd.read_csv(project / "results" / "tables" / "runs.csv")
    assert len(runs) == expected_training_jobs(project / "config" / "config.yaml") == 4

    # Every job of the DAG was a SLURM job, finished and still listed by squeue (MinJobAge).
    jobs = slurm_jobs(project)
    rules = Counter(re.sub(r"_wildcards_.*", "", comment) for *_, comment in jobs)
    once = ("prepare_data", "resolved_config", "aggregate", "plots", "report")
    assert rules == {f"rule_{name}": 1 for name in once} | {"rule_train": 4}
    assert {state for _, state, _ in jobs} == {"COMPLETED"}
    trained = {comment.removeprefix("rule_train_wildcards_") for *_, comment in train_jobs(project)}
    assert trained == {
        f"synthetic_{method}_fixed_{lam}_{seed}"
        for method, lam in (("single", "-"), ("human", "1"))
        for seed in (0, 1)
    }
    # Each training job's SLURM log (kept by the test profile) shows it ran inside that job.
    for job, _, comment in train_jobs(project):
        directory = comment.removeprefix("rule_train_wildcards_")
        slurm_log = project / ".snakemake" / "slurm_logs" / "rule_train" / directory / f"{job}.log"
        text = slurm_log.read_text()
        assert f"'SLURM_JOB_ID': '{job}'" in text and "1 of 1 steps (100%) done" in text

    # The sbatch calls: the test partition and resources, no GPU, and the real profile's requeue
    # and time-limit signal for training jobs.
    calls = [line for line in log.splitlines() if line.startswith("sbatch call:")]
    train_calls = [call for call in calls if "--comment rule_train_" in call]
    assert len(calls) == len(jobs) and len(train_calls) == 4
    for call in calls:
        assert "-p auxbench" in call and "--requeue" in call and "--gpus" not in call
    for call in train_calls:
        assert "-t 10" in call and "--mem 500" in call and "--signal=TERM@300" in call
    assert "command=squeue" in log  # job states came from squeue, not sacct

    with capsys.disabled():
        print(f"\nSLURM DAG: {len(jobs)} SLURM jobs (4 training) in {seconds:.0f} s")


def test_a_training_job_signalled_before_its_time_limit_checkpoints_and_its_retry_resumes(
    slurm, tmp_path
):
    """What `--signal=TERM@300` sends: SIGTERM to the job's steps (not its batch shell).

    Snakemake in the step waits for its job; `auxbench train` (exec'd by the rule's shell) ends its
    epoch, checkpoints and exits 75; the profile's retry resumes the run from that checkpoint.
    """
    epochs = 150
    config = {**CONFIG, "methods": ["single"], "seeds": [0]}
    config["train"] = {**config["train"], "epochs": epochs}
    project = copy_project(tmp_path, config)
    metrics = project / "results" / "runs" / "synthetic" / "single" / "fixed" / "lam-" / "seed0"
    train_log = project / "results" / "logs" / "train" / "synthetic" / "single" / "fixed" / "lam-"
    train_log = train_log / "seed0.log"
    with (tmp_path / "snakemake.log").open("w") as output:
        process = subprocess.Popen(
            [*SNAKEMAKE, (metrics / "metrics.json").relative_to(project)],
            cwd=project,
            env=ENV,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 300
            while not (train_log.is_file() and "epoch 3:" in train_log.read_text()):
                assert process.poll() is None, (tmp_path / "snakemake.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "training never reached epoch 3"
                time.sleep(0.2)
            [(job, state, _)] = train_jobs(project)
            assert state == "RUNNING"
            subprocess.run(["scancel", "--signal=TERM", str(job)], check=True)
            process.wait(timeout=600)
        finally:
            if process.poll() is None:
                process.kill()
    output = (tmp_path / "snakemake.log").read_text()
    assert process.returncode == 0, output[-5000:]

    (first, first_state, comment), (_, second_state, _) = train_jobs(project)
    assert (first, first_state, second_state) == (job, "FAILED", "COMPLETED")
    slurm_logs = project / ".snakemake" / "slurm_logs" / "rule_train"
    failed = (slurm_logs / comment.removeprefix("rule_train_wildcards_") / f"{job}.log").read_text()
    assert "returned non-zero exit status 75" in failed  # the preemption code, not a kill
    assert re.search(r"auxbench: stopped after epoch \d+ on request", output)
    resumed = re.search(r"resuming .* after epoch (\d+)", train_log.read_text())
    assert resumed and 3 <= int(resumed.group(1)) < epochs
    history = pd.read_csv(metrics / "history.csv")
    assert list(history["epoch"]) == list(range(1, epochs + 1))
