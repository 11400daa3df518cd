"""Convolutional shift blocks: ShiftNet's CSC block and FE-Net's fully-exploited block."""
from __future__ import annotations

from typing import ClassVar, Dict, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..block_registry import register_block
from ..config_types import ShiftSpec
from .common import check_number, check_positive, scaled_width, shift_bottleneck

__all__ = ["CSCBlock", "FEBlock", "ResidualOrder"]


# Where the residual branch's last ReLU sits in a CSC block.
ResidualOrder = Literal["shiftresnet", "resnet"]


@register_block("csc")
class CSCBlock(nn.Module):
    """ShiftNet's Conv-Shift-Conv block (Wu et al. 2018) on ``(N, C, H, W)``: a bottleneck
    ``relu(BN(1x1(shift(relu(BN(1x1(x)))))))`` (stride in the second 1x1) plus a shortcut, the
    identity or, when the shape changes, a strided 1x1 conv + BN projection.

    ``residual="shiftresnet"`` (default) adds the shortcut after the branch's ReLU and applies none
    after the sum, as the authors' ShiftResNet code does (their checkpoints need it);
    ``residual="resnet"`` is ResNet's order, ``relu(BN(1x1(...)) + shortcut(x))``.

    Args:
        in_channels, out_channels: channels in and out.
        stride: spatial stride (in the second 1x1 conv, equal to a strided shift).
        expansion: the middle width is ``int(out_channels * expansion)`` (ShiftNet's epsilon,
            truncated as the authors' code; it must give at least one channel).
        shift: the shift layer (:data:`ShiftSpec`; ShiftNet's grouped 3x3 shift by default).
        residual: ``"shiftresnet"`` or ``"resnet"``.
    """

    # The authors' ShiftResNet module names (their ShiftConv) -> ours, for map_authors_state_dict.
    authors_keys: ClassVar[Dict[str, str]] = {
        "conv1": "body.expand", "bn1": "body.bn1", "conv2": "body.shrink", "bn2": "body.bn2"}

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expansion: float = 1.0,
                 shift: ShiftSpec = "grouped_shift2d", residual: ResidualOrder = "shiftresnet") -> None:
        super().__init__()
        check_positive(in_channels=in_channels, out_channels=out_channels, stride=stride)
        if residual not in get_args(ResidualOrder):
            raise ValueError(f"residual must be 'shiftresnet' or 'resnet', got {residual!r}")
        mid = scaled_width("expansion", expansion, out_channels, "middle")
        self.body = shift_bottleneck(in_channels, mid, out_channels, stride, shift)
        if residual == "shiftresnet":
            self.body.add_module("relu2", nn.ReLU(inplace=True))
        self.residual = residual
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, input: Tensor) -> Tensor:
        out = self.body(input) + self.shortcut(input)
        # (residual is fixed at construction: the block stays traceable by torch.fx)
        return out if self.residual == "shiftresnet" else F.relu(out)


@register_block("fe_block")
class FEBlock(nn.Module):
    """FE-Net's idea of fully exploiting a few shifts (Chen et al. 2019): only the first
    ``round(in_channels * split)`` channels go through a shift bottleneck (1x1 -> BN -> ReLU -> shift
    -> 1x1 -> BN -> ReLU, SSL by default); the other channels pass unchanged (average-pooled when
    ``stride > 1``) and are concatenated after the new ones, so ``out_channels`` must exceed them.

    Args:
        in_channels, out_channels: channels in and out.
        split: fraction of the input channels that go through the shift bottleneck (``0 < split <= 1``).
        stride: spatial stride.
        expansion: the bottleneck's middle width is ``round(split channels * expansion)`` (at least 1).
        shift: the shift layer (:data:`ShiftSpec`).
    """

    def __init__(self, in_channels: int, out_channels: int, split: float = 0.5, stride: int = 1,
                 expansion: float = 1.0, shift: ShiftSpec = "sparse_shift2d") -> None:
        super().__init__()
        check_positive(in_channels=in_channels, out_channels=out_channels, stride=stride)
        self.active = round(in_channels * check_number("split", split, 0.0, 1.0))
        if not 1 <= self.active <= in_channels:
            raise ValueError(f"split={split} selects {self.active} of {in_channels} channels; need at least one")
        kept = in_channels - self.active
        if out_channels <= kept:
            raise ValueError(f"out_channels={out_channels} leaves no room for new channels next to the "
                             f"{kept} passed-through ones")
        mid = scaled_width("expansion", expansion, self.active, "middle", round)
        self.body = nn.Sequential(shift_bottleneck(self.active, mid, out_channels - kept, stride, shift),
                                  nn.ReLU(inplace=True))
        self.stride = stride
        self.kept = kept

    def forward(self, input: Tensor) -> Tensor:
        new = self.body(input[:, :self.active])
        if self.kept == 0:  # (known at construction: the block stays traceable by torch.fx)
            return new
        kept = input[:, self.active:]
        if self.stride > 1:  # ceil_mode: the size of the strided 1x1 conv's output
            kept = F.avg_pool2d(kept, self.stride, self.stride, ceil_mode=True)
        return torch.cat([new, kept], dim=1)
