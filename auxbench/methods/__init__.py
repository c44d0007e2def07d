"""Auxiliary-learning methods by name (see ``base`` for how to add one)."""

from auxbench.methods import (  # noqa: F401  (registers the methods)
    human,
    maxl,
    random_aux,
    rl_aux,
    single,
)
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
