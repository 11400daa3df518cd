"""Blocks built from shift layers (ShiftNet, FE-Net, TSM, ShiftViT, AS-MLP, S2-MLP), the containers
of configs, and the registry that :func:`shiftzoo.build_shift` reads."""
from .common import ChannelLayerNorm, ConvMLP, NormName, ShiftSpec, make_shift
from .containers import Concat, Residual, sequential
from .mlp import AxialShiftBlock, ShiftViTBlock, SpatialShiftBlock
from .registry import get_block, list_blocks, register_block
from .shiftnet import CSCBlock, FEBlock
from .temporal import TemporalShift

__all__ = [
    "register_block", "get_block", "list_blocks", "ShiftSpec", "NormName", "make_shift",
    "CSCBlock", "FEBlock", "TemporalShift", "ShiftViTBlock", "AxialShiftBlock", "SpatialShiftBlock",
    "sequential", "Concat", "Residual", "ConvMLP", "ChannelLayerNorm",
]
