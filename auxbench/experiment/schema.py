"""The workflow config's JSON schema, ``workflow/schemas/config.schema.yaml``: its ``train``
section is generated here from ``TrainConfig`` (each field's type annotation, description, choices,
pattern and bounds) and the registries, and its ``published`` section from the grid's protocols and
metrics, so that they cannot drift from the code.

``python -m auxbench.experiment.schema`` rewrites those sections in place (every other section
stays as written); ``--check`` only compares, and fails naming the command that regenerates them.
A test runs the check, so a new ``TrainConfig`` field fails the tests until the schema is
regenerated.
"""

from __future__ import annotations

import argparse
import re
import sys
import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from auxbench.config import (
    BOUNDS,
    TrainConfig,
    choice_names,
    default_of,
    settings_table,
    yaml_text,
)
from auxbench.experiment.grid import (
    FANNED_OUT,
    FIXED,
    PROTOCOLS,
    PUBLISHED_METRICS,
    PUBLISHED_REQUIRED,
)
from auxbench.methods import METHODS

SCHEMA_PATH = Path("workflow/schemas/config.schema.yaml")
REGENERATE = "python -m auxbench.experiment.schema"
# TrainConfig keys that a grid point sets rather than the `train` section: the fanned-out ones,
# the noise task (`NAME+noise` methods), the gradient method (`WEIGHTING+GRADIENT`) and the data
# root (the config's top-level `data_root`).
GRID_KEYS = (*FANNED_OUT, "noise_task", "gradient", "data_root")
# Choices that the config cannot check (the methods sit above it; ``methods.check_method``).
CHOICES = {"method": METHODS}
# Constraints that ``TrainConfig.validate`` checks in code rather than through field metadata.
EXTRA = {
    "compile": {"minLength": 1},
    "primary_domains": {"minItems": 1, "items": {"minimum": 0}},
}
JSON_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string", type(None): "null"}
JSON_BOUNDS = dict(zip(BOUNDS, ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")))


def type_schema(annotation: Any) -> dict[str, Any]:
    """The JSON schema of a type annotation: ``int | None`` → ``{type: [integer, "null"]}``,
    ``list[int]`` → ``{type: array, items: {type: integer}}``, ``dict[str, Any]`` → ``{type:
    object}``."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    members = typing.get_args(annotation) if union else (annotation,)
    kinds: list[str] = []
    schema: dict[str, Any] = {}
    for member in members:
        origin, args = typing.get_origin(member) or member, typing.get_args(member)
        if member is Any:
            return {}
        if member in JSON_TYPES:
            kinds.append(JSON_TYPES[member])
        elif origin is list:
            kinds.append("array")
            if args and args[0] is not Any:
                schema["items"] = type_schema(args[0])
        elif origin is dict:
            kinds.append("object")
            if args and args[1] is not Any:
                schema["additionalProperties"] = type_schema(args[1])
        else:
            raise TypeError(f"type_schema: unsupported annotation {member!r}")
    return {"type": kinds[0] if len(kinds) == 1 else kinds, **schema}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s keys added, nested mappings merged."""
    merged = dict(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = merge(merged[key], value) if both else value
    return merged


def property_schema(name: str) -> dict[str, Any]:
    """The JSON schema of one ``TrainConfig`` key."""
    spec = {field.name: field for field in fields(TrainConfig)}[name]
    annotation = typing.get_type_hints(TrainConfig)[name]
    schema = type_schema(annotation)
    checks = spec.metadata
    choices = checks.get("choices") if checks.get("choices") is not None else CHOICES.get(name)
    if choices is not None:
        nullable = "null" in schema.get("type", ())
        schema["enum"] = [*choice_names(choices), *([None] if nullable else [])]
    if checks.get("pattern"):
        schema["pattern"] = f"^(?:{checks['pattern'][0]})$"
    for bound, keyword in JSON_BOUNDS.items():
        if checks.get(bound) is not None:
            schema[keyword] = checks[bound]
    schema = merge(schema, EXTRA.get(name, {}))
    schema["description"] = f"{checks['help']}; default {yaml_text(default_of(spec))}"
    return schema


def train_config_schema() -> dict[str, Any]:
    """The JSON schema of a whole ``TrainConfig`` (e.g. an ``auxbench train --config`` file)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "one run's settings (auxbench.config.TrainConfig)",
        "properties": {field.name: property_schema(field.name) for field in fields(TrainConfig)},
    }


def train_section() -> dict[str, Any]:
    """The workflow config's ``train`` section: every ``TrainConfig`` key but the ``GRID_KEYS``."""
    return {
        "type": "object",
        "default": {},
        "additionalProperties": False,
        "description": (
            "training settings shared by every run: the auxbench.config.TrainConfig keys but "
            f"{', '.join(GRID_KEYS)} (set per run by the grid). Generated from TrainConfig by "
            f"`{REGENERATE}`: do not edit by hand."
        ),
        "properties": {
            field.name: property_schema(field.name)
            for field in fields(TrainConfig)
            if field.name not in GRID_KEYS
        },
    }


WEIGHTING_PATTERN = "^[a-z0-9-]+(\\+[a-z0-9-]+)?$"  # as the schema's $defs/weighting_list


def published_section() -> dict[str, Any]:
    """The workflow config's ``published`` section: the figures a paper reports, each for one
    setting of the grid under the paper's protocol (``auxbench.experiment.grid.published_entries``
    checks them against the grid)."""
    return {
        "type": "array",
        "default": [],
        "description": (
            "figures a paper reports, set against the measured seeds in "
            "results/tables/published.csv (auxbench aggregate --published). Generated by "
            f"`{REGENERATE}`: do not edit by hand."
        ),
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": list(PUBLISHED_REQUIRED),
            "properties": {
                "source": {
                    "type": "string",
                    "minLength": 1,
                    "description": "the paper and its table or figure, e.g. RL-AUX Fig. 4",
                },
                "dataset": {"type": "string", "description": "one of the config's datasets"},
                "method": {"type": "string", "description": "one of the config's methods"},
                "weighting": {
                    "type": "string",
                    "pattern": WEIGHTING_PATTERN,
                    "description": f"one of the method's weightings; default {FIXED}",
                },
                "lam": {
                    "type": ["number", "null"],
                    "minimum": 0,
                    "description": (
                        "λ, one of the config's lams, where λ applies; default TrainConfig's λ "
                        "there, none elsewhere"
                    ),
                },
                "protocol": {
                    "type": "string",
                    "enum": list(PROTOCOLS),
                    "description": "how the paper read test accuracy off the epochs",
                },
                "metric": {
                    "type": "string",
                    "enum": list(PUBLISHED_METRICS),
                    "description": (
                        "test_acc: primary test accuracy; delta_mtl: multi-domain Δ_MTL against "
                        "equal weighting (protocol best_val); both in percent"
                    ),
                },
                "value": {"type": "number", "description": "the published figure, in percent"},
            },
        },
    }


# The generated sections: name → the function that builds it (and what it is generated from).
GENERATED = {
    "train": (train_section, "TrainConfig"),
    "published": (published_section, "auxbench.experiment.grid's protocols and metrics"),
}


def settings_markdown() -> str:
    """Every ``TrainConfig`` key as a Markdown table: key, type, choices or bounds, default and
    description (as ``auxbench train --help`` lists them)."""
    lines = ["| key | type | values | default | description |", "|---|---|---|---|---|"]
    for row in settings_table(TrainConfig):
        cells = [
            f"`{cell}`" if cell and index in (0, 1, 3) else cell for index, cell in enumerate(row)
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


class _Dumper(yaml.SafeDumper):
    """Block style, except lists of scalars (``type: [integer, "null"]``, enums) on one line;
    long strings folded (``description: >-``)."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(not isinstance(item, dict | list) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = ">" if len(data) > 60 else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(str, _represent_str)


def section_text(name: str = "train") -> str:
    """A generated section as the schema file writes it: under ``properties``, indented by 2."""
    text = yaml.dump(
        {name: GENERATED[name][0]()},
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=88,
        default_flow_style=False,
    )
    return "".join(f"  {line}" if line.strip() else line for line in text.splitlines(True))


def train_section_text() -> str:
    """The ``train`` section as the schema file writes it (``section_text``)."""
    return section_text("train")


def _section(name: str) -> re.Pattern:
    """The lines of the schema file's property ``name``: its line at two spaces' indent and
    every following line indented by four or more, or empty."""
    return re.compile(rf"^  {name}:\n(?:(?:    .*|)\n)*", re.MULTILINE)


def regenerated(text: str) -> str:
    """The schema file's text with its generated sections (``GENERATED``) regenerated."""
    for name in GENERATED:
        if len(_section(name).findall(text)) != 1:
            raise ValueError(f"the schema has no `{name}:` property at two spaces' indent")
        text = _section(name).sub(lambda _, name=name: section_text(name), text, count=1)
    return text


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` compare) the schema file's generated sections."""
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=SCHEMA_PATH)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a mismatch")
    args = parser.parse_args(argv)
    text = args.path.read_text()
    if args.check:
        committed = yaml.safe_load(text)["properties"]
        for name, (build, origin) in GENERATED.items():
            if committed.get(name) != build():
                print(
                    f"{args.path}: the {name} section differs from {origin}; regenerate it: "
                    f"{REGENERATE}",
                    file=sys.stderr,
                )
                return 1
        return 0
    new = regenerated(text)
    if new != text:
        args.path.write_text(new)
        print(f"regenerated the generated sections ({', '.join(GENERATED)}) of {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
