"""The shift layers.

One base class, :class:`ShiftLayer`, owns the ``(C, d)`` shifts ``weight`` and calls
:func:`shiftzoo.functional.shift`. A family only chooses the interpolation pair, whether the shifts
learn and how they start:

=================  ==================  ==================  ==========================================
family             forward interp      shift gradient      shifts
=================  ==================  ==================  ==========================================
SparseShift (SSL)  nearest             linear (STE)        parameter, L1 penalty ``sparsity``
ActiveShift        ``interp``          ``interp``'s own    parameter
GroupedShift       nearest             none                buffer: ShiftNet's pattern
FixedShift         nearest             none                buffer: any given pattern (used by blocks)
=================  ==================  ==================  ==========================================

The 1d/2d/3d variants (``SparseShift2d`` ...) are made by :func:`with_dims`, which only fixes the
number of spatial axes.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar, Dict, Literal, NamedTuple, Optional, Sequence, Tuple, Type, TypeVar, Union

import torch
from torch import Tensor, nn

from .. import functional, plugin_registry
from .._sampling import CropArg, IntOrInts, Sampling
from .._validation import AXES as _AXES, check_batched, check_number, is_integer_data, refuse_scripting
from ..config_types import InterpName, PaddingName
from .geometry import DepthwiseGeometry, as_tuple
from .patterns import GroupedPattern, grouped_pattern

__all__ = [
    "PaddingName", "InterpName", "ThumbRule", "DownsampleMode", "IntegerShifts", "ShiftLayer", "SparseShift", "ActiveShift",
    "GroupedShift", "FixedShift", "with_dims", "sparsity_loss",
    "SparseShift1d", "SparseShift2d", "SparseShift3d", "ActiveShift1d", "ActiveShift2d", "ActiveShift3d",
    "GroupedShift1d", "GroupedShift2d", "GroupedShift3d",
]

# PaddingName and InterpName (shiftzoo.config_types) mark arguments that name a registered plugin.
# The seed's two initialisation rules: 1: uniform(-r, r); 2: uniform(0, r) times one random sign per axis.
ThumbRule = Literal[1, 2]
# How from_depthwise meets a strided convolution: sample the shifted input where the convolution
# samples (computing those outputs alone), or the seed's full-resolution shift then average pooling.
DownsampleMode = Literal["sample", "pool"]


class IntegerShifts(NamedTuple):
    """The whole-pixel shifts a layer applies at inference."""

    shifts: Tensor  # (C, d) int64, torch.round of the shifts (half to even, as the forward)
    zero_fraction: float  # fraction of the C*d shifts that are 0
    unshifted_fraction: float  # fraction of channels with every shift 0 (a plain copy: the SSL saving)


def _check_number(name: str, value: Any, minimum: float = 0.0) -> float:
    """``value`` as a float, a finite number >= ``minimum``."""
    return check_number(name, value, minimum, low_open=False)


def _check_channels(channels: Any) -> int:
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive int, got {channels!r}")
    return channels


def per_axis(name: str, value: Union[float, Sequence[float]], dims: int) -> Tuple[float, ...]:
    """``value`` (a number or one per spatial axis) as a ``dims``-tuple of finite numbers >= 0."""
    values = [value] * dims if isinstance(value, (int, float)) else list(value)
    if len(values) != dims:
        raise ValueError(f"{name} must be a number or {dims} numbers (one per axis), got {value!r}")
    return tuple(_check_number(name, v) for v in values)


class ShiftLayer(nn.Module):
    """Base of every shift layer: per-channel shifts ``weight`` of shape ``(C, d)`` applied with
    :func:`shiftzoo.functional.shift`. Input ``(N, C, *S)`` with ``d`` spatial axes; the output has
    the input's shape, or where ``stride``/``crop`` say so only the positions a depthwise
    convolution samples (``crop_begin + stride * y``, computed alone: see
    :func:`shiftzoo.functional.shift`). Integer and bool input (``int8`` ... ``int64``), and
    quantized tensors (per-tensor, or per-channel along the channels), are accepted by the
    whole-pixel (nearest) layers: their values move exactly by the rounded shifts, taps outside
    reading 0 (a quantized tensor's zero point).

    Not constructed directly: use a family's 1d/2d/3d variant.
    """

    dims: ClassVar[int] = 0  # spatial axes; set by the 1d/2d/3d variants (FixedShift: by its pattern)
    weight: Tensor

    def __init__(self, channels: int, *, padding: PaddingName, interp: InterpName,
                 grad_interp: Optional[InterpName] = None, sparsity: float = 0.0, dims: int = 0,
                 stride: IntOrInts = 1, crop: CropArg = 0) -> None:
        super().__init__()
        self.dims = dims or type(self).dims
        if not self.dims:
            raise TypeError(f"{type(self).__name__} is a family of layers: use its 1d, 2d or 3d variant")
        self.sampling = Sampling.of(self.dims, stride, crop, type(self).__name__)
        self.channels = _check_channels(channels)
        self.padding = plugin_registry.get_padding(padding).name
        self.interp = plugin_registry.get_interp(interp).name
        self.grad_interp = None if grad_interp is None else plugin_registry.get_interp(grad_interp).name
        self.sparsity = _check_number("sparsity", sparsity)

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() != self.dims + 2 or input.shape[1] != self.channels:
            check_batched(type(self).__name__, input, self.dims, self.channels)
            raise ValueError(
                f"{type(self).__name__}: expected input {_AXES[self.dims]} with C={self.channels}, "
                f"got shape {tuple(input.shape)}")
        if input.is_quantized:
            return self._quantized_forward(input)
        if is_integer_data(input):
            return self._integer_forward(input, fill=None, what=str(input.dtype))
        return functional.shift(input, self.weight, self.padding, self.interp, self.grad_interp,
                                stride=self.sampling.stride, crop=self.sampling.crop)

    def _integer_forward(self, input: Tensor, fill: Optional[Tensor], what: str) -> Tensor:
        # Integer data (`what`: how the error names it) moves by the rounded shifts, exactly; no
        # gradient (the shifts are detached).
        if self.interp != "nearest":
            raise ValueError(f"{type(self).__name__}: {what} input needs whole-pixel shifts; {self.interp!r} "
                             "interpolation makes values between the integers (use a nearest layer: SparseShift, "
                             "GroupedShift, FixedShift)")
        return functional.shift(input, self.weight.detach(), self.padding, "nearest", stride=self.sampling.stride,
                                crop=self.sampling.crop, fill=fill)

    def _quantized_forward(self, input: Tensor) -> Tensor:
        # A whole-pixel shift only moves values, so it moves the integer representation itself;
        # a tap outside reads the zero point (the representation of 0), and the quantization
        # parameters carry over unchanged.
        what = f"quantized ({input.dtype})"
        if input.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            data = self._integer_forward(input.int_repr(), fill=torch.tensor(input.q_zero_point()), what=what)
            return torch._make_per_tensor_quantized_tensor(data, input.q_scale(), input.q_zero_point())
        if input.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric) and input.q_per_channel_axis() == 1:
            zero_points = input.q_per_channel_zero_points()
            data = self._integer_forward(input.int_repr(), fill=zero_points, what=what)
            return torch._make_per_channel_quantized_tensor(data, input.q_per_channel_scales(), zero_points, 1)
        raise ValueError(f"{type(self).__name__}: quantized input must be per-tensor or per-channel along "
                         f"the channel axis (a shift moves values along the others), got {input.qscheme()}")

    def __prepare_scriptable__(self) -> "ShiftLayer":
        refuse_scripting(self)

    def sparsity_loss(self) -> Tensor:
        """``sparsity * sum(|weight|)``, the L1 term of SSL to add to the training loss (a zero
        tensor for layers without a sparsity penalty)."""
        if not self.sparsity:
            return self.weight.new_zeros(())
        return self.sparsity * self.weight.abs().sum()

    def integer_shifts(self) -> IntegerShifts:
        """The rounded shifts this layer applies (``torch.round``, as its forward) and how sparse they are."""
        if self.interp != "nearest":
            raise TypeError(f"{type(self).__name__} interpolates ({self.interp!r}): its shifts are not whole "
                            "pixels; integer_shifts() is for SparseShift, GroupedShift and FixedShift")
        shifts = torch.round(self.weight.detach()).to(torch.int64)
        zero = shifts == 0
        return IntegerShifts(shifts, zero.double().mean().item(), zero.all(dim=1).double().mean().item())

    @classmethod
    def from_depthwise(cls, conv: nn.Module, downsample: DownsampleMode = "sample", **kwargs: Any) -> nn.Module:
        """A layer of this class replacing the depthwise ``conv`` (``groups == in_channels ==
        out_channels``) with the same output shape.

        ``downsample="sample"`` (default): the layer samples the shifted input where the
        convolution samples its input, output ``y`` at ``stride * y + e // 2 - padding`` (``e`` the
        kernel's dilated extent minus one), and computes those outputs alone (its ``stride`` and
        ``crop``); positions beyond the input read what the shift's padding gives.
        ``downsample="pool"``: the seed's emulation, ``nn.Sequential(shift=layer,
        geometry=DepthwiseGeometry)`` (the full-resolution shift, cropped or padded with the
        convolution's ``padding_mode``, then average-pooled for stride > 1); the bare layer when the
        convolution keeps the size.

        Defaults from the convolution (the shift padding from its ``padding_mode``, the shift range
        or grouped kernel from its kernel) can be overridden in ``kwargs``. The convolution's bias,
        if any, is not carried over.
        """
        if downsample not in ("sample", "pool"):
            raise ValueError(f"{cls.__name__}.from_depthwise: downsample must be 'sample' or 'pool', got {downsample!r}")
        geometry = DepthwiseGeometry.from_conv(conv)
        if geometry.dims != cls.dims:
            raise ValueError(f"{cls.__name__} has {cls.dims} spatial axes but {type(conv).__name__} has {geometry.dims}")
        if not conv.groups == conv.in_channels == conv.out_channels:
            raise ValueError(
                f"{cls.__name__}.from_depthwise: expected a depthwise convolution (groups == in_channels == "
                f"out_channels), got groups={conv.groups}, in_channels={conv.in_channels}, "
                f"out_channels={conv.out_channels}")
        sampling = {"stride": geometry.stride, "crop": geometry.crop} if downsample == "sample" else {}
        layer = cls(conv.in_channels, **{**cls._depthwise_defaults(geometry), **sampling, **kwargs})
        layer = layer.to(device=conv.weight.device, dtype=conv.weight.dtype)
        if downsample == "sample" or geometry.is_identity:
            return layer
        return nn.Sequential(OrderedDict(shift=layer, geometry=geometry))

    @classmethod
    def _depthwise_defaults(cls, geometry: DepthwiseGeometry) -> Dict[str, Any]:
        return {"padding": geometry.shift_padding}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._config().items())

    def _config(self) -> Dict[str, Any]:
        config: Dict[str, Any] = {"channels": self.channels, "padding": self.padding}
        if not self.sampling.is_identity:
            config.update(stride=self.sampling.stride, crop=self.sampling.crop)
        return config


class _LearnableShift(ShiftLayer):
    """Shifts as an ``nn.Parameter``, initialised by one of the seed's two thumb rules."""

    def __init__(self, channels: int, *, padding: PaddingName, interp: InterpName,
                 grad_interp: Optional[InterpName], sparsity: float,
                 init_shift: Union[float, Sequence[float]], init_thumb_rule: ThumbRule,
                 stride: IntOrInts = 1, crop: CropArg = 0) -> None:
        super().__init__(channels, padding=padding, interp=interp, grad_interp=grad_interp, sparsity=sparsity,
                         stride=stride, crop=crop)
        self.init_shift = per_axis("init_shift", init_shift, self.dims)
        if isinstance(init_thumb_rule, bool) or init_thumb_rule not in (1, 2):
            raise ValueError(f"init_thumb_rule must be 1 (uniform(-r, r)) or 2 (uniform(0, r) times one random "
                             f"sign per axis), got {init_thumb_rule!r}")
        self.init_thumb_rule = init_thumb_rule
        self.weight = nn.Parameter(torch.empty(self.channels, self.dims))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draws the shifts again (from torch's global generator, like ``nn.Linear``):
        rule 1: ``uniform(-r, r)``; rule 2: ``uniform(0, r)`` times one random sign per axis (the seed's rule)."""
        r = torch.tensor(self.init_shift)
        if self.init_thumb_rule == 1:
            values = (torch.rand(self.channels, self.dims) * 2 - 1) * r
        else:
            sign = torch.randint(0, 2, (self.dims,)) * 2 - 1
            values = torch.rand(self.channels, self.dims) * r * sign
        with torch.no_grad():
            self.weight.copy_(values)

    @classmethod
    def _depthwise_defaults(cls, geometry: DepthwiseGeometry) -> Dict[str, Any]:
        # Start the shifts where the kernel reaches; a 1x1 axis keeps its shifts at 0.
        return {**super()._depthwise_defaults(geometry), "init_shift": geometry.half_extent}

    def _config(self) -> Dict[str, Any]:
        return {**super()._config(), "init_shift": self.init_shift, "init_thumb_rule": self.init_thumb_rule}


class SparseShift(_LearnableShift):
    """Sparse Shift Layer (Chen et al. 2019): forward by the rounded shifts (zero FLOPs, integer,
    quantizable), shift gradient straight-through from linear interpolation at the real shifts, and
    an L1 penalty ``sparsity * sum(|weight|)`` (:meth:`sparsity_loss`) that drives shifts to 0.

    Args:
        channels: number of channels ``C``.
        padding: any registered padding (:func:`shiftzoo.list_paddings`).
        init_shift: the initial range ``r``, one number or one per spatial axis.
        init_thumb_rule: 1: ``uniform(-r, r)``; 2: ``uniform(0, r)`` times one random sign per axis.
        sparsity: strength of the L1 penalty.
        stride, crop: keep only the positions ``crop_begin + stride * y`` of each axis (see
            :func:`shiftzoo.functional.shift`); by default every position.
    """

    def __init__(self, channels: int, padding: PaddingName = "zeros", init_shift: Union[float, Sequence[float]] = 1.0,
                 init_thumb_rule: ThumbRule = 1, sparsity: float = 5e-4, stride: IntOrInts = 1,
                 crop: CropArg = 0) -> None:
        super().__init__(channels, padding=padding, interp="nearest", grad_interp="linear", sparsity=sparsity,
                         init_shift=init_shift, init_thumb_rule=init_thumb_rule, stride=stride, crop=crop)

    def _config(self) -> Dict[str, Any]:
        return {**super()._config(), "sparsity": self.sparsity}


class ActiveShift(_LearnableShift):
    """Active Shift (Jeon & Kim 2018): real-valued shifts, interpolated forward and the exact
    derivative of the interpolation as the shift gradient.

    Args:
        channels: number of channels ``C``.
        padding: any registered padding (:func:`shiftzoo.list_paddings`).
        interp: any registered interpolation (:func:`shiftzoo.list_interps`), ``"linear"`` by default.
        init_shift: the initial range ``r``, one number or one per spatial axis.
        init_thumb_rule: 1: ``uniform(-r, r)``; 2: ``uniform(0, r)`` times one random sign per axis.
        stride, crop: keep only the positions ``crop_begin + stride * y`` of each axis (see
            :func:`shiftzoo.functional.shift`); by default every position.
    """

    def __init__(self, channels: int, padding: PaddingName = "zeros", interp: InterpName = "linear",
                 init_shift: Union[float, Sequence[float]] = 1.0, init_thumb_rule: ThumbRule = 1,
                 stride: IntOrInts = 1, crop: CropArg = 0) -> None:
        super().__init__(channels, padding=padding, interp=interp, grad_interp=None, sparsity=0.0,
                         init_shift=init_shift, init_thumb_rule=init_thumb_rule, stride=stride, crop=crop)

    def _config(self) -> Dict[str, Any]:
        return {**super()._config(), "interp": self.interp}


class _FrozenShift(ShiftLayer):
    """Whole-pixel shifts kept in a buffer: no parameter, no shift gradient (and no work for one)."""

    def __init__(self, shifts: Tensor, padding: PaddingName, dims: int = 0, stride: IntOrInts = 1,
                 crop: CropArg = 0) -> None:
        super().__init__(shifts.shape[0], padding=padding, interp="nearest", dims=dims, stride=stride, crop=crop)
        self.register_buffer("weight", shifts.to(torch.get_default_dtype()))


class GroupedShift(_FrozenShift):
    """Grouped shift (ShiftNet, Wu et al. 2018): fixed whole-pixel shifts, each of the ``T =
    prod(kernel_size)`` taps of a kernel given to ``C // T`` channels; the ``C % T`` leftover
    channels (the last ones) stay. The shifts are the buffer ``weight``: they never train, and the
    backward computes no shift gradient.

    ``pattern`` says which channels take which tap (:func:`~shiftzoo.nn.grouped_pattern`):

    * ``"shiftnet"`` (default): the authors' kernel, which ShiftResNet's checkpoints were trained
      with. Channels take the taps in turn (channel ``c`` tap ``c % T``, raster order, W fastest) and
      read ``in[x + dilation * (i - k // 2)]``: channel 0 of a 3x3 layer reads up-left.
    * ``"blocks"``: contiguous groups of ``C // T`` channels, group ``g`` shifted by tap ``g``
      (``-(k//2) .. k//2`` times ``dilation`` for an odd ``k``; an even kernel's centre rounds down
      as with ``padding="same"``, so the groups read the depthwise convolution's own taps). Equal
      shifts are neighbours, which the CPU kernels move as whole vectors in channels_last: prefer it
      for a network trained from scratch. :meth:`from_depthwise` (and ``replace_depthwise``) use it.

    Args:
        channels: number of channels ``C`` (at least ``prod(kernel_size)``).
        kernel_size: kernel size, one int or one per spatial axis.
        dilation: spacing of the offsets, one int or one per spatial axis.
        padding: any registered padding.
        pattern: ``"shiftnet"`` or ``"blocks"``.
        stride, crop: keep only the positions ``crop_begin + stride * y`` of each axis (see
            :func:`shiftzoo.functional.shift`); by default every position.
    """

    def __init__(self, channels: int, kernel_size: Union[int, Sequence[int]] = 3,
                 dilation: Union[int, Sequence[int]] = 1, padding: PaddingName = "zeros",
                 pattern: GroupedPattern = "shiftnet", stride: IntOrInts = 1, crop: CropArg = 0) -> None:
        kernel = as_tuple(kernel_size, self.dims, "kernel_size", 1)
        spacing = as_tuple(dilation, self.dims, "dilation", 1)
        super().__init__(grouped_pattern(_check_channels(channels), kernel, spacing, pattern), padding,
                         stride=stride, crop=crop)
        self.kernel_size, self.dilation, self.pattern = kernel, spacing, pattern

    @classmethod
    def _depthwise_defaults(cls, geometry: DepthwiseGeometry) -> Dict[str, Any]:
        # A converted network is trained anew: the faster layout, reading the convolution's own taps.
        return {**super()._depthwise_defaults(geometry), "kernel_size": geometry.kernel_size,
                "dilation": geometry.dilation, "pattern": "blocks"}

    def _config(self) -> Dict[str, Any]:
        return {**super()._config(), "kernel_size": self.kernel_size, "dilation": self.dilation,
                "pattern": self.pattern}


class FixedShift(_FrozenShift):
    """A fixed pattern of whole-pixel shifts (the buffer ``weight``), the parameter-free shift of the
    blocks (TSM, ShiftViT, AS-MLP, S2-MLP). Runs out of place through :func:`shiftzoo.functional.shift`.

    Args:
        shifts: ``(C, d)`` shifts (rounded half to even if not whole); ``d`` sets the spatial axes.
        padding: any registered padding.
        stride, crop: keep only the positions ``crop_begin + stride * y`` of each axis (see
            :func:`shiftzoo.functional.shift`); by default every position.
    """

    def __init__(self, shifts: Union[Tensor, Sequence[Sequence[float]]], padding: PaddingName = "zeros",
                 stride: IntOrInts = 1, crop: CropArg = 0) -> None:
        shifts = torch.as_tensor(shifts, dtype=torch.get_default_dtype())
        if shifts.dim() != 2 or not 1 <= shifts.shape[1] <= 3 or shifts.shape[0] < 1:
            raise ValueError(f"FixedShift: shifts must have shape (C, d) with d in 1..3, got {tuple(shifts.shape)}")
        if not torch.isfinite(shifts).all():
            raise ValueError("FixedShift: shifts must be finite")
        super().__init__(shifts, padding, dims=shifts.shape[1], stride=stride, crop=crop)

    @classmethod
    def from_depthwise(cls, conv: nn.Module, downsample: str = "sample", **kwargs: Any) -> nn.Module:
        raise TypeError("FixedShift has no pattern to derive from a convolution: use GroupedShift.from_depthwise")

    def _config(self) -> Dict[str, Any]:
        return {**super()._config(), "dims": self.dims}


L = TypeVar("L", bound=ShiftLayer)


def with_dims(family: Type[L], dims: int, name: Optional[str] = None) -> Type[L]:
    """The variant of ``family`` over ``dims`` spatial axes (``SparseShift2d`` = ``with_dims(SparseShift, 2)``),
    named ``name`` (default: the family's name + ``"{dims}d"``)."""
    name = name or f"{family.__name__}{dims}d"
    doc = (f"{name}: {dims} spatial ax{'is' if dims == 1 else 'es'}, input {_AXES[dims]}, "
           f"shifts ``weight`` of shape (C, {dims}).\n\n    " + (family.__doc__ or "").strip())
    return type(name, (family,), {"dims": dims, "__doc__": doc, "__module__": family.__module__,
                                  "__qualname__": name})


SparseShift1d, SparseShift2d, SparseShift3d = (with_dims(SparseShift, d) for d in (1, 2, 3))
ActiveShift1d, ActiveShift2d, ActiveShift3d = (with_dims(ActiveShift, d) for d in (1, 2, 3))
GroupedShift1d, GroupedShift2d, GroupedShift3d = (with_dims(GroupedShift, d) for d in (1, 2, 3))

# Family name -> {dims: class}, for replace_depthwise and the builder.
FAMILIES: Dict[str, Dict[int, Type[ShiftLayer]]] = {
    "sparse": {1: SparseShift1d, 2: SparseShift2d, 3: SparseShift3d},
    "active": {1: ActiveShift1d, 2: ActiveShift2d, 3: ActiveShift3d},
    "grouped": {1: GroupedShift1d, 2: GroupedShift2d, 3: GroupedShift3d},
}


def _full_value(term: Tensor) -> Tensor:
    # Under FSDP2 a layer's parameter is sharded between forward and backward (a DTensor), and so is
    # its penalty: a partial sum per rank. Its full value (an all-reduce, differentiable: every rank
    # adds the whole penalty, and each shard's gradient gets its part once) mixes with plain tensors.
    full = getattr(term, "full_tensor", None)
    return full() if callable(full) else term


def sparsity_loss(model: nn.Module) -> Tensor:
    """The sum of :meth:`ShiftLayer.sparsity_loss` over every shift layer in ``model`` (a zero tensor
    if there is none); add it to the training loss. ``model`` may be wrapped (DDP) or sharded
    (FSDP2's ``fully_shard``: each rank gets the whole penalty, as under DDP)."""
    terms = [_full_value(m.sparsity_loss()) for m in model.modules() if isinstance(m, ShiftLayer)]
    if not terms:
        param = next(model.parameters(), None)
        return torch.zeros(()) if param is None else param.new_zeros(())
    return torch.stack([t.to(terms[0].dtype) for t in terms]).sum()
