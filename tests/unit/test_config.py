"""TrainConfig: every field's type is checked, wrong values get one line naming the key, and the
workflow schema's `train` section is generated from the config."""

import builtins
import re
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from auxbench.config import TrainConfig, make_config, settings_table, yaml_value
from auxbench.experiment import schema
from auxbench.foundations.errors import ConfigError
from auxbench.foundations.validation import check_type, conforms, describe_type, in_range

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / schema.SCHEMA_PATH

# One wrongly typed value per annotation; a field with a new annotation fails the test below
# until it has an entry here.
WRONG = {
    "str": 3,
    "float": "abc",
    "int": 1.5,
    "bool": "yes",
    "int | None": "3",
    "bool | str": 3,
    "str | None": ["x"],
    "dict[str, Any]": [1],
    "dict[str, Any] | None": [1],
    "list[int] | None": [True],
}


@pytest.mark.parametrize("spec", fields(TrainConfig), ids=lambda spec: spec.name)
def test_a_wrongly_typed_value_of_every_field_is_refused_naming_the_field(spec):
    assert spec.type in WRONG, f"add a wrongly typed value for {spec.type!r} to WRONG"
    value = WRONG[spec.type]
    with pytest.raises(ConfigError) as error:
        make_config({spec.name: value})
    message = str(error.value)
    assert message.startswith(f"{spec.name} must be ") and repr(value) in message
    assert f"({type(value).__name__})" in message and "\n" not in message


