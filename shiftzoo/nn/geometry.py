"""The output geometry of a depthwise convolution, for a shift layer that replaces it.

A shift keeps the spatial size; a convolution with kernel ``k``, dilation ``d``, padding ``p`` and
stride ``s`` gives ``floor((n + p_left + p_right - d(k-1) - 1) / s) + 1``. ``DepthwiseGeometry``
closes the gap the way the seed's ``emulate_dw`` heuristic does: it crops (or pads) the shifted map
to the convolution's stride-1 size, centred where the kernel centre would be, then average-pools
``s``-by-``s`` windows (``ceil_mode``, so a partial last window counts like the conv's last output).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DepthwiseGeometry", "CONV_TO_SHIFT_PADDING", "as_tuple"]

# nn.Conv padding_mode -> the shift padding that fills the same way.
CONV_TO_SHIFT_PADDING = {"zeros": "zeros", "reflect": "reflect", "replicate": "border", "circular": "periodic"}
# nn.Conv padding_mode -> F.pad mode, for the rare conv that pads more than its kernel reaches.
_F_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}

IntOrTuple = Union[int, Sequence[int]]


def as_tuple(value: IntOrTuple, dims: int, name: str, minimum: int = 0) -> Tuple[int, ...]:
    """``value`` (an int or one int per spatial axis) as a ``dims``-tuple of ints >= ``minimum``."""
    items = [value] * dims if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        items = list(items)
    except TypeError:
        raise ValueError(f"{name} must be an int or a sequence of {dims} ints, got {value!r}") from None
    if len(items) != dims or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum
                                     for v in items):
        raise ValueError(f"{name} must be an int >= {minimum} or a sequence of {dims} such ints, got {value!r}")
    return tuple(items)


class DepthwiseGeometry(nn.Module):
    """Crops/pads and average-pools a shift layer's output to a depthwise convolution's output shape.

    Args:
        kernel_size, stride, padding, dilation: as for ``nn.Conv{d}d`` (an int or one per axis;
            ``padding`` may also be ``"same"`` or ``"valid"``).
        padding_mode: the convolution's ``padding_mode`` (only used where the convolution pads more
            than its kernel reaches, which a crop cannot express).
        dims: number of spatial axes.
    """

    def __init__(self, kernel_size: IntOrTuple, stride: IntOrTuple = 1, padding: Union[str, IntOrTuple] = 0,
                 dilation: IntOrTuple = 1, padding_mode: str = "zeros", dims: int = 2) -> None:
        super().__init__()
        self.dims = dims
        self.kernel_size = as_tuple(kernel_size, dims, "kernel_size", 1)
        self.stride = as_tuple(stride, dims, "stride", 1)
        self.dilation = as_tuple(dilation, dims, "dilation", 1)
        if padding_mode not in _F_PAD_MODE:
            raise ValueError(f"padding_mode must be one of {sorted(_F_PAD_MODE)}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        extents = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation)]
        if padding == "valid":
            pads = [(0, 0)] * dims
        elif padding == "same":  # nn.Conv puts the odd pixel on the right
            pads = [(e // 2, e - e // 2) for e in extents]
        else:
            pads = [(p, p) for p in as_tuple(padding, dims, "padding")]
        # Output i of the stride-1 conv is centred on input i - p_left + e/2: crop that much on the left.
        self.crop: List[Tuple[int, int]] = [(e // 2 - left, e - e // 2 - right) for e, (left, right) in zip(extents, pads)]
        # The range a shift needs to reach what the kernel reaches (init scale of learnable shifts).
        self.half_extent: Tuple[float, ...] = tuple(e / 2 for e in extents)

    @classmethod
    def from_conv(cls, conv: nn.Module) -> "DepthwiseGeometry":
        """The geometry of an ``nn.Conv1d/2d/3d`` (any groups)."""
        dims = next((d for d, kind in ((1, nn.Conv1d), (2, nn.Conv2d), (3, nn.Conv3d)) if isinstance(conv, kind)), 0)
        if not dims:
            raise TypeError(f"expected an nn.Conv1d, nn.Conv2d or nn.Conv3d, got {type(conv).__name__}")
        return cls(conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.padding_mode, dims)

    @property
    def shift_padding(self) -> str:
        """The shift padding equivalent to the convolution's ``padding_mode``."""
        return CONV_TO_SHIFT_PADDING[self.padding_mode]

    @property
    def is_identity(self) -> bool:
        """True when the convolution keeps the spatial size (stride 1, "same" padding)."""
        return all(c == (0, 0) for c in self.crop) and all(s == 1 for s in self.stride)

    def output_size(self, size: Sequence[int]) -> Tuple[int, ...]:
        """The spatial size this geometry (and the convolution) gives for input ``size``."""
        out = []
        for n, (left, right), s in zip(size, self.crop, self.stride):
            n1 = n - left - right
            out.append((n1 + s - 1) // s)
        return tuple(out)

    def forward(self, input: Tensor) -> Tensor:
        if any(c < 0 for lr in self.crop for c in lr):  # the conv over-pads: grow first (F.pad: last axis first)
            grow = [max(-c, 0) for lr in reversed(self.crop) for c in lr]
            input = F.pad(input, grow, mode=_F_PAD_MODE[self.padding_mode])
        index = [slice(None), slice(None)]
        for n, (left, right) in zip(input.shape[2:], self.crop):
            index.append(slice(max(left, 0), n - max(right, 0)))
        input = input[tuple(index)]  # a view: no copy for the crop
        if any(s > 1 for s in self.stride):
            pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[self.dims - 1]
            input = pool(input, self.stride, self.stride, ceil_mode=True)
        return input

    def extra_repr(self) -> str:
        return f"crop={self.crop}, stride={self.stride}"
