"""Published against measured (results/tables/published.csv) and the checks of a config's
`published` list, each column worked out by hand."""

import math
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml
from test_aggregate import write_grid, write_run

from auxbench.cli import main
from auxbench.experiment import schema
from auxbench.experiment.grid import grid_points, published_entries
from auxbench.foundations.errors import ConfigError
from auxbench.report.aggregate import aggregate

REPO = Path(__file__).resolve().parents[3]
T_975 = {1: 12.706204736174696, 2: 4.302652729911275}  # Student-t 97.5% quantiles (t table)
GRID = {
    "datasets": ["synthetic"],
    "methods": ["single", "human", "random-aux"],
    "weightings": {"single": ["fixed", "dwa"]},
    "lams": [0.5, 1.0],
    "seeds": [0, 1, 2],
}


def entry(**values):
    """A published entry: RL-AUX-like defaults, ``values`` on top."""
    return {
        "source": "Paper Fig. 1",
        "dataset": "synthetic",
        "method": "single",
        "protocol": "best_val",
        "metric": "test_acc",
        "value": 81.0,
        **values,
    }


def write_config(path, entries):
    path.write_text(yaml.safe_dump({**GRID, "published": entries}, allow_unicode=True))
    return path


def test_published_against_measured_column_by_column(tmp_path):
    # single 0.80 / 0.82 / 0.81, human λ=1 0.85 / 0.86 / 0.84 (last15 0.01 lower); random-aux λ=1
    # one seed, 0.79
    files = write_grid(tmp_path / "runs") + [
        write_run(tmp_path / "runs", "random-aux", 1.0, 0, 0.79)
    ]
    entries = [
        entry(source="Paper Fig. 4"),  # single, best_val: 81 %
        entry(method="human", lam=1.0, protocol="last15", value=90.0),
        entry(method="human", protocol="best_test", value=85.5),  # λ: the default, 1
        entry(method="random-aux", lam=1.0, value=79.0),  # one seed: no interval
    ]
    config = write_config(tmp_path / "paper.yaml", entries)
    aggregate(files, tmp_path / "tables", tmp_path / "metrics.json", published=config)
    table = pd.read_csv(tmp_path / "tables" / "published.csv")
    assert list(table.columns) == [
        "source", "dataset", "method", "weighting", "lam", "protocol", "metric", "published",
        "measured_mean", "measured_ci95", "n_seeds", "difference", "published_in_ci",
    ]  # fmt: skip
    # three seeds with sd 1 percentage point: the half-width is t(0.975, 2)·1/√3 = 2.4841
    ci_three = T_975[2] * 1.0 / math.sqrt(3)
    single, human_last15, human_best, random = (row for _, row in table.iterrows())
    assert single["source"] == "Paper Fig. 4" and single["weighting"] == "fixed"
    assert pd.isna(single["lam"]) and single["protocol"] == "best_val"
    assert single["metric"] == "test_acc" and single["published"] == 81.0
    assert single["measured_mean"] == pytest.approx(81.0)  # (80 + 82 + 81) / 3
    assert single["measured_ci95"] == pytest.approx(ci_three)
    assert single["n_seeds"] == 3
    assert single["difference"] == pytest.approx(0.0, abs=1e-9)
    assert single["published_in_ci"]  # |0| ≤ 2.48
    # human last15: 84 / 85 / 83, mean 84, sd 1; 90 is 6 above it
    assert human_last15["lam"] == 1.0 and human_last15["measured_mean"] == pytest.approx(84.0)
    assert human_last15["measured_ci95"] == pytest.approx(ci_three)
    assert human_last15["difference"] == pytest.approx(84.0 - 90.0)
    assert not human_last15["published_in_ci"]  # |−6| > 2.48
    # human best test epoch: the history's 0.85 / 0.86 / 0.84 (above the first epoch's 0.5)
    assert human_best["lam"] == 1.0 and human_best["measured_mean"] == pytest.approx(85.0)
    assert human_best["difference"] == pytest.approx(-0.5) and human_best["published_in_ci"]
    # one seed: the mean is the value, no interval, so not "in" it though the difference is 0
    assert random["n_seeds"] == 1 and random["measured_mean"] == pytest.approx(79.0)
    assert pd.isna(random["measured_ci95"])
    assert random["difference"] == pytest.approx(0.0, abs=1e-9)
    assert not random["published_in_ci"]


