"""Task weighting and gradient methods on any list of scalar losses (see ``base`` for the API)."""

from auxbench.weighting import (  # noqa: F401  (registers the methods)
    autolambda,
    dwa,
    fixed,
    gcs,
    gradients,
    gradnorm,
    olaux,
    uncertainty,
)
from auxbench.weighting.base import (
    GRADIENTS,
    WEIGHTINGS,
    GradientMethod,
    MetaStep,
    SGDSettings,
    Weighting,
    accumulate_gradient,
    create,
    register,
    settings_for,
    task_gradients,
)

__all__ = [
    "GRADIENTS",
    "WEIGHTINGS",
    "GradientMethod",
    "MetaStep",
    "SGDSettings",
    "Weighting",
    "accumulate_gradient",
    "create",
    "register",
    "settings_for",
    "task_gradients",
]
