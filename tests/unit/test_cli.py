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


# --- a user's own datasets (--data-config, --write-example, --user-dataset) --------------------


def _example_config(tmp_path, train_per_class=4, test_per_class=2):
    from auxbench.data.user_example import write_example_folder

    root = tmp_path / "shapes"
    hierarchy = write_example_folder(root, train_per_class, test_per_class)
    config = tmp_path / "mine.yaml"
    entry = {
        "name": "shapes",
        "kind": "folder",
        "path": str(root),
        "size": 16,
        "hierarchy_csv": str(hierarchy),
        "primary": "coarse",
    }
    config.write_text(json.dumps({"datasets": ["synthetic", entry]}))
    return config, root


def test_datasets_lists_a_user_dataset_with_its_sizes_or_its_problem(tmp_path, capsys):
    from auxbench.cli import main

    config, root = _example_config(tmp_path)
    assert main(["datasets", "--root", str(tmp_path), "--data-config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"your datasets ({config}):" in out
    assert "shapes: 32 train and 16 test images of 3×16×16, 4 classes, 8 auxiliary classes" in out
    (root / "test" / "disc-warm" / "001.png").write_bytes(b"")
    assert main(["datasets", "--root", str(tmp_path), "--data-config", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"{root}/test/disc-warm/001.png: cannot read image" in out and "ERROR" in out
    empty = tmp_path / "empty.yaml"
    empty.write_text("datasets: [synthetic]\n")
    assert main(["datasets", "--data-config", str(empty)]) == 2
    assert "declares no user datasets" in capsys.readouterr().err


def test_write_example_prints_the_entry_to_declare(tmp_path, capsys):
    from auxbench.cli import main

    assert main(["datasets", "--write-example", str(tmp_path / "ex")]) == 0
    out = capsys.readouterr().out
    assert f"hierarchy_csv: {tmp_path / 'ex' / 'hierarchy.csv'}, primary: coarse" in out
    assert len(list((tmp_path / "ex" / "train").glob("*/*"))) == 8 * 40


def test_train_on_a_declared_dataset_takes_psi_from_its_hierarchy(tmp_path, capsys, one_thread):
    from auxbench.cli import main

    config, root = _example_config(tmp_path)
    args = ["train", "--data-config", str(config), "--dataset", "shapes", "--method", "maxl"]
    args += ["--epochs", "1", "--batch-size", "8", "--device", "cpu", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["method_settings"]["psi"] == 2 and metrics["n_test"] == 16
    assert metrics["config"]["user_dataset"]["path"] == str(root)
    assert metrics["dataset_source"].startswith(f"image folder {root}")
    capsys.readouterr()
    assert main(["train", "--dataset", "leaves", "--out", str(tmp_path / "x")]) == 2
    assert "unknown dataset 'leaves'" in capsys.readouterr().err


def test_prepare_takes_the_workflows_json_declaration(tmp_path, capsys):
    from auxbench.cli import main

    config, _ = _example_config(tmp_path)
    entry = json.loads(config.read_text())["datasets"][1]
    out = tmp_path / "shapes.json"
    args = ["prepare", "--dataset", "shapes", "--user-dataset", json.dumps(entry), "--out"]
    assert main([*args, str(out)]) == 0
    assert json.loads(out.read_text())["n_files"] == 8 * 6 + 1
    assert (
        main(["prepare", "--dataset", "other", "--user-dataset", json.dumps(entry), "--out", "x"])
        == 2
    )
    assert "declares 'shapes', not --dataset 'other'" in capsys.readouterr().err
    assert main(["prepare", "--dataset", "shapes", "--user-dataset", "{", "--out", "x"]) == 2


def test_dense_train_on_a_declared_dense_folder(tmp_path, capsys, one_thread):
    from auxbench.cli import main
    from auxbench.data.scenes import SCENE_CLASSES, write_scenes

    folder = tmp_path / "rooms"
    write_scenes(folder, 12, 4, 16, 16, seed=1)
    (folder / "tasks.yaml").write_text(
        f"tasks: {{label: {{kind: segmentation, classes: {len(SCENE_CLASSES)}}}, "
        "depth: {kind: depth}, normal: {kind: normal}}\n"
    )
    config = tmp_path / "dense.yaml"
    config.write_text(
        json.dumps(
            {"dense": {"datasets": [{"name": "rooms", "kind": "dense", "path": str(folder)}]}}
        )
    )
    args = ["dense-train", "--data-config", str(config), "--dataset", "rooms"]
    args += ["--setting", "auxiliary-depth", "--set", "epochs=1", "--set", "batch_size=4"]
    args += ["--set", "width=0.25", "--set", "device=cpu", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["user_dataset"]["name"] == "rooms"
    assert {"label", "depth", "normal", "noise"} <= set(metrics["tasks"])
    assert metrics["tasks"]["depth"]["primary"] and not metrics["tasks"]["label"]["primary"]


def test_datasets_lists_the_default_configs_user_datasets(tmp_path, monkeypatch, capsys):
    from auxbench.cli import main

    config, _ = _example_config(tmp_path)
    (tmp_path / "config").mkdir()
    config.rename(tmp_path / "config" / "config.yaml")
    monkeypatch.chdir(tmp_path)
    assert main(["datasets", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "your datasets (config/config.yaml):" in out and "shapes: 32 train" in out
