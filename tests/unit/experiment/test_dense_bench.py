"""The dense rows of the cost benchmark: every architecture × weighting measured against Equal
on the same architecture and against its minimum, through the CLI on the embedded scenes."""

import csv

import pytest
import torch

from auxbench.cli import main


def test_dense_costs_rows_through_the_command_line(tmp_path, capsys, monkeypatch, one_thread):
    # a small embedded dataset: the real generator and reader, 40 + 8 images
    monkeypatch.setattr("auxbench.data.dense_sets.SCENES_TRAIN", 40)
    monkeypatch.setattr("auxbench.data.dense_sets.SCENES_TEST", 8)
    code = main(
        [
            "bench",
            "--dense",
            "scenes",
            "--architectures",
            "split,mtan",
            "--methods",
            "autolambda,fixed+pcgrad",
            "--width",
            "0.25",
            "--batch-size",
            "4",
            "--steps",
            "2",
            "--repeats",
            "1",
            "--device",
            "cpu",
            "--data-root",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "bench"),
        ]
    )
    assert code == 0
    with open(tmp_path / "bench" / "dense_costs.csv") as handle:
        rows = list(csv.DictReader(handle))
    keys = [(row["architecture"], row["weighting"]) for row in rows]
    assert keys == [
        (arch, w) for arch in ("split", "mtan") for w in ("fixed", "autolambda", "fixed+pcgrad")
    ]
    for row in rows:
        assert float(row["step_s"]) > 0 and float(row["vs_minimum"]) > 0
        if row["weighting"] == "fixed":
            assert float(row["vs_fixed"]) == 1.0
    # PCGrad's minimum is one task backward per task (semantic, depth, normal, noise)
    pcgrad = next(row for row in rows if row["weighting"] == "fixed+pcgrad")
    assert "4 task" in pcgrad["minimum_passes"]
    mtan = next(row for row in rows if row["architecture"] == "mtan")
    split = next(row for row in rows if row["architecture"] == "split")
    assert int(mtan["parameters"]) > int(split["parameters"])
    assert "vs fixed" in capsys.readouterr().out


def test_nyuv2_shaped_rows_project_the_paper_protocol(capsys, one_thread):
    code = main(
        [
            "bench",
            "--dense",
            "nyuv2-shaped",
            "--architectures",
            "split",
            "--methods",
            "fixed",
            "--width",
            "0.125",
            "--batch-size",
            "2",
            "--steps",
            "1",
            "--repeats",
            "1",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("split"))
    # 200 epochs of ceil(716 / 2) = 358 steps at the measured step time
    step_ms, hours = float(line.split()[2]), float(line.split()[-6])
    assert hours == pytest.approx(step_ms / 1000 * 200 * 358 / 3600, rel=0.06)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_dense_bench_without_cuda_names_the_cpu_command(capsys):
    assert main(["bench", "--dense", "scenes", "--device", "cuda"]) == 2
    assert "--device cpu" in capsys.readouterr().err
