"""Figures and the HTML report, built from small deterministic tables (runs, history, summary and
the contract's comparisons, ranks, Friedman and published tables, all written here by hand);
rendered by headless Chromium."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba_array
from PIL import Image
from scipy import stats

from auxbench.report.html import environment_info, write_report
from auxbench.report.plots import column_title, figures, make_figures, method_columns, run_label
from auxbench.report.stats import confidence_halfwidth

CAPTIONS = Path(__file__).resolve().parents[2] / "workflow" / "report"
CHROMIUM = Path("/usr/bin/chromium")
DATASET = "toy-set"
NAN = math.nan
ADAPTIVE = (
    "uncertainty",
    "dwa",
    "gcs",
    "gradnorm",
    "olaux",
    "autolambda",
    "dwa+pcgrad",
    "dwa+cagrad",
    "dwa+graddrop",
)
# (method, weighting, λ) -> test accuracy; 14 settings, 9 of them one method's weightings
SETTINGS = {
    ("single", "fixed", NAN): 0.80,
    ("human", "fixed", 0.5): 0.83,
    ("human", "fixed", 2.0): 0.77,
    ("maxl", "fixed", 1.0): 0.85,
    ("rl-aux", "fixed", 1.0): 0.82,
    **{("human+noise", w, NAN): 0.801 + 0.004 * i for i, w in enumerate(ADAPTIVE)},
}
SMALL = {("single", "fixed", NAN): 0.80, ("human", "fixed", 0.5): 0.83}
SEEDS = (0, 1, 2)
EPOCHS = 5
KINDS = ("accuracy", "curves", "lambda", "time", "weights", "generator", "diagnostics")
# What each method logs for itself (as the methods and weightings do: grep "logs[")
GENERATOR_LOGS = {
    "maxl": ("gen_entropy", "gen_classes_used", "gen_meta_loss"),
    "rl-aux": ("agent_reward", "agent_chosen_entropy", "aux_classes_used"),
}
OTHER_LOG = "foo_bar_score"  # a log no mapping knows: its title is the tidied name
TASKS = ("primary", "aux", "noise")
# comparisons.csv under best_val, written by hand: label -> (Δ, CI low, CI high, Holm p,
# significant, cost ratio); single itself is listed too (Δ 0) and must not be shown
BEST_VAL = {
    "single": (0.0, NAN, NAN, NAN, False, 1.0),
    "human λ=0.5": (0.0300, 0.0120, 0.0480, 0.0150, True, 1.52),
    "human λ=2": (-0.0300, -0.0410, -0.0190, 0.0021, True, 1.49),
    "maxl λ=1": (0.0500, 0.0312, 0.0688, 0.0004, True, 2.10),
    "rl-aux λ=1": (0.0200, -0.0050, 0.0450, 0.0810, False, 3.75),
    **{
        run_label("human+noise", NAN, w): (
            d := 0.001 + 0.004 * i,
            d - 0.02,
            d + 0.02,
            0.9,
            False,
            1.8,
        )
        for i, w in enumerate(ADAPTIVE)
    },
}
PUBLISHED = [
    {
        "source": "RL-AUX Table 2",
        "dataset": DATASET,
        "method": "maxl",
        "weighting": "fixed",
        "lam": 1.0,
        "protocol": "last15",
        "metric": "test_acc",
        "published": 84.0,
        "measured_mean": 84.5,
        "measured_ci95": 0.6,
        "n_seeds": 3,
        "difference": 0.5,
        "published_in_ci": True,
    },
    {
        "source": "Auto-λ Table 1",
        "dataset": DATASET,
        "method": "single",
        "weighting": "fixed",
        "lam": NAN,
        "protocol": "best_test",
        "metric": "test_acc",
        "published": 82.0,
        "measured_mean": 80.0,
        "measured_ci95": 0.5,
        "n_seeds": 3,
        "difference": -2.0,
        "published_in_ci": False,
    },
]
HEADLINE_TINT = (0xE6, 0xF0, 0xFA)  # section.headline's background in html.CSS


def epoch_logs(method: str, weighting: str, epoch: int) -> dict:
    """The per-epoch values a setting's method and weighting log for themselves."""
    logs = {column: 1.0 + 0.1 * epoch for column in GENERATOR_LOGS.get(method, ())}
    if method == "human":
        logs[OTHER_LOG] = 0.5 * epoch
    if weighting != "fixed":
        logs |= {f"weight_{task}": 1.0 + 0.05 * i * epoch for i, task in enumerate(TASKS)}
    if weighting == "gcs":
        logs |= {"kept_primary": NAN, "kept_aux": 0.9, "kept_noise": 0.5 + 0.01 * epoch}
    if weighting == "olaux":
        logs |= {"alignment_1": 0.01 * epoch, "alignment_2": -0.01 * epoch}
    return logs


