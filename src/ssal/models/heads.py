"""Heads on top of an encoder's feature: the MoCo v2 projection MLP and a linear classifier."""

from __future__ import annotations

from torch import Tensor, nn

from .base import as_int


class MLPHead(nn.Module):
    """MoCo v2 projection head: ``Linear(in, hidden) -> ReLU -> Linear(hidden, out)``."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim = as_int(in_dim, "in_dim")
        self.out_dim = as_int(out_dim, "out_dim")
        self.net = nn.Sequential(
            nn.Linear(self.in_dim, as_int(hidden_dim, "hidden_dim")),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, self.out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_dim) -> (N, out_dim)``."""
        return self.net(x)


class LinearClassifier(nn.Module):
    """A linear classification layer ``(N, in_dim) -> (N, num_classes)`` logits."""

    def __init__(self, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.in_dim = as_int(in_dim, "in_dim")
        self.num_classes = as_int(num_classes, "num_classes")
        self.fc = nn.Linear(self.in_dim, self.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``(N, num_classes)``."""
        return self.fc(x)


__all__ = ["LinearClassifier", "MLPHead"]
