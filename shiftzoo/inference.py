"""The inference form of a model with shift layers: :func:`optimize_for_inference`.

A trained SparseShift or GroupedShift layer (and FixedShift) moves whole pixels; at inference it
needs no parameter and no gradient, only its integer shifts. Around it, a network usually
normalises and clamps each channel: MobileNet's ``1x1 -> BN -> ReLU6 -> shift -> BN -> ReLU6 -> 1x1``,
ShiftNet's ``1x1 -> BN -> ReLU -> shift -> 1x1``. Those per-channel maps commute with nothing, but
they can ride along: the inference form folds them into the shift (:class:`InferenceShift`, op
``shift_affine``), so that one pass over memory does what took up to five (two BatchNorms, two
clamps and the shift, each reading and writing the whole tensor).

Every fold is checked, bit for bit, against the modules it replaces before it is kept: outputs of
the optimized model equal the unoptimized model's exactly (float32 and float64).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from . import _extension, functional, plugin_registry, reference
from ._sampling import CropArg, IntOrInts, Sampling
from ._validation import check_batched, refuse_scripting
from .convert import _is_conv
from .nn.geometry import DepthwiseGeometry
from .nn.layers import ShiftLayer

__all__ = ["InferenceShift", "InferenceReport", "optimize_for_inference"]

# A per-channel map v -> clamp(scale * v + bias, lo, hi): (scale, bias) or None, then (lo, hi).
AffineMap = Tuple[Optional[Tuple[Tensor, Tensor]], float, float]
_IDENTITY: AffineMap = (None, -math.inf, math.inf)


class InferenceShift(nn.Module):
    """A whole-pixel shift for inference, with the per-channel maps around it folded in:
    ``post(shift(pre(x)))``, each map ``v -> clamp(scale[c] * v + bias[c], lo, hi)`` (the product and
    sum rounded once, as BatchNorm's kernels do). Made by :func:`optimize_for_inference`; it has no
    parameter and no gradient.

    Args:
        shifts: ``(C, d)`` whole-pixel shifts.
        padding: a compiled padding.
        stride, crop: the positions kept (see :func:`shiftzoo.functional.shift`).
        pre, post: ``((scale, bias) or None, lo, hi)``; scale and bias ``(C,)``.
    """

    def __init__(self, shifts: Tensor, padding: str, stride: IntOrInts = 1, crop: CropArg = 0,
                 pre: AffineMap = _IDENTITY, post: AffineMap = _IDENTITY) -> None:
        super().__init__()
        self.dims = shifts.shape[1]
        self.padding = padding
        self.sampling = Sampling.of(self.dims, stride, crop, "InferenceShift")
        self.register_buffer("shifts", torch.round(shifts.detach()).to(torch.get_default_dtype()))
        for side, (affine, lo, hi) in (("pre", pre), ("post", post)):
            scale, bias = affine if affine is not None else (None, None)
            self.register_buffer(f"{side}_scale", None if scale is None else scale.detach().clone())
            self.register_buffer(f"{side}_bias", None if bias is None else bias.detach().clone())
            setattr(self, f"{side}_bounds", (float(lo), float(hi)))

    @property
    def folds(self) -> bool:
        """Whether a map is folded in (else this is a plain whole-pixel shift)."""
        return self.pre_scale is not None or self.post_scale is not None or \
            self.pre_bounds != (-math.inf, math.inf) or self.post_bounds != (-math.inf, math.inf)

    def forward(self, input: Tensor) -> Tensor:
        check_batched(type(self).__name__, input, self.dims, self.shifts.shape[0])
        shifts = self.shifts.to(input.dtype) if input.dtype.is_floating_point else self.shifts
        if not self.folds:
            return functional.shift(input, shifts, self.padding, "nearest", stride=self.sampling.stride,
                                    crop=self.sampling.crop)
        if not _extension.available():  # the pure-PyTorch fallback: the same maps, unfused
            mapped = _apply(input, self.pre_scale, self.pre_bias, self.pre_bounds)
            out = reference.shift(mapped, shifts, self.padding, "nearest", stride=self.sampling.stride,
                                  crop=self.sampling.crop)
            return _apply(out, self.post_scale, self.post_bias, self.post_bounds)
        return torch.ops.shiftzoo.shift_affine(
            input, shifts, self.padding, *self.sampling.op_args(), self.pre_scale, self.pre_bias, *self.pre_bounds,
            self.post_scale, self.post_bias, *self.post_bounds)

    def __prepare_scriptable__(self) -> "InferenceShift":
        refuse_scripting(self)

    def extra_repr(self) -> str:
        parts = [f"channels={self.shifts.shape[0]}", f"padding={self.padding!r}"]
        if not self.sampling.is_identity:
            parts += [f"stride={self.sampling.stride}", f"crop={self.sampling.crop}"]
        for side in ("pre", "post"):
            affine = getattr(self, f"{side}_scale") is not None
            bounds = getattr(self, f"{side}_bounds")
            if affine or bounds != (-math.inf, math.inf):
                parts.append(f"{side}=({'affine, ' if affine else ''}clamp{bounds})")
        return ", ".join(parts)


def _apply(x: Tensor, scale: Optional[Tensor], bias: Optional[Tensor], bounds: Tuple[float, float]) -> Tensor:
    if scale is not None:
        view = (1, -1) + (1,) * (x.dim() - 2)
        x = torch.addcmul(bias.view(view).to(x.dtype), x, scale.view(view).to(x.dtype))
    return x.clamp(*bounds)


@dataclass
class InferenceReport:
    """What :func:`optimize_for_inference` did, per shift layer (qualified names)."""

    integer: List[str] = field(default_factory=list)  # now whole-pixel shifts without a parameter
    identity: List[str] = field(default_factory=list)  # moved nothing: removed
    folded: Dict[str, str] = field(default_factory=dict)  # what was folded into the shift
    skipped: Dict[str, str] = field(default_factory=dict)  # left as they were, and why
    permuted: List[str] = field(default_factory=list)  # channels sorted into runs (permute_channels)
    unpermuted: Dict[str, str] = field(default_factory=dict)  # permute_channels asked, not done: why
    notes: List[str] = field(default_factory=list)  # about the model as a whole

    def __str__(self) -> str:
        lines = [f"{len(self.integer)} shift layer(s) now whole-pixel, {len(self.identity)} removed (no move), "
                 f"{len(self.folded)} with their neighbours folded in, {len(self.skipped)} left as they were"]
        lines += [f"  folded {name}: {what}" for name, what in self.folded.items()]
        lines += [f"  skipped {name}: {why}" for name, why in self.skipped.items()]
        lines += [f"  channels permuted into runs: {name}" for name in self.permuted]
        lines += [f"  not permuted {name}: {why}" for name, why in self.unpermuted.items()]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


_CLAMPS = (nn.ReLU, nn.ReLU6, nn.Hardtanh)


def _clamp_bounds(module: nn.Module) -> Tuple[float, float]:
    if isinstance(module, nn.ReLU):
        return 0.0, math.inf
    return float(module.min_val), float(module.max_val)  # ReLU6 is a Hardtanh(0, 6)


def _batchnorm_map(bn: nn.Module) -> Optional[Tuple[Tensor, Tensor]]:
    """The eval-mode BatchNorm as (scale, bias), computed as its kernels compute them: scale =
    rsqrt(var + eps) * weight, bias = bias - mean * scale (rounded once); None if it is not a fixed map."""
    if not isinstance(bn, nn.modules.batchnorm._BatchNorm) or bn.training or bn.running_var is None:
        return None
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight
        shift = bn.bias if bn.bias is not None else torch.zeros_like(scale)
        wide = torch.float64 if scale.dtype == torch.float32 else scale.dtype
        bias = (shift.to(wide) - bn.running_mean.to(wide) * scale.to(wide)).to(scale.dtype)
    return scale.detach(), bias.detach()


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _chain(shift_node, modules: Dict[str, nn.Module], calls: Dict[str, int], backward: bool) -> List[str]:
    """The BatchNorm-then-clamp (or either alone) next to a shift node, as (names, map): the modules
    run right before it (backward) or right after it, each called once, whose output only the next
    one reads."""
    names: List[str] = []
    node = shift_node
    for kinds in ((_CLAMPS, (nn.modules.batchnorm._BatchNorm,)) if backward else
                  ((nn.modules.batchnorm._BatchNorm,), _CLAMPS)):
        if backward:
            if len(node.args) != 1 or not hasattr(node.args[0], "op"):
                break
            candidate = node.args[0]
            ok = len(candidate.users) == 1
        else:
            if len(node.users) != 1:
                break
            candidate = next(iter(node.users))
            ok = len(candidate.args) == 1 and not candidate.kwargs
        if not (ok and candidate.op == "call_module" and calls.get(candidate.target) == 1
                and isinstance(modules[candidate.target], kinds)):
            continue
        names.append(candidate.target)
        node = candidate
    return names[::-1] if backward else names


def _map_of(names: Sequence[str], modules: Dict[str, nn.Module]) -> Optional[AffineMap]:
    """BatchNorm (affine) then clamp, as one map; None if a BatchNorm is not a fixed map."""
    affine, lo, hi = None, -math.inf, math.inf
    for name in names:
        module = modules[name]
        if isinstance(module, _CLAMPS):
            lo, hi = _clamp_bounds(module)
        else:
            affine = _batchnorm_map(module)
            if affine is None:
                return None
    return affine, lo, hi


def _probe(layer: ShiftLayer, dtype: torch.dtype) -> Tensor:
    g = torch.Generator().manual_seed(0)
    size = (2, layer.channels) + (9, 11, 7)[:layer.dims]
    device = layer.weight.device
    return (torch.randn(size, generator=g, dtype=torch.float64) * 4).to(dtype).to(device)


def optimize_for_inference(model: nn.Module, *, fold: bool = True, permute_channels: bool = False) -> InferenceReport:
    """Turns ``model`` (in eval mode) into its inference form, in place.

    Every SparseShift, GroupedShift and FixedShift layer with a compiled padding becomes an
    :class:`InferenceShift` with its whole-pixel shifts (no parameter, no gradient), or is removed
    where it moves nothing. With ``fold`` (default), the eval-mode BatchNorm and ReLU / ReLU6 /
    Hardtanh modules that run right before and right after it (found by tracing the model with
    ``torch.fx``; each called once and read by nothing else) are folded into it and replaced by
    ``nn.Identity``; each fold is kept only if the folded layer's output equals the modules it
    replaces bit for bit on a test input. The model's outputs equal the unoptimized model's exactly.

    With ``permute_channels`` (off by default), each whole-pixel layer between two convolutions
    (``groups=1``; only ``nn.Identity`` between, e.g. folded modules) also gets its channels sorted
    into runs of equal displacement: the permutation is folded into the first convolution's output
    channels and the second one's input channels, so the shift moves whole runs (a vector of
    channels at a time in channels_last, as a GroupedShift's groups). Outputs then agree with the
    unoptimized model's up to float rounding, not bit for bit: the second convolution adds its
    input channels in another order.

    ActiveShift layers (they interpolate), layers with a runtime padding and models in training mode
    are left as they are; the returned :class:`InferenceReport` says what was done and why not.
    """
    if model.training:
        raise ValueError("optimize_for_inference: the model is in training mode; call model.eval() first "
                         "(BatchNorm folds its running statistics)")
    report = InferenceReport()
    eligible: Dict[str, ShiftLayer] = {}
    for name, layer in model.named_modules():
        if not isinstance(layer, ShiftLayer):
            continue
        if layer.interp != "nearest":
            report.skipped[name] = f"interpolates ({layer.interp!r}): it has no whole-pixel form"
        elif not plugin_registry.get_padding(layer.padding).compiled:
            report.skipped[name] = f"runtime padding {layer.padding!r}: the inference op takes compiled paddings"
        else:
            eligible[name] = layer
    chains = _find_chains(model, eligible, report) if fold and eligible else {}
    for name, layer in eligible.items():
        shifts = torch.round(layer.weight.detach())
        if name not in chains and not shifts.any() and layer.sampling.is_identity:
            _set_module(model, name, nn.Identity())
            report.identity.append(name)
            continue
        plain = InferenceShift(shifts, layer.padding, layer.sampling.stride, layer.sampling.crop)
        _set_module(model, name, plain)
        report.integer.append(name)
        if name in chains:
            _fold(model, name, layer, plain, chains[name], report)
    if permute_channels and report.integer:
        _permute_into_runs(model, report)
    return report


def _trace(model: nn.Module, report: InferenceReport, consequence: str):
    """model's torch.fx graph, shift layers and their geometry as leaves (their forward reads shapes);
    None, with a note, if torch.fx cannot trace it."""
    import torch.fx

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            return isinstance(m, (ShiftLayer, InferenceShift, DepthwiseGeometry)) or super().is_leaf_module(m, qualname)

    try:
        return Tracer().trace(model)
    except Exception as exc:
        report.notes.append(f"the model could not be traced by torch.fx ({type(exc).__name__}: {exc}); {consequence}")
        return None


def _call_counts(graph) -> Dict[str, int]:
    calls: Dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    return calls


def _permute_into_runs(model: nn.Module, report: InferenceReport) -> None:
    """Sorts the channels of each InferenceShift between two convolutions into runs of equal
    displacement, the permutation folded into both convolutions (see optimize_for_inference)."""
    graph = _trace(model, report, "no channel was permuted")
    if graph is None:
        return
    modules = dict(model.named_modules())
    calls = _call_counts(graph)

    def single_use(node) -> bool:
        return node.op == "call_module" and calls.get(node.target) == 1

    def is_identity(node) -> bool:
        return single_use(node) and isinstance(modules[node.target], nn.Identity) and len(node.args) == 1

    def conv_before(node):
        """The convolution whose output, through Identity modules only, is node's input and nothing else's."""
        if len(node.args) != 1 or not hasattr(node.args[0], "op"):
            return None
        source = node.args[0]
        while len(source.users) == 1 and is_identity(source) and hasattr(source.args[0], "op"):
            source = source.args[0]
        ok = len(source.users) == 1 and single_use(source) and _is_conv(modules[source.target])
        return source.target if ok else None

    def conv_after(node):
        """The convolution that alone reads node's output, through Identity modules only."""
        while len(node.users) == 1 and is_identity(next(iter(node.users))):
            node = next(iter(node.users))
        if len(node.users) != 1:
            return None
        user = next(iter(node.users))
        ok = single_use(user) and _is_conv(modules[user.target]) and len(user.args) == 1 and not user.kwargs
        return user.target if ok else None

    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), InferenceShift):
            continue
        name, shift = node.target, modules[node.target]
        if calls[name] != 1:
            report.unpermuted[name] = "called more than once"
            continue
        classes = torch.unique(shift.shifts, dim=0, return_inverse=True)[1]
        runs = 1 + int((classes[1:] != classes[:-1]).sum())
        if runs == int(classes.max()) + 1:
            continue  # already in runs (one displacement, or a grouped layer's groups): nothing to gain
        before, after = conv_before(node), conv_after(node)
        if before is None or after is None:
            side = "before" if before is None else "after"
            report.unpermuted[name] = (f"no convolution right {side} it (groups=1, only Identity between, read by "
                                       "nothing else) to fold the permutation into")
            continue
        first, second = modules[before], modules[after]
        channels = shift.shifts.shape[0]
        if first.groups != 1 or second.groups != 1 or first.out_channels != channels \
                or second.in_channels != channels:
            report.unpermuted[name] = f"the convolutions around it ({before}, {after}) are grouped"
            continue
        order = torch.argsort(classes, stable=True).to(shift.shifts.device)
        with torch.no_grad():
            first.weight.copy_(first.weight[order])
            if first.bias is not None:
                first.bias.copy_(first.bias[order])
            second.weight.copy_(second.weight[:, order])
            for buffer in ("shifts", "pre_scale", "pre_bias", "post_scale", "post_bias"):
                value = getattr(shift, buffer)
                if value is not None:
                    setattr(shift, buffer, value[order].clone())
        report.permuted.append(name)


