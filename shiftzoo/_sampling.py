"""Which positions of the shifted map a shift keeps: ``stride`` and ``crop`` per spatial axis.

Along an axis of length ``n`` with ``crop = (begin, end)`` and ``stride = s``, output ``y`` is the
shifted map at position ``begin + s * y``, for the ``ceil((n - begin - end) / s)`` positions of
``[begin, n - end)`` (none when that range is empty). The default, ``s = 1`` and no crop, keeps every
position. A negative crop extends the axis: its positions lie outside the input and read what the
padding gives, as a convolution that pads more than its kernel reaches. A depthwise convolution
with kernel ``k``, dilation ``d``, padding ``(p0, p1)`` and stride ``s`` samples its input at
``s * y + e // 2 - p0`` (``e = d * (k - 1)``): ``crop = (e // 2 - p0, e - e // 2 - p1)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple, Union

IntOrInts = Union[int, Sequence[int]]
CropArg = Union[int, Sequence[Union[int, Sequence[int]]]]

__all__ = ["Sampling", "output_length"]


def output_length(n: int, stride: int, begin: int, end: int) -> int:
    """The number of positions ``begin + stride * y`` inside ``[begin, n - end)``."""
    span = n - begin - end
    return (span + stride - 1) // stride if span > 0 else 0


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Sampling:
    """``stride`` and ``crop`` of every spatial axis (tuples of ``dims`` ints / int pairs)."""

    stride: Tuple[int, ...]
    crop: Tuple[Tuple[int, int], ...]

    @classmethod
    def of(cls, dims: int, stride: IntOrInts = 1, crop: CropArg = 0, what: str = "shift") -> "Sampling":
        """From the user's arguments: ``stride`` an int >= 1 or one per axis; ``crop`` an int (both
        ends of every axis), one int per axis (both ends), or one ``(begin, end)`` pair per axis."""
        strides = [stride] * dims if _is_int(stride) else stride
        try:
            strides = list(strides)
        except TypeError:
            strides = None
        if strides is None or len(strides) != dims or not all(_is_int(s) and s >= 1 for s in strides):
            raise ValueError(f"{what}: stride must be an int >= 1 or {dims} such ints (one per axis), got {stride!r}")
        crops = [crop] * dims if _is_int(crop) else crop
        pairs = []
        try:
            crops = list(crops)
            for c in crops:
                pair = (c, c) if _is_int(c) else tuple(c)
                if len(pair) != 2 or not all(_is_int(v) for v in pair):
                    raise TypeError
                pairs.append(pair)
        except TypeError:
            pairs = None
        if pairs is None or len(pairs) != dims:
            raise ValueError(f"{what}: crop must be an int, or one int or (begin, end) pair of ints per axis "
                             f"({dims} axes), got {crop!r}")
        return cls(tuple(strides), tuple(pairs))

    @property
    def is_identity(self) -> bool:
        """Whether every position is kept (stride 1, no crop)."""
        return all(s == 1 for s in self.stride) and all(c == (0, 0) for c in self.crop)

    def output_size(self, size: Sequence[int]) -> Tuple[int, ...]:
        """The output's spatial size for an input of spatial size ``size``."""
        return tuple(output_length(n, s, b, e) for n, s, (b, e) in zip(size, self.stride, self.crop))

    def op_args(self) -> Tuple[list, list, list]:
        """``(stride, crop_begin, crop_end)`` as the compiled ops take them."""
        return list(self.stride), [b for b, _ in self.crop], [e for _, e in self.crop]
