import json
import subprocess
import sys

import pytest


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "auxbench", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_train_on_synthetic_writes_metrics(tmp_path):
    result = run(
        "train",
        "--dataset",
        "synthetic",
        "--method",
        "human",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["method"] == "human" and metrics["epochs_run"] == 2


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["--method", "nope"],
            "choose one of: human, maxl, maxl-fo, random-aux, rl-aux, single, wa-maxl, wa-rl-aux",
        ),
        (["--dataset", "nope"], "fashion-mnist"),
        (["--model", "resnet"], "small, vgg16"),
        (["--lam", "-1"], "lam must be >= 0"),
        (["--epochs", "0"], "epochs must be an integer >= 1"),
    ],
)
def test_bad_values_exit_non_zero_and_list_choices(tmp_path, args, expected):
    result = run("train", "--dataset", "synthetic", *args, "--out", str(tmp_path))
    assert result.returncode == 2
    assert expected in result.stderr
    assert not (tmp_path / "metrics.json").exists()


def test_config_file_with_unknown_key_is_refused(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("dataset: synthetic\nepocs: 3\n")
    result = run("train", "--config", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "epocs" in result.stderr and "epochs" in result.stderr


def test_missing_data_says_how_to_get_it(tmp_path):
    result = run(
        "train",
        "--dataset",
        "cifar10",
        "--data-root",
        str(tmp_path),
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 1
    assert "cifar-10" in result.stderr.lower() and str(tmp_path) in result.stderr


def test_datasets_and_methods_listings(tmp_path):
    listing = run("datasets", "--root", str(tmp_path))
    assert listing.returncode == 0
    for name in ("fashion-mnist", "fashion-mnist-coarse", "cifar10", "cifar100-20", "svhn"):
        assert name in listing.stdout
    methods = run("methods")
    assert "single" in methods.stdout and "human" in methods.stdout
    assert "autolambda" in methods.stdout and "pcgrad" in methods.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "lr=abc"], "lr must be a number, got 'abc' (str)"),
        (["--set", 'lam="x"'], "lam must be a number, got 'x' (str)"),
        (["--seed", "-3"], "seed must be an integer >= 0, got -3"),
        (["--seed", "abc"], "seed must be an integer, got 'abc' (str)"),
        (["--epochs", "1.5"], "epochs must be an integer, got 1.5 (float)"),
        (["--set", "epochs=true"], "epochs must be an integer, got True (bool)"),
        (["--set", "primary_domains=[a]"], "primary_domains must be a list of integers or null"),
        (["--set", "lr=["], "--set lr: the value '[' is not valid YAML"),
        (["--set", "lr"], "--set expects KEY=VALUE, got 'lr'"),
    ],
)
def test_wrongly_typed_settings_exit_2_with_one_line(tmp_path, capsys, args, message):
    from auxbench.cli import main

    assert main(["train", "--dataset", "synthetic", *args, "--out", str(tmp_path)]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("auxbench: error: ") and stderr.count("\n") == 1
    assert message in stderr
    assert not (tmp_path / "metrics.json").exists()


def test_set_reads_exponents_as_numbers(tmp_path, capsys):
    from auxbench.cli import main

    args = ["--set", "lr=1e-3", "--set", "weight_decay=1e-5", "--epochs", "0"]
    assert main(["train", "--dataset", "synthetic", *args, "--out", str(tmp_path)]) == 2
    assert "epochs must be an integer >= 1" in capsys.readouterr().err


def test_train_help_lists_every_key_with_type_default_and_description(capsys):
    from auxbench.cli import main
    from auxbench.config import TrainConfig, settings_table

    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for key, kind, limits, default, about in settings_table(TrainConfig):
        assert f"{key}: {kind}" in help_text and f"default {default}" in help_text
        assert " ".join(about.split()) in help_text
    assert "lr: float (> 0), default 0.01 the SGD learning rate" in help_text
