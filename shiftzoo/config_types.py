"""The argument kinds the builder understands, beyond plain values and nested modules.

A constructor argument annotated with one of these is treated specially by
:func:`shiftzoo.build_shift`:

* :data:`PaddingName`, :data:`InterpName`: the name of a registered padding or interpolation, checked
  through :mod:`shiftzoo.plugin_registry` (runtime-registered plugins are accepted too);
* :data:`ShiftSpec`: a block's shift layer, given as a type name, a config without ``channels`` or a
  callable; the block supplies the channel count.

This module depends on nothing else in the package, so the layers, the blocks and the builder can all
import it.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, NewType, Union

from torch import nn

__all__ = ["PaddingName", "InterpName", "ShiftSpec"]

# Markers for arguments that name a registered plugin: the builder validates them through
# shiftzoo.plugin_registry (so runtime-registered plugins are accepted too).
PaddingName = NewType("PaddingName", str)
InterpName = NewType("InterpName", str)

# What a block accepts for its shift layer; the block supplies ``channels``:
#   "sparse_shift2d"                               a registered type name,
#   {"type": "sparse_shift2d", "padding": ...}     a config without channels,
#   SparseShift2d / partial(ActiveShift2d, ...)    any callable taking the channel count.
ShiftSpec = Union[str, Mapping[str, Any], Callable[[int], nn.Module]]