@pytest.mark.parametrize(
    "values, message",
    [
        ({"lr": "abc"}, "lr must be a number, got 'abc' (str)"),
        ({"lam": "x"}, "lam must be a number, got 'x' (str)"),
        ({"seed": True}, "seed must be an integer, got True (bool)"),
        ({"epochs": 2.0}, "epochs must be an integer, got 2.0 (float)"),
        ({"compile": 1}, "compile must be true, false or a string, got 1 (int)"),
        ({"train_limit": "all"}, "train_limit must be an integer or null, got 'all' (str)"),
        ({"method_params": {1: 2}}, "method_params must be a mapping with string keys"),
        ({"primary_domains": "0"}, "primary_domains must be a list of integers or null"),
        ({"seed": -3}, "seed must be an integer >= 0, got -3"),
        ({"lr": 0}, "lr must be > 0, got 0"),
        ({"lr": float("nan")}, "lr must be > 0, got nan"),
        ({"lr_gamma": 2}, "lr_gamma must be in (0, 1], got 2"),
        ({"val_fraction": 1.0}, "val_fraction must be in (0, 1), got 1.0"),
        ({"noise_classes": 1}, "noise_classes must be an integer >= 2, got 1"),
        ({"device": "gpu"}, "device must be auto, cpu, cuda or mps"),
        ({"device": "cuda:x"}, "device must be auto, cpu, cuda or mps"),
        ({"gradient": "nope"}, "unknown gradient 'nope'; choose one of: cagrad, graddrop, pcgrad"),
        ({"compile": ""}, "compile must be true, false or a torch.compile backend name"),
    ],
)
def test_wrong_types_and_ranges_say_what_was_expected(values, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        make_config(values)


def test_valid_values_pass_and_integers_become_numbers():
    config = make_config(
        {
            "lam": 1,
            "lr": 1,
            "device": "cuda:1",
            "compile": "eager",
            "train_limit": None,
            "gradient": None,
            "weighting_params": {"autolambda": {"lr": 3e-4}},
        }
    )
    assert config.lam == 1.0 and isinstance(config.lam, float) and isinstance(config.lr, float)
    assert make_config({"dataset": "cifar100-mtl", "primary_domains": [0, 3]}).primary_domains
    assert isinstance(make_config({}).seed, int)


def test_validate_needs_neither_methods_nor_training(monkeypatch):
    """The config sits below auxbench.methods and auxbench.training: validating imports neither
    (an import inside a function calls ``__import__`` even when the module is loaded already)."""
    imported = []
    real_import = builtins.__import__

    def recording_import(name, *args, **kwargs):
        imported.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", recording_import)
    make_config({"method": "human", "train_limit": 10, "gradient": "pcgrad"})
    make_config({"dataset": "cifar100-mtl", "primary_domains": [0, 3]})
    monkeypatch.undo()
    above = ("auxbench.methods", "auxbench.training", "auxbench.experiment", "auxbench.cli")
    assert not [name for name in imported if name.startswith(above)]


def test_every_field_has_a_one_line_description():
    for key, _, _, default, about in settings_table(TrainConfig):
        assert about and "\n" not in about and default, key
    table = schema.settings_markdown().splitlines()
    assert len(table) == 2 + len(fields(TrainConfig))
    assert "| `train_limit` | `int \\| None` | >= 1 | `null` |" in table[2 + 19]


@pytest.mark.parametrize(
    "annotation, phrase",
    [
        (int, "an integer"),
        (float, "a number"),
        (bool | str, "true, false or a string"),
        (int | None, "an integer or null"),
        (dict[str, Any], "a mapping with string keys"),
        (dict[str, int], "a mapping from strings to integers"),
        (list[int] | None, "a list of integers or null"),
    ],
)
def test_types_in_words(annotation, phrase):
    assert describe_type(annotation) == phrase


def test_conforms_reads_types_as_a_config_does():
    assert conforms(1, float) and not conforms(True, int) and not conforms(True, float)
    assert conforms(True, bool | str) and conforms("inductor", bool | str)
    assert conforms({"a": [1]}, dict[str, Any]) and not conforms({1: 2}, dict[str, Any])
    assert conforms(None, list[int] | None) and not conforms([1, "2"], list[int] | None)
    assert conforms(object(), Any)
    with pytest.raises(TypeError, match="unsupported annotation"):
        conforms(1, set[int])
    with pytest.raises(ConfigError, match=r"^x must be a list of strings, got \[1\] \(list\)$"):
        check_type("x", [1], list[str])
    with pytest.raises(ConfigError, match=r"^x must be <= 1, got 2$"):
        in_range("x", 2, maximum=1)


def test_yaml_values_read_exponents_as_numbers():
    assert yaml_value("1e-3") == 0.001 and yaml_value("-2E+4") == -20000.0
    assert yaml_value("'1e-3'") == "1e-3" and yaml_value("abc") == "abc"
    assert yaml_value("{lr: 3e-4}") == {"lr": 3e-4} and yaml_value("7") == 7


# The workflow schema


def test_the_committed_schema_matches_train_config():
    committed = yaml.safe_load(SCHEMA.read_text())["properties"]["train"]
    assert committed == schema.train_section(), (
        f"{schema.SCHEMA_PATH}'s train section differs from TrainConfig; regenerate it: "
        f"{schema.REGENERATE}"
    )
    assert schema.main([str(SCHEMA), "--check"]) == 0


def test_every_field_is_in_the_train_section_or_set_by_the_grid():
    names = [spec.name for spec in fields(TrainConfig)]
    assert set(schema.GRID_KEYS) <= set(names)
    properties = schema.train_section()["properties"]
    assert sorted(properties) == sorted(set(names) - set(schema.GRID_KEYS))
    assert sorted(schema.train_config_schema()["properties"]) == sorted(names)
    assert all(prop["description"] for prop in properties.values())


def test_a_new_field_makes_the_check_fail_naming_the_command(tmp_path, monkeypatch, capsys):
    changed = tmp_path / "config.schema.yaml"
    text = SCHEMA.read_text()
    changed.write_text(text.replace("      lr_gamma:\n", "      lr_gama:\n"))
    assert schema.main([str(changed), "--check"]) == 1
    assert schema.REGENERATE in capsys.readouterr().err
    assert schema.main([str(changed)]) == 0
    assert schema.main([str(changed), "--check"]) == 0
    assert changed.read_text() == schema.regenerated(text)
    before, after = yaml.safe_load(text), yaml.safe_load(changed.read_text())
    for document in (before, after):
        del document["properties"]["train"]
    assert before == after


def test_the_schema_types_follow_the_annotations():
    section = schema.train_section()["properties"]
    assert section["epochs"] == {
        "type": "integer",
        "minimum": 1,
        "description": "training epochs; default 15",
    }
    assert section["train_limit"]["type"] == ["integer", "null"]
    assert section["compile"]["type"] == ["boolean", "string"]
    assert section["primary_domains"]["items"] == {"type": "integer", "minimum": 0}
    full = schema.train_config_schema()["properties"]
    assert full["gradient"]["enum"][-1] is None and "pcgrad" in full["gradient"]["enum"]
    assert "rl-aux" in full["method"]["enum"]
    # any name: a user's dataset (user_dataset) is checked by TrainConfig.validate
    assert full["dataset"]["type"] == "string" and "enum" not in full["dataset"]
    assert full["user_dataset"]["type"] == ["object", "null"]
    hints = typing.get_type_hints(TrainConfig)
    assert schema.type_schema(hints["method_params"]) == {"type": "object"}


def test_workflow_configs_pass_the_schema_and_wrong_types_do_not():
    jsonschema = pytest.importorskip("jsonschema")
    document = yaml.safe_load(SCHEMA.read_text())
    for path in sorted((REPO / "config").glob("**/*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), document)
    grid = {"datasets": ["synthetic"], "methods": ["single"], "lams": [1.0], "seeds": [0]}
    for train in ({"lr": "abc"}, {"epochs": True}, {"seed": 1}, {"device": "gpu"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**grid, "train": train}, document)
