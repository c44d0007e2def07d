"""A user's own dataset through the workflow: the docs' example config run as it is, from the
example image folder to the report; a changed file reruns what used it (Snakemake and DVC); a bad
file stops the workflow with a one-line error before any job."""

import json
import shutil
from pathlib import Path

import pandas as pd
import yaml
from PIL import Image
from test_workflow import BIN, REPO, copy_project, run

from auxbench.data.user_example import write_example_folder

EXAMPLE = REPO / "docs" / "examples" / "your-own-data.yaml"


def example_project(tmp_path: Path) -> Path:
    """A copy of the workflow with the docs' example config and the example folder in place."""
    project = copy_project(tmp_path, yaml.safe_load(EXAMPLE.read_text()))
    shutil.copy(EXAMPLE, project / "config" / "your-own-data.yaml")
    run([BIN / "auxbench", "datasets", "--write-example", "data/user/shapes"], cwd=project)
    return project


def scheduled(project: Path, *args: str) -> dict[str, int]:
    """The jobs a dry run would schedule, per rule."""
    dry = run([BIN / "snakemake", "-n", *args], cwd=project)
    counts = {}
    for line in dry.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            counts[parts[0]] = int(parts[1])
    return counts


def test_the_docs_example_runs_to_the_report_and_reruns_on_a_changed_file(tmp_path):
    project = example_project(tmp_path)
    assert scheduled(project)["train"] == 8  # single, human × {fixed, gcs}, maxl; 2 seeds
    run([BIN / "snakemake", "--cores", "2"], cwd=project)
    results = project / "results"
    runs = pd.read_csv(results / "tables" / "runs.csv")
    assert set(runs["dataset"]) == {"shapes"} and len(runs) == 8
    assert set(zip(runs["method"], runs["weighting"], strict=True)) == {
        ("single", "fixed"),
        ("human", "fixed"),
        ("human", "gcs"),
        ("maxl", "fixed"),
    }
    summary = pd.read_csv(results / "tables" / "summary.csv")
    assert (summary["n_seeds"] == 2).all()
    html = (results / "report" / "index.html").read_text()
    assert "shapes" in html and "data:image/png;base64," in html
    manifest = json.loads((project / "data" / "prepared" / "shapes.json").read_text())
    assert manifest["user"]["kind"] == "folder" and manifest["n_files"] == 441
    assert manifest["num_classes"] == 4 and manifest["num_aux_classes"] == 8
    assert manifest["hierarchy_psi"] == 2
    maxl = results / "runs" / "shapes" / "maxl" / "fixed" / "lam1" / "seed0" / "metrics.json"
    metrics = json.loads(maxl.read_text())
    assert metrics["method_settings"]["psi"] == 2  # ψ from the hierarchy
    assert metrics["config"]["user_dataset"]["path"] == "data/user/shapes"
    assert "Nothing to be done" in run([BIN / "snakemake", "-n"], cwd=project).stdout

    # DVC: its data stage depends on data/user (dvc.yaml); repro records the finished state
    # (the data stage only: the benchmark stage depends on data/prepared, which it rewrites)
    run(["git", "init", "-q"], cwd=project)
    run([BIN / "dvc", "init", "-q"], cwd=project)
    run([BIN / "dvc", "repro", "data"], cwd=project)
    assert "up to date" in run([BIN / "dvc", "status", "data"], cwd=project).stdout

    # One image changes: its preparation and every run on the dataset are scheduled again
    image = project / "data" / "user" / "shapes" / "train" / "disc-warm" / "000.png"
    Image.open(image).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(image)
    counts = scheduled(project)
    assert counts["prepare_data"] == 1 and counts["train"] == 8
    status = run([BIN / "dvc", "status", "data"], cwd=project).stdout
    assert "changed deps" in status and "modified:" in status and "data/user" in status


def test_a_bad_user_dataset_stops_the_workflow_with_one_line_before_any_job(tmp_path):
    project = copy_project(tmp_path, yaml.safe_load(EXAMPLE.read_text()))
    write_example_folder(project / "data" / "user" / "shapes", train_per_class=4, test_per_class=4)
    image = project / "data" / "user" / "shapes" / "test" / "bar-cool" / "003.png"
    image.write_bytes(b"not a png")
    result = run([BIN / "snakemake", "--cores", "1"], cwd=project, check=False)  # a real run
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert "auxbench: error: data/user/shapes/test/bar-cool/003.png: cannot read image" in output
    assert not (project / "results").exists() and not (project / "data" / "prepared").exists()
    image.unlink()
    hierarchy = project / "data" / "user" / "shapes" / "hierarchy.csv"
    hierarchy.write_text(hierarchy.read_text() + "ghost,disc\n")
    result = run([BIN / "snakemake", "-n"], cwd=project, check=False)
    assert result.returncode != 0
    assert "hierarchy.csv:10: class 'ghost' is not among the dataset's classes" in result.stderr
    for change, message in (
        ({"size": 0}, "config: datasets[0] (shapes).size: expected a positive number of pixels"),
        ({"path": "data/user/none"}, "data/user/none: dataset folder not found (dataset 'shapes'"),
        ({"primary": "middle"}, "config: datasets[0] (shapes).primary: expected fine or coarse"),
    ):
        config = yaml.safe_load(EXAMPLE.read_text())
        config["datasets"][0].update(change)
        (project / "config" / "config.yaml").write_text(yaml.safe_dump(config))
        result = run([BIN / "snakemake", "-n"], cwd=project, check=False)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert f"auxbench: error: {message}" in result.stderr


def test_a_dense_dataset_of_ones_own_fans_out_over_its_tasks(tmp_path):
    from auxbench.data.scenes import SCENE_CLASSES, write_scenes

    rooms = {"name": "rooms", "kind": "dense", "path": "data/user/rooms"}
    dense = {
        "datasets": [rooms],
        "architectures": ["split"],
        "settings": ["multi-task", "auxiliary-heat"],
        "weightings": ["fixed", "uncertainty"],
        "seeds": [0],
    }
    grid = {"datasets": ["synthetic"], "methods": ["single"], "lams": [1.0], "seeds": [0]}
    project = copy_project(tmp_path, {**grid, "dense": dense})
    folder = project / rooms["path"]
    write_scenes(folder, 4, 2, 8, 8, seed=0)
    (folder / "tasks.yaml").write_text(
        f"tasks: {{label: {{kind: segmentation, classes: {len(SCENE_CLASSES)}}}, "
        "depth: {kind: depth}}\n"
    )
    # auxiliary-heat names no task of tasks.yaml: one line, before any job
    result = run([BIN / "snakemake", "-n"], cwd=project, check=False)
    assert "auxbench: error: dense setting 'auxiliary-heat' is unknown" in result.stderr
    dense["settings"] = ["multi-task", "auxiliary-depth"]
    (project / "config" / "config.yaml").write_text(yaml.safe_dump({**grid, "dense": dense}))
    dry = run([BIN / "snakemake", "-n", "-p"], cwd=project).stdout
    counts = scheduled(project)
    # single-label, single-depth, then 2 settings × 2 weightings; 1 seed
    assert counts["dense_train"] == 6 and counts["prepare_data"] == 2
    assert "--dataset rooms --architecture split --setting single-label" in dry
    assert dry.count("user_dataset=") == 6 and "--user-dataset" in dry
