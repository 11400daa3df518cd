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
from .plugin_registry import PluginInfo

_UNPERIODIC_LIMIT = 2.0**53  # beyond this an unreduced offset is no longer exact


class TapPlan(NamedTuple):
    offsets: Tensor  # (C, d) int64: raw index of tap 0 for output 0
    tables: List[Tensor]  # d x (C, n_k + K - 1) int64: what each raw tap index reads, or -1
    weights: Tensor  # (C, d, K) float64: tap weights, differentiable in the shifts


def plan(input_shape, shifts: Tensor, padding: PluginInfo, interp: PluginInfo) -> TapPlan:
    """The taps every channel reads along every axis (docs/semantics.md)."""
    support = interp.support
    offsets, tables, weights = [], [], []
    for k, n in enumerate(input_shape[2:]):
        if getattr(padding.padding, "period", None) is None and not torch.compiler.is_compiling():
            if shifts.numel() and shifts[:, k].abs().max() > _UNPERIODIC_LIMIT:
                raise ValueError(
                    f"shiftzoo: padding {padding.name!r} declares no period, so shifts beyond ±2**53 "
                    "cannot be reduced exactly; register it with period=... (0 if it saturates)")
        offset, frac = reference.tap_start(shifts[:, k], n, padding.padding, support)
        raw = offset.view(-1, 1) + torch.arange(n + support - 1, device=shifts.device)
        tables.append(padding.padding(raw, n).to(torch.int64).contiguous())
        offsets.append(offset)
        weights.append(interp.interp.weights(frac))
    return TapPlan(torch.stack(offsets, 1), tables, torch.stack(weights, 1))


def shift(input: Tensor, shifts: Tensor, padding: PluginInfo, interp: PluginInfo,
          grad_interp: PluginInfo) -> Tensor:
    """The shift with any mix of compiled and runtime plugins, through ``shift_tabled``."""
    shifts = shifts.to(input.device)
    value = plan(input.shape, shifts.detach(), padding, interp)
    # The gradient plan is needed only when the shifts get a gradient, and a single tap has
    # derivative zero: otherwise the value plan stands in for it (no work).
    if shifts.requires_grad and torch.is_grad_enabled() and grad_interp.support > 1:
        grad = plan(input.shape, shifts, padding, grad_interp)
    else:
        grad = value
    return torch.ops.shiftzoo.shift_tabled(input, value.offsets, value.tables, value.weights,
                                           grad.offsets, grad.tables, grad.weights, padding.name)
