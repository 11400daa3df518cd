"""The shift for runtime plugins: planned here with torch ops (index tables from the padding
function, tap weights from the interpolation), computed by the compiled ``shift_tabled`` op,
whose kernels are the built-in ones reading the tables.

The gradient to the shifts flows through the weights: the op returns d loss / d weights of the
``grad_interp`` plan and autograd carries it through ``weights(f(shifts))``.
"""
from __future__ import annotations

from typing import List, NamedTuple

import torch
from torch import Tensor

from . import reference
from ._sampling import Sampling, output_length
from .plugin_registry import PluginInfo

_UNPERIODIC_LIMIT = 2.0**53  # beyond this an unreduced offset is no longer exact
_NON_FINITE = -(2**63)  # the offset that marks a non-finite shift (backends/core/host_plan.h rejects it)


class TapPlan(NamedTuple):
    offsets: Tensor  # (C, d) int64: raw index of tap 0 for output 0 (the crop included)
    tables: List[Tensor]  # d x (C, stride * (m - 1) + K) int64: what each raw tap index reads, or -1
    weights: Tensor  # (C, d, K) float64: tap weights, differentiable in the shifts


def plan(input_shape, shifts: Tensor, padding: PluginInfo, interp: PluginInfo, sampling: Sampling) -> TapPlan:
    """The taps every channel reads along every axis, at the positions ``sampling`` keeps
    (docs/semantics.md): tap ``t`` of output ``y`` reads raw index ``stride * y + offset + t``."""
    support = interp.support
    offsets, tables, weights = [], [], []
    for k, n in enumerate(input_shape[2:]):
        if getattr(padding.padding, "period", None) is None and not torch.compiler.is_compiling():
            if shifts.numel() and shifts[:, k].abs().max() > _UNPERIODIC_LIMIT:
                raise ValueError(
                    f"shiftzoo: padding {padding.name!r} declares no period, so shifts beyond ±2**53 "
                    "cannot be reduced exactly; register it with period=... (0 if it saturates)")
        stride, (begin, end) = sampling.stride[k], sampling.crop[k]
        size = output_length(n, stride, begin, end)
        start, frac = reference.tap_start(shifts[:, k], n, padding.padding, support,
                                          span=(begin, begin + stride * (size - 1)))
        offset = start + begin
        if torch.compiler.is_compiling():  # no raising here: mark non-finite shifts for the op to reject
            offset = torch.where(torch.isfinite(shifts[:, k]), offset, torch.full_like(offset, _NON_FINITE))
        length = stride * (size - 1) + support if size > 0 else 0
        raw = offset.view(-1, 1) + torch.arange(length, device=shifts.device)
        # an empty axis has no index to give: every tap reads nothing
        table = _call(padding, padding.padding, raw, n) if n > 0 and raw.numel() > 0 else torch.full_like(raw, -1)
        _check_table(padding, table, raw)
        tables.append(table.to(torch.int64).contiguous())
        offsets.append(offset)
        weights.append(_checked_weights(interp, _call(interp, interp.interp.weights, frac), frac))
    return TapPlan(torch.stack(offsets, 1), tables, torch.stack(weights, 1))


def _call(plugin: PluginInfo, fn, *args):
    """Calls a plugin's function; what it raises comes back naming the plugin."""
    try:
        return fn(*args)
    except Exception as exc:
        raise RuntimeError(f"shiftzoo: {plugin.kind} {plugin.name!r} raised {type(exc).__name__}: {exc}") from exc


def _check_table(padding: PluginInfo, table, raw: Tensor) -> None:
    """A padding returns integer indices of its input's shape (their range the op checks)."""
    if (not isinstance(table, Tensor) or tuple(table.shape) != tuple(raw.shape) or table.dtype == torch.bool
            or table.is_floating_point() or table.is_complex()):
        got = f"{table.dtype} of shape {tuple(table.shape)}" if isinstance(table, Tensor) else type(table).__name__
        raise ValueError(f"shiftzoo: padding {padding.name!r} must return an integer tensor of its input's shape "
                         f"{tuple(raw.shape)}, got {got}")


def _checked_weights(interp: PluginInfo, w, f: Tensor) -> Tensor:
    """A runtime interpolation's weights for this call: of shape ``f.shape + (K,)``, floating, and
    (checked outside torch.compile: it reads the values) finite and summing to 1."""
    support = interp.support
    if not isinstance(w, Tensor) or tuple(w.shape) != tuple(f.shape) + (support,) or not w.is_floating_point():
        got = f"{w.dtype} of shape {tuple(w.shape)}" if isinstance(w, Tensor) else type(w).__name__
        raise ValueError(f"shiftzoo: interp {interp.name!r}: weights(f) must return floating weights of shape "
                         f"f.shape + ({support},) = {tuple(f.shape) + (support,)}, got {got}")
    if not interp.compiled and not torch.compiler.is_compiling():
        tolerance = max(1e-6, 8 * torch.finfo(w.dtype).eps)
        bad = ~torch.isfinite(w).all(-1) | ((w.detach().sum(-1) - 1).abs() > tolerance)
        if bad.any():
            at = bad.nonzero()[0].tolist()
            raise ValueError(f"shiftzoo: interp {interp.name!r}: weights(f) at f = {f[tuple(at)].item()!r} are "
                             f"{w[tuple(at)].detach().tolist()}; they must be finite and sum to 1")
    return w


def shift(input: Tensor, shifts: Tensor, padding: PluginInfo, interp: PluginInfo,
          grad_interp: PluginInfo, sampling: Sampling) -> Tensor:
    """The shift with any mix of compiled and runtime plugins, through ``shift_tabled``."""
    shifts = shifts.to(input.device)
    value = plan(input.shape, shifts.detach(), padding, interp, sampling)
    # The gradient plan is needed only when the shifts get a gradient; a single tap has derivative
    # zero, and the shifts then get a zero gradient (not None), as from compiled plugins.
    wants_shift_grad = shifts.requires_grad and torch.is_grad_enabled()
    grad = plan(input.shape, shifts, padding, grad_interp, sampling) \
        if wants_shift_grad and grad_interp.support > 1 else value
    out = torch.ops.shiftzoo.shift_tabled(input, value.offsets, value.tables, value.weights,
                                          grad.offsets, grad.tables, grad.weights, padding.name,
                                          *sampling.op_args())
    return _ZeroShiftGradient.apply(out, shifts) if wants_shift_grad and grad_interp.support == 1 else out


class _ZeroShiftGradient(torch.autograd.Function):
    """The output as it is, and a zero gradient for the shifts (whatever the upstream gradient holds)."""

    @staticmethod
    def forward(output: Tensor, shifts: Tensor) -> Tensor:
        return output.view_as(output)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        shifts = inputs[1]
        ctx.shifts_meta = (shifts.shape, shifts.dtype, shifts.device)

    @staticmethod
    def backward(ctx, grad: Tensor):
        shape, dtype, device = ctx.shifts_meta
        return grad, torch.zeros(shape, dtype=dtype, device=device)
