"""Pure-PyTorch reference implementation of the per-channel shift (docs/semantics.md).

This module is the float64 ground truth the compiled kernels are tested against, and the slow
fallback used when the compiled extension is missing. It is written for clarity, not speed.

Semantics, per spatial axis of length ``n`` and per channel with real shift ``s``::

    out[x] = sum_k w_k(f) * in[P(x + o + t_k)]

* the tap rule, one for every support ``K``: output ``x`` samples ``p = x - s``; the taps are anchored at
  ``a = floor(p)`` for even ``K`` (linear, cubic) and at ``a = round(p)`` (half to even, ``torch.round``) for odd
  ``K`` (nearest, quadratic); they are ``a - (K-1)//2 ... a + K//2`` and ``f = p - a`` (``[0, 1)`` for even K,
  ``[-1/2, 1/2]`` for odd K), so ``o = a - x`` is ``floor(-s)`` or ``round(-s)`` and ``t_k = k - (K-1)//2``;
* ``P`` is the padding function: it maps any integer index to ``[0, n)`` or to ``-1`` (zero).

Interpolation is separable: the axes are shifted one after another. Gradients come from plain
autograd: ``gather``'s backward accumulates (the exact adjoint for every padding), and the shift
gradient comes from the weights' dependence on ``f`` (``df/ds = -1``); tap indices are integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import torch
from torch import Tensor

from ._sampling import Sampling, output_length

__all__ = [
    "Interp",
    "INTERPS",
    "PADDINGS",
    "pad_zeros",
    "pad_border",
    "pad_periodic",
    "pad_reflect",
    "pad_symmetric",
    "shift",
    "shift_axis",
    "first_tap",
    "tap_start",
]

PaddingFn = Callable[[Tensor, int], Tensor]


# --------------------------------------------------------------------------------------------
# Paddings: (i: LongTensor of any integers, n) -> index in [0, n), or -1 for "zero".
# Each carries ``period(n)``: the period of the index map, or 0 if it saturates beyond the axis.
# --------------------------------------------------------------------------------------------

def _with_period(period: Callable[[int], int]) -> Callable[[PaddingFn], PaddingFn]:
    """Attach ``fn.period = period`` (0 = not periodic: saturates beyond the axis)."""

    def attach(fn: PaddingFn) -> PaddingFn:
        fn.period = period  # type: ignore[attr-defined]
        return fn

    return attach


@_with_period(lambda n: 0)
def pad_zeros(i: Tensor, n: int) -> Tensor:
    """``0 0 | a b c d | 0 0``: outside indices read zero."""
    return torch.where((i >= 0) & (i < n), i, torch.full_like(i, -1))


@_with_period(lambda n: 0)
def pad_border(i: Tensor, n: int) -> Tensor:
    """``a a | a b c d | d d``: clamp to the edge."""
    return i.clamp(0, n - 1)


@_with_period(lambda n: n)
def pad_periodic(i: Tensor, n: int) -> Tensor:
    """``c d | a b c d | a b``: wrap around (as ``torch.roll``)."""
    return torch.remainder(i, n)


@_with_period(lambda n: 2 * (n - 1) if n > 1 else 1)
def pad_reflect(i: Tensor, n: int) -> Tensor:
    """``c b | a b c d | c b``: mirror without repeating the edge (period ``2(n-1)``; n = 1 -> 0)."""
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    m = torch.remainder(i, period)
    return torch.where(m < n, m, period - m)


@_with_period(lambda n: 2 * n)
def pad_symmetric(i: Tensor, n: int) -> Tensor:
    """``b a | a b c d | d c``: mirror repeating the edge (period ``2n``)."""
    period = 2 * n
    m = torch.remainder(i, period)
    return torch.where(m < n, m, period - 1 - m)


PADDINGS: dict[str, PaddingFn] = {
    "zeros": pad_zeros,
    "border": pad_border,
    "periodic": pad_periodic,
    "reflect": pad_reflect,
    "symmetric": pad_symmetric,
}


# --------------------------------------------------------------------------------------------
# Interpolations: weights(f) -> f.shape + (K,), pure torch ops (differentiable).
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Interp:
    """An interpolation of ``support`` taps; ``weights(f)`` returns ``f.shape + (support,)``.

    For even support, ``f`` in ``[0, 1)`` is the distance from the tap ``floor(p)``; for odd support
    ``f`` in ``[-1/2, 1/2]`` is the distance from the centre tap (the rounded shift).
    """

    name: str
    support: int
    weights: Callable[[Tensor], Tensor]


def _nearest_weights(f: Tensor) -> Tensor:
    # Constant 1, but still attached to f so that the (exactly zero) shift gradient exists.
    return (torch.ones_like(f) + 0.0 * f).unsqueeze(-1)


def _linear_weights(f: Tensor) -> Tensor:
    return torch.stack((1.0 - f, f), dim=-1)


_KEYS_A = -0.75  # the F.grid_sample(mode="bicubic") convention


def _keys_near(x: Tensor) -> Tensor:
    """Keys kernel for |x| <= 1."""
    return ((_KEYS_A + 2.0) * x - (_KEYS_A + 3.0)) * x * x + 1.0


def _keys_far(x: Tensor) -> Tensor:
    """Keys kernel for 1 < |x| < 2."""
    return ((_KEYS_A * x - 5.0 * _KEYS_A) * x + 8.0 * _KEYS_A) * x - 4.0 * _KEYS_A


def _cubic_weights(f: Tensor) -> Tensor:
    # taps floor(p) - 1, floor(p), floor(p) + 1, floor(p) + 2 at distances 1+f, f, 1-f, 2-f
    return torch.stack((_keys_far(1.0 + f), _keys_near(f), _keys_near(1.0 - f), _keys_far(2.0 - f)), dim=-1)


def _quadratic_weights(f: Tensor) -> Tensor:
    # Dodgson's interpolating quadratic: taps round(p) - 1, round(p), round(p) + 1, f in [-1/2, 1/2]
    return torch.stack((f * f - 0.5 * f, 1.0 - 2.0 * f * f, f * f + 0.5 * f), dim=-1)


INTERPS: dict[str, Interp] = {
    "nearest": Interp("nearest", 1, _nearest_weights),
    "linear": Interp("linear", 2, _linear_weights),
    "quadratic": Interp("quadratic", 3, _quadratic_weights),
    "cubic": Interp("cubic", 4, _cubic_weights),
}


def _resolve_padding(padding: Union[str, PaddingFn]) -> PaddingFn:
    if callable(padding):
        return padding
    if padding not in PADDINGS:
        raise ValueError(f"unknown padding {padding!r}; expected one of {sorted(PADDINGS)}")
    return PADDINGS[padding]


def _resolve_interp(interp: Union[str, Interp]) -> Interp:
    if isinstance(interp, Interp):
        return interp
    if interp not in INTERPS:
        raise ValueError(f"unknown interp {interp!r}; expected one of {sorted(INTERPS)}")
    return INTERPS[interp]


# --------------------------------------------------------------------------------------------
# The shift
# --------------------------------------------------------------------------------------------

def first_tap(support: int) -> int:
    """The first tap relative to the anchor: ``-(K/2 - 1)`` for even ``K``, ``-(K-1)/2`` for odd ``K``."""
    return -((support - 1) // 2)


def tap_start(shifts: Tensor, n: int, padding_fn: PaddingFn, support: int,
              span: Optional[tuple[int, int]] = None) -> tuple[Tensor, Tensor]:
    """Where tap 0 of every channel starts, and the fraction its weights take (the tap rule).

    Returns ``start`` (int64, reduced through the padding's period so it fits) and ``f`` (float64),
    per channel: tap ``k`` at position ``x`` reads raw index ``x + start + k``, weighted by
    ``weights(f)[k]``; ``f`` is differentiable in ``shifts`` (``df/ds = -1``). ``span`` is the
    first and last position sampled (default ``(0, n - 1)``): a saturating padding's reduction keeps
    every tap of those positions on the side of the axis it was on.
    """
    neg = -shifts.to(torch.float64)
    whole = (torch.floor(neg) if support % 2 == 0 else torch.round(neg)).detach()
    frac = neg - whole  # df/ds = -1
    period_of = getattr(padding_fn, "period", None)
    period = int(period_of(n)) if period_of is not None else None
    if period is not None and period > 0:
        whole = torch.fmod(whole, period)  # exact in float64; the padding repeats with this period
    elif period == 0:
        # Saturating padding: beyond this every tap of every sampled position is outside the axis
        # on the same side anyway.
        first, last = (0, n - 1) if span is None else span
        reach = max(last, n - first) + support
        whole = whole.clamp(-reach, reach)
    # period None (a plugin without ``period``): used as is; it must then fit in int64.
    return whole.to(torch.int64) + first_tap(support), frac


def shift_axis(
    input: Tensor,
    shifts: Tensor,
    axis: int,
    padding_fn: Union[str, PaddingFn],
    interp: Union[str, Interp],
    stride: int = 1,
    crop: tuple[int, int] = (0, 0),
    fill: Optional[Tensor] = None,
) -> Tensor:
    """Shift every channel of ``input`` ``(N, C, *S)`` along one spatial axis.

    ``axis`` indexes the spatial dims (0 is tensor dim 2); ``shifts`` has shape ``(C,)``:
    ``out[n, c, ..., y, ...] = in[n, c, ..., p - shifts[c], ...]`` at the sampled positions
    ``p = crop[0] + stride * y`` (every position by default), with ``interp`` and ``padding_fn``
    applied to every tap; a tap that reads nothing reads ``fill[c]`` (``(C,)``; None: zero).
    Computed in ``input.dtype`` (floating or complex; integer or bool with a single tap: moved).
    """
    padding_fn = _resolve_padding(padding_fn)
    interp = _resolve_interp(interp)
    dim = 2 + axis
    n = input.shape[dim]
    channels = input.shape[1]
    support = interp.support
    size = output_length(n, stride, *crop)

    start, frac = tap_start(shifts, n, padding_fn, support, span=(crop[0], crop[0] + stride * (size - 1)))
    weight_dtype = input.dtype.to_real() if input.dtype.is_complex else input.dtype
    weights = interp.weights(frac.to(weight_dtype))  # (C, K)

    taps = torch.arange(support, device=input.device)
    positions = crop[0] + stride * torch.arange(size, device=input.device)
    raw = positions.view(1, size, 1) + start.to(input.device).view(channels, 1, 1) + taps.view(1, 1, support)
    index = padding_fn(raw, n) if n > 0 and raw.numel() > 0 else torch.full_like(raw, -1)  # (C, size, K), -1 = zero
    inside = index >= 0

    moved = input.movedim(dim, -1)  # (N, C, *rest, n)
    lead = (1, channels) + (1,) * (moved.dim() - 3)
    index = index.clamp(min=0).reshape(lead + (size * support,)).expand(moved.shape[:-1] + (size * support,))
    # (an empty axis reads nothing: a one-element stand-in keeps the gather in bounds)
    source = moved if n > 0 else moved.new_zeros(moved.shape[:-1] + (1,))
    gathered = torch.gather(source, -1, index).unflatten(-1, (size, support))  # (N, C, *rest, size, K)
    nothing = (torch.zeros((), dtype=input.dtype, device=input.device) if fill is None
               else fill.to(input.dtype).view(lead + (1, 1)))
    gathered = torch.where(inside.view(lead + (size, support)), gathered, nothing)
    if support == 1 and not (input.dtype.is_floating_point or input.dtype.is_complex):
        return gathered.squeeze(-1).movedim(-1, dim)  # integer data moves as it is (weight 1)
    out = (gathered * weights.view(lead + (1, support))).sum(-1)
    return out.movedim(-1, dim)


def _shift_all_axes(input: Tensor, shifts: Tensor, padding_fn: PaddingFn, interp: Interp,
                    sampling: Optional[Sampling] = None, fill: Optional[Tensor] = None) -> Tensor:
    # (axis by axis, a tap outside reading fill is the same as every combination with a tap
    # outside reading it: the weights of each axis sum to 1)
    out = input
    for axis in range(shifts.shape[1]):
        stride, crop = (1, (0, 0)) if sampling is None else (sampling.stride[axis], sampling.crop[axis])
        out = shift_axis(out, shifts[:, axis], axis, padding_fn, interp, stride, crop, fill)
    return out


def shift(
    input: Tensor,
    shifts: Tensor,
    padding: Union[str, PaddingFn] = "zeros",
    interp: Union[str, Interp] = "linear",
    grad_interp: Union[str, Interp, None] = None,
    stride: Union[int, Sequence[int]] = 1,
    crop: Union[int, Sequence[Union[int, Sequence[int]]]] = 0,
    fill: Optional[Tensor] = None,
) -> Tensor:
    """Per-channel shift of ``input`` ``(N, C, *S)`` (1 to 3 spatial dims) by ``shifts`` ``(C, d)``.

    ``out[n, c, x] = in[n, c, x - shifts[c]]`` (the sign of ``torch.roll``), sampled with ``interp``
    (``"nearest"`` rounds the shift half to even, ``"linear"``, ``"cubic"``) and ``padding``
    (``"zeros"``, ``"border"``, ``"periodic"``, ``"reflect"``, ``"symmetric"``, or a padding function).
    ``stride`` and ``crop`` keep only some positions (see :mod:`shiftzoo._sampling`): output ``y``
    of an axis is position ``crop_begin + stride * y`` of the shifted map.

    ``grad_interp`` (None = ``interp``) names the interpolation whose derivative gives the gradient
    to the shifts; when it differs, a straight-through construction keeps the output and the input
    gradient of ``interp`` (e.g. SparseShift: ``interp="nearest", grad_interp="linear"``).

    A tap that reads nothing (the zeros padding outside the axis) reads ``fill[c]`` (``(C,)``,
    None: zero) instead of zero.

    float16/bfloat16 are computed in float32; integer/bool inputs are moved exactly by a
    single-tap interpolation (nearest), else computed in float64 and rounded back; the result
    has ``input``'s dtype.
    """
    padding_fn = _resolve_padding(padding)
    interp = _resolve_interp(interp)
    grad_interp = interp if grad_interp is None else _resolve_interp(grad_interp)
    if not 3 <= input.dim() <= 5:
        raise ValueError(f"input must be (N, C, *S) with 1 to 3 spatial dims, got shape {tuple(input.shape)}")
    expected = (input.shape[1], input.dim() - 2)
    if tuple(shifts.shape) != expected:
        raise ValueError(f"shifts must have shape {expected} for input {tuple(input.shape)}, got {tuple(shifts.shape)}")

    dtype = input.dtype
    if dtype in (torch.float16, torch.bfloat16):
        work = input.to(torch.float32)
    elif dtype.is_floating_point or dtype.is_complex or (interp.support == 1 and grad_interp is interp):
        work = input
    else:
        work = input.to(torch.float64)

    sampling = Sampling.of(input.dim() - 2, stride, crop, "reference.shift")
    if grad_interp is interp:
        out = _shift_all_axes(work, shifts, padding_fn, interp, sampling, fill)
    else:
        value = _shift_all_axes(work, shifts.detach(), padding_fn, interp, sampling, fill)
        surrogate = _shift_all_axes(work.detach(), shifts, padding_fn, grad_interp, sampling, fill)
        out = value + (surrogate - surrogate.detach())

    if work.dtype is dtype:
        return out
    if not (dtype.is_floating_point or dtype.is_complex):
        out = torch.round(out)
    return out.to(dtype)
