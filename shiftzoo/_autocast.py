"""The shift ops' autocast policy: none. A shift moves data, like pooling: under ``torch.autocast``
it runs in its input's dtype and leaves the shifts in theirs.

PyTorch gives every op without an autocast kernel a *fallthrough* on the Autocast keys (a backend
fallback in ATen's ``autocast_mode.cpp``), so the ops already behave this way by default. This
module registers that fallthrough explicitly, per op and per key, so that the policy is part of
shiftzoo rather than an accident of PyTorch's defaults: the dispatch table names a kernel for
``AutocastCPU``/``AutocastCUDA`` (``torch._C._dispatch_dump_table("shiftzoo::shift")``), and
``torch.compile`` (AOTAutograd traces through the same dispatcher keys) records the op with the
dtypes eager mode uses.

Why a fallthrough, and not ``torch.library.register_autocast(op, device, dtype)``: that rule casts
*every* floating input to ``dtype``. It would turn a float32 input into bfloat16 (a shift cannot
lose precision, so there is nothing to gain), and it would cast the shifts too: a SparseShift of
2.505 becomes 2.5 in bfloat16 and rounds (half to even) to 2 instead of 3, an ActiveShift's
fraction loses its low bits, and the gradient to float32 parameters would pass through a cast.
Promoting to float32 instead (as CPU autocast does for ``grid_sampler``) gains nothing either: the
kernels accumulate float16/bfloat16 in float32 and round once, so the low-precision result already
equals the float32 computation rounded to the input's dtype (tests/test_autocast.py checks this).

Importing the module registers the policy; it is idempotent and does nothing without the compiled
extension (the pure-PyTorch fallback is made of torch ops, which keep their own autocast rules).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch

__all__ = ["OPS", "AUTOCAST_KEYS", "register", "registered"]

# Every shiftzoo op: the forward ops users reach (shift, shift_affine, shift_tabled) and their
# backward ops, which a compiled backward may trace under autocast.
OPS: Tuple[str, ...] = ("shift", "shift_backward", "shift_affine", "shift_tabled", "shift_tabled_backward")
# The devices shiftzoo has kernels for.
AUTOCAST_KEYS: Tuple[str, ...] = ("AutocastCPU", "AutocastCUDA")

_library: Optional[torch.library.Library] = None  # kept alive: dropping it would undo the registrations
_registered: List[Tuple[str, str]] = []


def _op_exists(name: str) -> bool:
    try:
        getattr(torch.ops.shiftzoo, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def register() -> List[Tuple[str, str]]:
    """Registers a fallthrough for every shiftzoo op on every key of :data:`AUTOCAST_KEYS`, except
    where a kernel is already registered (by an earlier call, or by the extension itself). Returns
    the ``(op, key)`` pairs registered by this module so far."""
    global _library
    for name in OPS:
        if not _op_exists(name):  # no extension, or an older one without this op
            continue
        for key in AUTOCAST_KEYS:
            if torch._C._dispatch_has_kernel_for_dispatch_key(f"shiftzoo::{name}", key):
                continue
            if _library is None:
                _library = torch.library.Library("shiftzoo", "IMPL")
            _library.impl(name, torch.library.fallthrough_kernel, key)
            _registered.append((name, key))
    return list(_registered)


def registered() -> List[Tuple[str, str]]:
    """The ``(op, key)`` pairs this module registered a fallthrough for."""
    return list(_registered)


register()
