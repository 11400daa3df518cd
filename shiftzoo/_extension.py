"""Loads the compiled operator library ``shiftzoo._C``, or records clearly why it could not.

Without it every op falls back to :mod:`shiftzoo.reference` (correct, slow) after one warning.
"""
from __future__ import annotations

import importlib
import sys
import warnings
from types import ModuleType
from typing import Optional

import torch  # (loads libtorch, whose symbols _C needs)

_NAME = f"{__package__}._C"
_BUILD = "`make install` (or `pip install --no-build-isolation -e .`)"


def _fallback_warning(error: Exception) -> str:
    """What went wrong, for the one warning of the fallback: not built (no finder found it; a ``None``
    in ``sys.modules`` blocks it instead), or there but not loadable."""
    if isinstance(error, ModuleNotFoundError) and error.name == _NAME and _NAME not in sys.modules:
        return f"{_NAME} is not built: using the slow pure-PyTorch reference. Build it with {_BUILD}"
    first_line = (str(error).strip().splitlines() or [""])[0]
    return (f"{_NAME} could not be loaded ({type(error).__name__}: {first_line}): using the slow pure-PyTorch "
            f"reference. Rebuild it against the installed torch {torch.__version__} with {_BUILD}")


_C: Optional[ModuleType]
try:
    _C = importlib.import_module(_NAME)
    LOAD_ERROR: Optional[str] = None
except (ImportError, OSError) as error:  # not built, or built against another torch
    _C = None
    LOAD_ERROR = f"{type(error).__name__}: {error}"
    warnings.warn(_fallback_warning(error), RuntimeWarning, stacklevel=2)


def available() -> bool:
    """Whether the compiled operators are loaded."""
    return _C is not None


def builtin_plugins() -> dict:
    """The compiled plugins, ``{"padding": [name, ...], "interp": [(name, support), ...]}``."""
    return _C.builtin_plugins() if _C is not None else {"padding": [], "interp": []}


def cpu_isa() -> dict:
    """The CPU kernels' instruction sets: ``{"compiled": [...], "active": the one this machine runs}``."""
    return _C.cpu_isa() if _C is not None else {"compiled": [], "active": None}
