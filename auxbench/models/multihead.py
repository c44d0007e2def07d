"""A shared trunk with named classification heads (primary, auxiliary, ...)."""

from __future__ import annotations

import torch
from torch import nn


def mlp_head(in_features: int, out_features: int, hidden: int = 512) -> nn.Sequential:
    """The MAXL / RL-AUX head: ``Linear(in, hidden) - ReLU - Linear(hidden, out)``."""
    return nn.Sequential(
        nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_features)
    )


class MultiHeadNet(nn.Module):
    """``trunk`` maps images to ``feature_dim`` features; each head maps features to its logits.

    Later methods add heads by name (``add_head``) instead of defining new model classes.
    """

    def __init__(
        self, trunk: nn.Module, feature_dim: int, heads: dict[str, int], hidden: int = 512
    ):
        super().__init__()
        self.trunk = trunk
        self.feature_dim = feature_dim
        self.hidden = hidden
        self.heads = nn.ModuleDict()
        for name, out_features in heads.items():
            self.add_head(name, out_features)

    def add_head(self, name: str, out_features: int) -> None:
        """Attach a new head called ``name`` with ``out_features`` outputs."""
        if name in self.heads:
            raise ValueError(f"head {name!r} already exists")
        self.heads[name] = mlp_head(self.feature_dim, out_features, self.hidden)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk's flat feature vector for a batch of images."""
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.features(x)
        return {name: head(features) for name, head in self.heads.items()}
