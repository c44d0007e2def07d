"""Figures and the HTML report, built from small deterministic tables; rendered by headless Chromium."""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from auxbench.report.html import environment_info, write_report
from auxbench.report.plots import make_figures, method_columns, run_label
from auxbench.report.stats import confidence_halfwidth

CAPTIONS = Path(__file__).resolve().parents[2] / "workflow" / "report"
CHROMIUM = Path("/usr/bin/chromium")
DATASET = "toy-set"
SETTINGS = {("single", math.nan): 0.80, ("human", 0.5): 0.83, ("human", 2.0): 0.77}
SEEDS = (0, 1, 2)
EPOCHS = 5
KINDS = ("curves", "accuracy", "lambda", "time", "diagnostics")


def write_tables(directory: Path, settings: dict = SETTINGS) -> Path:
    """Write runs.csv, history.csv and summary.csv for ``settings`` ((method, λ) -> accuracy)."""
    runs, history = [], []
    for (method, lam), accuracy in settings.items():
        for seed in SEEDS:
            key = {
                "dataset": DATASET,
                "method": method,
                "weighting": "fixed",
                "lam": lam,
                "seed": seed,
            }
            final = accuracy + 0.01 * (seed - 1)
            for epoch in range(1, EPOCHS + 1):
                acc = final - 0.2 / epoch + 0.002 * seed * epoch
                history.append(
                    {**key, "epoch": epoch, "train_loss": 1 / epoch, "train_acc": acc + 0.05}
                    | {"val_acc": acc + 0.01, "val_f1": acc, "test_acc": acc, "test_f1": acc}
                    | {"epoch_time_s": 2.0 + seed, "lr": 0.01}
                    | ({"gen_entropy": 1.0 + 0.1 * epoch} if method == "human" else {})
                )
            runs.append(
                {
                    **key,
                    "test_acc_at_best_val": final,
                    "test_acc_last15_mean": final - 0.005,
                    "val_acc_best": final + 0.01,
                    "best_epoch": EPOCHS,
                    "test_acc_final": final,
                    "test_f1_at_best_val": final - 0.01,
                    "wall_time_s": 10.0 * (1 + (method != "single")) + seed,
                    "epochs_run": EPOCHS,
                    "device": "cpu",
                    "run_dir": f"runs/{DATASET}/{method}/fixed/lam{lam:g}/seed{seed}",
                }
            )
    runs = pd.DataFrame(runs)
    directory.mkdir(parents=True, exist_ok=True)
    runs.to_csv(directory / "runs.csv", index=False)
    pd.DataFrame(history).to_csv(directory / "history.csv", index=False)
    summary_frame(runs).to_csv(directory / "summary.csv", index=False)
    return directory


def summary_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """The summary table of the contract, computed independently of the aggregation code."""
    single = runs.loc[runs["method"] == "single", "test_acc_at_best_val"]
    rows = []
    groups = runs.groupby(["dataset", "method", "weighting", "lam"], dropna=False)
    for (dataset, method, weighting, lam), group in groups:
        acc, last = group["test_acc_at_best_val"], group["test_acc_last15_mean"]
        is_single = method == "single"
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "weighting": weighting,
                "lam": lam,
                "n_seeds": len(group),
                "test_acc_mean": acc.mean(),
                "test_acc_std": acc.std(),
                "test_acc_ci95": confidence_halfwidth(acc),
                "last15_mean": last.mean(),
                "last15_std": last.std(),
                "last15_ci95": confidence_halfwidth(last),
                "diff_vs_single": acc.mean() - single.mean(),
                "p_welch": math.nan
                if is_single
                else stats.ttest_ind(acc, single, equal_var=False).pvalue,
                "wall_time_s_mean": group["wall_time_s"].mean(),
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Tables, figures and a report written with the repository's captions."""
    root = tmp_path_factory.mktemp("report")
    tables = write_tables(root / "tables")
    figures = make_figures(tables, root / "figures")
    config = {"datasets": [DATASET], "methods": ["single", "human"], "note": "<b>a & b</b>"}
    environment = {"python": "3.x", "device": "cpu <none>"}
    out = write_report(
        tables, figures, config, environment, root / "report" / "index.html", CAPTIONS
    )
    return {"root": root, "tables": tables, "figures": figures, "html": out}


def test_run_label():
    assert run_label("single", math.nan) == "single"
    assert run_label("human", 0.5) == "human λ=0.5"
    assert run_label("human", 2.0) == "human λ=2"
    assert run_label("human", math.nan, "dwa+pcgrad") == "human [dwa+pcgrad]"


def test_figures_are_valid_pngs_and_close_nothing_open(built):
    figures = built["figures"]
    assert [p.name for p in figures] == [f"{kind}_{DATASET}.png" for kind in KINDS]
    for path in figures:
        with Image.open(path) as image:
            image.verify()
        pixels = plt.imread(path)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 400
        assert np.ptp(pixels[..., :3]) > 0.5  # something is drawn
    assert plt.get_fignums() == []


def test_diagnostics_plot_only_what_methods_log_themselves(built):
    history = pd.read_csv(built["tables"] / "history.csv")
    assert method_columns(history) == ["gen_entropy"]


