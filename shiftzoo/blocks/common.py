"""Pieces the blocks share: the shift layer a block names (:data:`ShiftSpec`, defined in
:mod:`shiftzoo.config_types`) made by :func:`make_shift`, norms, the channel MLP and the
1x1 -> shift -> 1x1 bottleneck."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Dict, Literal, Mapping

from torch import Tensor, nn

from .._validation import check_number
from ..builder import build_shift
from ..config_types import ShiftSpec

__all__ = ["ShiftSpec", "NormName", "make_shift", "make_norm", "ChannelLayerNorm", "ConvMLP", "shift_bottleneck",
           "check_positive", "check_number", "scaled_width"]


def make_shift(spec: ShiftSpec, channels: int) -> nn.Module:
    """The shift layer ``spec`` describes, over ``channels`` channels."""
    if isinstance(spec, (str, Mapping)):
        config = {"type": spec} if isinstance(spec, str) else dict(spec)
        if "channels" in config:
            raise ValueError("a block's shift config must not set channels: the block supplies them")
        return build_shift({**config, "channels": channels})
    if callable(spec):
        return spec(channels)
    raise TypeError(f"shift must be a type name, a config mapping or a callable, got {type(spec).__name__}")


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of each position of an ``(N, C, H, W)`` map (the token-wise norm of
    the MLP models)."""

    def forward(self, input: Tensor) -> Tensor:
        return super().forward(input.movedim(1, -1)).movedim(-1, 1)


# The norms a block can use (the builder checks a config's value against this Literal).
NormName = Literal["batch", "layer", "group"]
_NORMS: Dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm2d, "layer": ChannelLayerNorm, "group": lambda c: nn.GroupNorm(1, c)}


def make_norm(kind: NormName, channels: int) -> nn.Module:
    """``"batch"`` (BatchNorm2d), ``"layer"`` (LayerNorm over channels) or ``"group"`` (GroupNorm with one group)."""
    if kind not in _NORMS:
        raise ValueError(f"norm must be one of {sorted(_NORMS)}, got {kind!r}")
    return _NORMS[kind](channels)


class ConvMLP(nn.Sequential):
    """The channel MLP of the MLP/ViT blocks on ``(N, C, H, W)``: 1x1 conv -> GELU -> dropout -> 1x1 conv
    -> dropout, ``int(channels * mlp_ratio)`` wide (truncated, as the papers' code, so their weights fit;
    at least 1), ``0 <= drop < 1``."""

    def __init__(self, channels: int, mlp_ratio: float = 4.0, drop: float = 0.0) -> None:
        check_positive(channels=channels)
        hidden = scaled_width("mlp_ratio", mlp_ratio, channels, "hidden")
        check_number("drop", drop, 0.0, 1.0, low_open=False, high_open=True)
        super().__init__(nn.Conv2d(channels, hidden, 1), nn.GELU(), nn.Dropout(drop),
                         nn.Conv2d(hidden, channels, 1), nn.Dropout(drop))


def shift_bottleneck(in_channels: int, mid_channels: int, out_channels: int, stride: int,
                     shift: ShiftSpec) -> nn.Sequential:
    """1x1 conv -> BN -> ReLU -> shift -> 1x1 conv (``stride``) -> BN: ShiftNet's CSC body. The stride
    sits in the second 1x1 conv, which equals a strided shift without computing skipped pixels twice."""
    return nn.Sequential(OrderedDict(
        expand=nn.Conv2d(in_channels, mid_channels, 1, bias=False),
        bn1=nn.BatchNorm2d(mid_channels),
        relu=nn.ReLU(inplace=True),
        shift=make_shift(shift, mid_channels),
        shrink=nn.Conv2d(mid_channels, out_channels, 1, stride=stride, bias=False),
        bn2=nn.BatchNorm2d(out_channels),
    ))


def check_positive(**values: Any) -> None:
    """Raises ``ValueError`` for any value that is not a positive int."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def scaled_width(name: str, factor: float, channels: int, what: str, rounding: Callable[[float], int] = int) -> int:
    """``rounding(channels * factor)``, the width a ratio argument ``name`` gives; ``ValueError`` naming
    ``name`` unless ``factor`` is a finite number > 0 that gives at least one channel."""
    width = rounding(channels * check_number(name, factor))
    if width < 1:
        raise ValueError(f"{name}={factor!r} gives {rounding.__name__}({channels} * {factor!r}) = {width} {what} "
                         "channels; it must give at least 1")
    return width
