import pandas as pd
import pytest

from auxbench.config import ConfigError
from auxbench.report.compare import grid_runs, run_grid
from auxbench.report.stats import confidence_halfwidth, summarise

GRID = {
    "datasets": ["synthetic"],
    "methods": ["single", "human"],
    "lams": [0.5, 1.0],
    "seeds": [0, 1],
    "train": {"epochs": 1, "device": "cpu", "batch_size": 50},
}


def test_lambda_fans_out_only_where_it_means_something():
    runs = grid_runs(GRID, "test")
    assert sum(r["method"] == "single" for r in runs) == 2
    assert sorted((r["lam"], r["seed"]) for r in runs if r["method"] == "human") == [
        (0.5, 0),
        (0.5, 1),
        (1.0, 0),
        (1.0, 1),
    ]


def test_grid_is_checked_before_training():
    with pytest.raises(ConfigError, match="unknown key"):
        grid_runs({**GRID, "sedes": [0]}, "test")
    with pytest.raises(ConfigError, match="choose one of"):
        grid_runs({**GRID, "methods": ["single", "nope"]}, "test")


def test_run_grid_writes_tables_and_skips_finished_runs(tmp_path):
    summary = run_grid(GRID, tmp_path)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert len(runs) == 6 and set(runs["method"]) == {"single", "human"}
    assert "test_acc_at_best_val" in summary and "ci95" in summary
    metrics = sorted(tmp_path.glob("runs/**/metrics.json"))
    before = [p.stat().st_mtime_ns for p in metrics]
    run_grid(GRID, tmp_path)
    assert [p.stat().st_mtime_ns for p in metrics] == before


def test_confidence_interval_matches_t_table():
    values = pd.Series([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.302653; std = 1; n = 3
    assert confidence_halfwidth(values) == pytest.approx(4.302653 / 3**0.5, rel=1e-5)
    assert pd.isna(confidence_halfwidth(pd.Series([1.0])))
    table = summarise(pd.DataFrame({"m": ["a"] * 3, "v": [1.0, 2.0, 3.0]}), ["m"], "v")
    assert table.loc[0, "mean"] == 2.0 and table.loc[0, "n"] == 3
