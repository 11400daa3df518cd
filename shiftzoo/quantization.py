"""Quantized inference of models with shift layers: PyTorch 2 export quantization (PT2E) through
torchao, and the eager flow's module mapping.

A whole-pixel shift only moves values, so a quantized model should shift the 8-bit integers
themselves, with the quantization parameters of its input, rather than dequantize, shift in float
and quantize again. The PT2E flow (``pip install torchao``)::

    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from shiftzoo.quantization import fold_quantized_shifts, x86_inductor_quantizer

    exported = torch.export.export(model.eval(), (example,)).module()
    prepared = prepare_pt2e(exported, x86_inductor_quantizer())
    prepared(example)                                   # calibration: run representative data
    quantized = convert_pt2e(prepared)
    report = fold_quantized_shifts(quantized)           # the shifts now move the integers

:class:`ShiftQuantizer` annotates every whole-pixel shift (nearest interpolation: SparseShift,
GroupedShift, FixedShift, the inference form without folded maps) as an op that shares its
input's quantization parameters (as max pooling does), so ``convert_pt2e`` leaves
``dequantize -> shift -> quantize`` with one scale and zero point around it;
:func:`fold_quantized_shifts` then replaces each such chain by the shift of the integers
(``shift_affine`` on uint8/int8 data, taps outside reading the zero point, which stands for 0.0):
equal bit for bit, one pass over bytes instead of three over floats. Interpolating shifts
(ActiveShift with linear or cubic interpolation) make values between the quantization levels and
stay in float between a dequantize and the next quantize. Such a model runs in eager mode and
under ``torch.compile``; the report says which shifts moved integers and which stayed float, and why.

The eager flow (``torch.ao.quantization``, deprecated by PyTorch) needs no mapping for shiftzoo's
layers: they take quantized tensors as they are. ``shiftzoo.quant_mapping`` adds the seed API's
``compat.Shift1d/2d/3d`` (which return a tuple) to PyTorch's default static mapping.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
from torch import fx

try:
    from torchao.quantization.pt2e.quantizer import (ComposableQuantizer, QuantizationAnnotation,
                                                     QuantizationConfig, Quantizer, SharedQuantizationSpec)
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as _x86
except ImportError as error:  # pragma: no cover - exercised only without torchao
    raise ImportError("shiftzoo.quantization needs torchao for PyTorch 2 export quantization: "
                      "pip install torchao (for the eager flow, use shiftzoo.quant_mapping)") from error

__all__ = ["ShiftQuantizer", "x86_inductor_quantizer", "fold_quantized_shifts", "QuantizedShiftReport"]

_SHIFT = torch.ops.shiftzoo.shift.default
_SHIFT_AFFINE = torch.ops.shiftzoo.shift_affine.default
_QUANTIZE = torch.ops.quantized_decomposed.quantize_per_tensor.default
_DEQUANTIZE = torch.ops.quantized_decomposed.dequantize_per_tensor.default


def _is_shift(node: fx.Node) -> bool:
    return node.op == "call_function" and node.target in (_SHIFT, _SHIFT_AFFINE)


def _why_in_float(shift: fx.Node) -> Optional[str]:
    """Why a shift node cannot move integers (it makes new values), or None: it only moves values."""
    if shift.target is _SHIFT:
        interp = shift.args[3]
        return None if interp == "nearest" else f"interpolates ({interp!r}): its values fall between the levels"
    scale_pre, bias_pre, lo_pre, hi_pre, scale_post, bias_post, lo_post, hi_post = shift.args[6:14]
    if scale_pre is not None or scale_post is not None or (lo_pre, hi_pre, lo_post, hi_post) != (
            -math.inf, math.inf, -math.inf, math.inf):
        return "BatchNorm/clamp maps are folded into it (optimize_for_inference): quantize before optimizing"
    return None


def _layer_name(node: fx.Node) -> str:
    """The qualified name of the module ``node`` came from (torch.export keeps it), else the node's."""
    stack = node.meta.get("nn_module_stack")
    if stack:
        path = list(stack.values())[-1][0]
        return path.replace("L['self'].", "").replace("L__self___", "") or node.name
    return node.name


