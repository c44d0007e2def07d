"""``single``: the single-task baseline, trained on the primary task alone."""

from auxbench.methods.base import Method, register


@register
class Single(Method):
    name = "single"
    description = "primary task only (single-task baseline)"
