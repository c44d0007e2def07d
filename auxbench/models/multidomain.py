"""Networks for multi-domain learning: convolutions shared by every domain, BatchNorm and a linear
head per domain (the "Split" architecture of Auto-λ §5.2 with task-specific BatchNorm).

Each conv3x3 layer's BatchNorm keeps one set of affine parameters and running statistics per
domain, so a domain's batch is normalised with its own statistics and updates only those; the
convolution weights are the only shared parameters. After the last block, global average pooling
and the domain's ``Linear(channels, classes)`` head. A forward pass takes one domain's batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from auxbench.models.small import SMALL_CHANNELS
from auxbench.models.vgg import VGG16_BLOCKS

MULTI_DOMAIN_BLOCKS = {
    "small": tuple((channels, 1) for channels in SMALL_CHANNELS),
    "vgg16": VGG16_BLOCKS,
}
"""(output channels, conv layers) per block, a 2x2 max-pool after each block, by network name."""


class DomainBatchNorm(nn.Module):
    """One ``BatchNorm2d`` per domain; ``forward(x, domain)`` uses (and updates) that domain's."""

    def __init__(self, channels: int, domains: int):
        super().__init__()
        self.norms = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(domains))

    def forward(self, x: torch.Tensor, domain: int) -> torch.Tensor:
        return self.norms[domain](x)


class MultiDomainNet(nn.Module):
    """Shared conv3x3 layers in blocks (``blocks``: (channels, layers) each, a max-pool after each
    block), per-domain BatchNorm after every convolution, per-domain linear heads."""

    def __init__(
        self,
        blocks: tuple[tuple[int, int], ...],
        in_channels: int,
        domains: int,
        classes: int,
        width: float = 1.0,
    ):
        super().__init__()
        self.convs, self.norms, self.pool_after = nn.ModuleList(), nn.ModuleList(), []
        channels = in_channels
        for out_channels, layers in blocks:
            out_channels = max(1, round(out_channels * width))
            for layer in range(layers):
                self.convs.append(nn.Conv2d(channels, out_channels, 3, padding=1, bias=False))
                self.norms.append(DomainBatchNorm(out_channels, domains))
                self.pool_after.append(layer == layers - 1)
                channels = out_channels
        self.heads = nn.ModuleList(nn.Linear(channels, classes) for _ in range(domains))

    def forward(self, images: torch.Tensor, domain: int) -> torch.Tensor:
        """Logits of ``domain``'s head for a batch of that domain's images."""
        x = images
        for conv, norm, pool in zip(self.convs, self.norms, self.pool_after, strict=True):
            x = F.relu(norm(conv(x), domain))
            if pool:
                x = F.max_pool2d(x, 2, ceil_mode=True)
        return self.heads[domain](x.mean(dim=(2, 3)))

    def shared_parameters(self) -> list[nn.Parameter]:
        """The convolution weights, shared by every domain."""
        return list(self.convs.parameters())

    def domain_parameters(self) -> list[nn.Parameter]:
        """Every domain's own parameters: its BatchNorm scales and shifts and its head."""
        return [*self.norms.parameters(), *self.heads.parameters()]


def build_multidomain_model(
    name: str, in_channels: int, domains: int, classes: int, width: float = 1.0
) -> MultiDomainNet:
    """The multi-domain network ``name`` (``small`` or ``vgg16``) for ``domains`` tasks of
    ``classes`` classes each."""
    if name not in MULTI_DOMAIN_BLOCKS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MULTI_DOMAIN_BLOCKS)}")
    return MultiDomainNet(MULTI_DOMAIN_BLOCKS[name], in_channels, domains, classes, width)
