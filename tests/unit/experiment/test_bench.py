import json
import math
import re

import pandas as pd
import pytest
import torch

from auxbench import weighting
from auxbench.cli import main
from auxbench.experiment.bench import (
    format_costs,
    format_scaling,
    method_costs,
    method_variant,
    peak_memory_mib,
    scaling_exponent,
    trainer_throughput,
    write_rows,
)
from auxbench.foundations.passes import Passes


def test_bench_reports_both_rates_and_their_ratio():
    report = trainer_throughput("synthetic", "small", steps=2, repeats=1, device="cpu")
    bare = float(re.search(r"bare loop : +([\d.]+)", report).group(1))
    trainer = float(re.search(r"trainer   : +([\d.]+)", report).group(1))
    ratio = float(re.search(r"ratio trainer/bare = ([\d.]+)", report).group(1))
    assert bare > 0 and trainer > 0
    assert abs(ratio - trainer / bare) < 0.01


def test_passes_add_scale_and_price():
    step = Passes(forward=1, backward=1)
    total = 2 * step + Passes(inference=3) + Passes(task_backward=1) * 0.5
    assert total == Passes(forward=2, backward=2, task_backward=0.5, inference=3)
    times = {"forward": 1.0, "backward": 2.0, "task_backward": 4.0, "inference": 0.5}
    assert total.seconds(times) == 2 + 4 + 2 + 1.5
    assert total.describe() == "2 forward + 2 backward + 0.5 task_backward + 3 inference"


def test_method_costs_compare_methods_variants_and_their_minimum(tmp_path):
    methods = ["maxl", "rl-aux", "rl-aux/mode=per-example", "human+noise"]
    methods += ["human+noise/weighting=autolambda"]
    rows = method_costs("synthetic", "small", methods, steps=2, repeats=1, device="cpu")
    by_method = {row["method"]: row for row in rows}
    assert list(by_method) == ["single", *methods]
    assert by_method["single"]["vs_single"] == 1.0
    for row in rows:
        assert row["epoch_s"] > 0 and row["minimum_step_s"] > 0 and row["parameters"] > 0
        assert row["step_s"] == pytest.approx(row["epoch_s"] / 2)
        assert row["vs_minimum"] == pytest.approx(row["step_s"] / row["minimum_step_s"])
        assert row["peak_memory_mib"] >= 0
    assert by_method["single"]["minimum_passes"] == "1 forward + 1 backward"
    assert by_method["maxl"]["minimum_passes"] == "5 forward + 5 backward + 1 inference"
    # 2 steps, PPO's 4 passes and the guard's 4; 2 labelling inferences, B_R / B_T for the reward
    assert by_method["rl-aux"]["minimum_passes"] == "10 forward + 10 backward + 4.56 inference"
    assert by_method["human+noise/weighting=autolambda"]["minimum_passes"] == (
        "4 forward + 3 backward"
    )

    report = format_costs(rows)
    assert re.search(r"^rl-aux/mode=per-example vs rl-aux: [\d.]+x$", report, re.MULTILINE)
    assert re.search(
        r"^human\+noise/weighting=autolambda vs human\+noise: [\d.]+x$", report, re.MULTILINE
    )
    write_rows(tmp_path / "costs", rows)
    assert json.loads((tmp_path / "costs.json").read_text()) == rows
    assert list(pd.read_csv(tmp_path / "costs.csv")["method"]) == ["single", *methods]


@pytest.mark.parametrize(
    "name, gradient, expected",
    [
        ("fixed", None, Passes(forward=1, backward=1)),
        ("fixed", "pcgrad", Passes(forward=1, task_backward=3)),
        ("gcs", None, Passes(forward=1, task_backward=3)),
        ("olaux", None, Passes(forward=1, task_backward=3)),
        ("autolambda", None, Passes(forward=4, backward=3)),
        ("autolambda", "cagrad", Passes(forward=4, backward=2, task_backward=3)),
    ],
)
def test_weightings_state_their_minimum(name, gradient, expected):
    assert weighting.create(name, 3, gradient=gradient).minimum_passes() == expected


def test_peak_memory_sees_a_temporary_allocation():
    def allocate() -> None:
        block = torch.ones(16 * 2**20)  # 64 MiB, freed on return
        assert float(block[-1]) == 1.0

    assert peak_memory_mib(torch.device("cpu"), allocate) >= 60
    assert peak_memory_mib(torch.device("cpu"), lambda: None) < 8


def test_scaling_exponent_recovers_a_power_law():
    parameters = [1e5, 4e5, 1.6e6]
    assert scaling_exponent(parameters, [2e-3 * (p / 1e5) ** 1.5 for p in parameters]) == (
        pytest.approx(1.5)
    )
    assert math.isnan(scaling_exponent([1e5], [1.0]))


def test_scaling_measures_every_width(tmp_path, capsys):
    code = main(
        [
            "bench",
            "--dataset=synthetic",
            "--device=cpu",
            "--steps=1",
            "--repeats=1",
            "--scaling=single",
            "--widths=1,2",
            f"--out={tmp_path}",
        ]
    )
    assert code == 0
    rows = json.loads((tmp_path / "scaling.json").read_text())
    assert [(row["method"], row["width"]) for row in rows] == [("single", 1.0), ("single", 2.0)]
    assert rows[1]["parameters"] > 2 * rows[0]["parameters"]
    assert re.search(r"^single +2 .* [-\d.]+$", format_scaling(rows), re.MULTILINE)
    assert "k single" in capsys.readouterr().out


@pytest.mark.parametrize("flag", ["--widths=1,zero", "--steps=0"])
def test_bad_bench_settings_are_refused(flag, capsys):
    assert main(["bench", "--dataset=synthetic", "--scaling=single", flag]) == 2
    assert "bench:" in capsys.readouterr().err


def test_a_variant_reads_its_values_as_the_config_does():
    method, values = method_variant("rl-aux/ppo_lr=1e-3/lam=0.5/mode=per-example")
    assert method == "rl-aux"
    assert values["lam"] == 0.5 and values["method_params"]["mode"] == "per-example"
    assert values["method_params"]["ppo_lr"] == 1e-3  # a number, not the string '1e-3'
