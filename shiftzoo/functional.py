"""The functional form of every shift layer."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import _extension, _tabled, plugin_registry, reference
from ._sampling import CropArg, IntOrInts, Sampling
from ._validation import check_shift_args

__all__ = ["shift"]


def shift(input: Tensor, shifts: Tensor, padding: str = "zeros", interp: str = "linear",
          grad_interp: Optional[str] = None, *, stride: IntOrInts = 1, crop: CropArg = 0) -> Tensor:
    """Shifts every channel of ``input`` by its own real-valued displacement.

    ``out[n, c, x] = input[n, c, x - shifts[c]]`` (the sign of ``torch.roll``: a positive shift
    moves content toward higher indices), sampled with ``interp`` and with ``padding`` deciding
    what every tap outside the tensor reads. See docs/semantics.md for the exact definition.

    Args:
        input: ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``; float32/64, float16,
            bfloat16; any strides (the output keeps the input's memory format).
        shifts: ``(C, d)``, one real shift per channel and spatial axis (column ``k`` for spatial
            axis ``k``), any floating dtype, finite, of any size.
        padding: ``"zeros"``, ``"border"``, ``"periodic"``, ``"reflect"``, ``"symmetric"``, or
            any registered padding (see :func:`shiftzoo.list_paddings`,
            :func:`shiftzoo.register_padding`).
        interp: ``"nearest"`` (the shift rounded half to even, as ``torch.round``), ``"linear"``,
            ``"cubic"`` (Keys, A = -0.75), or any registered interpolation (see
            :func:`shiftzoo.list_interps`, :func:`shiftzoo.register_interp`).
        grad_interp: the interpolation whose derivative gives the gradient to ``shifts``;
            ``None`` means ``interp``'s own (zero for nearest). SparseShift is
            ``interp="nearest", grad_interp="linear"``.
        stride: keep every ``stride``-th position (an int or one per axis); only the kept
            positions are computed.
        crop: positions dropped at the start and end of each axis before the stride applies: an
            int, one int per axis, or one ``(begin, end)`` pair per axis; negative values extend
            the axis through the padding. Output ``y`` of an axis of length ``n`` is the shifted
            map at ``begin + stride * y``, for the ``ceil((n - begin - end) / stride)`` positions
            of ``[begin, n - end)``: a depthwise convolution's sampling (see
            :meth:`shiftzoo.nn.ShiftLayer.from_depthwise`).

    The gradient to ``input`` is the exact adjoint of the forward for every padding. Gradients
    that are not required cost nothing. Double backward is not supported.
    """
    check_shift_args(input, shifts)
    sampling = Sampling.of(input.dim() - 2, stride, crop, "shiftzoo.shift")
    pad = plugin_registry.get_padding(padding)
    fwd = plugin_registry.get_interp(interp)
    bwd = fwd if grad_interp is None else plugin_registry.get_interp(grad_interp)
    if not _extension.available():
        if not torch.isfinite(shifts).all():
            raise ValueError("shiftzoo.shift: shifts must be finite, got non-finite values")
        return reference.shift(input, shifts, pad.padding, fwd.interp, bwd.interp, sampling.stride, sampling.crop)
    if pad.compiled and fwd.compiled and bwd.compiled:
        return torch.ops.shiftzoo.shift(input, shifts, pad.name, fwd.name, bwd.name, *sampling.op_args())
    if not torch.compiler.is_compiling() and not torch.isfinite(shifts).all():
        raise ValueError("shiftzoo.shift: shifts must be finite, got non-finite values")
    return _tabled.shift(input, shifts, pad, fwd, bwd, sampling)
