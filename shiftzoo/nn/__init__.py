"""Shift layers: SparseShift (SSL), ActiveShift, GroupedShift in 1d/2d/3d, FixedShift, and the
depthwise-convolution geometry used to replace a convolution with one of them."""
from ..config_types import InterpName, PaddingName
from .geometry import DepthwiseGeometry
from .layers import (ActiveShift, ActiveShift1d, ActiveShift2d, ActiveShift3d, FixedShift, GroupedShift,
                     GroupedShift1d, GroupedShift2d, GroupedShift3d, IntegerShifts, ShiftLayer, SparseShift,
                     SparseShift1d, SparseShift2d, SparseShift3d, ThumbRule, sparsity_loss, with_dims)
from .patterns import GroupedPattern, axial_pattern, grouped_pattern, shiftvit_pattern, spatial_pattern, temporal_pattern

__all__ = [
    "ShiftLayer", "SparseShift", "ActiveShift", "GroupedShift", "FixedShift", "with_dims",
    "SparseShift1d", "SparseShift2d", "SparseShift3d", "ActiveShift1d", "ActiveShift2d", "ActiveShift3d",
    "GroupedShift1d", "GroupedShift2d", "GroupedShift3d", "IntegerShifts", "PaddingName", "InterpName", "ThumbRule",
    "DepthwiseGeometry", "sparsity_loss",
    "GroupedPattern", "grouped_pattern", "shiftvit_pattern", "axial_pattern", "spatial_pattern", "temporal_pattern",
]
