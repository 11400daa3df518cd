"""ONNX export of models with shift layers, in standard ONNX operators only.

``torch.onnx.export(..., dynamo=True)`` meets shiftzoo's compiled ops (``shiftzoo::shift``,
``shiftzoo::shift_affine``) as single nodes of the exported program. :func:`onnx_translations`
gives the translations the exporter needs for them (its ``custom_translation_table``): each op
becomes a small graph of default-domain ONNX operators that computes exactly what
docs/semantics.md defines, so any ONNX runtime can run the model without shiftzoo.
:func:`export_onnx` is the one-call form (a dynamic batch axis and ``onnx.checker`` included).

How an op is translated. The string and integer arguments (padding, interpolation, stride, crop)
arrive as Python values, so the graph is specialised to them in Python; the shifts arrive as a
tensor whose values are not read (they may be a parameter, a buffer or computed), so the tap rule
is written with ONNX arithmetic on them. The interpolation is separable: the axes are shifted one
after another. Per spatial axis of length ``n``, for every channel ``c``, kept position ``y`` and
tap ``t``:

* ``whole[c] = floor(-s[c])`` (even support) or ``round(-s[c])`` (odd support; ONNX ``Round``
  rounds half to even, as ``torch.round``), in float64; ``f[c] = -s[c] - whole[c]`` gives the
  weights;
* ``whole`` is brought into a small range without changing what any tap reads, as the compiled
  op does (``backends/core/tap_rule.h``): ``fmod`` by the padding's period, or a clamp to the
  saturation reach for paddings that saturate, before the cast to int64; shifts like ``1e30``
  therefore never overflow;
* the raw tap index ``begin + stride * y + whole[c] + first_tap + t`` goes through the padding's
  index map, and ``GatherND`` (one batch axis: the channel) reads the taps of every channel at
  once; the weighted taps are summed.

Spatial lengths are read from the input's shape at run time, so every axis of the input (batch and
spatial) may be dynamic; the optimizer folds what is static.
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from . import _extension, plugin_registry

__all__ = ["export_onnx", "onnx_translations", "ShiftExportError", "ONNX_PADDINGS", "ONNX_INTERPS"]

_INSTALL_HINT = "pip install onnx onnxscript onnxruntime"

# The compiled plugins this module translates (runtime plugins never export: see ShiftExportError).
ONNX_PADDINGS: Tuple[str, ...] = ("zeros", "border", "periodic", "reflect", "symmetric")
ONNX_INTERPS: Tuple[str, ...] = ("nearest", "linear", "quadratic", "cubic")


class ShiftExportError(RuntimeError):
    """A shift that cannot be exported to ONNX (a runtime plugin, an unknown compiled plugin)."""


# ---------------------------------------------------------------------------------------------
# Lazy imports: `import shiftzoo` must not pay for (or need) onnx and onnxscript.
# ---------------------------------------------------------------------------------------------

def _opset():
    """onnxscript's opset 18 (the exporter's own translation library targets it)."""
    try:
        from onnxscript import opset18
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"shiftzoo ONNX export needs onnx and onnxscript: {_INSTALL_HINT}") from exc
    return opset18


def _ir():
    import onnx_ir  # a dependency of onnxscript

    return onnx_ir


def _np():
    import numpy  # a dependency of onnx (shiftzoo itself does not need it)

    return numpy


# ---------------------------------------------------------------------------------------------
# Interpolations. Every compiled interpolation's weights are polynomials in the fraction f
# (plugins/interp/*.h, shiftzoo/reference.py): weight j is sum_e COEFFICIENTS[e][j] * f^e, so the
# graph computes all of them at once, [1, f, f^2, ...] (C, degree + 1) times the table (degree + 1, K).
# ---------------------------------------------------------------------------------------------

_KEYS_A = -0.75  # Keys' cubic, as F.grid_sample(mode="bicubic")

# name -> (support K, coefficient table: row e holds the f^e coefficient of each tap, or None for
# a single tap of weight 1)
_INTERPS: Dict[str, Tuple[int, Optional[Tuple[Tuple[float, ...], ...]]]] = {
    "nearest": (1, None),
    # taps floor(p), floor(p) + 1: 1 - f, f
    "linear": (2, ((1.0, 0.0),
                   (-1.0, 1.0))),
    # Dodgson's quadratic, taps round(p) - 1, round(p), round(p) + 1: f^2 - f/2, 1 - 2 f^2, f^2 + f/2
    "quadratic": (3, ((0.0, 1.0, 0.0),
                      (-0.5, 0.0, 0.5),
                      (1.0, -2.0, 1.0))),
    # Keys, taps floor(p) - 1 ... floor(p) + 2: W(1 + f), W(f), W(1 - f), W(2 - f) expanded in f:
    # A (f - 2 f^2 + f^3), 1 - (A + 3) f^2 + (A + 2) f^3, -A f + (2A + 3) f^2 - (A + 2) f^3, A (f^2 - f^3)
    "cubic": (4, ((0.0, 1.0, 0.0, 0.0),
                  (_KEYS_A, 0.0, -_KEYS_A, 0.0),
                  (-2.0 * _KEYS_A, -(_KEYS_A + 3.0), 2.0 * _KEYS_A + 3.0, _KEYS_A),
                  (_KEYS_A, _KEYS_A + 2.0, -(_KEYS_A + 2.0), -_KEYS_A))),
}


def _tap_weights(op, f, coefficients):
    """The tap weights (C, K), float64, from the fraction f (C,) and a coefficient table."""
    np = _np()
    powers = np.arange(len(coefficients), dtype=np.float64)  # f^0 = 1 for every f, 0 included
    basis = op.Pow(op.Unsqueeze(f, _i64(op, [1])), _const(op, powers))  # (C, degree + 1)
    return op.MatMul(basis, _const(op, np.array(coefficients, dtype=np.float64)))


# ---------------------------------------------------------------------------------------------
# Paddings: the index map P of plugins/padding/*.h on int64 graph values, for an axis of length n
# (an int64 scalar, n >= 1) and the padding's period there (None: it saturates). Each returns
# (index in [0, n), inside or None): inside is False where the tap reads nothing (zeros only),
# and the index there is any valid one.
# ---------------------------------------------------------------------------------------------

def _pad_zeros(op, i, n, period):
    inside = op.And(op.GreaterOrEqual(i, 0), op.Less(i, n))
    return op.Clip(i, _i64(op, 0), op.Sub(n, 1)), inside


def _pad_border(op, i, n, period):
    return op.Clip(i, _i64(op, 0), op.Sub(n, 1)), None


def _pad_periodic(op, i, n, period):
    return op.Mod(i, n), None  # fmod=0: the sign of the divisor, as Python's %


def _pad_reflect(op, i, n, period):
    # for n = 1 every index maps to 0: the period is then 1 and Mod(i, 1) = 0 < n does it
    r = op.Mod(i, period)
    return op.Where(op.Less(r, n), r, op.Sub(period, r)), None


def _pad_symmetric(op, i, n, period):
    r = op.Mod(i, period)
    return op.Where(op.Less(r, n), r, op.Sub(op.Sub(period, 1), r)), None


def _period_saturates(op, n):
    return None


def _period_n(op, n):
    return n


def _period_reflect(op, n):
    return op.Max(op.Mul(op.Sub(n, 1), 2), _i64(op, 1))  # 2(n - 1), and 1 for n = 1


def _period_2n(op, n):
    return op.Mul(n, 2)


# name -> (index map, period(op, n): int64 scalar, or None where the padding saturates)
_PADDINGS: Dict[str, Tuple[Callable, Callable]] = {
    "zeros": (_pad_zeros, _period_saturates),
    "border": (_pad_border, _period_saturates),
    "periodic": (_pad_periodic, _period_n),
    "reflect": (_pad_reflect, _period_reflect),
    "symmetric": (_pad_symmetric, _period_2n),
}


# ---------------------------------------------------------------------------------------------
# Graph pieces
# ---------------------------------------------------------------------------------------------

def _i64(op, values: Union[int, Sequence[int]]):
    """An int64 constant: a scalar for an int, 1-D for a list."""
    if isinstance(values, int):
        return op.Constant(value_int=values)
    return op.Constant(value_ints=list(values))


def _axis_length(op, x, dim: int):
    """Length of `x`'s axis `dim` at run time, as an int64 scalar."""
    return op.Squeeze(op.Shape(x, start=dim, end=dim + 1))


