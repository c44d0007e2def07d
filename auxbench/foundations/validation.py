"""Checks of single values that raise ``ConfigError`` naming the key, what was expected and what
was given."""

from __future__ import annotations

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
