"""shiftzoo: per-channel shift layers for PyTorch, the zero-FLOP replacement for depthwise
convolution (GroupedShift, ActiveShift, Sparse Shift Layer and the blocks built from them)."""
from . import _extension
from . import functional, plugin_registry, reference
from .plugin_registry import PluginInfo, list_interps, list_paddings, register_interp, register_padding

# The plugin registry's old name: ``from shiftzoo import registry`` keeps working.
from . import plugin_registry as registry

if _extension.available():
    from . import _ops  # noqa: F401  (fake kernels and autograd of the compiled ops)
    from . import _autocast  # noqa: F401  (autocast policy: an explicit fallthrough, shifts keep their dtype)

from . import block_registry, blocks, compat, config_types, convert, nn
from .block_registry import list_blocks, register_block
from .builder import ConfigError, build_shift
from .checkpoints import map_authors_state_dict
from .convert import ReplaceReport, depthwise_twin, replace_depthwise, replace_shifts
from .inference import InferenceReport, InferenceShift, optimize_for_inference
from .onnx_export import export_onnx, onnx_translations
from .nn import (ActiveShift1d, ActiveShift2d, ActiveShift3d, FixedShift, GroupedShift1d, GroupedShift2d,
                 GroupedShift3d, IntegerShifts, ShiftLayer, SparseShift1d, SparseShift2d, SparseShift3d,
                 sparsity_loss)

__version__ = "0.1.0"


def __getattr__(name: str):
    """``quant_mapping`` (the eager quantization flow's module mapping, :mod:`shiftzoo.compat`'s) is
    looked up on first access, so that importing shiftzoo does not import torch.ao.quantization."""
    if name == "quant_mapping":
        return compat.quant_mapping
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def has_extension() -> bool:
    """Whether the compiled operators are in use (otherwise the slow pure-PyTorch reference is)."""
    return _extension.available()


__all__ = ["functional", "reference", "plugin_registry", "registry", "block_registry", "config_types",
           "PluginInfo", "list_paddings", "list_interps", "register_padding", "register_interp",
           "has_extension", "__version__",
           "nn", "blocks", "compat", "convert", "ShiftLayer", "SparseShift1d", "SparseShift2d", "SparseShift3d",
           "ActiveShift1d", "ActiveShift2d", "ActiveShift3d", "GroupedShift1d", "GroupedShift2d", "GroupedShift3d",
           "FixedShift", "IntegerShifts", "sparsity_loss", "build_shift", "ConfigError", "register_block",
           "list_blocks", "map_authors_state_dict", "replace_depthwise", "replace_shifts", "depthwise_twin", "ReplaceReport", "optimize_for_inference", "InferenceShift", "InferenceReport", "quant_mapping", "export_onnx", "onnx_translations"]
