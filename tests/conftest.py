"""The suite tests the compiled operators: it refuses to run on the pure-PyTorch fallback
(unless SHIFTZOO_ALLOW_FALLBACK=1), so CI can never pass on the fallback by accident."""
import os

import pytest

import shiftzoo
from shiftzoo import _extension


def pytest_configure(config):
    if not shiftzoo.has_extension() and os.environ.get("SHIFTZOO_ALLOW_FALLBACK") != "1":
        raise pytest.UsageError(
            "shiftzoo's compiled extension is not loaded "
            f"({_extension.LOAD_ERROR}); build it with `pip install --no-build-isolation -e .` "
            "(set SHIFTZOO_ALLOW_FALLBACK=1 to test the pure-PyTorch fallback on purpose)")
