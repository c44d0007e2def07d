import pytest

from auxbench.experiment.grid import NO_LAMBDA, grid_points, run_config, run_directory, uses_lambda
from auxbench.foundations.errors import ConfigError
from auxbench.weighting import GradientMethod, register


@register
class GridSum(GradientMethod):
    name = "test-grid-sum"


GRID = {
    "datasets": ["synthetic"],
    "methods": ["single", "human"],
    "lams": [0.5, 1.0],
    "seeds": [0, 1],
    "train": {"epochs": 1},
}


def test_lambda_fans_out_only_where_it_means_something():
    points = grid_points(GRID)
    single = [p for p in points if p["method"] == "single"]
    assert [(p["lam"], p["seed"]) for p in single] == [(NO_LAMBDA, 0), (NO_LAMBDA, 1)]
    human = sorted((p["lam"], p["seed"]) for p in points if p["method"] == "human")
    assert human == [(0.5, 0), (0.5, 1), (1.0, 0), (1.0, 1)]


def test_every_point_is_validated_before_anything_runs():
    with pytest.raises(ConfigError, match="choose one of"):
        grid_points({**GRID, "methods": ["single", "nope"]})
    with pytest.raises(ConfigError, match="epocs"):
        grid_points({**GRID, "train": {"epocs": 1}})
    with pytest.raises(ConfigError, match="'seeds' must be a non-empty list"):
        grid_points({**GRID, "seeds": []})


def test_wildcard_strings_round_trip_to_the_run_config():
    point = {
        "dataset": "synthetic",
        "method": "human",
        "weighting": "fixed",
        "lam": "0.5",
        "seed": "1",
    }
    config = run_config(GRID, point)
    assert config.lam == 0.5 and config.seed == 1 and config.epochs == 1
    assert run_directory("r", point).as_posix() == "r/runs/synthetic/human/fixed/lam0.5/seed1"
    single = {**point, "method": "single", "lam": NO_LAMBDA, "seed": 0}
    assert run_directory("r", single).as_posix() == "r/runs/synthetic/single/fixed/lam-/seed0"
    combined = run_config(GRID, {**point, "weighting": "fixed+test-grid-sum", "lam": NO_LAMBDA})
    assert (combined.weighting, combined.gradient) == ("fixed", "test-grid-sum")


def test_weightings_fan_out_and_lambda_only_with_fixed_weights_or_the_noise_task():
    grid = {**GRID, "weightings": ["fixed", "fixed+test-grid-sum"], "seeds": [0]}
    points = {(p["method"], p["weighting"], p["lam"]) for p in grid_points(grid)}
    assert points == {
        ("single", "fixed", NO_LAMBDA),
        ("single", "fixed+test-grid-sum", NO_LAMBDA),
        ("human", "fixed", 0.5),
        ("human", "fixed", 1.0),
        ("human", "fixed+test-grid-sum", 0.5),
        ("human", "fixed+test-grid-sum", 1.0),
    }
    noisy = {**grid, "methods": ["single+noise"], "weightings": {"single+noise": ["fixed", "dwa"]}}
    points = {(p["weighting"], p["lam"]) for p in grid_points(noisy)}
    assert points == {("fixed", 0.5), ("fixed", 1.0), ("dwa", NO_LAMBDA)}
    config = run_config(
        noisy, {"dataset": "synthetic", "method": "single+noise", "lam": 1, "seed": 0}
    )
    assert config.method == "single" and config.noise_task and config.weighting == "fixed"
    assert uses_lambda("human", "dwa") is False
    with pytest.raises(ConfigError, match="not in 'methods': maxl"):
        grid_points({**GRID, "weightings": {"maxl": ["dwa"]}})
    with pytest.raises(ConfigError, match="unknown weighting 'nope'"):
        grid_points({**GRID, "weightings": ["nope"]})
    with pytest.raises(ConfigError, match="unknown gradient 'nope'"):
        grid_points({**GRID, "weightings": ["fixed+nope"]})
