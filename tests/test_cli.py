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
            "choose one of: human, maxl, maxl-fo, rl-aux, single, wa-maxl, wa-rl-aux",
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
