"""The registries of padding and interpolation plugins. Every plugin name that
:func:`shiftzoo.functional.shift` and the layers accept is looked up here.

Built-in plugins are the compiled policies of ``plugins/`` (the list comes from the extension
itself), each paired with its pure-PyTorch twin in :mod:`shiftzoo.reference`. Runtime plugins are
Python functions registered with :func:`register_padding` and :func:`register_interp`: no
compiler runs; the functions are turned into small per-channel tables and tap weights that one
generic compiled kernel consumes (see :mod:`shiftzoo._tabled`).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Union

import torch
from torch import Tensor

from . import _extension, reference

__all__ = ["PluginInfo", "register_padding", "register_interp", "unregister", "get_padding",
           "get_interp", "list_paddings", "list_interps"]

PaddingFn = Callable[[Tensor, int], Tensor]
WeightsFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin.

    ``padding``: the index function ``(i, n) -> index in [0, n) or -1`` with its ``period``.
    ``interp``: a :class:`shiftzoo.reference.Interp` (support and weight function).
    """

    name: str
    kind: str  # "padding" or "interp"
    compiled: bool  # True: a policy compiled into shiftzoo._C; False: runtime (Python)
    support: int = 1  # taps of an interpolation (1 for paddings)
    padding: Optional[PaddingFn] = None
    interp: Optional[reference.Interp] = None


class RuntimePadding:
    """A padding function with its ``period`` (what :func:`reference.tap_start` reads)."""

    def __init__(self, fn: PaddingFn, period: Union[None, int, Callable[[int], int]]):
        self.fn = fn
        self.period = (lambda n: period) if isinstance(period, int) else period
        self.__doc__ = fn.__doc__

    def __call__(self, i: Tensor, n: int) -> Tensor:
        return self.fn(i, n)


_PADDINGS: Dict[str, PluginInfo] = {}
_INTERPS: Dict[str, PluginInfo] = {}
_TABLES = {"padding": _PADDINGS, "interp": _INTERPS}


def _register_builtins() -> None:
    compiled = _extension.builtin_plugins()
    compiled_paddings = set(compiled["padding"])
    compiled_interps = dict(compiled["interp"])
    for name, fn in reference.PADDINGS.items():
        _PADDINGS[name] = PluginInfo(name, "padding", name in compiled_paddings, 1, padding=fn)
    for name, interp in reference.INTERPS.items():
        _INTERPS[name] = PluginInfo(name, "interp", name in compiled_interps, interp.support, interp=interp)
    missing = (compiled_paddings - set(_PADDINGS)) | (set(compiled_interps) - set(_INTERPS))
    if missing:  # a compiled plugin needs its reference twin (tests and the fallback use it)
        raise ImportError(f"shiftzoo: compiled plugins {sorted(missing)} have no pure-PyTorch twin in shiftzoo.reference")
    for name, support in compiled_interps.items():
        if support != _INTERPS[name].support:
            raise ImportError(f"shiftzoo: compiled interp {name!r} has {support} taps, its reference twin "
                              f"{_INTERPS[name].support}")


def _add(info: PluginInfo, override: bool) -> None:
    table = _TABLES[info.kind]
    if not isinstance(info.name, str) or not info.name.isidentifier():
        raise ValueError(f"shiftzoo: a {info.kind} name must be an identifier, got {info.name!r}")
    if info.name in table and not override:
        raise ValueError(f"shiftzoo: {info.kind} {info.name!r} is already registered "
                         f"({'compiled' if table[info.name].compiled else 'runtime'}); "
                         "pass override=True to replace it")
    table[info.name] = info


def register_padding(name: str, fn: Optional[PaddingFn] = None, *,
                     period: Union[None, int, Callable[[int], int]] = None, override: bool = False):
    """Registers a runtime padding; usable as ``@register_padding("name")`` or directly.

    Contract of ``fn(i: LongTensor, n: int) -> LongTensor``: maps every raw tap index ``i`` (any
    integer, any shape) on an axis of length ``n >= 1`` to an index in ``[0, n)`` or to ``-1``
    ("reads zero"); indices inside ``[0, n)`` map to themselves. Use torch ops only (it is
    traced by ``torch.compile``). It is called once per call and axis on a small
    ``(C, n + K - 1)`` tensor, never per element.

    ``period``: ``p(n) > 0`` (or an int) if ``fn`` repeats every ``p`` indices, ``0`` if it
    saturates (constant for all ``i < 0`` and for all ``i >= n``). It lets shifts of any size
    work; without it, shifts beyond ``±2**53`` are rejected. A plugin that returns an index
    outside ``[-1, n)`` gets an error naming it, never an out-of-bounds read.
    """
    def register(f: PaddingFn) -> PaddingFn:
        if not callable(f):
            raise TypeError(f"shiftzoo: register_padding({name!r}) needs a function, got {type(f).__name__}")
        _add(PluginInfo(name, "padding", False, 1, padding=RuntimePadding(f, period)), override)
        return f

    return register if fn is None else register(fn)