def _output_length(op, n, stride: int, begin: int, end: int):
    """ceil((n - begin - end) / stride), 0 for an empty span (shiftzoo._sampling.output_length)."""
    span = op.Max(op.Sub(n, begin + end), _i64(op, 0))
    return op.Div(op.Add(span, stride - 1), stride)  # non-negative: Div truncates = floors


def _axis_taps(op, shift, n, support: int, padding: str, stride: int, begin: int, end: int):
    """What every channel reads along one axis of length `n` (int64 scalar, n >= 1).

    `shift` is the channel's shift along the axis, (C,) float64. Returns (index, inside, fraction):
    index (C, m, K) int64 in [0, n) for the m kept positions, inside (C, m, K) bool or None (None:
    every tap reads), and the fraction f (C,) float64 that gives the weights.
    """
    index_map, period_of = _PADDINGS[padding]
    neg = op.Neg(shift)
    # the tap rule's anchor: floor for even K, round half to even (ONNX Round) for odd K
    whole = op.Floor(neg) if support % 2 == 0 else op.Round(neg)
    fraction = op.Sub(neg, whole)
    size = _output_length(op, n, stride, begin, end)
    period = period_of(op, n)
    if period is not None:
        # the padding repeats every `period` indices: fmod is exact in float64 (|fmod| < period)
        whole = op.Mod(whole, op.Cast(period, to=_ir().DataType.DOUBLE), fmod=1)
    else:
        # a saturating padding reads alike once every tap of every kept position lies beyond the
        # axis on one side: clamp to the reach of backends/core/tap_rule.h (saturation_reach)
        last = op.Add(op.Mul(op.Max(op.Sub(size, 1), _i64(op, 0)), stride), begin)
        reach = op.Add(op.Max(last, op.Sub(n, begin)), support)
        reach = op.Cast(reach, to=_ir().DataType.DOUBLE)
        whole = op.Clip(whole, op.Neg(reach), reach)
    first_tap = -((support - 1) // 2)
    start = op.Add(op.Cast(whole, to=_ir().DataType.INT64), first_tap)  # (C,): tap 0 of position 0
    positions = op.Range(_i64(op, begin), op.Add(op.Mul(size, stride), begin), _i64(op, stride))  # (m,)
    raw = op.Add(op.Add(op.Unsqueeze(start, _i64(op, [1, 2])),  # (C, 1, 1)
                        op.Unsqueeze(positions, _i64(op, [0, 2]))),  # (1, m, 1)
                 op.Unsqueeze(_i64(op, list(range(support))), _i64(op, [0])))  # (1, 1, K)
    index, inside = index_map(op, raw, n, period)
    return index, inside, fraction


def _gather_axis(op, work, index, inside, weights, outside, rank: int, dtype):
    """Shifts `work` (C, n, *rest) along its axis 1: (C, m, *rest).

    index, inside: (C, m, K) from _axis_taps; weights: (C, K) float64, or None for a single tap
    of weight 1; outside: what a tap reading nothing gives, (C,) or None for 0.
    """
    rest = list(range(3, rank + 1))  # the axes of *rest in (C, m, K, *rest)
    taps = op.GatherND(work, op.Unsqueeze(index, _i64(op, [3])), batch_dims=1)  # (C, m, K, *rest)
    if inside is not None:
        mask = op.Unsqueeze(inside, _i64(op, rest))
        if outside is None:
            value = op.CastLike(_i64(op, 0), taps)
        else:
            value = op.Unsqueeze(outside, _i64(op, [1, 2] + rest))  # (C, 1, 1, 1...)
        # Where, not a zero weight: a tap that reads nothing must not turn inf or NaN into NaN
        taps = _where(op, mask, taps, value, dtype)
    if weights is None:
        return op.Squeeze(taps, _i64(op, [2]))
    weights = op.Unsqueeze(op.Cast(weights, to=dtype), _i64(op, [1] + rest))  # (C, 1, K, 1...)
    return op.ReduceSum(op.Mul(taps, weights), _i64(op, [2]), keepdims=0)


# dtypes that onnxruntime's Where has no kernel for: it runs on int32 and casts back (exact)
_WHERE_VIA_INT32 = ("INT16", "BOOL")


def _where(op, mask, a, b, dtype):
    """Where(mask, a, b) for data of any dtype (a's)."""
    if dtype.name not in _WHERE_VIA_INT32:
        return op.Where(mask, a, b)
    int32 = _ir().DataType.INT32
    return op.Cast(op.Where(mask, op.Cast(a, to=int32), op.Cast(b, to=int32)), to=dtype)


def _compose(first: Sequence[int], then: Sequence[int]) -> List[int]:
    """The permutation of Transpose(Transpose(x, first), then)."""
    return [first[p] for p in then]


def _static_empty_axis(shape, dims: int) -> bool:
    """Whether a spatial axis is known to be empty (every tap then reads nothing)."""
    return shape is not None and any(isinstance(shape[2 + k], int) and shape[2 + k] == 0 for k in range(dims))


def _shift_graph(op, x, dtype, shape, shifts, padding: str, interp: str, stride: Sequence[int],
                 crop_begin: Sequence[int], crop_end: Sequence[int], outside=None):
    """out[n, c, y] = sum of weighted taps of x (N, C, *S) per docs/semantics.md, in x's dtype
    `dtype` (x's shape as the exporter knows it: `shape`).

    `outside` (C,) replaces 0 as what a tap reading nothing gives (shift_affine's fill; nearest only).
    """
    ir = _ir()
    support, coefficients = _INTERPS[interp]
    dims = len(stride)
    rank = dims + 2
    if _static_empty_axis(shape, dims):
        return _reads_nothing(op, x, stride, crop_begin, crop_end, outside)
    shifts = op.Cast(shifts, to=ir.DataType.DOUBLE)
    # Layout (C, S_0, ..., S_{d-1}, N): the axis being shifted sits at 1, behind the channel that
    # GatherND takes as its batch axis. After each axis, rotate the spatial axes left by one.
    perm_in = list(range(1, rank)) + [0]
    rotate = [0] + list(range(2, rank)) + [1]
    work = op.Transpose(x, perm=perm_in)
    for k in range(dims):
        n = _axis_length(op, x, 2 + k)
        shift = op.Gather(shifts, _i64(op, k), axis=1)  # (C,)
        index, inside, fraction = _axis_taps(op, shift, n, support, padding, stride[k], crop_begin[k],
                                                crop_end[k])
        weights = None if coefficients is None else _tap_weights(op, fraction, coefficients)
        work = _gather_axis(op, work, index, inside, weights, outside, rank, dtype)
        if k < dims - 1:
            work = op.Transpose(work, perm=rotate)
    # now (C, m_{d-1}, N, m_0, ..., m_{d-2}): rotate once more, to (C, N, m_0, ...), and swap C and N
    back = [1, 0] + list(range(2, rank))
    return op.Transpose(work, perm=_compose(rotate, back))


def _reads_nothing(op, x, stride, crop_begin, crop_end, outside):
    """The output where an axis is empty: every tap reads nothing (0, or `outside`)."""
    sizes = [_output_length(op, _axis_length(op, x, 2 + k), stride[k], crop_begin[k], crop_end[k])
             for k in range(len(stride))]
    shape = op.Concat(op.Shape(x, start=0, end=2), *[op.Unsqueeze(m, _i64(op, [0])) for m in sizes], axis=0)
    if outside is None:
        return op.Expand(op.CastLike(_i64(op, 0), x), shape)
    view = op.Unsqueeze(outside, _i64(op, [0] + list(range(2, len(stride) + 2))))
    return op.Expand(op.CastLike(view, x), shape)


def _check_plugins(what: str, padding: str, interp: str) -> None:
    for kind, name, table in (("padding", padding, _PADDINGS), ("interp", interp, _INTERPS)):
        if name not in table:
            raise ShiftExportError(
                f"shiftzoo ONNX export: {what} with {kind} {name!r}, which has no ONNX translation "
                f"(translated: paddings {', '.join(ONNX_PADDINGS)}; interps {', '.join(ONNX_INTERPS)})")


_FLOAT_LOW = ("FLOAT16", "BFLOAT16")  # computed in float32, as the op accumulates them


def _widened(op, x):
    """(x in its compute dtype, that dtype, the dtype to cast the result back to or None)."""
    ir = _ir()
    if x.dtype.name in _FLOAT_LOW:
        return op.Cast(x, to=ir.DataType.FLOAT), ir.DataType.FLOAT, x.dtype
    return x, x.dtype, None


def _is_data(dtype) -> bool:
    """Integer or bool data (shift_affine moves it as it is, without maps)."""
    return dtype is not None and not dtype.is_floating_point()


# ---------------------------------------------------------------------------------------------
# The translations (custom_translation_table values)
# ---------------------------------------------------------------------------------------------

def shift_to_onnx(input, shifts, padding: str, interp: str, grad_interp: str, stride: Sequence[int],
                  crop_begin: Sequence[int], crop_end: Sequence[int]):
    """ONNX translation of ``shiftzoo::shift`` (``grad_interp`` only matters to autograd)."""
    op = _opset()
    _check_plugins("shiftzoo::shift", padding, interp)
    if _is_data(input.dtype):  # (the op takes floating input only)
        raise ShiftExportError(f"shiftzoo ONNX export: shiftzoo::shift of {input.dtype} input")
    x, dtype, back = _widened(op, input)
    out = _shift_graph(op, x, dtype, input.shape, shifts, padding, interp, stride, crop_begin, crop_end)
    return out if back is None else op.Cast(out, to=back)


def _channel_map(op, v, scale, bias, lo: float, hi: float, channel_axis_view: List[int]):
    """v -> clamp(v * scale[c] + bias[c], lo, hi) (scale and bias (C,) or None; infinite bound: none).

    The op rounds the product and sum once (fma); here they round twice (Mul, Add): the results may
    differ by an ulp.
    """
    if scale is not None:
        scale = op.CastLike(op.Unsqueeze(scale, _i64(op, channel_axis_view)), v)
        bias = op.CastLike(op.Unsqueeze(bias, _i64(op, channel_axis_view)), v)
        v = op.Add(op.Mul(v, scale), bias)
    if lo > -math.inf or hi < math.inf:
        # one Clip with the finite bounds (the bounds rounded to v's dtype, as the op's kernels do)
        low = op.CastLike(_f64(op, lo), v) if lo > -math.inf else None
        high = op.CastLike(_f64(op, hi), v) if hi < math.inf else None
        v = op.Clip(v, low, high)
    return v


def _f64(op, value: float):
    """A float64 scalar constant (the bounds come as Python floats in double precision)."""
    np = _np()
    return _const(op, np.array(value, dtype=np.float64))


def _const(op, array):
    """A constant holding a numpy array, in its dtype."""
    return op.Constant(value=_ir().tensor(array))


def shift_affine_to_onnx(input, shifts, padding: str, stride: Sequence[int], crop_begin: Sequence[int],
                         crop_end: Sequence[int], pre_scale=None, pre_bias=None, pre_min: float = -math.inf,
                         pre_max: float = math.inf, post_scale=None, post_bias=None, post_min: float = -math.inf,
                         post_max: float = math.inf, fill=None):
    """ONNX translation of ``shiftzoo::shift_affine``: post(shift_nearest(pre(input))), where a tap
    that reads nothing gives post(fill[c]) (fill None: 0)."""
    op = _opset()
    _check_plugins("shiftzoo::shift_affine", padding, "nearest")
    dims = len(stride)
    view = [0] + list(range(2, dims + 2))  # (C,) -> (1, C, 1, ...)
    has_maps = (pre_scale is not None or post_scale is not None or
                (pre_min, pre_max, post_min, post_max) != (-math.inf, math.inf, -math.inf, math.inf))
    if _is_data(input.dtype) and has_maps:  # (the op refuses them too)
        raise ShiftExportError(f"shiftzoo ONNX export: shiftzoo::shift_affine of {input.dtype} input with maps")
    x, dtype, back = _widened(op, input)
    # The maps are per channel and a whole-pixel shift only moves values: pre runs on the input,
    # before the move; a tap that reads nothing gives fill, which then meets post like any value.
    x = _channel_map(op, x, pre_scale, pre_bias, pre_min, pre_max, view)
    outside = None if fill is None else op.CastLike(fill, x)
    out = _shift_graph(op, x, dtype, input.shape, shifts, padding, "nearest", stride, crop_begin, crop_end,
                       outside=outside)
    out = _channel_map(op, out, post_scale, post_bias, post_min, post_max, view)
    return out if back is None else op.Cast(out, to=back)


def shift_tabled_to_onnx(input, offsets, tables, weights, grad_offsets, grad_tables, grad_weights, padding: str,
                         stride: Sequence[int], crop_begin: Sequence[int], crop_end: Sequence[int]):
    """``shiftzoo::shift_tabled`` (runtime plugins): refused."""
    raise ShiftExportError(_tabled_message(padding))


def _tabled_message(padding: str) -> str:
    try:
        runtime_padding = not plugin_registry.get_padding(padding).compiled
    except Exception:  # an unregistered name: say what the op said
        runtime_padding = True
    culprit = (f"the runtime padding plugin {padding!r}" if runtime_padding else
               f"a runtime interpolation plugin (as interp or grad_interp; padding {padding!r} is compiled)")
    return (f"shiftzoo ONNX export: a shift uses {culprit}, registered in Python with "
            "shiftzoo.register_padding / register_interp; only compiled paddings "
            f"({', '.join(ONNX_PADDINGS)}) and interpolations ({', '.join(ONNX_INTERPS)}) export to ONNX")


def onnx_translations() -> Dict[Callable, Callable]:
    """The ``custom_translation_table`` for ``torch.onnx.export(..., dynamo=True)``: every shiftzoo op
    to its ONNX translation (standard ONNX operators, default domain).

    Raises ImportError (with the packages to install) if onnxscript is missing. Without the
    compiled extension (the pure-PyTorch fallback) models contain no shiftzoo op: the table is empty.
    """
    _opset()
    if not _extension.available():
        return {}
    ops = torch.ops.shiftzoo
    return {
        ops.shift.default: shift_to_onnx,
        ops.shift_affine.default: shift_affine_to_onnx,
        ops.shift_tabled.default: shift_tabled_to_onnx,
    }


# ---------------------------------------------------------------------------------------------
# One call
# ---------------------------------------------------------------------------------------------

def _check_layers(model: nn.Module) -> None:
    """Refuses, before tracing, the shift layers that use runtime plugins (naming them)."""
    from .nn.layers import ShiftLayer

    for name, layer in model.named_modules():
        if not isinstance(layer, ShiftLayer):
            continue
        plugins = [("padding", layer.padding, plugin_registry.get_padding), ("interp", layer.interp,
                                                                             plugin_registry.get_interp)]
        if layer.grad_interp is not None:
            plugins.append(("grad_interp", layer.grad_interp, plugin_registry.get_interp))
        for kind, plugin, get in plugins:
            if not get(plugin).compiled:
                raise ShiftExportError(
                    f"shiftzoo ONNX export: layer {name or type(layer).__name__!r} uses the runtime {kind} plugin "
                    f"{plugin!r}; only compiled paddings ({', '.join(ONNX_PADDINGS)}) and interpolations "
                    f"({', '.join(ONNX_INTERPS)}) export to ONNX")


def _our_error(exc: BaseException) -> Optional[ShiftExportError]:
    """The ShiftExportError that `exc` was raised from, if any (the exporter wraps errors)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ShiftExportError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def export_onnx(model: nn.Module, example: Union[torch.Tensor, Tuple[Any, ...]],
                path: Union[str, os.PathLike, None] = None, *, dynamic_batch: bool = True,
                opset_version: Optional[int] = None, **kwargs: Any):
    """Exports ``model`` to ONNX in one call and checks the result; returns the ``torch.onnx.ONNXProgram``.

    ``torch.onnx.export(model, example, dynamo=True)`` with shiftzoo's translations
    (:func:`onnx_translations`, merged with any ``custom_translation_table`` in ``kwargs``), axis 0 of
    every tensor input dynamic (``dynamic_batch``; not when ``kwargs`` has ``dynamic_shapes``), then
    ``onnx.checker.check_model``. The model is saved to ``path`` when given (large weights go to an
    external data file beside it, as torch decides). ``kwargs`` go to ``torch.onnx.export``.

    torch.export specialises axes of size 1: an example tensor of batch 1 is repeated to batch 2 for
    tracing when the batch is dynamic (the model must treat the samples of a batch independently,
    as inference models do).

    Raises :class:`ShiftExportError` for a shift layer with a runtime plugin, ImportError (with
    ``pip install onnx onnxscript onnxruntime``) without onnx/onnxscript.
    """
    table = dict(onnx_translations())
    import onnx

    _check_layers(model)
    args = (example,) if isinstance(example, torch.Tensor) else tuple(example)
    table.update(kwargs.pop("custom_translation_table", None) or {})
    if dynamic_batch and "dynamic_shapes" not in kwargs and "dynamic_axes" not in kwargs:
        batch = torch.export.Dim("batch")
        args = tuple(torch.cat([a, a]) if isinstance(a, torch.Tensor) and a.dim() > 0 and a.shape[0] == 1 else a
                     for a in args)
        kwargs["dynamic_shapes"] = tuple({0: batch} if isinstance(a, torch.Tensor) and a.dim() > 0 else None
                                         for a in args)
    try:
        program = torch.onnx.export(model, args, dynamo=True, custom_translation_table=table,
                                    opset_version=opset_version, **kwargs)
    except Exception as exc:
        ours = _our_error(exc)
        if ours is not None:
            raise ShiftExportError(str(ours)) from exc
        raise
    if path is not None:
        program.save(os.fspath(path))
        onnx.checker.check_model(os.fspath(path))  # by path: external data are read from beside it
    else:
        onnx.checker.check_model(program.model_proto)
    return program
