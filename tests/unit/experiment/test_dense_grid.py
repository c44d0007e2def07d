"""The dense grid: settings' task choices, the single-task baselines per architecture, the
weightings mapping, and clear errors for unknown names."""

from pathlib import Path

import pytest

from auxbench.experiment.dense_grid import dense_points, setting_name, setting_values
from auxbench.foundations.errors import ConfigError

TASKS = ("semantic", "depth", "normal")
ROOT = Path(__file__).resolve().parents[3]


def test_settings_map_to_tasks_primary_tasks_and_noise():
    assert setting_values("single-depth", TASKS) == {
        "tasks": ["depth"],
        "primary_tasks": None,
        "noise_task": False,
    }
    assert setting_values("multi-task", TASKS)["noise_task"] is False
    assert setting_values("auxiliary", TASKS) == {
        "tasks": None,
        "primary_tasks": None,
        "noise_task": True,
    }
    assert setting_values("auxiliary-normal", TASKS)["primary_tasks"] == ["normal"]
    with pytest.raises(ConfigError, match="'auxiliary-flow' is unknown; choose one of"):
        setting_values("auxiliary-flow", TASKS)


def test_points_add_single_task_baselines_per_architecture_and_map_weightings():
    section = {
        "datasets": ["scenes"],
        "architectures": ["split", "mtan"],
        "settings": ["multi-task", "auxiliary"],
        "weightings": {"multi-task": ["fixed", "dwa"], "auxiliary": ["autolambda"]},
        "seeds": [0, 1],
    }
    points = dense_points(section)
    singles = [p for p in points if p.setting.startswith("single-")]
    assert len(singles) == 2 * 3 * 2  # architectures × tasks × seeds
    assert {p.weighting for p in singles} == {"fixed"}
    assert len(points) == len(singles) + 2 * (2 + 1) * 2
    assert points[0].directory("results").as_posix() == (
        "results/dense/runs/scenes/split/single-semantic/fixed/seed0"
    )
    with pytest.raises(ConfigError, match="dense.weightings: aux is not one of"):
        dense_points({**section, "weightings": {"aux": ["fixed"]}})
    with pytest.raises(ConfigError, match="unknown dense dataset 'nyu'"):
        dense_points({**section, "datasets": ["nyu"]})


def test_setting_name_reads_a_runs_config_back():
    roles = {"semantic": {"primary": True}, "depth": {"primary": True}, "normal": {"primary": True}}
    assert setting_name({"tasks": None, "noise_task": False}, roles) == "multi-task"
    assert setting_name({"tasks": None, "noise_task": True}, {**roles, "noise": {}}) == "auxiliary"
    one = {name: {"primary": name == "depth"} for name in TASKS} | {"noise": {"primary": False}}
    assert setting_name({"tasks": None, "noise_task": True}, one) == "auxiliary-depth"
    assert setting_name({"tasks": ["depth"]}, {"depth": {"primary": True}}) == "single-depth"


def test_the_paper_configs_published_figures_name_runs_of_their_grids():
    from auxbench.config import read_yaml
    from auxbench.experiment.dense_grid import check_published

    for name in ("auto-lambda-nyuv2", "auto-lambda-cityscapes"):
        section = read_yaml(ROOT / "config" / "paper" / f"{name}.yaml")["dense"]
        check_published(section)
        assert len(section["published"]) >= 14
    broken = {**section, "published": [{**section["published"][0], "weighting": "gradnorm"}]}
    with pytest.raises(ConfigError, match="entry 1 .* is not a run of the dense grid"):
        check_published(broken)