class _ExplicitDerivative(torch.autograd.Function):
    """weights(f) whose backward uses the plugin's own dweights(f)."""

    @staticmethod
    def forward(f: Tensor, weights: WeightsFn, dweights: WeightsFn) -> Tensor:
        return weights(f)

    @staticmethod
    def setup_context(ctx, inputs, output):
        f, _, ctx.dweights = inputs
        ctx.save_for_backward(f)

    @staticmethod
    def backward(ctx, grad_w: Tensor):
        (f,) = ctx.saved_tensors
        return (grad_w * ctx.dweights(f)).sum(-1), None, None


def _check_weights(name: str, support: int, weights: WeightsFn, dweights: Optional[WeightsFn]) -> None:
    """Rejects weight functions of the wrong shape or that do not sum to 1, at registration."""
    f = torch.linspace(0, 1, 17, dtype=torch.float64)[:-1]
    if support % 2 == 1:
        f = f - 0.5  # odd supports are centred on the rounded shift: f in [-1/2, 1/2)
    try:
        w = weights(f)
    except Exception as exc:
        raise ValueError(f"shiftzoo: interp {name!r}: weights(f) raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(w, Tensor) or tuple(w.shape) != (len(f), support):
        got = tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__
        raise ValueError(f"shiftzoo: interp {name!r}: weights(f) must return shape f.shape + ({support},), "
                         f"got {got} for f of shape {tuple(f.shape)}")
    worst = (w.sum(-1) - 1).abs().max().item()
    if not worst <= 1e-6:
        raise ValueError(f"shiftzoo: interp {name!r}: the {support} tap weights must sum to 1 for every f, "
                         f"but they are off by up to {worst:.3g} (normalise them: w / w.sum(-1, keepdim=True))")
    if dweights is not None:
        dw = dweights(f)
        if not isinstance(dw, Tensor) or tuple(dw.shape) != (len(f), support):
            raise ValueError(f"shiftzoo: interp {name!r}: dweights(f) must return shape f.shape + ({support},)")


def register_interp(name: str, *, support: int, weights: WeightsFn, dweights: Optional[WeightsFn] = None,
                    override: bool = False) -> None:
    """Registers a runtime interpolation of ``support`` taps (1 to 8).

    ``weights(f: Tensor) -> Tensor`` of shape ``f.shape + (support,)``: the tap weights, summing
    to 1, for the fraction ``f``. Taps (docs/semantics.md): for even ``support`` K, output ``x``
    samples ``p = x - s`` at taps ``floor(p) - (K/2 - 1) ... floor(p) + K/2`` and ``f = p -
    floor(p)`` in ``[0, 1)``; for odd K the taps are centred on ``round(p)`` (the shift rounded
    half to even) and ``f = p - round(p)`` in ``[-1/2, 1/2]``. Since a shift is constant over a
    channel, the weights are computed once per channel and axis.

    ``dweights(f)``: ``d weights / d f``, same shape; derived with autograd when omitted. It gives
    the gradient to the shifts (``df/ds = -1``). Use torch ops only.
    """
    if not isinstance(support, int) or not 1 <= support <= 8:
        raise ValueError(f"shiftzoo: interp {name!r}: support must be an int from 1 to 8, got {support!r}")
    if not callable(weights) or (dweights is not None and not callable(dweights)):
        raise TypeError(f"shiftzoo: interp {name!r}: weights and dweights must be functions")
    _check_weights(name, support, weights, dweights)
    fn = weights if dweights is None else (lambda f: _ExplicitDerivative.apply(f, weights, dweights))
    _add(PluginInfo(name, "interp", False, support, interp=reference.Interp(name, support, fn)), override)


def unregister(kind: str, name: str) -> None:
    """Removes a runtime plugin (``kind`` is "padding" or "interp"); built-ins stay."""
    table = _TABLES[kind]
    if name in table and table[name].compiled:
        raise ValueError(f"shiftzoo: {kind} {name!r} is compiled in and cannot be unregistered")
    table.pop(name, None)


def _lookup(table: Dict[str, PluginInfo], kind: str, name: object) -> PluginInfo:
    if isinstance(name, str) and name in table:
        return table[name]
    valid = sorted(table)
    hint = ""
    if isinstance(name, str):
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"shiftzoo: unknown {kind} {name!r}{hint}; expected one of: {', '.join(valid)}")


def get_padding(name: str) -> PluginInfo:
    """The padding plugin ``name``; a ``ValueError`` lists the valid names and the closest one."""
    return _lookup(_PADDINGS, "padding", name)


def get_interp(name: str) -> PluginInfo:
    """The interpolation plugin ``name``; a ``ValueError`` lists the valid names and the closest one."""
    return _lookup(_INTERPS, "interp", name)


def list_paddings() -> List[PluginInfo]:
    """Every registered padding (compiled and runtime), sorted by name."""
    return [_PADDINGS[k] for k in sorted(_PADDINGS)]


def list_interps() -> List[PluginInfo]:
    """Every registered interpolation (compiled and runtime), sorted by name."""
    return [_INTERPS[k] for k in sorted(_INTERPS)]


_register_builtins()