def write_tables(directory: Path, settings: dict = SETTINGS, contract: bool = True) -> Path:
    """Write runs.csv, history.csv and summary.csv for ``settings`` ((method, weighting, λ) ->
    accuracy) and, with ``contract``, comparisons.csv, ranks.csv, friedman.json and
    published.csv."""
    runs, history = [], []
    for (method, weighting, lam), accuracy in settings.items():
        for seed in SEEDS:
            key = {
                "dataset": DATASET,
                "method": method,
                "weighting": weighting,
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
                    | epoch_logs(method, weighting, epoch)
                )
            learned = {
                f"final_{column}": value
                for column, value in epoch_logs(method, weighting, EPOCHS).items()
                if column.startswith(("weight_", "kept_"))
            }
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
                    "run_dir": f"runs/{DATASET}/{method}/{weighting}/lam{lam:g}/seed{seed}",
                    **learned,
                }
            )
    runs = pd.DataFrame(runs)
    directory.mkdir(parents=True, exist_ok=True)
    runs.to_csv(directory / "runs.csv", index=False)
    pd.DataFrame(history).to_csv(directory / "history.csv", index=False)
    summary_frame(runs).to_csv(directory / "summary.csv", index=False)
    if contract:
        write_contract_tables(directory, settings)
    return directory


def write_contract_tables(directory: Path, settings: dict) -> None:
    """comparisons.csv (``BEST_VAL``; last15 0.5 points lower, best_test 1 point higher),
    ranks.csv (rank by accuracy), friedman.json (best_val and last15; best_test absent) and
    published.csv (``PUBLISHED``)."""
    rows = []
    for method, weighting, lam in settings:
        label = run_label(method, lam, weighting)
        diff, low, high, p_holm, significant, cost = BEST_VAL[label]
        for protocol, shift in (("best_val", 0.0), ("last15", -0.005), ("best_test", 0.01)):
            rows.append(
                {
                    "dataset": DATASET,
                    "method": method,
                    "weighting": weighting,
                    "lam": lam,
                    "protocol": protocol,
                    "baseline": "single",
                    "n_pairs": 3,
                    "mean_diff": diff + shift,
                    "ci_low": low + shift,
                    "ci_high": high + shift,
                    "effect_size": 2.0,
                    "p_ttest": p_holm / 2,
                    "p_wilcoxon": NAN,
                    "p_holm": p_holm,
                    "significant": significant,
                    "cost_ratio": cost,
                }
            )
    pd.DataFrame(rows).to_csv(directory / "comparisons.csv", index=False)
    by_accuracy = sorted(settings, key=lambda key: -settings[key])
    ranks = {run_label(m, lam, w): float(i) for i, (m, w, lam) in enumerate(by_accuracy, 1)}
    pd.DataFrame(
        [
            {"label": label, "mean_rank": rank, "n_blocks": 3, "protocol": protocol}
            for protocol in ("best_val", "last15")
            for label, rank in ranks.items()
        ]
    ).to_csv(directory / "ranks.csv", index=False)
    cd = 11.45
    entry = {
        "blocks": "dataset×seed",
        "n_blocks": 3,
        "n_methods": len(ranks),
        "statistic": 30.5,
        "p_value": 0.0041,
        "critical_difference": cd,
        "labels": list(ranks),
        "mean_ranks": ranks,
        "nemenyi_p": {
            a: {b: 0.01 if abs(ra - rb) > cd else 0.6 for b, rb in ranks.items()}
            for a, ra in ranks.items()
        },
    }
    # best_test as the aggregation writes a protocol without a test: its fields None
    untested = {**entry, "statistic": None, "p_value": None, "critical_difference": None}
    friedman = {
        "best_val": entry,
        "last15": {**entry, "p_value": 0.02},
        "best_test": {**untested, "nemenyi_p": None},
    }
    (directory / "friedman.json").write_text(json.dumps(friedman, ensure_ascii=False))
    pd.DataFrame(PUBLISHED).to_csv(directory / "published.csv", index=False)


