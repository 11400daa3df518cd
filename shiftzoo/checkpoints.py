"""Loading checkpoints trained with the papers' own code into shiftzoo's blocks.

A block whose modules are named differently from the authors' (ShiftResNet's ``ShiftConv``, TSM's
``TemporalShift``, SPACH's ``ShiftViTBlock``, AS-MLP's ``AxialShiftedBlock``) declares the renaming
as a class attribute ``authors_keys``: ``{their module path: our module path}`` inside the block.
:func:`map_authors_state_dict` applies those tables at every place such a block sits in a model.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

from torch import nn

from .nn.layers import _FrozenShift

__all__ = ["map_authors_state_dict"]


def _rename(key: str, prefix: str, table: Mapping[str, str]) -> str:
    if not key.startswith(prefix):
        return key
    rest = key[len(prefix):]
    for theirs, ours in table.items():
        if rest.startswith(theirs + "."):
            return prefix + ours + rest[len(theirs):]
    return key


def map_authors_state_dict(model: nn.Module, state_dict: Mapping[str, Any]) -> Dict[str, Any]:
    """``state_dict``, saved from the authors' implementation of a model, with its keys renamed to
    ``model``'s, ready for ``model.load_state_dict(...)`` (strict).

    ``model`` must put our blocks where the authors' model has theirs (``layer1.0`` a
    :class:`~shiftzoo.blocks.CSCBlock` where ShiftResNet has a ``ShiftConv``, ...): inside each block
    that has an ``authors_keys`` table, keys are renamed from the authors' module names to ours;
    nested blocks are renamed outer first. Every other key passes unchanged. The authors' fixed shift
    patterns are computed, not stored, so the pattern buffers of our fixed-shift layers (``weight``
    of ``GroupedShift``/``FixedShift``) that the checkpoint lacks are taken from ``model`` itself.
    """
    mapped = dict(state_dict)
    for path, module in model.named_modules():  # outer blocks come before the blocks they hold
        table = getattr(type(module), "authors_keys", None)
        if table:
            prefix = f"{path}." if path else ""
            mapped = {_rename(key, prefix, table): value for key, value in mapped.items()}
    own = model.state_dict()
    for path, module in model.named_modules():
        key = f"{path}.weight" if path else "weight"
        if isinstance(module, _FrozenShift) and key not in mapped and key in own:
            mapped[key] = own[key]
    return mapped
