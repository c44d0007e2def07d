"""The dense tables from hand-written run files: Δ_MTL against the seed-mean single-task runs in
three conventions, every weighting against Equal paired by seed, published vs measured, the
figures and the report's section."""

import json

import pandas as pd
import pytest

from auxbench.report.dense import aggregate

ROLES = {"semantic": "miou", "depth": "abs_err"}
LOWER = {"miou": False, "pixel_acc": False, "abs_err": True, "rel_err": True}


def write_run(root, setting, weighting, seed, values, tasks, noise=False):
    """A run directory as DenseTrainer writes it, with ``values`` ({task: {metric: v}}) as the
    test metrics at both protocols and a 2-epoch history."""
    directory = root / setting / weighting / f"seed{seed}"
    directory.mkdir(parents=True)
    metrics = {
        "dataset": "scenes",
        "architecture": "split",
        "backbone": "small",
        "best_epoch": 2,
        "wall_time_s": 1.0,
        "lower_is_better": LOWER,
        "tasks": {t: {"kind": "x", "primary": True, "metric": ROLES[t]} for t in tasks},
        "config": {
            "seed": seed,
            "weighting": weighting,
            "gradient": None,
            "tasks": tasks if setting.startswith("single-") else None,
            "noise_task": noise,
        },
    }
    if noise:
        metrics["tasks"]["noise"] = {"kind": "noise", "primary": False, "metric": None}
    row = {"epoch": 2}
    for task, by_metric in values.items():
        for metric, value in by_metric.items():
            for suffix in ("_at_best_val", "_final"):
                metrics[f"test_{metric}_{task}{suffix}"] = value
            row[f"val_{metric}_{task}"] = value
    if weighting == "dwa":
        row.update({f"weight_{t}": 1.0 + 0.1 * seed for t in tasks})
    (directory / "metrics.json").write_text(json.dumps(metrics))
    pd.DataFrame([{**row, "epoch": 1}, row]).to_csv(directory / "history.csv", index=False)
    return directory


@pytest.fixture
def runs(tmp_path):
    dirs = []
    for seed, (miou, err) in enumerate([(0.40, 0.50), (0.60, 0.70)]):  # means 0.5 and 0.6
        dirs.append(
            write_run(
                tmp_path,
                "single-semantic",
                "fixed",
                seed,
                {"semantic": {"miou": miou, "pixel_acc": 0.8}},
                ["semantic"],
            )
        )
        dirs.append(
            write_run(
                tmp_path,
                "single-depth",
                "fixed",
                seed,
                {"depth": {"abs_err": err, "rel_err": 0.2}},
                ["depth"],
            )
        )
    both = ["semantic", "depth"]
    # Equal: semantic +10% (0.55), depth -10% (0.66): Δ(autolambda) = 0 in both seeds
    for seed in (0, 1):
        dirs.append(
            write_run(
                tmp_path,
                "multi-task",
                "fixed",
                seed,
                {
                    "semantic": {"miou": 0.55, "pixel_acc": 0.8},
                    "depth": {"abs_err": 0.66, "rel_err": 0.2},
                },
                both,
            )
        )
    # DWA: semantic +20% / +30%, depth as baseline -> Δ = +10%, +15%; LibMTL halves the
    # semantic change (pixel_acc unchanged): +5%, +7.5%
    for seed, miou in ((0, 0.60), (1, 0.65)):
        dirs.append(
            write_run(
                tmp_path,
                "multi-task",
                "dwa",
                seed,
                {
                    "semantic": {"miou": miou, "pixel_acc": 0.8},
                    "depth": {"abs_err": 0.60, "rel_err": 0.2},
                },
                both,
            )
        )
    return dirs


def test_deltas_pairing_published_and_figures(runs, tmp_path):
    published = [
        {
            "source": "paper",
            "dataset": "scenes",
            "architecture": "split",
            "setting": "multi-task",
            "weighting": "dwa",
            "values": {"miou_semantic": 0.60, "delta_published": 12.0},
        }
    ]
    baselines = {"scenes": {"semantic": {"miou": 0.5}, "depth": {"abs_err": 0.6}}}
    summary = aggregate(runs, tmp_path / "tables", tmp_path / "figures", published, baselines)
    table = pd.read_csv(tmp_path / "tables" / "dense_runs.csv")
    best = table[table["protocol"] == "best_val"].set_index(["weighting", "setting", "seed"])
    assert best.loc[("fixed", "multi-task", 0), "delta_autolambda"] == pytest.approx(0.0)
    assert best.loc[("dwa", "multi-task", 0), "delta_autolambda"] == pytest.approx(10.0)
    assert best.loc[("dwa", "multi-task", 1), "delta_autolambda"] == pytest.approx(15.0)
    assert best.loc[("dwa", "multi-task", 1), "delta_libmtl"] == pytest.approx(7.5)
    # Nash-MTL: 4 metrics, only miou changed (+30%): 7.5% too
    assert best.loc[("dwa", "multi-task", 1), "delta_nashmtl"] == pytest.approx(7.5)
    assert best.loc[("dwa", "multi-task", 1), "delta_published"] == pytest.approx(15.0)
    row = summary[(summary["weighting"] == "dwa") & (summary["protocol"] == "best_val")].iloc[0]
    assert row["vs_equal_diff"] == pytest.approx(12.5)  # paired by seed: (10 + 15) / 2
    assert row["delta_autolambda_mean"] == pytest.approx(12.5)
    assert row["n_seeds"] == 2
    pub = pd.read_csv(tmp_path / "tables" / "dense_published.csv").set_index("column")
    assert pub.loc["miou_semantic", "measured_mean"] == pytest.approx(0.625)
    assert pub.loc["delta_published", "measured_mean"] == pytest.approx(12.5)
    names = {p.name for p in (tmp_path / "figures").glob("*.png")}
    assert names == {
        "dense-metrics_scenes.png",
        "dense-weights_scenes.png",
        "dense-delta_scenes.png",
    }


def test_the_report_has_a_dense_section(runs, tmp_path):
    from auxbench.report.html import _dense_section

    aggregate(runs, tmp_path / "tables", tmp_path / "figures")
    html = "\n".join(_dense_section(tmp_path / "tables", "caption"))
    assert "caption" in html and 'id="dense-best_val"' in html
    assert "multi-task" in html and "single-semantic" in html
