"""The registries of padding and interpolation plugins: every plugin name that
:func:`shiftzoo.functional.shift` and the layers accept is looked up here.

Built-in plugins are the compiled policies of ``plugins/`` (the list comes from the extension
itself); each is paired with its pure-PyTorch twin in :mod:`shiftzoo.reference`.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from . import _extension, reference


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin."""

    name: str
    kind: str  # "padding" or "interp"
    compiled: bool  # True: a policy compiled into shiftzoo._C; False: runtime (Python)
    support: int = 1  # taps of an interpolation (1 for paddings)
    reference: Optional[Callable] = None  # the pure-PyTorch form (function or reference.Interp)


_PADDINGS: Dict[str, PluginInfo] = {}
_INTERPS: Dict[str, PluginInfo] = {}


def _register_builtins() -> None:
    compiled = _extension.builtin_plugins()
    compiled_paddings = set(compiled["padding"])
    compiled_interps = dict(compiled["interp"])
    for name, fn in reference.PADDINGS.items():
        _PADDINGS[name] = PluginInfo(name, "padding", name in compiled_paddings, 1, fn)
    for name, interp in reference.INTERPS.items():
        _INTERPS[name] = PluginInfo(name, "interp", name in compiled_interps, interp.support, interp)
    missing = (compiled_paddings - set(_PADDINGS)) | (set(compiled_interps) - set(_INTERPS))
    if missing:  # a compiled plugin needs its reference twin (tests and fallback use it)
        raise ImportError(f"shiftzoo: compiled plugins {sorted(missing)} have no pure-PyTorch twin in shiftzoo.reference")


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
    """Every registered padding, sorted by name."""
    return [_PADDINGS[k] for k in sorted(_PADDINGS)]


def list_interps() -> List[PluginInfo]:
    """Every registered interpolation, sorted by name."""
    return [_INTERPS[k] for k in sorted(_INTERPS)]


_register_builtins()
