"""Auxiliary-learning methods by name (see ``base`` for how to add one)."""

from auxbench.methods import human, maxl, rl_aux, single  # noqa: F401  (registers the methods)
from auxbench.methods.base import (
    METHODS,
    LossOverrides,
    Method,
    TrainerView,
    check_method,
    create_method,
    method_names,
    register,
)

__all__ = [
    "METHODS",
    "LossOverrides",
    "Method",
    "TrainerView",
    "check_method",
    "create_method",
    "method_names",
    "register",
]