def test_delta_mtl_is_compared_in_percent(tmp_path):
    equal = [{"a": 0.50, "b": 0.80}, {"a": 0.54, "b": 0.76}]  # seed means 0.52 and 0.78
    weighted = [{"a": 0.572, "b": 0.78}, {"a": 0.52, "b": 0.936}]  # Δ_MTL +5% and +10%
    files = [
        write_run(tmp_path / "runs", "single", None, seed, 0.65, per_domain=domains)
        for seed, domains in enumerate(equal)
    ] + [
        write_run(tmp_path / "runs", "single", None, s, 0.7, per_domain=d, weighting="dwa")
        for s, d in enumerate(weighted)
    ]
    published = entry(weighting="dwa", metric="delta_mtl", value=40.0)
    config = write_config(tmp_path / "paper.yaml", [published])
    aggregate(files, tmp_path / "tables", tmp_path / "metrics.json", published=config)
    row = pd.read_csv(tmp_path / "tables" / "published.csv").iloc[0]
    # mean 7.5; half-width t(0.975, 1)·sd/√2 with sd = 5/√2: 12.706·2.5 = 31.77; 40 is outside
    assert row["measured_mean"] == pytest.approx(7.5) and row["n_seeds"] == 2
    assert row["measured_ci95"] == pytest.approx(T_975[1] * 2.5)
    assert row["difference"] == pytest.approx(-32.5) and not row["published_in_ci"]


def test_the_cli_passes_the_published_config(tmp_path, capsys):
    files = [str(path) for path in write_grid(tmp_path / "runs")]
    config = write_config(tmp_path / "paper.yaml", [entry()])
    tables = tmp_path / "tables"
    args = ["aggregate", *files, "--tables", str(tables), "--metrics-out", str(tmp_path / "m")]
    assert main(args) == 0 and not (tables / "published.csv").exists()
    assert main([*args, "--published", str(config)]) == 0
    assert pd.read_csv(tables / "published.csv")["measured_mean"].iloc[0] == pytest.approx(81.0)
    bad = write_config(tmp_path / "bad.yaml", [entry(protocol="best")])
    assert main([*args, "--published", str(bad)]) == 2
    assert "published[0]: protocol 'best' is not one of" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"protocol": "last10"}, r"published\[0\]: protocol 'last10' is not one of best_val, "),
        ({"metric": "f1"}, r"published\[0\]: metric 'f1' is not one of test_acc, delta_mtl"),
        ({"value": None}, r"published\[0\] lacks 'value'"),
        ({"value": "76%"}, r"published\[0\]: value '76%' must be a number"),
        ({"value": 0.76, "metric": "test_acc"}, None),  # a fraction is still 0-100: accepted
        ({"value": 176.0}, r"must be an accuracy in percent"),
        ({"method": "maxl"}, r"method 'maxl' is not one of single, human, random-aux"),
        ({"dataset": "cifar10"}, r"dataset 'cifar10' is not one of synthetic"),
        ({"method": "human", "weighting": "dwa"}, r"weighting 'dwa' is not one of fixed"),
        ({"method": "human", "lam": 4.0}, r"lam 4 is not one of the config's lams"),
        ({"lam": 1.0}, r"λ means nothing for single with fixed weights; drop 'lam'"),
        ({"colour": "red"}, r"published\[0\] has an unknown key 'colour'"),
        ({"protocol": "last15", "metric": "delta_mtl"}, r"set protocol: best_val"),
    ],
)
def test_a_bad_entry_is_refused_before_any_job_in_one_line(change, message):
    grid = {**GRID, "published": [{**entry(), **change}]}
    if message is None:
        assert published_entries(grid)[0]["value"] == 0.76
        return
    with pytest.raises(ConfigError, match=message) as error:
        grid_points(grid, "paper.yaml")  # what the workflow calls before it plans any job
    assert "\n" not in str(error.value) and str(error.value).startswith("paper.yaml: published[0]")


def test_entries_are_completed_with_their_defaults():
    (single, human) = published_entries(
        {**GRID, "published": [entry(), entry(method="human", value=80)]}
    )
    assert (single["weighting"], single["lam"]) == ("fixed", None)
    assert (human["weighting"], human["lam"], human["value"]) == ("fixed", 1.0, 80.0)


def test_the_schema_section_is_generated_and_refuses_a_bad_entry():
    committed = yaml.safe_load((REPO / schema.SCHEMA_PATH).read_text())
    assert committed["properties"]["published"] == schema.published_section(), (
        f"regenerate the schema: {schema.REGENERATE}"
    )
    config = {**GRID, "published": [entry()]}
    jsonschema.validate(config, committed)
    for bad in ({"protocol": "best"}, {"metric": "acc"}, {"value": None}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**GRID, "published": [{**entry(), **bad}]}, committed)


@pytest.mark.parametrize("path", sorted((REPO / "config" / "paper").glob("*.yaml")), ids=str)
def test_every_paper_config_has_a_valid_published_list(path):
    config = yaml.safe_load(path.read_text())
    jsonschema.validate(config, yaml.safe_load((REPO / schema.SCHEMA_PATH).read_text()))
    assert isinstance(config.get("published"), list)
    for item in published_entries(config, str(path)):
        assert item["protocol"] in ("last15", "best_test")  # the protocols the papers used
