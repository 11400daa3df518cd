"""The seed's API (``torchshifts``), so that its users switch with one import::

    from shiftzoo.compat import Shift2d          # was: from torchshifts import Shift2d
    out, loss = Shift2d(in_channels=16)(x)       # loss is None when sparsity_term == 0

``Shift1d/2d/3d(in_channels, padding='zeros', init_shift=1, sparsity_term=5e-4, active_flag=False,
emulate_dw=None, init_thumb_rule=1)`` behave as the seed documents, with its bugs fixed: thumb rule 2
and the ``emulate_dw`` ``padding_mode`` are applied (the seed compared with ``==`` where it meant to
assign), ``dilation`` is emulated rather than ignored, and a padding larger than the kernel's reach
yields the convolution's shape too. The shifts are the parameter ``weight`` (``weights`` is an alias).

Quantization: ``quant_mapping`` is PyTorch's default static mapping plus the shift modules, for
``torch.ao.quantization.convert(model, mapping=quant_mapping)``; a converted SSL module shifts the
quantized tensor by its rounded shifts exactly (see :class:`QuantizedShift`). It is built on first
access: importing this module does not import ``torch.ao.quantization``.
"""
from __future__ import annotations

import difflib
import warnings
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from . import plugin_registry
from .nn.geometry import CONV_TO_SHIFT_PADDING, DepthwiseGeometry
from .nn.layers import FixedShift, ThumbRule, _check_number, _LearnableShift, per_axis, with_dims

__all__ = ["Shift1d", "Shift2d", "Shift3d", "QuantizedShift", "quant_mapping"]

_EMULATE_KEYS = ("kernel_size", "stride", "padding", "padding_mode", "dilation")
_CONV_KEYS = ("in_channels", "out_channels", "groups", "bias")  # accepted so conv kwargs can be passed as-is