def _find_chains(model: nn.Module, eligible: Dict[str, ShiftLayer], report: InferenceReport):
    graph = _trace(model, report, "no neighbour was folded")  # untraceable: shifts still become whole-pixel
    if graph is None:
        return {}
    modules = dict(model.named_modules())
    calls = _call_counts(graph)
    chains = {}
    for node in graph.nodes:
        if node.op != "call_module" or node.target not in eligible:
            continue
        if calls[node.target] != 1:
            report.skipped[node.target] = "called more than once: its neighbours stay apart"
            continue
        before = _chain(node, modules, calls, backward=True)
        after = _chain(node, modules, calls, backward=False)
        if before or after:
            chains[node.target] = (before, after)
    return chains


def _fold(model: nn.Module, name: str, layer: ShiftLayer, plain: InferenceShift,
          chain: Tuple[List[str], List[str]], report: InferenceReport) -> None:
    """Folds the modules of `chain` into the whole-pixel layer `plain` (now at `name`), if exact."""
    before, after = chain
    modules = dict(model.named_modules())
    dtype = layer.weight.dtype
    if dtype not in (torch.float32, torch.float64):
        report.skipped[name] = f"{dtype} layer: folding is exact in float32 and float64 only"
        return
    pre, post = _map_of(before, modules), _map_of(after, modules)
    if pre is None or post is None:
        report.skipped[name] = "a neighbouring BatchNorm uses batch statistics: nothing folded"
        return
    folded = InferenceShift(plain.shifts, plain.padding, plain.sampling.stride, plain.sampling.crop, pre, post)
    folded = folded.to(layer.weight.device)
    with torch.no_grad():
        x = _probe(layer, dtype)
        want = x
        for n in before:
            want = modules[n](want.clone())
        want = plain(want)
        for n in after:
            want = modules[n](want.clone())
        got = folded(x)
    if not torch.equal(want, got):
        report.skipped[name] = ("folding would change outputs (this build's BatchNorm rounds differently): "
                                "kept apart")
        return
    _set_module(model, name, folded)
    for n in before + after:
        _set_module(model, n, nn.Identity())
    describe = lambda names: " -> ".join(type(modules[n]).__name__ for n in names) or "nothing"  # noqa: E731
    report.folded[name] = f"{describe(before)} before, {describe(after)} after"
