"""Networks by name: a trunk from ``TRUNKS`` with named MLP heads (see ``MultiHeadNet``)."""

from __future__ import annotations

from auxbench.models.multidomain import MultiDomainNet, build_multidomain_model
from auxbench.models.multihead import MultiHeadNet, mlp_head
from auxbench.models.small import small_trunk
from auxbench.models.vgg import vgg16_trunk

TRUNKS = {"small": small_trunk, "vgg16": vgg16_trunk}


def build_model(
    name: str, in_channels: int, heads: dict[str, int], width: float = 1.0, image_size: int = 32
) -> MultiHeadNet:
    """Build network ``name`` for ``image_size``² images with ``in_channels`` channels and ``heads``."""
    if name not in TRUNKS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(TRUNKS)}")
    trunk, feature_dim = TRUNKS[name](in_channels, image_size, width)
    return MultiHeadNet(trunk, feature_dim, heads)


__all__ = [
    "TRUNKS",
    "MultiDomainNet",
    "MultiHeadNet",
    "build_model",
    "build_multidomain_model",
    "mlp_head",
]