def summary_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """The summary table of the aggregation, computed independently of the aggregation code."""
    single = runs.loc[runs["method"] == "single", "test_acc_at_best_val"]
    learned = [c for c in runs.columns if c.startswith(("final_weight_", "final_kept_"))]
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
                **{f"{column}_mean": group[column].mean() for column in learned},
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Tables, figures and a report written with the repository's captions."""
    root = tmp_path_factory.mktemp("report")
    tables = write_tables(root / "tables")
    paths = make_figures(tables, root / "figures")
    config = {"datasets": [DATASET], "methods": ["single", "human"], "note": "<b>a & b</b>"}
    environment = {"python": "3.x", "device": "cpu <none>"}
    out = write_report(tables, paths, config, environment, root / "report" / "index.html", CAPTIONS)
    return {"root": root, "tables": tables, "figures": paths, "html": out}


@pytest.fixture(scope="module")
def drawn(built):
    """The figures as matplotlib objects, by file stem."""
    return dict(figures(built["tables"]))


# --- parsing the page ----------------------------------------------------------------------------


class Page(HTMLParser):
    """The page's tables (id, whether inside <details>, header, rows of cell text), the ids of
    its sections and the targets of its table of contents."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text
        self.tables: list[dict] = []
        self.section_ids: list[str] = []
        self.toc_links: list[str] = []
        self.ids: set[str] = set()
        self._details = 0
        self._nav = False
        self._table: dict | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "details":
            self._details += 1
        elif tag == "section":
            self.section_ids.append(attrs.get("id"))
        elif tag == "nav":
            self._nav = True
        elif tag == "a" and self._nav:
            self.toc_links.append(attrs["href"].removeprefix("#"))
        elif tag == "table":
            self._table = {"id": attrs.get("id"), "details": self._details > 0, "rows": []}
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "details":
            self._details -= 1
        elif tag == "nav":
            self._nav = False
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table["rows"].append(self._row)
            self._row = None
        elif tag == "table" and self._table is not None:
            table = self._table
            table["header"], table["body"] = table["rows"][0], table["rows"][1:]
            self.tables.append(table)
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def table(self, table_id: str) -> dict:
        (table,) = [t for t in self.tables if t["id"] == table_id]
        return table

    def column(self, table_id: str, header: str) -> list[str]:
        table = self.table(table_id)
        index = table["header"].index(header)
        return [row[index] for row in table["body"]]


@pytest.fixture(scope="module")
def page(built):
    return Page(built["html"].read_text(encoding="ascii"))


# --- figures -------------------------------------------------------------------------------------


def test_run_label():
    assert run_label("single", math.nan) == "single"
    assert run_label("human", 0.5) == "human λ=0.5"
    assert run_label("human", 2.0) == "human λ=2"
    assert run_label("human", math.nan, "dwa+pcgrad") == "human [dwa+pcgrad]"


def test_column_titles_are_words():
    assert column_title("kept_aux") == "GCS: fraction of steps the auxiliary gradient was kept"
    assert column_title("weight_noise") == "learned weight of the noise task"
    assert column_title("gen_meta_loss") == "MAXL: primary loss after the virtual step (meta loss)"
    assert column_title("agent_reward") == "RL-AUX agent: mean reward per labelled batch"
    assert column_title("alignment_2") == (
        "OL-AUX: alignment of the #2 gradient with the primary gradient"
    )
    assert column_title(OTHER_LOG) == "foo bar score"


def test_figures_are_valid_pngs_and_close_nothing_open(built):
    paths = built["figures"]
    expected = [f"{kind}_{DATASET}.png" for kind in KINDS] + ["cd_best_val.png", "cd_last15.png"]
    assert [p.name for p in paths] == expected  # no cd_best_test: its Friedman entry is None
    for path in paths:
        with Image.open(path) as image:
            image.verify()
        pixels = plt.imread(path)
        assert pixels.shape[0] > 150 and pixels.shape[1] > 400
        assert np.ptp(pixels[..., :3]) > 0.5  # something is drawn
    assert plt.get_fignums() == []


def test_method_columns_are_what_methods_log_themselves(built):
    history = pd.read_csv(built["tables"] / "history.csv")
    logged = {*GENERATOR_LOGS["maxl"], *GENERATOR_LOGS["rl-aux"], OTHER_LOG}
    logged |= {f"weight_{task}" for task in TASKS} | {"kept_aux", "kept_noise"}
    logged |= {"alignment_1", "alignment_2"}
    assert set(method_columns(history)) == logged  # kept_primary is all NaN: not logged


def texts(fig) -> list[str]:
    """Every title-like text of a figure: axes titles and labels, suptitle, figure texts,
    legend titles and entries."""
    found = [fig.get_suptitle(), *(t.get_text() for t in fig.texts)]
    for ax in fig.axes:
        found += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        if legend is not None:
            found += [legend.get_title().get_text(), *(t.get_text() for t in legend.texts)]
    return found


def test_figure_titles_name_no_raw_column(built, drawn):
    history = pd.read_csv(built["tables"] / "history.csv")
    raw = method_columns(history) + ["test_acc_at_best_val", "wall_time_s", "val_acc", "test_acc"]
    for stem, fig in drawn.items():
        for text in texts(fig):
            assert not any(column in text for column in raw), (stem, text)
    titles = {stem: " | ".join(ax.get_title() for ax in fig.axes) for stem, fig in drawn.items()}
    weights, generator = titles[f"weights_{DATASET}"], titles[f"generator_{DATASET}"]
    assert "human+noise [gcs]: GCS: fraction of steps each auxiliary gradient was kept" in (
        weights.replace("\n", " ")
    )
    assert "human+noise [olaux]: OL-AUX" in weights.replace("\n", " ")
    assert "MAXL: primary loss after the virtual step" in generator.replace("\n", " ")
    assert "RL-AUX agent: mean reward per labelled batch" in generator.replace("\n", " ")
    # each in its own figure: no generator log among the weights and the other way round
    assert "MAXL" not in weights and "RL-AUX" not in weights and "learned" not in generator
    assert titles[f"diagnostics_{DATASET}"] == "foo bar score"


def axes_colours(ax) -> set[tuple]:
    """The distinct colours (RGB, alpha ignored) of the lines, bars, bands and markers drawn in
    ``ax`` (not its legend, grid or text)."""
    found = []
    for line in ax.get_lines():
        if line.get_visible() and len(line.get_xdata()):
            found.append(line.get_color())
    for patch in ax.patches:
        if patch.get_visible():
            found.append(patch.get_facecolor())
    for collection in ax.collections:
        if not collection.get_visible() or not len(collection.get_paths()):
            continue
        colours = (
            collection.get_color()
            if isinstance(collection, LineCollection)
            else (collection.get_facecolor())
        )
        found += [tuple(c) for c in to_rgba_array(colours) if c[3] > 0]
    return {tuple(np.round(to_rgba_array(c)[0][:3], 3)) for c in found}


def test_at_most_eight_colours_per_axes(drawn):
    for stem, fig in drawn.items():
        for ax in fig.axes:
            if ax.get_visible():
                assert len(axes_colours(ax)) <= 8, (stem, ax.get_title(), axes_colours(ax))
    # the test can fail: the curves' adaptive weightings are split over two panels of 5 + single
    curves = drawn[f"curves_{DATASET}"]
    assert [ax.get_title() for ax in curves.axes[::2]] == [
        "Validation accuracy\nfixed weights",
        "Validation accuracy\nhuman+noise: adaptive weightings (1 of 2)",
        "Validation accuracy\nhuman+noise: adaptive weightings (2 of 2)",
    ]
    assert [len(axes_colours(ax)) for ax in curves.axes[::2]] == [5, 6, 5]


def test_accuracy_axis_is_zoomed_to_the_data(tmp_path):
    settings = {("single", "fixed", NAN): 0.84, ("human", "fixed", 0.5): 0.86}
    tables = write_tables(tmp_path / "tables", settings, contract=False)  # seeds: 0.83-0.87
    drawn = dict(figures(tables))
    low, high = drawn[f"accuracy_{DATASET}"].axes[0].get_xlim()
    assert 0.78 < low < 0.83 and 0.87 < high < 0.92, (low, high)
    low, high = drawn[f"lambda_{DATASET}"].axes[0].get_ylim()
    assert 0.78 < low and high < 0.92, (low, high)


def test_accuracy_points_are_coloured_by_the_comparison(drawn):
    (ax,) = drawn[f"accuracy_{DATASET}"].axes
    legend = [t.get_text() for t in ax.get_legend().texts]
    assert legend == [
        "single (the baseline)",
        "better than single (Holm p < 0.05)",
        "worse than single (Holm p < 0.05)",
        "not significantly different",
    ]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[:3] == ["maxl λ=1", "human+noise [dwa+graddrop]", "human λ=0.5"]
    assert labels[-1] == "human λ=2"


def test_cd_diagram_shows_the_twelve_best_and_single(drawn):
    fig = drawn["cd_best_val"]
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.texts if "(" in t.get_text()]
    assert len(labels) == 13 and any(
        t.startswith("single (") or t.endswith(") single") for t in labels
    )
    assert "the 12 best-ranked of 14 settings and single" in ax.get_title()
    assert any(t.get_text() == "critical difference CD = 11.45" for t in ax.texts)


def test_lambda_figure_skipped_without_lambda_methods(tmp_path):
    settings = {("single", "fixed", NAN): 0.8, ("other", "fixed", NAN): 0.7}
    tables = write_tables(tmp_path / "tables", settings, contract=False)
    paths = make_figures(tables, tmp_path / "figures")
    assert [p.name.split("_")[0] for p in paths] == ["accuracy", "curves", "time"]
    assert not (tmp_path / "figures" / f"lambda_{DATASET}.png").exists()


# --- the page ------------------------------------------------------------------------------------


def test_report_is_self_contained(built):
    page = built["html"].read_text(encoding="ascii")  # non-ASCII is written as entities
    assert 'id="summary"' in page and 'id="headline-table"' in page
    for method in ("single", "human"):
        assert f"<td>{method}</td>" in page
    assert "&#955; ablation" in page  # λ, written as an entity
    assert page.count("data:image/png;base64,") == len(built["figures"])
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.IGNORECASE)
    assert "<script" not in page and "<link" not in page and "url(" not in page
    assert "<details" in page and "runs/toy-set/human/fixed/lam0.5/seed2" in page


def test_headline_comes_first_and_matches_the_comparisons(page):
    assert page.section_ids[0] == "headline"
    table = page.table("headline-table")
    assert not table["details"]
    assert table["header"] == [
        "setting",
        "Δ vs single, points [95% CI]",
        "p (Holm)",
        "verdict",
        "cost × single",
        "seed pairs",
    ]
    rows = {row[0]: row for row in table["body"]}
    assert "single" not in rows and len(rows) == len(SETTINGS) - 1
    assert rows["maxl λ=1"] == [
        "maxl λ=1",
        "+5.00 [+3.12, +6.88]",
        "<0.001",
        "▲ better",
        "2.10×",
        "3",
    ]
    assert rows["human λ=0.5"][1:5] == ["+3.00 [+1.20, +4.80]", "0.015", "▲ better", "1.52×"]
    assert rows["human λ=2"][1:5] == ["-3.00 [-4.10, -1.90]", "0.002", "▼ worse", "1.49×"]
    assert rows["rl-aux λ=1"][1:5] == [
        "+2.00 [-0.50, +4.50]",
        "0.081",
        "not significant",
        "3.75×",
    ]
    text = page.text
    assert "2 of 13 settings significantly better than single, 1 significantly worse" in text
    order = [row[0] for row in table["body"]]  # by Δ: 5.0, 3.3 (dwa+graddrop), 3.0, ..., -3.0
    assert order[:3] == ["maxl λ=1", "human+noise [dwa+graddrop]", "human λ=0.5"]
    assert order[-1] == "human λ=2"


def test_cd_caption_states_the_friedman_test(built):
    page = built["html"].read_text(encoding="ascii")
    figure = page.split('id="cd-best_val"')[1].split("</figure>")[0]
    caption = figure.split("<figcaption>")[1]
    assert "over 3 blocks, each a (dataset, seed) pair, and 14 settings" in caption
    assert "p = 0.004" in caption and "CD = 11.45" in caption
    assert "shows the 12 best-ranked settings (and single)" in caption
    assert "No Friedman test for the protocol best_test" in page


def test_headline_with_several_datasets_names_them(built, tmp_path):
    tables = tmp_path / "tables"
    shutil.copytree(built["tables"], tables)
    comparisons = pd.read_csv(tables / "comparisons.csv")
    other = comparisons.assign(dataset="a-set", mean_diff=-comparisons["mean_diff"])
    pd.concat([comparisons, other]).to_csv(tables / "comparisons.csv", index=False)
    out = write_report(tables, [], {}, {}, tmp_path / "index.html", CAPTIONS)
    table = Page(out.read_text(encoding="ascii")).table("headline-table")
    assert table["header"][:2] == ["dataset", "setting"]
    assert [row[:2] for row in table["body"][:1]] == [["a-set", "human λ=2"]]  # -(-3.00)
    assert table["body"][13][:2] == [DATASET, "maxl λ=1"]


def test_table_of_contents_links_every_section(page):
    sections = [s for s in page.section_ids if s]
    assert page.toc_links == sections
    assert sections == [
        "headline",
        "ranks",
        "published",
        "summary",
        "protocols",
        "runs",
        "figures",
        "about",
        "configuration",
        "environment",
    ]
    assert all(link in page.ids for link in page.toc_links)


def test_no_empty_column_in_any_shown_table(page):
    shown = [t for t in page.tables if not t["details"]]
    assert {"headline-table", "published-table", "summary", "weights"} <= {t["id"] for t in shown}
    for table in shown:
        for i, name in enumerate(table["header"]):
            cells = [row[i] for row in table["body"]]
            assert any(c not in ("", "–", "nan") for c in cells), (table["id"], name)
            assert not any(c.lower() == "nan" for c in cells), (table["id"], name)
    # the raw summary (in <details>) keeps its all-NaN column; the shown one has none
    raw = page.table("summary-raw")
    assert raw["details"] and "final_kept_primary_mean" in raw["header"]
    assert "kept: primary" not in page.table("weights")["header"]


def test_summary_is_readable(built, page):
    summary = pd.read_csv(built["tables"] / "summary.csv")
    human = summary[(summary["method"] == "human") & (summary["lam"] == 0.5)].iloc[0]
    column = page.column("summary", "test acc. % at best val. (mean ± 95% CI)")
    setting = page.column("summary", "setting")
    expected = f"{human['test_acc_mean'] * 100:.2f} ± {human['test_acc_ci95'] * 100:.2f}"
    assert expected == "83.00 ± 2.48"  # the fixture's seeds 0.82, 0.83, 0.84
    assert column[setting.index("human λ=0.5")] == expected
    assert setting[:3] == ["single", "human λ=0.5", "human λ=2"]  # plots.label_order
    settings = page.column("weights", "setting")
    assert page.column("weights", "kept: noise")[settings.index("human+noise [gcs]")] == "55%"
    assert page.column("weights", "weight: noise")[settings.index("human+noise [dwa]")] == "1.5"


def test_published_vs_measured(page):
    rows = page.table("published-table")["body"]
    header = page.table("published-table")["header"]
    assert header == [
        "source",
        "dataset",
        "setting",
        "protocol",
        "metric",
        "published",
        "measured (mean ± 95% CI)",
        "seeds",
        "difference (measured − published)",
        "published inside our CI",
    ]
    assert rows[0] == [
        "RL-AUX Table 2",
        DATASET,
        "maxl λ=1",
        "last15: mean test accuracy of the last 15 epochs",
        "test accuracy (%)",
        "84.00",
        "84.50 ± 0.60",
        "3",
        "+0.50",
        "yes",
    ]
    assert rows[1][2:4] == ["single", "best_test: best test accuracy over the epochs (optimistic)"]
    assert rows[1][8:] == ["-2.00", "no"]


def test_protocols_table_has_every_protocol(page):
    table = page.table("protocols-table")
    assert table["details"]
    assert table["header"] == [
        "setting",
        "best val.: Δ points [95% CI], p (Holm)",
        "last 15: Δ points [95% CI], p (Holm)",
        "best test (optimistic): Δ points [95% CI], p (Holm)",
    ]
    rows = {row[0]: row for row in table["body"]}
    assert rows["maxl λ=1"][1:] == [
        "+5.00 [+3.12, +6.88] p <0.001 ▲",
        "+4.50 [+2.62, +6.38] p <0.001 ▲",
        "+6.00 [+4.12, +7.88] p <0.001 ▲",
    ]
    assert rows["rl-aux λ=1"][1] == "+2.00 [-0.50, +4.50] p 0.081 n.s."
    assert [row[0] for row in table["body"]][:3] == [
        "maxl λ=1",
        "human+noise [dwa+graddrop]",
        "human λ=0.5",
    ]


def test_report_escapes_and_captions(built):
    page = built["html"].read_text(encoding="ascii")
    assert "&lt;b&gt;a &amp; b&lt;/b&gt;" in page and "<b>a" not in page
    assert "cpu &lt;none&gt;" in page
    caption = (CAPTIONS / "curves.rst").read_text().split()[0:4]
    assert " ".join(caption).replace("*", "") in page


def test_report_without_comparisons_falls_back_to_the_summary(built, tmp_path):
    tables = tmp_path / "tables"
    shutil.copytree(built["tables"], tables)
    for name in ("comparisons.csv", "ranks.csv", "friedman.json", "published.csv"):
        (tables / name).unlink()
    out = write_report(tables, [], {}, {}, tmp_path / "index.html", CAPTIONS)
    text = out.read_text(encoding="ascii")
    parsed = Page(text)
    assert parsed.section_ids[0] == "headline"
    headline = text.split('id="headline"')[1].split("</section>")[0]
    assert "No comparisons.csv or friedman.json in" in headline and 'id="summary"' in headline
    assert text.count("No comparisons.csv") == 1
    assert "headline-table" not in text and "published" not in parsed.section_ids


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
    summary = {
        "env": ["catch"],
        "method": ["olaux5"],
        "n_seeds": [3],
        "auc_mean": [0.4321],
        "steps_to_threshold_mean": [NAN],
    }
    pd.DataFrame(summary).to_csv(rltrack / "rltrack_summary.csv", index=False)
    figure = tmp_path / "rltrack-return_catch.png"
    figure.write_bytes(built["figures"][0].read_bytes())
    out = write_report(
        built["tables"], [figure], {}, {}, tmp_path / "index.html", CAPTIONS, rltrack_tables=rltrack
    )
    text = out.read_text(encoding="ascii")
    table = Page(text).table("rltrack-summary")
    assert table["header"] == ["environment", "method", "seeds", "normalised AUC (mean)"]
    assert table["body"] == [["catch", "olaux5", "3", "0.4321"]]
    assert " ".join((CAPTIONS / "rltrack.rst").read_text().split()[:4]) in text
    assert "RL track: return vs environment steps: catch" in text
    without = write_report(built["tables"], [], {}, {}, tmp_path / "plain.html", CAPTIONS)
    assert "rltrack-summary" not in without.read_text(encoding="ascii")


def test_report_manipulation_section_reads_its_tables(built, tmp_path):
    """``manipulation_tables``: the summary and the paired comparisons with none, the figures with
    their titles, the caption from workflow/report/manipulation.rst."""
    tables = tmp_path / "manipulation-tables"
    tables.mkdir()
    summary = {"env": ["reach"], "method": ["olaux5"], "n_seeds": [3], "auc_mean": [0.6543]}
    pd.DataFrame(summary).to_csv(tables / "manipulation_summary.csv", index=False)
    paired = {"env": ["reach"], "metric": ["auc"], "method": ["olaux5"], "mean_diff": [0.125]}
    pd.DataFrame(paired).to_csv(tables / "manipulation_paired.csv", index=False)
    figure = tmp_path / "manipulation-success_reach.png"
    figure.write_bytes(built["figures"][0].read_bytes())
    out = write_report(
        built["tables"],
        [figure],
        {},
        {},
        tmp_path / "index.html",
        CAPTIONS,
        manipulation_tables=tables,
    )
    text = out.read_text(encoding="ascii")
    page = Page(text)
    assert page.table("manipulation-summary")["body"] == [["reach", "olaux5", "3", "0.6543"]]
    assert page.table("manipulation-paired")["body"] == [["reach", "auc", "olaux5", "0.1250"]]
    assert " ".join((CAPTIONS / "manipulation.rst").read_text().split()[5:10]) in text
    assert "Manipulation: success rate vs environment steps: reach" in text
    without = write_report(built["tables"], [], {}, {}, tmp_path / "plain.html", CAPTIONS)
    assert "manipulation-summary" not in without.read_text(encoding="ascii")


# --- in a browser --------------------------------------------------------------------------------


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
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
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


def tinted_rows(shot: Path, colour: tuple = HEADLINE_TINT) -> np.ndarray:
    """Indices of the screenshot's pixel rows that show ``colour`` (±3 per channel)."""
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=int)
    close = (np.abs(pixels - np.array(colour)) <= 3).all(axis=2)
    return np.flatnonzero(close.sum(axis=1) > 20)


