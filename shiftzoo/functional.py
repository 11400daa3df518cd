"""The functional form of every shift layer."""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

from . import _extension, _tabled, plugin_registry, reference
from ._sampling import CropArg, IntOrInts, Sampling
from ._validation import check_shift_args, is_integer_data

__all__ = ["shift"]


FillArg = Union[int, float, bool, Tensor, None]


def shift(input: Tensor, shifts: Tensor, padding: str = "zeros", interp: str = "linear",
          grad_interp: Optional[str] = None, *, stride: IntOrInts = 1, crop: CropArg = 0,
          fill: FillArg = None) -> Tensor:
    """Shifts every channel of ``input`` by its own real-valued displacement.

    ``out[n, c, x] = input[n, c, x - shifts[c]]`` (the sign of ``torch.roll``: a positive shift
    moves content toward higher indices), sampled with ``interp`` and with ``padding`` deciding
    what every tap outside the tensor reads. See docs/semantics.md for the exact definition.

    Args:
        input: ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``; float32/64, float16,
            bfloat16, or for whole-pixel shifts (``interp="nearest"``) integer or bool data
            (``int8``, ``uint8``, ``int16``, ``int32``, ``int64``, ``bool``), moved exactly;
            any strides (the output keeps the input's memory format).
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
        fill: integer and bool input only: what a tap outside the axis reads with the ``zeros``
            padding instead of 0 (a quantized tensor's zero point): a number, or a tensor of
            ``C`` values (one per channel). It must be representable in the input's dtype.

    The gradient to ``input`` is the exact adjoint of the forward for every padding. Gradients
    that are not required cost nothing. Double backward is not supported.
    """
    check_shift_args(input, shifts, integer_data=True)
    sampling = Sampling.of(input.dim() - 2, stride, crop, "shiftzoo.shift")
    pad = plugin_registry.get_padding(padding)
    fwd = plugin_registry.get_interp(interp)
    bwd = fwd if grad_interp is None else plugin_registry.get_interp(grad_interp)
    if is_integer_data(input):
        return _move_integers(input, shifts, pad, fwd, sampling, fill)
    if fill is not None:
        raise ValueError(f"shiftzoo.shift: fill applies to integer and bool input (e.g. a quantized tensor's zero "
                         f"point); {input.dtype} input reads zeros outside the axis")
    if not _extension.available():
        _require_finite(shifts)
        return reference.shift(input, shifts, pad.padding, fwd.interp, bwd.interp, sampling.stride, sampling.crop)
    if pad.compiled and fwd.compiled and bwd.compiled:
        return torch.ops.shiftzoo.shift(input, shifts, pad.name, fwd.name, bwd.name, *sampling.op_args())
    if not torch.compiler.is_compiling():
        _require_finite(shifts)
    return _tabled.shift(input, shifts, pad, fwd, bwd, sampling)


def _require_finite(shifts: Tensor) -> None:
    """What the compiled CPU ops check themselves, for the paths that plan in Python."""
    if not torch.isfinite(shifts).all():
        raise ValueError("shiftzoo.shift: shifts must be finite, got non-finite values")


def _move_integers(input: Tensor, shifts: Tensor, pad, interp, sampling: Sampling, fill: FillArg) -> Tensor:
    """The whole-pixel shift of integer or bool ``input``: its values move exactly (the inference
    form's op, which has no maps for such data); taps outside read ``fill``. No gradient."""
    if interp.name != "nearest":
        raise ValueError(f"shiftzoo.shift: {input.dtype} input moves by whole pixels only: use interp='nearest', "
                         f"got {interp.name!r} (it makes values between the integers)")
    if not pad.compiled:
        raise ValueError(f"shiftzoo.shift: the runtime padding {pad.name!r} takes floating-point input only; "
                         f"{input.dtype} input needs a compiled one "
                         f"({', '.join(p.name for p in plugin_registry.list_paddings() if p.compiled)})")
    fill_values = _fill_values(fill, input)
    shifts = shifts.detach()
    if not _extension.available():
        _require_finite(shifts)
        return reference.shift(input, shifts, pad.padding, interp.interp, stride=sampling.stride, crop=sampling.crop,
                               fill=fill_values)
    inf = float("inf")
    return torch.ops.shiftzoo.shift_affine(input, shifts, pad.name, *sampling.op_args(), None, None, -inf, inf,
                                           None, None, -inf, inf, fill_values)


def _fill_values(fill: FillArg, input: Tensor) -> Optional[Tensor]:
    """``fill`` as the op takes it, ``(C,)`` of ``input``'s dtype (None: zeros), checked to be
    representable exactly (a tensor's values only in eager mode: the check reads them)."""
    if fill is None:
        return None
    channels, dtype = input.shape[1], input.dtype
    if isinstance(fill, Tensor):
        if fill.dim() > 1 or fill.numel() not in (1, channels):
            raise ValueError(f"shiftzoo.shift: fill must be a number or {channels} values (one per channel), "
                             f"got shape {tuple(fill.shape)}")
        wanted = fill.detach().to(input.device).reshape(-1).expand(channels)
        values = wanted.to(dtype)
        if not torch.compiler.is_compiling() and not bool((values.to(wanted.dtype) == wanted).all()):
            raise ValueError(f"shiftzoo.shift: fill {fill.tolist()} is not representable in {dtype}")
        return values.contiguous()
    if not isinstance(fill, (bool, int, float)):
        raise TypeError(f"shiftzoo.shift: fill must be a number or a tensor, got {type(fill).__name__}")
    low, high = (0, 1) if dtype == torch.bool else (torch.iinfo(dtype).min, torch.iinfo(dtype).max)
    if not ((not isinstance(fill, float) or fill.is_integer()) and low <= fill <= high):
        raise ValueError(f"shiftzoo.shift: fill {fill} is not representable in {dtype}")
    return torch.full((channels,), int(fill), dtype=dtype, device=input.device)
