"""Command line: ``auxbench train | prepare | aggregate | plots | report | datasets | methods | bench
| rltrack-train | rltrack-aggregate | manipulation-train | manipulation-aggregate | dense-train
| dense-aggregate``.

Also reachable as ``python -m auxbench``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import textwrap
import typing
from pathlib import Path
from typing import Any

import yaml

from auxbench.config import (
    TrainConfig,
    make_config,
    read_yaml,
    settings_table,
    yaml_value,
)
from auxbench.data import DataError
from auxbench.foundations.errors import ConfigError
from auxbench.training.checkpoint import (
    PREEMPTED_EXIT_CODE,
    NonFiniteLoss,
    Preempted,
    StoppedNow,
)

# The TrainConfig keys that have a flag of their own (--batch-size for batch_size); each overrides
# a --config file and --set. Their values reach TrainConfig.validate as written (strings) or, for
# keys that are not strings, read as YAML, so that a wrong value gets the same one-line message as
# from --set or a config file.
TRAIN_FLAGS = (
    "dataset",
    "method",
    "model",
    "weighting",
    "gradient",
    "lam",
    "seed",
    "epochs",
    "batch_size",
    "lr",
    "schedule",
    "loss",
    "train_limit",
    "eval_limit",
    "patience",
    "device",
    "data_root",
)


DEFAULT_CONFIG = Path("config") / "config.yaml"
"""The workflow's default config (relative to the working directory): ``auxbench datasets`` lists
the user datasets it declares."""


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code: 2 for bad input, 1 for missing data or a
    failed run (e.g. a non-finite loss), 75 when stopped by SIGTERM/SIGUSR1 after a checkpoint,
    or at once by a second one or Ctrl-C (run the same command again to resume)."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except ConfigError as error:
        print(f"auxbench: error: {error}", file=sys.stderr)
        return 2
    except (DataError, NonFiniteLoss) as error:
        print(f"auxbench: error: {error}", file=sys.stderr)
        return 1
    except (Preempted, StoppedNow) as error:
        print(f"auxbench: {error}; run the same command again to resume", file=sys.stderr)
        return PREEMPTED_EXIT_CODE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="auxbench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train",
        help="train one run; write history.csv and metrics.json",
        description="Train one run; write history.csv and metrics.json. The settings: a --config\n"
        "file, then --set, then the flags, each overriding the ones before.",
        epilog=_train_keys_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--config", type=Path, help="YAML file of TrainConfig keys; flags override")
    helps = {row[0]: row[-1] for row in settings_table(TrainConfig)}
    for flag in TRAIN_FLAGS:
        train.add_argument(
            f"--{flag.replace('_', '-')}", dest=flag, type=_flag_type(flag), help=helps[flag]
        )
    train.add_argument("--bf16", action="store_true", default=None, help=helps["bf16"])
    _add_data_config(train)
    _add_set(train, "TrainConfig")
    train.add_argument("--out", type=Path, required=True, help="directory for the run's results")
    train.set_defaults(run=_train)

    prepare = commands.add_parser("prepare", help="load a dataset, write a checksummed manifest")
    prepare.add_argument("--dataset", required=True)
    prepare.add_argument("--root", help="data root (default: $AUXBENCH_DATA or ./data/raw)")
    prepare.add_argument("--expect", help="expected content SHA-256; a mismatch is an error")
    _add_data_config(prepare)
    prepare.add_argument(
        "--user-dataset",
        metavar="JSON",
        help="a user dataset's declaration as JSON (what the workflow passes; else --data-config)",
    )
    prepare.add_argument("--out", type=Path, required=True)
    prepare.set_defaults(run=_prepare)

    aggregate = commands.add_parser("aggregate", help="tables and statistics from finished runs")
    aggregate.add_argument("metrics", nargs="+", type=Path, help="the runs' metrics.json files")
    aggregate.add_argument("--tables", type=Path, required=True, help="directory for the tables")
    aggregate.add_argument("--metrics-out", type=Path, required=True, help="DVC metrics file")
    aggregate.add_argument(
        "--published",
        type=Path,
        metavar="CONFIG",
        help="a workflow config whose `published` list to set against the runs (published.csv)",
    )
    aggregate.set_defaults(run=_aggregate)

    plots = commands.add_parser("plots", help="seaborn figures from the aggregated tables")
    plots.add_argument("--tables", type=Path, required=True)
    plots.add_argument("--out", type=Path, required=True)
    plots.set_defaults(run=_plots)

    report = commands.add_parser("report", help="the self-contained HTML report")
    report.add_argument("--tables", type=Path, required=True)
    report.add_argument(
        "--figures",
        type=Path,
        nargs="+",
        action="extend",
        required=True,
        help="directories of figures (repeatable)",
    )
    report.add_argument("--rltrack-tables", type=Path, help="directory of the RL track's tables")
    report.add_argument(
        "--dense-tables", type=Path, help="directory of the dense-prediction tables"
    )
    report.add_argument(
        "--manipulation-tables", type=Path, help="directory of the manipulation track's tables"
    )
    report.add_argument("--config", type=Path, required=True, help="the resolved workflow config")
    report.add_argument("--captions", type=Path, default=Path("workflow/report"))
    report.add_argument(
        "--bench", type=Path, help="a folder of `auxbench bench --out` tables to include"
    )
    report.add_argument("--out", type=Path, required=True)
    report.set_defaults(run=_report)

    datasets = commands.add_parser("datasets", help="list datasets and whether their files exist")
    datasets.add_argument("--root", help="data root (default: $AUXBENCH_DATA or ./data/raw)")
    datasets.add_argument("--fetch", metavar="NAME", help="set up a dataset (fashion-mnist)")
    _add_data_config(
        datasets,
        "also read and list the user datasets it declares, with sizes (default: "
        "config/config.yaml's, if it declares any)",
    )
    datasets.add_argument(
        "--write-example",
        metavar="DIR",
        type=Path,
        help="write the example image folder with a class hierarchy (docs/user-data.md) to DIR",
    )
    datasets.set_defaults(run=_datasets)

    methods = commands.add_parser(
        "methods", help="list the registered methods, weightings and gradient methods"
    )
    methods.set_defaults(run=_methods)

    bench = commands.add_parser(
        "bench",
        help="costs side by side: trainer vs a bare PyTorch loop, or methods vs single and vs "
        "their algorithmic minimum",
    )
    bench.add_argument("--dataset", default="fashion-mnist")
    bench.add_argument(
        "--model", help="the main network (default: small; with --variants: the protocol's, vgg16)"
    )
    bench.add_argument("--steps", type=int, default=60, help="training steps per repetition")
    bench.add_argument("--repeats", type=int, default=5)
    bench.add_argument("--device", default="auto")
    bench.add_argument("--data-root", help="data root (default: $AUXBENCH_DATA or ./data/raw)")
    bench.add_argument(
        "--methods",
        help="comma-separated methods (or variants NAME/KEY=VALUE..., e.g. "
        "rl-aux/mode=per-example): print each one's cost per epoch and per step, as a ratio to "
        "single and to its algorithmic minimum, and its peak memory, instead of the "
        "trainer-vs-bare-loop throughput",
    )
    bench.add_argument(
        "--scaling",
        help="comma-separated methods (or variants) to measure at every --widths too",
    )
    bench.add_argument(
        "--widths",
        default="1,2,4",
        help="channel widths of the main network for --scaling (default: 1,2,4)",
    )
    bench.add_argument(
        "--variants",
        help="comma-separated variants of fp32, bf16, channels_last, compile: the GPU benchmark "
        "(`make bench-gpu`): each of --methods (default: single, maxl, maxl-fo, rl-aux, "
        "human+noise/weighting=autolambda and mtl/weighting=autolambda, the multi-domain "
        "trainer) on CIFAR-shaped synthetic data in each variant, its seconds per step, the "
        "ratio to fp32 and the projected wall time of the paper's protocol",
    )
    bench.add_argument(
        "--compile-methods",
        help="with --variants: the methods to run the compile variant for (default: all)",
    )
    bench.add_argument(
        "--compile-backend", default="inductor", help="the compile variant's torch.compile backend"
    )
    bench.add_argument(
        "--warmup", type=int, default=1, help="with --variants: untimed epochs before the timed"
    )
    bench.add_argument(
        "--max-seconds",
        type=float,
        help="with --variants: skip (with a note) the variants that would end past this",
    )
    bench.add_argument(
        "--width", default="1", help="a factor on the main network's channel widths (default: 1)"
    )
    bench.add_argument(
        "--dense",
        metavar="DATASET",
        help="dense prediction on this dense dataset (scenes, nyuv2, ...): --methods are "
        "weightings (fixed,dwa,autolambda+pcgrad), --model the backbone (small, resnet50, segnet)",
    )
    bench.add_argument(
        "--architectures", default="split,mtan", help="with --dense: split, mtan or both"
    )
    bench.add_argument("--batch-size", type=int, help="with --dense: the batch size (default 4)")
    bench.add_argument(
        "--paper-dir",
        type=Path,
        default=Path("config/paper"),
        help="with --variants: where the paper protocols' configs are (default: config/paper)",
    )
    bench.add_argument(
        "--out",
        type=Path,
        help="also write the measurements to this folder (costs.json|csv, scaling.json|csv, "
        "variants.json|csv)",
    )
    bench.set_defaults(run=_bench)

    rltrack_train = commands.add_parser(
        "rltrack-train",
        help="the RL track: one A2C run on a pixel environment; write curve.csv and metrics.json",
    )
    rltrack_train.add_argument("--env", help="catch, breakout, pong or seaquest")
    rltrack_train.add_argument("--method", help="none, balance, gcs, olaux1 or olaux5")
    rltrack_train.add_argument("--seed", type=int)
    rltrack_train.add_argument("--steps", type=int, help="environment steps")
    _add_set(rltrack_train, "RLTrackConfig")
    rltrack_train.add_argument("--out", type=Path, required=True, help="directory for the run")
    rltrack_train.set_defaults(run=_rltrack_train)

    rltrack_aggregate = commands.add_parser(
        "rltrack-aggregate", help="the RL track's tables and figures from its runs"
    )
    rltrack_aggregate.add_argument("runs", nargs="+", type=Path, help="the runs' directories")
    rltrack_aggregate.add_argument("--tables", type=Path, required=True)
    rltrack_aggregate.add_argument("--figures", type=Path, required=True)
    rltrack_aggregate.set_defaults(run=_rltrack_aggregate)

    manipulation_train = commands.add_parser(
        "manipulation-train",
        help="the manipulation track: one DDPG + HER run on a goal environment; write curve.csv "
        "and metrics.json (resumes from its checkpoint/)",
    )
    manipulation_train.add_argument("--env", help="reach, fetch-reach, hand-reach or finger-turn")
    manipulation_train.add_argument(
        "--method", help="none, balance, gcs, olaux1, olaux5, olaux5-ablation or only-TASK"
    )
    manipulation_train.add_argument("--seed", type=int)
    manipulation_train.add_argument("--steps", type=int, help="environment steps")
    _add_set(manipulation_train, "GoalTrackConfig")
    manipulation_train.add_argument("--out", type=Path, required=True, help="directory for the run")
    manipulation_train.set_defaults(run=_manipulation_train)

    manipulation_aggregate = commands.add_parser(
        "manipulation-aggregate", help="the manipulation track's tables and figures from its runs"
    )
    manipulation_aggregate.add_argument("runs", nargs="+", type=Path, help="the runs' directories")
    manipulation_aggregate.add_argument("--tables", type=Path, required=True)
    manipulation_aggregate.add_argument("--figures", type=Path, required=True)
    manipulation_aggregate.set_defaults(run=_manipulation_aggregate)

    dense_train = commands.add_parser(
        "dense-train",
        help="dense prediction: one run (Split or MTAN; segmentation, depth, normals, ...); write "
        "history.csv and metrics.json",
    )
    dense_train.add_argument("--dataset", help="scenes, nyuv2, cityscapes, cityscapes-7, ...")
    dense_train.add_argument("--architecture", help="split or mtan")
    dense_train.add_argument(
        "--setting",
        help="multi-task, auxiliary (+ noise), auxiliary-TASK (one primary task) or single-TASK",
    )
    dense_train.add_argument("--weighting", help="a weighting, optionally +GRADIENT (dwa+pcgrad)")
    dense_train.add_argument("--seed", type=int)
    _add_data_config(dense_train)
    _add_set(dense_train, "DenseConfig")
    dense_train.add_argument("--out", type=Path, required=True, help="directory for the run")
    dense_train.set_defaults(run=_dense_train)

    dense_aggregate = commands.add_parser(
        "dense-aggregate", help="the dense runs' tables (Δ_MTL, vs Equal) and figures"
    )
    dense_aggregate.add_argument("runs", nargs="+", type=Path, help="the runs' directories")
    dense_aggregate.add_argument("--tables", type=Path, required=True)
    dense_aggregate.add_argument("--figures", type=Path, required=True)
    dense_aggregate.add_argument(
        "--config",
        type=Path,
        help="the workflow config, for its dense section's published figures and baselines",
    )
    dense_aggregate.set_defaults(run=_dense_aggregate)
    return parser


def _add_set(parser: argparse.ArgumentParser, config: str) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"set any {config} key (VALUE is read as YAML); repeatable",
    )


def _add_data_config(
    parser: argparse.ArgumentParser,
    help: str = "a YAML config whose datasets (and dense.datasets) entries declare your own "
    "datasets; --dataset may then name one (docs/user-data.md)",
) -> None:
    parser.add_argument("--data-config", type=Path, metavar="FILE", help=help)


def _declared(path: Path | None) -> dict[str, Any]:
    """The user datasets that the ``--data-config`` file ``path`` declares, by name."""
    from auxbench.data.user_sets import user_datasets

    if path is None:
        return {}
    found = user_datasets(read_yaml(path), str(path))
    if not found:
        raise ConfigError(
            f"{path}: declares no user datasets; expected datasets: entries such as "
            "{name: leaves, kind: folder, path: data/user/leaves, size: 32}"
        )
    return found


def _with_user_dataset(values: dict[str, Any], path: Path | None, default: str) -> None:
    """Set ``values['user_dataset']`` to the entry the ``--data-config`` file declares for the
    chosen dataset (``values['dataset']``, else ``default``), if it declares one."""
    declared = _declared(path)
    name = values.get("dataset", default)
    if name in declared:
        values["user_dataset"] = declared[name].to_entry()


def _train_keys_help() -> str:
    """`auxbench train --help`'s list of every TrainConfig key with its type, default and
    description."""
    lines = [
        "TrainConfig keys, for --config files and --set KEY=VALUE (VALUE is read as YAML):",
    ]
    for key, kind, limits, default, about in settings_table(TrainConfig):
        heading = f"{key}: {kind}{f' ({limits})' if limits else ''}, default {default}"
        lines.extend(textwrap.wrap(heading, 96, initial_indent="  ", subsequent_indent=" " * 6))
        lines.extend(textwrap.wrap(about, 96, initial_indent=" " * 6, subsequent_indent=" " * 6))
    return "\n".join(lines)


def _flag_type(key: str) -> Any:
    """A flag's argparse type: the text as written for string keys, else the text read as YAML
    (never an argparse error: TrainConfig.validate checks the value and says what is wrong)."""
    kind = typing.get_type_hints(TrainConfig)[key]
    return str if str in (typing.get_args(kind) or (kind,)) else yaml_value


def _settings(pairs: list[str]) -> dict[str, Any]:
    settings = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            settings[key] = yaml_value(value)
        except yaml.YAMLError as error:
            problem = getattr(error, "problem", None) or "malformed"
            raise ConfigError(
                f"--set {key}: the value {value!r} is not valid YAML ({problem})"
            ) from error
    return settings


def _train(args: argparse.Namespace) -> int:
    from auxbench.methods import check_method
    from auxbench.training import train

    values = read_yaml(args.config) if args.config else {}
    values.update(_settings(args.set))
    overrides = {key: getattr(args, key) for key in (*TRAIN_FLAGS, "bf16")}
    values.update({key: value for key, value in overrides.items() if value is not None})
    _with_user_dataset(values, args.data_config, TrainConfig.dataset)
    config = check_method(make_config(values, source=str(args.config or "command line")))
    metrics = train(config, args.out)
    print(
        f"test_acc_at_best_val={metrics['test_acc_at_best_val']:.4f} "
        f"best_epoch={metrics['best_epoch']} "
        f"test_acc_last15_mean={metrics['test_acc_last15_mean']:.4f} "
        f"wall_time_s={metrics['wall_time_s']:.1f} → {args.out / 'metrics.json'}"
    )
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from auxbench.data.prepare import prepare
    from auxbench.data.user_sets import UserDataset

    user = _declared(args.data_config).get(args.dataset)
    if args.user_dataset is not None:
        try:
            entry = json.loads(args.user_dataset)
        except ValueError as error:
            raise ConfigError(f"--user-dataset: not valid JSON ({error})") from error
        user = UserDataset.from_entry(entry, "--user-dataset")
    if user is not None and user.name != args.dataset:
        raise ConfigError(f"--user-dataset declares {user.name!r}, not --dataset {args.dataset!r}")
    manifest = prepare(args.dataset, args.out, args.root, args.expect, user=user)
    print(f"{args.dataset}: content sha256 {manifest['content_sha256']} → {args.out}")
    return 0


def _aggregate(args: argparse.Namespace) -> int:
    from auxbench.report.aggregate import aggregate

    summary = aggregate(args.metrics, args.tables, args.metrics_out, args.published)
    print(summary.to_markdown(index=False, floatfmt=".4f"))
    return 0


def _plots(args: argparse.Namespace) -> int:
    from auxbench.report.plots import make_figures

    for path in make_figures(args.tables, args.out):
        print(path)
    return 0


def _report(args: argparse.Namespace) -> int:
    from auxbench.report.html import environment_info, write_report

    figures = [path for directory in args.figures for path in sorted(directory.glob("*.png"))]
    config = read_yaml(args.config)
    report = write_report(
        args.tables,
        figures,
        config,
        environment_info(),
        args.out,
        args.captions,
        rltrack_tables=args.rltrack_tables,
        bench_dir=args.bench,
        dense_tables=args.dense_tables,
        manipulation_tables=args.manipulation_tables,
    )
    print(report)
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from auxbench.data import DATASETS, availability, fetch_fashion_mnist

    if args.write_example is not None:
        from auxbench.data.user_example import write_example_folder

        hierarchy = write_example_folder(args.write_example)
        print(
            f"wrote {args.write_example}; declare it in a config's datasets list as\n"
            f"  - {{name: shapes, kind: folder, path: {args.write_example}, size: 32,\n"
            f"     hierarchy_csv: {hierarchy}, primary: coarse}}"
        )
        return 0
    if args.fetch:
        if args.fetch != "fashion-mnist":
            raise ConfigError(
                "--fetch supports only fashion-mnist; CIFAR and SVHN archives must be placed "
                "under the data root by hand (see `auxbench datasets` for the expected paths)"
            )
        print(fetch_fashion_mnist(args.root))
        return 0
    for name, spec in DATASETS.items():
        present, message = availability(name, args.root)
        print(f"{name:22s} {'ok' if present else 'MISSING':8s} {spec.summary}")
        print("\n".join(f"{'':31s}{line}" for line in message.splitlines()))
    from auxbench.data.dense_sets import DENSE_DATASETS, dense_directory

    print("dense prediction (auxbench dense-train):")
    for name, spec in DENSE_DATASETS.items():
        directory = dense_directory(name, args.root)
        if directory.is_dir():
            state, message = "ok", str(directory)
        elif spec.generate is not None:
            state, message = "ok", f"{directory} ({spec.howto})"
        else:
            state, message = "MISSING", f"{directory} does not exist; {spec.howto}"
        print(f"{name:22s} {state:8s} {spec.summary}")
        print(f"{'':31s}{message}")
    if args.data_config is not None:
        return _list_user_datasets(args.data_config)
    if DEFAULT_CONFIG.is_file():  # the workflow's default config, when run in a checkout
        from auxbench.data.user_sets import user_datasets

        if user_datasets(read_yaml(DEFAULT_CONFIG), str(DEFAULT_CONFIG)):
            return _list_user_datasets(DEFAULT_CONFIG)
    return 0


def _list_user_datasets(path: Path) -> int:
    """Read every user dataset ``path`` declares and print its sizes, or its first problem;
    1 when any cannot be read."""
    from auxbench.data.user_sets import verify

    failed = 0
    print(f"your datasets ({path}):")
    for name, dataset in _declared(path).items():
        try:
            line, state = verify(dataset), "ok"
        except DataError as error:
            line, state, failed = str(error), "ERROR", failed + 1
        print(f"{name:22s} {state:8s} {dataset.kind} {dataset.path}")
        print(f"{'':31s}{line}")
    return 1 if failed else 0


def _methods(args: argparse.Namespace) -> int:
    from auxbench.methods import METHODS
    from auxbench.weighting import GRADIENTS, WEIGHTINGS

    print("methods (auxiliary tasks; NAME+noise adds the noise-prediction task):")
    for name, cls in sorted(METHODS.items()):
        print(f"  {name:12s} {cls.description}{'  [uses λ]' if cls.uses_lambda else ''}")
    print("weightings (fixed uses λ):")
    for name, cls in sorted(WEIGHTINGS.items()):
        print(f"  {name:12s} {cls.description}")
    print("gradient methods (combine with any weighting as WEIGHTING+GRADIENT):")
    for name, cls in sorted(GRADIENTS.items()):
        print(f"  {name:12s} {cls.description}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from auxbench.experiment import bench

    if args.steps < 1 or args.repeats < 1 or args.warmup < 1:
        raise ConfigError("bench: --steps, --repeats and --warmup must be >= 1")
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise ConfigError(f"bench: --max-seconds must be > 0, got {args.max_seconds:g}")
    width = _width(args.width, "--width")
    if args.dense:
        return _bench_dense(args, width)
    if args.variants:
        return _bench_variants(args, width)
    model = args.model or "small"
    if not (args.methods or args.scaling):
        print(bench.trainer_throughput(args.dataset, model, args.steps, args.repeats, args.device))
        return 0
    setting = {"device": args.device, "data_root": args.data_root}
    if args.methods:
        methods = _names(args.methods)
        rows = bench.method_costs(
            args.dataset, model, methods, args.steps, args.repeats, width=width, **setting
        )
        print(bench.format_costs(rows))
        if args.out:
            bench.write_rows(args.out / "costs", rows)
    if args.scaling:
        widths = [_width(value) for value in _names(args.widths)]
        methods = _names(args.scaling)
        rows = bench.scaling(
            args.dataset, model, methods, widths, args.steps, args.repeats, **setting
        )
        print(bench.format_scaling(rows))
        if args.out:
            bench.write_rows(args.out / "scaling", rows)
    return 0


def _bench_dense(args: argparse.Namespace, width: float) -> int:
    """`auxbench bench --dense DATASET`: the dense rows of the cost benchmark."""
    from auxbench.experiment import bench
    from auxbench.experiment.dense_bench import dense_costs, format_dense_costs

    settings: dict[str, Any] = {"backbone": args.model or "small", "width": width}
    settings.update(device=args.device, data_root=args.data_root)
    if args.batch_size is not None:
        settings["batch_size"] = args.batch_size
    weightings = _names(args.methods) if args.methods else ["fixed", "autolambda"]
    rows = dense_costs(
        args.dense,
        _names(args.architectures),
        weightings,
        args.steps,
        args.repeats,
        settings=settings,
    )
    print(format_dense_costs(rows))
    if args.out:
        bench.write_rows(args.out / "dense_costs", rows)
    return 0


def _bench_variants(args: argparse.Namespace, width: float) -> int:
    """`auxbench bench --variants`: the GPU benchmark (auxbench.experiment.gpubench); the rows
    are saved after each method, so that a run cut short keeps what it measured."""
    from auxbench.experiment import bench, gpubench

    def save(rows: list[dict[str, Any]]) -> None:
        if args.out:
            bench.write_rows(args.out / "variants", rows)

    rows = gpubench.variant_costs(
        _names(args.methods) if args.methods else gpubench.DEFAULT_METHODS,
        _names(args.variants),
        args.steps,
        args.repeats,
        device=args.device,
        width=width,
        model=args.model,
        warmup=args.warmup,
        compile_methods=_names(args.compile_methods) if args.compile_methods else None,
        compile_backend=args.compile_backend,
        max_seconds=args.max_seconds,
        paper_dir=args.paper_dir,
        after_method=save,
    )
    print(gpubench.format_variants(rows))
    return 0


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _width(text: str, flag: str = "--widths") -> float:
    try:
        width = float(text)
    except ValueError:
        width = math.nan
    if not width > 0:
        raise ConfigError(f"bench: {flag} takes positive numbers, got {text!r}")
    return width


def _rltrack_train(args: argparse.Namespace) -> int:
    from auxbench.rltrack.run import make_rltrack_config, run

    values = _settings(args.set)
    flags = {key: getattr(args, key) for key in ("env", "method", "seed", "steps")}
    values.update({key: value for key, value in flags.items() if value is not None})
    config = make_rltrack_config(values, source="command line")
    metrics = run(config, args.out)
    print(
        f"auc={metrics['auc']:.4f} steps_to_threshold={metrics['steps_to_threshold']} "
        f"final_return={metrics['final_return']:.4f} wall_time_s={metrics['wall_time_s']:.1f} "
        f"→ {args.out / 'metrics.json'}"
    )
    return 0


def _manipulation_train(args: argparse.Namespace) -> int:
    from auxbench.rltrack.goal_run import make_goal_config, run

    values = _settings(args.set)
    flags = {key: getattr(args, key) for key in ("env", "method", "seed", "steps")}
    values.update({key: value for key, value in flags.items() if value is not None})
    config = make_goal_config(values, source="command line")
    metrics = run(config, args.out)
    print(
        f"auc={metrics['auc']:.4f} steps_to_threshold={metrics['steps_to_threshold']} "
        f"final_success={metrics['final_success']:.4f} wall_time_s={metrics['wall_time_s']:.1f} "
        f"→ {args.out / 'metrics.json'}"
    )
    return 0


def _dense_train(args: argparse.Namespace) -> int:
    from auxbench.config import DenseConfig, make_dense_config
    from auxbench.data.user_sets import UserDataset
    from auxbench.experiment.dense_grid import dataset_tasks, setting_values
    from auxbench.experiment.grid import split_weighting
    from auxbench.training.dense import DenseTrainer

    values = _settings(args.set)
    for key in ("dataset", "architecture", "seed"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if args.weighting is not None:
        values["weighting"], values["gradient"] = split_weighting(args.weighting)
    _with_user_dataset(values, args.data_config, DenseConfig.dataset)
    if args.setting is not None:
        user = values.get("user_dataset")
        tasks = dataset_tasks(
            values.get("dataset", DenseConfig.dataset),
            UserDataset.from_entry(user, "user_dataset") if user is not None else None,
        )
        values.update(setting_values(args.setting, tasks))
    config = make_dense_config(values, source="command line")
    metrics = DenseTrainer(config).fit(args.out)
    print(
        f"best epoch {metrics['best_epoch']}, val_score {metrics['val_score_best']:.3f}, "
        f"wall_time_s={metrics['wall_time_s']:.1f} → {args.out / 'metrics.json'}"
    )
    return 0


def _dense_aggregate(args: argparse.Namespace) -> int:
    from auxbench.report.dense import aggregate

    section = (read_yaml(args.config).get("dense") or {}) if args.config else {}
    summary = aggregate(
        args.runs,
        args.tables,
        args.figures,
        published=section.get("published"),
        published_baselines=section.get("published_baselines"),
    )
    print(summary.to_markdown(index=False, floatfmt=".4g"))
    return 0


def _rltrack_aggregate(args: argparse.Namespace) -> int:
    from auxbench.report.rltrack import aggregate

    summary = aggregate(args.runs, args.tables, args.figures)
    print(summary.to_markdown(index=False, floatfmt=".4f"))
    return 0


def _manipulation_aggregate(args: argparse.Namespace) -> int:
    from auxbench.report.manipulation import aggregate

    summary = aggregate(args.runs, args.tables, args.figures)
    print(summary.to_markdown(index=False, floatfmt=".4f"))
    return 0
