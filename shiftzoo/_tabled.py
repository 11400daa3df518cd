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
        length = stride * (size - 1) + support if size > 0 else 0
        raw = offset.view(-1, 1) + torch.arange(length, device=shifts.device)
        # an empty axis has no index to give: every tap reads nothing
        table = padding.padding(raw, n) if n > 0 and raw.numel() > 0 else torch.full_like(raw, -1)
        tables.append(table.to(torch.int64).contiguous())
        offsets.append(offset)
        weights.append(interp.interp.weights(frac))
    return TapPlan(torch.stack(offsets, 1), tables, torch.stack(weights, 1))


def shift(input: Tensor, shifts: Tensor, padding: PluginInfo, interp: PluginInfo,
          grad_interp: PluginInfo, sampling: Sampling) -> Tensor:
    """The shift with any mix of compiled and runtime plugins, through ``shift_tabled``."""
    shifts = shifts.to(input.device)
    value = plan(input.shape, shifts.detach(), padding, interp, sampling)
    # The gradient plan is needed only when the shifts get a gradient, and a single tap has
    # derivative zero: otherwise the value plan stands in for it (no work).
    if shifts.requires_grad and torch.is_grad_enabled() and grad_interp.support > 1:
        grad = plan(input.shape, shifts, padding, grad_interp, sampling)
    else:
        grad = value
    return torch.ops.shiftzoo.shift_tabled(input, value.offsets, value.tables, value.weights,
                                           grad.offsets, grad.tables, grad.weights, padding.name,
                                           *sampling.op_args())
