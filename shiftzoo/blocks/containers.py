"""Containers for configs: ``sequential`` and ``concat`` take their children as ``layers: [...]``,
``residual`` as ``body: {...}``; children are any registered type, containers included."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ..block_registry import register_block

__all__ = ["sequential", "Concat", "Residual"]


@register_block("sequential")
def sequential(layers: Sequence[nn.Module]) -> nn.Sequential:
    """``nn.Sequential`` of ``layers``, applied in order."""
    return nn.Sequential(*layers)


@register_block("concat")
class Concat(nn.Module):
    """Applies every child to the same input and concatenates the outputs along ``dim`` (channels)."""

    def __init__(self, layers: Sequence[nn.Module], dim: int = 1) -> None:
        super().__init__()
        if not layers:
            raise ValueError("concat needs at least one layer")
        self.layers = nn.ModuleList(layers)
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return torch.cat([layer(input) for layer in self.layers], dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


@register_block("residual")
class Residual(nn.Module):
    """``body(x) + shortcut(x)``, the shortcut being the identity unless given (e.g. a projection)."""

    def __init__(self, body: nn.Module, shortcut: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, input: Tensor) -> Tensor:
        return self.body(input) + self.shortcut(input)