def screenshot(page: Path, tmp: Path, size: str = "1280,900") -> Path:
    shot = tmp / "shot.png"
    result = chromium(f"--screenshot={shot}", f"--window-size={size}", page.as_uri(), tmp=tmp)
    assert shot.exists(), result.stderr[-2000:]
    return shot


@needs_chromium
def test_chromium_first_screen_holds_the_headline_table(built, tmp_path):
    """At 1280×900 the headline block (its tinted background) starts near the top and ends on
    the screen, so the whole table is visible before any scrolling."""
    shot = screenshot(built["html"], tmp_path)
    with Image.open(shot) as image:
        assert image.size == (1280, 900)
    rows = tinted_rows(shot)
    assert len(rows), "no headline block on the first screen"
    assert rows[0] < 200, f"the headline block starts at y={rows[0]}"
    assert rows[-1] < 880, f"the headline block runs past the first screen (y={rows[-1]})"
    assert rows[-1] - rows[0] > 13 * 18, "the headline block is too short to hold 13 rows"


@needs_chromium
def test_chromium_first_screen_check_can_fail(built, tmp_path):
    """The check above is not vacuous: with the summary moved above the headline block, the
    block leaves the first screen."""
    text = built["html"].read_text(encoding="ascii")
    headline = re.search(r'<section id="headline".*?</section>', text, re.DOTALL).group(0)
    summary = re.search(r'<section id="summary">.*?</section>', text, re.DOTALL).group(0)
    moved = tmp_path / "moved.html"
    moved.write_text(text.replace(headline, summary + headline, 1), encoding="ascii")
    rows = tinted_rows(screenshot(moved, tmp_path))
    assert not len(rows) or rows[0] >= 200 or rows[-1] >= 880


@needs_chromium
def test_chromium_dom_has_the_tables_and_no_console_errors(built, tmp_path):
    result = chromium(
        "--enable-logging=stderr", "--v=0", "--dump-dom", built["html"].as_uri(), tmp=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert '<table id="headline-table"' in dom and '<table id="summary"' in dom
    assert dom.index('id="headline-table"') < dom.index('id="summary"')
    assert dom.count('src="data:image/png;base64,') == len(built["figures"])
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
