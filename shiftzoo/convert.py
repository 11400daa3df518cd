"""``replace_depthwise(model)``: every depthwise convolution of a model becomes a shift layer with the
same output shape (see :meth:`shiftzoo.nn.ShiftLayer.from_depthwise`)."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

from torch import nn

from .nn.layers import FAMILIES

__all__ = ["ReplaceReport", "replace_depthwise"]


@dataclass
class ReplaceReport:
    """What :func:`replace_depthwise` did."""

    replaced: List[str] = field(default_factory=list)  # qualified names of the replaced convolutions
    skipped: Dict[str, str] = field(default_factory=dict)  # grouped convs left alone, with the reason
    params_before: int = 0
    params_after: int = 0

    @property
    def saved(self) -> int:
        """Parameters saved (trainable or not) by the replacement."""
        return self.params_before - self.params_after

    def __str__(self) -> str:
        return (f"replaced {len(self.replaced)} depthwise convolution(s); parameters {self.params_before} -> "
                f"{self.params_after} (saved {self.saved})" + (f"; skipped {self.skipped}" if self.skipped else ""))


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _is_conv(module: nn.Module) -> bool:
    return isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d))


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
    done: Dict[int, nn.Module] = {}  # id(conv) -> its replacement, so shared convs stay shared
    swaps: List[Tuple[nn.Module, str, nn.Module]] = []  # applied only once every replacement is built
    for parent_name, parent in list(model.named_modules(remove_duplicate=False)):
        for name, child in list(parent._modules.items()):  # not named_children(): it hides repeats
            if child is None or not _is_conv(child):
                continue
            full_name = f"{parent_name}.{name}" if parent_name else name
            if not child.groups == child.in_channels == child.out_channels:
                if child.groups > 1:
                    report.skipped[full_name] = (f"grouped but not depthwise (groups={child.groups}, in_channels="
                                                 f"{child.in_channels}, out_channels={child.out_channels})")
                continue
            if id(child) not in done:
                try:
                    done[id(child)] = FAMILIES[layer][child.weight.dim() - 2].from_depthwise(child, **layer_kwargs)
                except (TypeError, ValueError) as exc:
                    error = TypeError if isinstance(exc, TypeError) else ValueError
                    raise error(f"replace_depthwise: cannot replace {full_name!r} ({child}); the model is "
                                f"unchanged: {exc}") from exc
            report.replaced.append(full_name)
            swaps.append((parent, name, done[id(child)]))
    for parent, name, replacement in swaps:
        setattr(parent, name, replacement)
    report.params_after = _count(model)
    return report
