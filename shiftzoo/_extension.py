"""Loads the compiled operator library ``shiftzoo._C``, or records clearly why it could not.

Without it every op falls back to :mod:`shiftzoo.reference` (correct, slow) after one warning.
"""
from __future__ import annotations

import warnings
from typing import Optional

import torch  # noqa: F401  (loads libtorch, whose symbols _C needs)

try:
    from . import _C
    LOAD_ERROR: Optional[str] = None
except (ImportError, OSError) as error:  # not built, or built against another torch
    _C = None
    LOAD_ERROR = f"{type(error).__name__}: {error}"
    warnings.warn(
        "shiftzoo: the compiled extension shiftzoo._C could not be loaded "
        f"({LOAD_ERROR}); using the pure-PyTorch reference instead, which is correct but slow. "
        "Rebuild it against the installed torch with `pip install --no-build-isolation -e .`.",
        RuntimeWarning,
        stacklevel=2,
    )


def available() -> bool:
    """Whether the compiled operators are loaded."""
    return _C is not None


def builtin_plugins() -> dict:
    """The compiled plugins, ``{"padding": [name, ...], "interp": [(name, support), ...]}``."""
    return _C.builtin_plugins() if _C is not None else {"padding": [], "interp": []}
