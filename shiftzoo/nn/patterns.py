"""The fixed integer shift patterns of the papers, as ``(C, d)`` tensors for
:func:`shiftzoo.functional.shift` (sign of ``torch.roll``: ``out[x] = in[x - s]``).

Each pattern is data, built once per layer: the blocks never shift by in-place slicing, which
corrupts results when source and destination overlap or when the input is used elsewhere.
"""
from __future__ import annotations

import itertools
import math
from typing import Literal, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ["GroupedPattern", "grouped_pattern", "shiftvit_pattern", "axial_pattern", "spatial_pattern", "temporal_pattern"]


def _groups(channels: int, bounds: Sequence[int], displacements: Sequence[Sequence[int]]) -> Tensor:
    """Channels ``[bounds[g], bounds[g+1])`` get ``displacements[g]``; the rest stay unshifted."""
    shifts = torch.zeros(channels, len(displacements[0]))
    for g, disp in enumerate(displacements):
        shifts[bounds[g]:bounds[g + 1]] = torch.tensor(disp, dtype=shifts.dtype)
    return shifts


# How a grouped shift gives the kernel's taps to the channels (see grouped_pattern).
GroupedPattern = Literal["shiftnet", "blocks"]


def grouped_pattern(channels: int, kernel_size: Tuple[int, ...], dilation: Tuple[int, ...],
                    pattern: GroupedPattern = "shiftnet") -> Tensor:
    """ShiftNet's grouped shift (Wu et al. 2018): every tap of a ``kernel_size`` kernel (``T =
    prod(kernel_size)`` taps, raster order, last axis fastest) is given to ``channels // T``
    channels; the ``channels % T`` leftover channels (the last ones) stay unshifted.

    ``pattern="shiftnet"``: as the authors' CUDA kernel, channels take the taps in turn (channel
    ``c`` the tap ``c % T``) and channel ``c`` *reads* ``in[x + r]`` with ``r = dilation * (i - k // 2)``
    per axis, ``i`` its tap's index along that axis: its shift is ``-r``. Channel 0 of a 3x3 layer
    reads up-left, so its content moves down-right by (1, 1).

    ``pattern="blocks"``: group ``g`` (channels ``[g*n, (g+1)*n)``, ``n = channels // T``) gets tap
    ``g`` as its shift, ``i * dilation - ceil(e / 2)`` per axis (``e = dilation * (k - 1)``): for an
    even kernel the centre rounds down as with ``padding="same"``, so the groups read exactly the taps
    of the depthwise convolution they replace. Equal shifts sit next to each other, which the CPU
    kernels move as whole blocks in channels-last memory.
    """
    taps = math.prod(kernel_size)
    per_tap = channels // taps
    if per_tap == 0:
        raise ValueError(
            f"grouped shift: {channels} channels cannot hold the {taps} displacements of a "
            f"{'x'.join(map(str, kernel_size))} kernel (one group each); use at least {taps} "
            "channels or a smaller kernel_size")
    if pattern == "shiftnet":
        reads = [[dil * (i - k // 2) for i in range(k)] for k, dil in zip(kernel_size, dilation)]
        displacements = [[-r for r in read] for read in itertools.product(*reads)]
        shifts = torch.zeros(channels, len(kernel_size))
        shifts[:taps * per_tap] = torch.tensor(displacements, dtype=shifts.dtype).repeat(per_tap, 1)
        return shifts
    if pattern == "blocks":
        offsets = [[i * dil - (dil * (k - 1) + 1) // 2 for i in range(k)] for k, dil in zip(kernel_size, dilation)]
        bounds = [g * per_tap for g in range(taps + 1)]
        return _groups(channels, bounds, list(itertools.product(*offsets)))
    raise ValueError(f"grouped shift: pattern must be 'shiftnet' or 'blocks', got {pattern!r}")


def shiftvit_pattern(channels: int, n_div: int = 12) -> Tensor:
    """ShiftViT's partial shift (Wang et al. 2022): four groups of ``channels // n_div`` channels move
    one pixel left, right, up and down; the remaining channels are untouched. Axes are (H, W)."""
    if isinstance(n_div, bool) or not isinstance(n_div, int) or n_div < 4:
        raise ValueError(f"shiftvit: n_div must be an int >= 4 (four groups of channels // n_div), got {n_div!r}")
    g = channels // n_div
    if g == 0:
        raise ValueError(f"shiftvit: {channels} channels are fewer than n_div={n_div}: no channel would move")
    left, right, up, down = (0, -1), (0, 1), (-1, 0), (1, 0)
    return _groups(channels, [0, g, 2 * g, 3 * g, 4 * g], [left, right, up, down])


def axial_pattern(channels: int, shift_size: int, dilation: int, axis: int, dims: int = 2) -> Tensor:
    """AS-MLP's axial shift (Lian et al. 2022) along spatial ``axis``: the channels are cut like
    ``torch.chunk(x, shift_size, 1)`` (chunks of ``ceil(C / shift_size)``) and chunk ``g`` moves by
    ``(g - shift_size // 2) * dilation``."""
    if shift_size < 1 or dilation < 1:
        raise ValueError(f"axial shift: shift_size and dilation must be >= 1, got {shift_size} and {dilation}")
    chunk = math.ceil(channels / shift_size)
    groups = math.ceil(channels / chunk)  # torch.chunk may return fewer chunks than asked for
    bounds = [min(g * chunk, channels) for g in range(groups + 1)]
    displacements = []
    for g in range(groups):
        disp = [0] * dims
        disp[axis] = (g - shift_size // 2) * dilation
        displacements.append(disp)
    return _groups(channels, bounds, displacements)


def spatial_pattern(channels: int) -> Tensor:
    """S2-MLP's spatial shift (Yu et al. 2021): four channel quarters (``C//4``, ``C//2``, ``3C//4``
    boundaries, the last takes the remainder) move +1 and -1 along H, then +1 and -1 along W."""
    if channels < 4:
        raise ValueError(f"spatial shift: needs at least 4 channels (one per direction), got {channels}")
    bounds = [0, channels // 4, channels // 2, channels * 3 // 4, channels]
    return _groups(channels, bounds, [(1, 0), (-1, 0), (0, 1), (0, -1)])


def temporal_pattern(channels: int, fold_div: int = 8, bidirectional: bool = True) -> Tensor:
    """TSM's temporal shift (Lin et al. 2019) as ``(C, 1)`` shifts along time, ``fold = C // fold_div``.
    Bidirectional: channels ``[0, fold)`` read the next frame (-1), ``[fold, 2 fold)`` the previous
    one (+1). Online (uni-directional): only ``[0, fold)`` read the previous frame (+1)."""
    if bidirectional and fold_div < 2:
        raise ValueError(f"temporal shift: a bidirectional shift needs fold_div >= 2 (two groups of "
                         f"channels // fold_div), got {fold_div}")
    fold = channels // fold_div
    if fold == 0:
        raise ValueError(f"temporal shift: {channels} channels are fewer than fold_div={fold_div}: "
                         "no channel would move")
    if bidirectional:
        return _groups(channels, [0, fold, 2 * fold], [(-1,), (1,)])
    return _groups(channels, [0, fold], [(1,)])