def _emulation(emulate_dw: Mapping[str, Any], dims: int, in_channels: int, padding: str,
               init_shift: Union[float, Sequence[float]], init_thumb_rule: ThumbRule
               ) -> Tuple[DepthwiseGeometry, str, Tuple[float, ...]]:
    """The geometry, shift padding and per-axis init range of the seed's depthwise-conv emulation."""
    if not isinstance(emulate_dw, Mapping):
        raise TypeError(f"emulate_dw must be a dict of depthwise conv arguments, got {type(emulate_dw).__name__}")
    for key in emulate_dw:
        if key not in _EMULATE_KEYS + _CONV_KEYS:
            close = difflib.get_close_matches(str(key), _EMULATE_KEYS, n=1)
            raise ValueError(f"emulate_dw: unknown key {key!r}; valid keys: {', '.join(_EMULATE_KEYS)}"
                             + (f" (did you mean {close[0]!r}?)" if close else ""))
    if "kernel_size" not in emulate_dw:
        raise ValueError("emulate_dw: needs at least 'kernel_size'")
    if emulate_dw.get("out_channels", in_channels) != in_channels:
        raise ValueError(f"emulate_dw: a shift keeps the channels; out_channels={emulate_dw['out_channels']} "
                         f"differs from in_channels={in_channels}")
    if "dilation" in emulate_dw:
        warnings.warn("emulate_dw: a shift has no dilation; it is emulated by the dilated kernel's extent "
                      "(output shape and initial shift range)", UserWarning, stacklevel=3)
    mode = emulate_dw.get("padding_mode")
    if mode is not None:  # the conv's padding mode decides the shift padding (the seed forgot to apply it)
        shift_padding = CONV_TO_SHIFT_PADDING.get(mode) or plugin_registry.get_padding(mode).name
        if padding != "zeros" and plugin_registry.get_padding(padding).name != shift_padding:
            raise ValueError(f"padding={padding!r} contradicts emulate_dw padding_mode={mode!r} "
                             f"(the shift padding {shift_padding!r})")
        padding = shift_padding
    geometry = DepthwiseGeometry(emulate_dw["kernel_size"], emulate_dw.get("stride", 1), emulate_dw.get("padding", 0),
                                 emulate_dw.get("dilation", 1), mode if mode in CONV_TO_SHIFT_PADDING else "zeros",
                                 dims)
    # The seed's range: k // 2 for rule 1 (symmetric) and k for rule 2 (one-sided), times the stride;
    # with dilation d the kernel's extent d(k-1)+1 stands for k. init_shift scales it (1: the seed).
    scale = per_axis("init_shift", init_shift, dims)
    extents = [d * (k - 1) + 1 for k, d in zip(geometry.kernel_size, geometry.dilation)]
    reach = [e // 2 if init_thumb_rule == 1 else e for e in extents]
    return geometry, padding, tuple(r * s * c for r, s, c in zip(reach, geometry.stride, scale))


class _SeedShift(_LearnableShift):
    """The seed's shift layer: SSL by default, Active Shift with ``active_flag=True``; ``forward``
    returns ``(output, loss)`` with ``loss = sparsity_term * sum(|weight|)``, or None when
    ``sparsity_term`` is 0.

    Args:
        in_channels: number of channels.
        padding: ``'zeros'``, ``'border'``, ``'periodic'``, ``'reflect'``, ``'symmetric'`` (or any registered padding).
        init_shift: initial range ``r`` of the shifts (one number or one per axis).
        sparsity_term: strength of the L1 penalty.
        active_flag: Active Shift (linear interpolation forward) instead of SSL.
        emulate_dw: the depthwise convolution's arguments (``kernel_size``, ``stride``, ``padding``,
            ``padding_mode``; ``dilation`` warns): the output gets the convolution's shape (crop, then
            average pooling for stride > 1), the shift padding follows ``padding_mode``, and the init
            range becomes ``init_shift`` times the kernel's reach (``k // 2``; ``k`` for rule 2) times the stride.
        init_thumb_rule: 1: ``uniform(-r, r)``; 2: ``uniform(0, r)`` times one random sign per axis.
    """

    def __init__(self, in_channels: int, padding: str = "zeros", init_shift: Union[float, Sequence[float]] = 1,
                 sparsity_term: float = 5e-4, active_flag: bool = False,
                 emulate_dw: Optional[Mapping[str, Any]] = None, init_thumb_rule: ThumbRule = 1) -> None:
        geometry = None
        if emulate_dw is not None:
            geometry, padding, init_shift = _emulation(emulate_dw, self.dims, in_channels, padding, init_shift,
                                                       init_thumb_rule)
        super().__init__(in_channels, padding=padding, interp="linear" if active_flag else "nearest",
                         grad_interp="linear", sparsity=sparsity_term, init_shift=init_shift,
                         init_thumb_rule=init_thumb_rule)
        self.active_flag = bool(active_flag)
        self.emulate_dw = dict(emulate_dw) if emulate_dw is not None else None
        self.geometry = geometry

    @property
    def sparsity_term(self) -> float:
        """The strength of the L1 penalty: the seed's name for ``sparsity`` (one value, both names)."""
        return self.sparsity

    @sparsity_term.setter
    def sparsity_term(self, value: float) -> None:
        self.sparsity = _check_number("sparsity_term", value)

    @property
    def in_channels(self) -> int:
        """The number of channels (the seed's name for ``channels``)."""
        return self.channels

    @property
    def weights(self) -> Tensor:
        """The shifts ``(C, d)``: an alias of ``weight`` (the name the seed's README uses)."""
        return self.weight

    def forward(self, input: Tensor) -> Tuple[Tensor, Optional[Tensor]]:  # type: ignore[override]
        out = super().forward(input)
        if self.geometry is not None:
            out = self.geometry(out)
        return out, (self.sparsity_loss() if self.sparsity_term else None)

    @classmethod
    def from_depthwise(cls, conv: nn.Module, **kwargs: Any) -> nn.Module:
        raise TypeError(f"{cls.__name__} emulates a convolution through emulate_dw={{...}}; to convert a module, "
                        "use shiftzoo.SparseShift2d.from_depthwise(conv) (or its 1d/3d/Active/Grouped variants)")

    def _config(self) -> Dict[str, Any]:
        return {"in_channels": self.channels, "padding": self.padding, "active_flag": self.active_flag,
                "sparsity_term": self.sparsity_term, "init_shift": self.init_shift,
                "init_thumb_rule": self.init_thumb_rule, "emulate_dw": self.emulate_dw}


Shift1d, Shift2d, Shift3d = (with_dims(_SeedShift, d, f"Shift{d}d") for d in (1, 2, 3))


class QuantizedShift(nn.Module):
    """A converted SSL ``Shift1d/2d/3d`` for quantized inference: shifts a quantized tensor (per-tensor,
    or per-channel along the channels) by the rounded shifts, exactly (the integer representation is
    moved, padding writes the zero point for ``zeros``), then applies the emulated conv geometry.
    ``forward`` returns ``(output, None)``, keeping the float module's contract.
    """

    def __init__(self, shift: FixedShift, geometry: Optional[DepthwiseGeometry] = None) -> None:
        super().__init__()
        self.shift = shift
        self.geometry = geometry

    @classmethod
    def from_float(cls, mod: nn.Module, use_precomputed_fake_quant: bool = False) -> "QuantizedShift":
        """The quantized twin of an SSL ``Shift1d/2d/3d`` (``active_flag=False``)."""
        if getattr(mod, "active_flag", False):
            raise ValueError("QuantizedShift: an Active Shift interpolates (values off the quantization grid); "
                             "only SSL shifts (active_flag=False) convert")
        shift = FixedShift(torch.round(mod.weight.detach().float()), mod.padding)
        return cls(shift, mod.geometry)

    def forward(self, input: Tensor) -> Tuple[Tensor, None]:
        out = self.shift(input)
        if self.geometry is not None:
            out = self.geometry(out)
        return out, None


def _quant_mapping() -> Dict[type, type]:
    from torch.ao.quantization import get_default_static_quant_module_mappings

    return {**get_default_static_quant_module_mappings(), Shift1d: QuantizedShift, Shift2d: QuantizedShift,
            Shift3d: QuantizedShift}


def __getattr__(name: str) -> Any:
    """``quant_mapping`` is computed on first access (PEP 562), so that importing shiftzoo does not
    import PyTorch's deprecated ``torch.ao.quantization``; it is then cached as a module global."""
    if name == "quant_mapping":
        value = globals()["quant_mapping"] = _quant_mapping()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
