"""The GPU benchmark (`auxbench bench --variants`, `make bench-gpu`), run on the CPU at tiny sizes.

The compile variant runs with torch.compile's eager backend (tracing only, no code generation:
inductor on two CPU cores takes minutes for VGG16) and for `single` only; the other methods'
compile rows are checked to say that they were skipped and why.
"""

import itertools
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from auxbench.cli import main
from auxbench.experiment import gpubench

PAPER_DIR = Path(__file__).resolve().parents[3] / "config" / "paper"
VARIANTS = ["fp32", "bf16", "channels_last", "compile"]
# By hand: CIFAR-100-20 keeps 2,500 - 250 images of each of its 20 classes = 45,000, 450 batches
# of 100, 200 epochs; cifar100-mtl keeps 500 - 50 of each of a domain's 5 classes = 2,250, ceil of
# 2,250 / 32 = 71 batches, 200 epochs.
RL_AUX_STEPS = 200 * 450
AUTO_LAMBDA_STEPS = 200 * 71


def test_the_protocols_sizes_come_from_the_paper_configs():
    rl_aux = gpubench.read_protocol("rl-aux-cifar100-20", PAPER_DIR)
    assert (rl_aux.train_images, rl_aux.batch_size, rl_aux.epochs) == (45_000, 100, 200)
    assert rl_aux.steps == RL_AUX_STEPS and rl_aux.paper == (12.0, 36.0)
    auto_lambda = gpubench.read_protocol("auto-lambda-cifar100-mtl", PAPER_DIR)
    assert (auto_lambda.train_images, auto_lambda.batch_size) == (2_250, 32)
    assert auto_lambda.steps == AUTO_LAMBDA_STEPS and auto_lambda.paper is None


def test_every_method_and_variant_is_measured_and_projected(tmp_path, capsys):
    methods = ["single", "human+noise", "rl-aux", "mtl"]
    code = main(
        [
            "bench",
            f"--variants={','.join(VARIANTS)}",
            f"--methods={','.join(methods)}",
            "--device=cpu",
            "--steps=1",
            "--repeats=1",
            "--width=0.0625",
            "--compile-methods=single",
            "--compile-backend=eager",
            f"--paper-dir={PAPER_DIR}",
            f"--out={tmp_path}",
        ]
    )
    assert code == 0
    rows = json.loads((tmp_path / "variants.json").read_text())
    assert [(row["method"], row["variant"]) for row in rows] == list(
        itertools.product(methods, VARIANTS)
    )
    assert list(pd.read_csv(tmp_path / "variants.csv")["variant"]) == VARIANTS * len(methods)
    by = {(row["method"], row["variant"]): row for row in rows}
    device = f"cpu ({torch.get_num_threads()} threads)"
    for row in rows:
        assert row["device"] == device and device in row["setting"]
        assert row["model"] == "vgg16" and row["width"] == 0.0625
    for method in ("single", "human+noise", "mtl"):
        fp32 = by[method, "fp32"]
        for variant in VARIANTS:
            row = by[method, variant]
            if variant == "compile" and method != "single":
                assert row["status"] == "skipped"
                assert row["note"] == "not among --compile-methods"
                assert row["step_s"] is None and row["vs_fp32"] is None
                continue
            assert row["status"] == "measured" and row["repeats"] == 1
            assert row["steps"] == 1 and row["step_s"] == row["epoch_s"] > 0
            assert row["vs_fp32"] == pytest.approx(row["step_s"] / fp32["step_s"])
            steps = AUTO_LAMBDA_STEPS if method == "mtl" else RL_AUX_STEPS
            assert row["protocol_steps"] == steps
            assert row["projected_h"] == pytest.approx(row["step_s"] * steps / 3600)
    assert by["single", "fp32"]["batch_size"] == 100 and by["mtl", "fp32"]["batch_size"] == 32
    assert (by["single", "fp32"]["paper_h_min"], by["single", "fp32"]["paper_h_max"]) == (12, 36)
    assert by["mtl", "fp32"]["paper_h_min"] is None
    compiled = by["single", "compile"]
    assert compiled["compile_s"] == pytest.approx(compiled["warmup_s"] - compiled["epoch_s"])
    assert by["single", "bf16"]["compile_s"] is None
    # RL-AUX needs two batches an epoch: every variant it ran is recorded as failed, with why
    for variant in ("fp32", "bf16", "channels_last"):
        assert by["rl-aux", variant]["status"] == "failed"
        assert "at least 2 environment steps" in by["rl-aux", variant]["note"]
    assert by["rl-aux", "fp32"]["vs_fp32"] is None

    out = capsys.readouterr().out
    assert device in out.splitlines()[0]
    assert "rl-aux-cifar100-20: cifar100-20, 45,000 training images" in out
    ratio = f"{by['single', 'channels_last']['vs_fp32']:.2f}x"
    assert any(line.split()[:1] == ["single"] and ratio in line for line in out.splitlines())
    assert "human+noise compile: skipped: not among --compile-methods" in out


def test_the_time_guard_skips_what_would_overrun_and_says_so():
    # the clock: 0 at the start and at the first variant's check, then far past the limit
    times = itertools.chain([0.0, 0.0], itertools.repeat(1e6))
    rows = gpubench.variant_costs(
        ["single", "human"],
        ["fp32", "bf16"],
        steps=1,
        repeats=1,
        device="cpu",
        width=0.0625,
        max_seconds=60,
        paper_dir=PAPER_DIR,
        clock=lambda: next(times),
    )
    status = {(row["method"], row["variant"]): row["status"] for row in rows}
    assert status == {
        ("single", "fp32"): "measured",
        ("single", "bf16"): "skipped",
        ("human", "fp32"): "skipped",
        ("human", "bf16"): "skipped",
    }
    assert all(row["note"].startswith("--max-seconds 60: ") for row in rows[1:])
    report = gpubench.format_variants(rows)
    assert "notes:\n  single bf16: skipped: --max-seconds 60" in report


def test_without_cuda_the_benchmark_says_so_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "--variants=fp32,bf16", "--methods=single,maxl", "--device=cuda"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "needs a CUDA GPU" in error
    assert "auxbench bench --variants fp32,bf16 --methods single,maxl --device cpu" in error


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--variants=fp32,fp8", "unknown variant(s) fp8"),
        ("--max-seconds=0", "--max-seconds must be > 0"),
        ("--width=0", "--width takes positive numbers"),
    ],
)
def test_bad_variant_settings_are_refused(flag, message, capsys):
    assert main(["bench", "--variants=fp32", "--device=cpu", flag]) == 2
    assert message in capsys.readouterr().err