class ShiftQuantizer(Quantizer):
    """Annotates shiftzoo's whole-pixel shifts for PT2E quantization: the input quantized with the
    config's activation spec, the output sharing the input's quantization parameters. Compose it
    with the quantizer of the rest of the model (:func:`x86_inductor_quantizer` does), after it."""

    def __init__(self, quantization_config: Optional[QuantizationConfig] = None) -> None:
        super().__init__()
        self.config = quantization_config or _x86.get_default_x86_inductor_quantization_config()

    def annotate(self, model: fx.GraphModule) -> fx.GraphModule:
        for node in model.graph.nodes:
            if not _is_shift(node) or _why_in_float(node) is not None or "quantization_annotation" in node.meta:
                continue
            source = node.args[0]
            if not isinstance(source, fx.Node):
                continue
            node.meta["quantization_annotation"] = QuantizationAnnotation(
                input_qspec_map={source: self.config.input_activation},
                output_qspec=SharedQuantizationSpec((source, node)), _annotated=True)
        return model

    def validate(self, model: fx.GraphModule) -> None:
        pass


def x86_inductor_quantizer(quantization_config: Optional[QuantizationConfig] = None) -> ComposableQuantizer:
    """torchao's ``X86InductorQuantizer`` with ``quantization_config`` (default: its default static
    config) for the whole model, and :class:`ShiftQuantizer` for the shifts."""
    config = quantization_config or _x86.get_default_x86_inductor_quantization_config()
    return ComposableQuantizer([_x86.X86InductorQuantizer().set_global(config), ShiftQuantizer(config)])


@dataclass
class QuantizedShiftReport:
    """What :func:`fold_quantized_shifts` did, per shift (module names where torch.export kept them)."""

    on_integers: List[str] = field(default_factory=list)  # now move the quantized integers
    in_float: Dict[str, str] = field(default_factory=dict)  # left between dequantize and quantize: why

    def __str__(self) -> str:
        lines = [f"{len(self.on_integers)} shift(s) move integers, {len(self.in_float)} stay in float"]
        lines += [f"  in float {name}: {why}" for name, why in self.in_float.items()]
        return "\n".join(lines)


def fold_quantized_shifts(model: fx.GraphModule) -> QuantizedShiftReport:
    """Replaces, in place in a model converted by ``convert_pt2e``, every ``dequantize -> shift ->
    quantize`` chain of one scale and zero point around a whole-pixel shift by the shift of the
    quantized integers (exactly equal: taps outside read the zero point). Returns what was done."""
    report = QuantizedShiftReport()
    graph = model.graph
    for node in list(graph.nodes):
        if not _is_shift(node):
            continue
        name = _layer_name(node)
        why = _why_in_float(node)
        if why is None:
            why = _fold(model, node)
        if why is None:
            report.on_integers.append(name)
        else:
            report.in_float[name] = why
    graph.eliminate_dead_code()
    graph.lint()
    model.recompile()
    return report


def _fold(model: fx.GraphModule, shift: fx.Node) -> Optional[str]:
    """Folds one shift's chain (see fold_quantized_shifts); None if done, else why not."""
    dequantize = shift.args[0]
    if not (isinstance(dequantize, fx.Node) and dequantize.target is _DEQUANTIZE):
        return "its input is not dequantized per tensor (annotate it with ShiftQuantizer)"
    users = list(shift.users)
    if len(users) != 1 or users[0].target is not _QUANTIZE:
        return "its output is not quantized (nothing after it takes quantized input)"
    quantize = users[0]
    # (scale, zero point, range, dtype)
    if tuple(dequantize.args[1:]) != tuple(quantize.args[1:]) or dequantize.kwargs != quantize.kwargs:
        return "its output is quantized with other parameters than its input"
    integers, zero_point, dtype = dequantize.args[0], dequantize.args[2], dequantize.args[5]
    channels = shift.args[1].meta["val"].shape[0] if "val" in shift.args[1].meta else None
    if channels is None:
        return "the number of channels is unknown (no shape metadata)"
    fill_name = _unique_attribute(model, "_shift_zero_point")
    model.register_buffer(fill_name, torch.full((channels,), int(zero_point), dtype=dtype))
    inf = math.inf
    with model.graph.inserting_before(shift):
        fill = model.graph.get_attr(fill_name)
        sampling = shift.args[5:8] if shift.target is _SHIFT else shift.args[3:6]  # stride, crop begin, crop end
        moved = model.graph.call_function(_SHIFT_AFFINE, (integers, shift.args[1], shift.args[2], *sampling, None,
                                                          None, -inf, inf, None, None, -inf, inf, fill))
        moved.meta.update({k: v for k, v in quantize.meta.items() if k != "quantization_annotation"})
    quantize.replace_all_uses_with(moved)
    return None


def _unique_attribute(model: torch.nn.Module, stem: str) -> str:
    index = 0
    while hasattr(model, f"{stem}_{index}"):
        index += 1
    return f"{stem}_{index}"
