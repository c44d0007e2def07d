"""Checks of single values that raise ``ConfigError`` naming the key, what was expected and what
was given."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any

from auxbench.foundations.errors import ConfigError


def choice(name: str, value: Any, choices: tuple[str, ...] | list[str]) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")


def at_least(name: str, value: Any, minimum: int) -> None:
    """``value`` must be an integer (not a bool) >= ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def in_range(
    name: str,
    value: Any,
    *,
    integer: bool = False,
    minimum: float | None = None,
    exclusive_minimum: float | None = None,
    maximum: float | None = None,
    exclusive_maximum: float | None = None,
) -> None:
    """``value`` (of the right type already) must lie within the given bounds; the message states
    them all, e.g. ``lr_gamma must be in (0, 1], got 2.0`` or ``seed must be an integer >= 0, got
    -3``. NaN lies within no bounds."""
    inside = (
        (minimum is None or value >= minimum)
        and (exclusive_minimum is None or value > exclusive_minimum)
        and (maximum is None or value <= maximum)
        and (exclusive_maximum is None or value < exclusive_maximum)
    )
    if not inside:
        bounds = describe_bounds(minimum, exclusive_minimum, maximum, exclusive_maximum)
        raise ConfigError(
            f"{name} must be {'an integer ' if integer else ''}{bounds}, got {value!r}"
        )


def describe_bounds(
    minimum: float | None = None,
    exclusive_minimum: float | None = None,
    maximum: float | None = None,
    exclusive_maximum: float | None = None,
) -> str:
    """Bounds in words: ``>= 1``, ``> 0``, ``in (0, 1]``; empty without bounds."""
    lower = f"[{minimum}" if minimum is not None else None
    lower = f"({exclusive_minimum}" if exclusive_minimum is not None else lower
    upper = f"{maximum}]" if maximum is not None else None
    upper = f"{exclusive_maximum})" if exclusive_maximum is not None else upper
    if lower and upper:
        return f"in {lower}, {upper}"
    if lower:
        return f"{'>=' if lower[0] == '[' else '>'} {lower[1:]}"
    if upper:
        return f"{'<=' if upper[-1] == ']' else '<'} {upper[:-1]}"
    return ""


def _members(annotation: Any) -> tuple[Any, ...]:
    """The alternatives of a union (``X | Y``, ``Optional[X]``), or the annotation alone."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def conforms(value: Any, annotation: Any) -> bool:
    """Whether ``value`` is of the type ``annotation``, as a config reads it: a bool is not an
    integer, an integer is a number (``float``), ``dict[K, V]`` and ``list[T]`` check their keys,
    values and items, ``Any`` takes anything. Raises ``TypeError`` for annotations it does not
    know (a programming error, not bad input)."""
    for member in _members(annotation):
        origin, args = typing.get_origin(member), typing.get_args(member)
        if member is Any:
            return True
        if member is None or member is type(None):
            matched = value is None
        elif member is bool:
            matched = isinstance(value, bool)
        elif member is int:
            matched = isinstance(value, int) and not isinstance(value, bool)
        elif member is float:
            matched = isinstance(value, int | float) and not isinstance(value, bool)
        elif member is str:
            matched = isinstance(value, str)
        elif origin is list:
            matched = isinstance(value, list) and all(conforms(item, args[0]) for item in value)
        elif origin is dict:
            matched = isinstance(value, dict) and all(
                conforms(key, args[0]) and conforms(item, args[1]) for key, item in value.items()
            )
        elif member in (list, dict):
            matched = isinstance(value, member)
        else:
            raise TypeError(f"conforms: unsupported annotation {member!r}")
        if matched:
            return True
    return False


_SINGULAR = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_PLURAL = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}


def _phrases(annotation: Any, plural: bool = False) -> list[str]:
    """The alternatives of ``annotation`` in words, e.g. ``['an integer', 'null']``."""
    phrases: list[str] = []
    for member in _members(annotation):
        origin, args = typing.get_origin(member), typing.get_args(member)
        if member is None or member is type(None):
            phrase = ["nulls" if plural else "null"]
        elif member is bool and not plural:
            phrase = ["true", "false"]
        elif member in _SINGULAR:
            phrase = [(_PLURAL if plural else _SINGULAR)[member]]
        elif origin is list or member is list:
            items = f" of {_join(_phrases(args[0], plural=True))}" if args else ""
            phrase = [f"{'lists' if plural else 'a list'}{items}"]
        elif origin is dict or member is dict:
            noun = "mappings" if plural else "a mapping"
            key, item = args or (Any, Any)
            if item is not Any:
                noun += f" from {_join(_phrases(key, True))} to {_join(_phrases(item, True))}"
            elif key is not Any:
                noun += f" with {'string' if key is str else _join(_phrases(key, True))} keys"
            phrase = [noun]
        elif member is Any:
            phrase = ["values" if plural else "any value"]
        else:
            phrase = [getattr(member, "__name__", str(member))]
        phrases.extend(phrase)
    return phrases


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} or {phrases[-1]}"


def describe_type(annotation: Any) -> str:
    """``annotation`` in words: ``an integer or null``, ``true, false or a string``, ``a list of
    integers``, ``a mapping with string keys``."""
    return _join(_phrases(annotation))


def check_type(name: str, value: Any, annotation: Any) -> None:
    """``value`` must be of the type ``annotation`` (see ``conforms``); the message names the key,
    the expected type and the value with its type: ``lr must be a number, got 'abc' (str)``."""
    if not conforms(value, annotation):
        raise ConfigError(
            f"{name} must be {describe_type(annotation)}, got {value!r} ({type(value).__name__})"
        )


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)``, resolved once per class."""
    return typing.get_type_hints(cls)


def check_field_types(config: Any) -> None:
    """Every field of the dataclass instance ``config`` must match its type annotation."""
    hints = type_hints(type(config))
    for spec in dataclasses.fields(config):
        check_type(spec.name, getattr(config, spec.name), hints[spec.name])
