import pytest

from auxbench.config import ConfigError
from auxbench.grid import NO_LAMBDA, grid_points, run_config, run_directory

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
    point = {"dataset": "synthetic", "method": "human", "lam": "0.5", "seed": "1"}
    config = run_config(GRID, point)
    assert config.lam == 0.5 and config.seed == 1 and config.epochs == 1
    assert run_directory("r", point).as_posix() == "r/runs/synthetic/human/lam0.5/seed1"
    single = {"dataset": "synthetic", "method": "single", "lam": NO_LAMBDA, "seed": 0}
    assert run_directory("r", single).as_posix() == "r/runs/synthetic/single/lam-/seed0"
