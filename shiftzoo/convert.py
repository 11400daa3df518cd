"""``replace_depthwise(model)``: every depthwise convolution of a model becomes a shift layer with the
same output shape (see :meth:`shiftzoo.nn.ShiftLayer.from_depthwise`); ``replace_shifts(model)`` goes
back, for comparing a shift network with its depthwise twin."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from torch import nn

from .nn.geometry import CONV_TO_SHIFT_PADDING
from .nn.layers import FAMILIES, ActiveShift, GroupedShift, ShiftLayer, SparseShift

# The families replace_shifts turns back into convolutions, and the conv padding_mode of each shift padding.
_FAMILY_LAYERS = (SparseShift, ActiveShift, GroupedShift)
_CONV_PADDING = {shift: conv for conv, shift in CONV_TO_SHIFT_PADDING.items()}

__all__ = ["ReplaceReport", "replace_depthwise", "replace_shifts", "depthwise_twin"]


@dataclass
class ReplaceReport:
    """What :func:`replace_depthwise` did."""

    replaced: List[str] = field(default_factory=list)  # qualified names of the replaced convolutions
    skipped: Dict[str, str] = field(default_factory=dict)  # grouped convs left alone, with the reason
    params_before: int = 0
    params_after: int = 0
    replaced_kind: str = "depthwise convolution"  # what was replaced (replace_shifts: "shift layer")

    @property
    def saved(self) -> int:
        """Parameters saved (trainable or not) by the replacement."""
        return self.params_before - self.params_after

    def __str__(self) -> str:
        return (f"replaced {len(self.replaced)} {self.replaced_kind}(s); parameters {self.params_before} -> "
                f"{self.params_after} (saved {self.saved})" + (f"; skipped {self.skipped}" if self.skipped else ""))


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _is_conv(module: nn.Module) -> bool:
    return isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d))


def _swap_children(model: nn.Module, report: ReplaceReport, make: Callable[[str, nn.Module], Optional[nn.Module]],
                   what: str) -> None:
    """Replaces, in place, every child for which ``make(name, child)`` returns a module. A child
    shared by several parents gets one shared replacement. Every replacement is built before any is
    put in, so when one cannot be built the error names it and the model is unchanged."""
    done: Dict[int, Optional[nn.Module]] = {}  # id(child) -> its replacement, so shared children stay shared
    swaps: List[Tuple[nn.Module, str, nn.Module]] = []
    for parent_name, parent in list(model.named_modules(remove_duplicate=False)):
        for name, child in list(parent._modules.items()):  # not named_children(): it hides repeats
            if child is None:
                continue
            full_name = f"{parent_name}.{name}" if parent_name else name
            if id(child) not in done:
                try:
                    done[id(child)] = make(full_name, child)
                except (TypeError, ValueError) as exc:
                    error = TypeError if isinstance(exc, TypeError) else ValueError
                    raise error(f"{what}: cannot replace {full_name!r} ({child}); the model is unchanged: {exc}") from exc
            if done[id(child)] is not None:
                report.replaced.append(full_name)
                swaps.append((parent, name, done[id(child)]))
    for parent, name, replacement in swaps:
        setattr(parent, name, replacement)
    report.params_after = _count(model)


def replace_depthwise(model: nn.Module, layer: str = "sparse", **layer_kwargs: Any) -> ReplaceReport:
    """Replaces, in place, every depthwise ``nn.Conv1d/2d/3d`` of ``model`` (``groups ==
    in_channels == out_channels``; any kernel, stride, padding, dilation) by a shift layer of family
    ``layer`` (``"sparse"``, ``"active"`` or ``"grouped"``) built with
    ``ShiftLayer.from_depthwise(conv, **layer_kwargs)``: same output shape, the convolution's bias
    dropped. A convolution shared by several parents is replaced by one shared shift layer. Every
    replacement is built before any is put in, so when one cannot be built (e.g. a grouped shift on
    fewer channels than kernel taps) the error names that convolution and the model is unchanged.

    Returns a :class:`ReplaceReport` (replaced names, parameter counts before and after).
    """
    if layer not in FAMILIES:
        close = difflib.get_close_matches(str(layer), list(FAMILIES), n=1)
        raise ValueError(f"replace_depthwise: unknown layer family {layer!r}; valid choices: "
                         f"{', '.join(FAMILIES)}; closest match: {repr(close[0]) if close else 'none'}")
    if _is_conv(model) and model.groups == model.in_channels == model.out_channels:
        raise ValueError("replace_depthwise: the model itself is a depthwise convolution and cannot be replaced "
                         "in place; use the layer class's from_depthwise(conv)")
    report = ReplaceReport(params_before=_count(model))

    def make(name: str, child: nn.Module) -> Optional[nn.Module]:
        if not _is_conv(child):
            return None
        if not child.groups == child.in_channels == child.out_channels:
            if child.groups > 1:
                report.skipped[name] = (f"grouped but not depthwise (groups={child.groups}, in_channels="
                                        f"{child.in_channels}, out_channels={child.out_channels})")
            return None
        return FAMILIES[layer][child.weight.dim() - 2].from_depthwise(child, **layer_kwargs)

    _swap_children(model, report, make, "replace_depthwise")
    return report


def depthwise_twin(layer: ShiftLayer, kernel_size: int = 3) -> nn.Module:
    """The depthwise convolution (no bias) that ``layer`` stands for: same channels, the same kept
    positions (a sampling layer's ``stride``, its ``crop`` as less padding) and so the same output
    shape; a grouped shift's own kernel and dilation, ``kernel_size`` (odd) for the others. The
    shift's padding becomes the matching ``padding_mode`` (``zeros`` where a convolution has none:
    ``symmetric``, runtime paddings)."""
    dims = layer.dims
    kernel = getattr(layer, "kernel_size", (kernel_size,) * dims)
    dilation = getattr(layer, "dilation", (1,) * dims)
    padding = []
    for k, d, (begin, end) in zip(kernel, dilation, layer.sampling.crop):
        extent = d * (k - 1)
        if extent % 2 or begin != end or begin > extent // 2:
            raise ValueError(f"a {k}-tap kernel (dilation {d}) cannot sample where a shift cropping ({begin}, {end}) "
                             "does: the twin needs an odd extent and an even crop of at most half of it")
        padding.append(extent // 2 - begin)
    conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1]
    return conv(layer.channels, layer.channels, kernel, stride=layer.sampling.stride, padding=tuple(padding),
                dilation=dilation, groups=layer.channels, bias=False, padding_mode=_CONV_PADDING.get(layer.padding, "zeros"))


def replace_shifts(model: nn.Module, kernel_size: int = 3) -> ReplaceReport:
    """The inverse of :func:`replace_depthwise`: replaces, in place, every SparseShift, ActiveShift and
    GroupedShift layer of ``model`` by its :func:`depthwise_twin` (same output shape), for comparing a
    shift network with the depthwise network it stands for. Fixed patterns (the blocks' FixedShift)
    stay. Returns a :class:`ReplaceReport`."""
    if isinstance(model, _FAMILY_LAYERS):
        raise ValueError("replace_shifts: the model itself is a shift layer and cannot be replaced in place; "
                         "use depthwise_twin(layer)")
    report = ReplaceReport(params_before=_count(model), replaced_kind="shift layer")
    _swap_children(model, report, lambda name, child: depthwise_twin(child, kernel_size)
                   if isinstance(child, _FAMILY_LAYERS) else None, "replace_shifts")
    return report