def test_lambda_figure_skipped_without_lambda_methods(tmp_path):
    tables = write_tables(
        tmp_path / "tables", {("single", math.nan): 0.8, ("other", math.nan): 0.7}
    )
    figures = make_figures(tables, tmp_path / "figures")
    assert [p.name.split("_")[0] for p in figures] == ["curves", "accuracy", "time"]
    assert not (tmp_path / "figures" / f"lambda_{DATASET}.png").exists()


def test_report_is_self_contained(built):
    page = built["html"].read_text(encoding="ascii")  # non-ASCII is written as entities
    assert 'id="summary"' in page
    for method in ("single", "human"):
        assert f"<td>{method}</td>" in page
    assert "&#955; ablation" in page  # λ, written as an entity
    assert page.count("data:image/png;base64,") == len(built["figures"])
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.IGNORECASE)
    assert "<script" not in page and "<link" not in page and "url(" not in page
    assert "<details" in page and "runs/toy-set/human/fixed/lam0.5/seed2" in page


def test_report_formats_escapes_and_captions(built):
    page = built["html"].read_text(encoding="ascii")
    summary = pd.read_csv(built["tables"] / "summary.csv")
    human = summary[(summary["method"] == "human") & (summary["lam"] == 0.5)].iloc[0]
    summary_table = page.split('id="summary"')[1].split("</table>")[0]
    assert f"{human['test_acc_mean']:.4f}" in summary_table
    assert f"{human['test_acc_ci95']:.4f}" in summary_table
    assert "&lt;b&gt;a &amp; b&lt;/b&gt;" in page and "<b>a" not in page
    assert "cpu &lt;none&gt;" in page
    caption = (CAPTIONS / "curves.rst").read_text().split()[0:4]
    assert " ".join(caption).replace("*", "") in page


def test_report_default_captions_and_environment(built, tmp_path):
    env = environment_info()
    for key in ("python", "torch", "numpy", "pandas", "seaborn", "auxbench", "platform", "device"):
        assert env[key]
    assert env["cpu_count"] >= 1
    out = write_report(built["tables"], built["figures"], {}, env, tmp_path / "index.html")
    page = out.read_text(encoding="ascii")
    assert page.count("<figcaption>") == len(built["figures"])
    assert env["auxbench"] in page


def test_report_rltrack_section_reads_the_rltrack_tables(built, tmp_path):
    """``rltrack_tables``: the RL track's summary and its figures, with their captions."""
    rltrack = tmp_path / "rltrack-tables"
    rltrack.mkdir()
    summary = {"env": ["catch"], "method": ["olaux5"], "n_seeds": [3], "auc_mean": [0.4321]}
    pd.DataFrame(summary).to_csv(rltrack / "rltrack_summary.csv", index=False)
    figure = tmp_path / "rltrack-return_catch.png"
    figure.write_bytes(built["figures"][0].read_bytes())
    out = write_report(
        built["tables"], [figure], {}, {}, tmp_path / "index.html", CAPTIONS, rltrack_tables=rltrack
    )
    page = out.read_text(encoding="ascii")
    section = page.split('id="rltrack-summary"')[1].split("</table>")[0]
    assert "<td>olaux5</td>" in section and "0.4321" in section
    assert " ".join((CAPTIONS / "rltrack.rst").read_text().split()[:4]) in page
    assert "RL track: return vs environment steps: catch" in page
    without = write_report(built["tables"], [], {}, {}, tmp_path / "plain.html", CAPTIONS)
    assert "rltrack-summary" not in without.read_text(encoding="ascii")


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    """Run headless Chromium offline with a throwaway profile; fail the test after 60 s."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp / 'profile'}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def console_problems(stderr: str) -> list[str]:
    """Lines of Chromium's log that carry a console message or an uncaught page error."""
    return [line for line in stderr.splitlines() if re.search(r"CONSOLE|Uncaught", line)]


needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"
)


@needs_chromium
def test_chromium_screenshot_is_not_blank(built, tmp_path):
    shot = tmp_path / "shot.png"
    result = chromium(
        f"--screenshot={shot}", "--window-size=1280,2000", built["html"].as_uri(), tmp=tmp_path
    )
    assert shot.exists(), result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is None or len(colours) > 1, "screenshot is a single colour"


@needs_chromium
def test_chromium_dom_has_summary_and_no_console_errors(built, tmp_path):
    result = chromium(
        "--enable-logging=stderr", "--v=0", "--dump-dom", built["html"].as_uri(), tmp=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert '<table id="summary"' in result.stdout
    assert result.stdout.count('src="data:image/png;base64,') == len(built["figures"])
    assert console_problems(result.stderr) == []


@needs_chromium
def test_chromium_console_check_catches_errors(tmp_path):
    """The console check above is not vacuous: a page that logs an error and throws is caught."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!doctype html><title>x</title><img src='http://example.invalid/x.png'>"
        "<script>console.error('boom'); undefinedFunction();</script>"
    )
    result = chromium("--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri(), tmp=tmp_path)
    problems = "\n".join(console_problems(result.stderr))
    assert "boom" in problems and "Uncaught" in problems
