"""Blocks built from shift layers (ShiftNet, FE-Net, TSM, ShiftViT, AS-MLP, S2-MLP) and the containers
of configs, each registered for :func:`shiftzoo.build_shift`; the registry's functions
(:mod:`shiftzoo.block_registry`) and :data:`ShiftSpec` (:mod:`shiftzoo.config_types`) are re-exported."""
from ..block_registry import get_block, list_blocks, register_block
from ..config_types import ShiftSpec
from .common import ChannelLayerNorm, ConvMLP, NormName, make_shift
from .containers import Concat, Residual, sequential
from .mlp import AxialShiftBlock, ShiftViTBlock, SpatialShiftBlock
from .shiftnet import CSCBlock, FEBlock
from .temporal import TemporalShift

__all__ = [
    "register_block", "get_block", "list_blocks", "ShiftSpec", "NormName", "make_shift",
    "CSCBlock", "FEBlock", "TemporalShift", "ShiftViTBlock", "AxialShiftBlock", "SpatialShiftBlock",
    "sequential", "Concat", "Residual", "ConvMLP", "ChannelLayerNorm",
]
