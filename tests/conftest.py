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


# SHIFTZOO_TEST_KERNELS=gpu-emulation: the whole suite on the CUDA backend's kernels, run on the host
# (backends/cuda/launch_host.h): the CPU kernels of every op are replaced by the host emulation's,
# and the tests of checks that only the CPU backend makes (marker host_checks) are skipped.
_EMULATED_OPS = ("shift", "shift_backward", "shift_affine", "shift_tabled", "shift_tabled_backward")
_emulation_library = None


def _use_gpu_emulation() -> None:
    global _emulation_library
    import torch

    emulated = torch.ops.shiftzoo_gpu_emulation
    _emulation_library = torch.library.Library("shiftzoo", "IMPL")
    for op in _EMULATED_OPS:
        _emulation_library.impl(op, getattr(emulated, op).default, "CPU")


if os.environ.get("SHIFTZOO_TEST_KERNELS") == "gpu-emulation":
    _use_gpu_emulation()


def pytest_collection_modifyitems(config, items):
    if _emulation_library is None:
        return
    skip = pytest.mark.skip(reason="a host-side check of the CPU backend; the CUDA kernels give NaN or read "
                                   "zero instead (tests/test_gpu_emulation.py tests that)")
    for item in items:
        if "host_checks" in item.keywords:
            item.add_marker(skip)
