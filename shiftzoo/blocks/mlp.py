"""Shift-based token mixers of the ViT/MLP family on ``(N, C, H, W)``: ShiftViT, AS-MLP, S2-MLP.

Each is ``x + mix(x)`` followed by ``x + MLP(norm(x))``; the shifts are :class:`FixedShift` layers
(out of place, whole pixels, ``padding`` zeros by default).
"""
from __future__ import annotations

from typing import ClassVar, Dict

from torch import Tensor, nn

from ..block_registry import register_block
from ..config_types import PaddingName
from ..nn.layers import FixedShift
from ..nn.patterns import axial_pattern, shiftvit_pattern, spatial_pattern
from .common import ConvMLP, NormName, check_positive, make_norm

__all__ = ["ShiftViTBlock", "AxialShiftBlock", "SpatialShiftBlock"]

# The authors' names of the MLP half (ShiftViT's and AS-MLP's code: norm2, then mlp.fc1/fc2) -> ours.
_AUTHORS_MLP_KEYS = {"norm2": "norm", "mlp.fc1": "mlp.0", "mlp.fc2": "mlp.3"}


class _MixerBlock(nn.Module):
    """``x = mix(x)`` then ``x = x + mlp(norm(x))``; subclasses define :meth:`mix` (with its own residual if any)."""

    def __init__(self, channels: int, mlp_ratio: float, drop: float, norm: NormName) -> None:
        super().__init__()
        check_positive(channels=channels)
        self.norm = make_norm(norm, channels)
        self.mlp = ConvMLP(channels, mlp_ratio, drop)

    def mix(self, input: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, input: Tensor) -> Tensor:
        x = self.mix(input)
        return x + self.mlp(self.norm(x))


@register_block("shiftvit_block")
class ShiftViTBlock(_MixerBlock):
    """ShiftViT's block (Wang et al. 2022): four groups of ``channels // n_div`` channels move one
    pixel left, right, up and down (the attention replaced by a zero-parameter shift), then
    ``x + MLP(norm(x))``.

    Args:
        channels: channels ``C`` (at least ``n_div``).
        n_div: ``1/n_div`` of the channels per direction (12 in the paper).
        mlp_ratio, drop: hidden width ratio and dropout of the MLP.
        norm: ``"batch"`` (the paper's choice), ``"layer"`` or ``"group"``.
        padding: what the shifted-in border reads (any registered padding).
    """

    # The authors' module names (SPACH's ShiftViTBlock) -> ours, for map_authors_state_dict.
    authors_keys: ClassVar[Dict[str, str]] = _AUTHORS_MLP_KEYS

    def __init__(self, channels: int, n_div: int = 12, mlp_ratio: float = 4.0, drop: float = 0.0,
                 norm: NormName = "batch", padding: PaddingName = "zeros") -> None:
        super().__init__(channels, mlp_ratio, drop, norm)
        self.shift = FixedShift(shiftvit_pattern(channels, n_div), padding)

    def mix(self, input: Tensor) -> Tensor:
        return self.shift(input)  # ShiftViT has no residual around the shift itself


@register_block("axial_shift")
class AxialShiftBlock(_MixerBlock):
    """AS-MLP's block (Lian et al. 2022): ``x + axial(norm1(x))`` with the axial shift module
    (1x1 conv -> norm -> GELU -> [shift along W -> 1x1 -> GELU] + [shift along H -> 1x1 -> GELU] ->
    norm -> 1x1), then ``x + MLP(norm2(x))``. Channel chunk ``g`` of ``shift_size`` moves by
    ``(g - shift_size // 2) * dilation``.

    Args:
        channels: channels ``C``.
        shift_size: number of channel chunks (and shift amounts) per axis.
        dilation: spacing of the shift amounts.
        mlp_ratio, drop: hidden width ratio and dropout of the MLP.
        norm: ``"group"`` (GroupNorm with one group, as AS-MLP), ``"layer"`` or ``"batch"``.
        padding: what the shifted-in border reads (any registered padding).
    """

    # The authors' module names (AS-MLP's AxialShiftedBlock) -> ours, for map_authors_state_dict.
    authors_keys: ClassVar[Dict[str, str]] = {
        "norm1": "pre_norm", "axial_shift.conv1": "conv1.0", "axial_shift.norm1": "conv1.1",
        "axial_shift.conv2_1": "conv_w.0", "axial_shift.conv2_2": "conv_h.0", "axial_shift.norm2": "conv3.0",
        "axial_shift.conv3": "conv3.1", **_AUTHORS_MLP_KEYS}

    def __init__(self, channels: int, shift_size: int = 5, dilation: int = 1, mlp_ratio: float = 4.0,
                 drop: float = 0.0, norm: NormName = "group", padding: PaddingName = "zeros") -> None:
        super().__init__(channels, mlp_ratio, drop, norm)
        self.pre_norm = make_norm(norm, channels)
        self.conv1 = nn.Sequential(nn.Conv2d(channels, channels, 1), make_norm(norm, channels), nn.GELU())
        self.shift_w = FixedShift(axial_pattern(channels, shift_size, dilation, axis=1), padding)
        self.shift_h = FixedShift(axial_pattern(channels, shift_size, dilation, axis=0), padding)
        self.conv_w = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.GELU())
        self.conv_h = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.GELU())
        self.conv3 = nn.Sequential(make_norm(norm, channels), nn.Conv2d(channels, channels, 1))

    def mix(self, input: Tensor) -> Tensor:
        x = self.conv1(self.pre_norm(input))
        x = self.conv_w(self.shift_w(x)) + self.conv_h(self.shift_h(x))
        return input + self.conv3(x)


@register_block("spatial_shift")
class SpatialShiftBlock(_MixerBlock):
    """S2-MLP's block (Yu et al. 2021): ``x + fc2(spatial_shift(GELU(fc1(norm1(x)))))`` with the four
    channel quarters moving +1/-1 along H and +1/-1 along W, then ``x + MLP(norm2(x))``.

    The paper's Algorithm 1 assigns slices in place, which leaves the border row/column of each
    quarter unchanged: ``padding="border"`` reproduces it exactly; the default reads zeros there.

    Args:
        channels: channels ``C`` (at least 4).
        mlp_ratio, drop: hidden width ratio and dropout of the MLP.
        norm: ``"layer"`` (LayerNorm over channels, as S2-MLP), ``"batch"`` or ``"group"``.
        padding: what the shifted-in border reads (any registered padding).
    """

    def __init__(self, channels: int, mlp_ratio: float = 4.0, drop: float = 0.0, norm: NormName = "layer",
                 padding: PaddingName = "zeros") -> None:
        super().__init__(channels, mlp_ratio, drop, norm)
        self.pre_norm = make_norm(norm, channels)
        self.fc1 = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.GELU())
        self.shift = FixedShift(spatial_pattern(channels), padding)
        self.fc2 = nn.Conv2d(channels, channels, 1)

    def mix(self, input: Tensor) -> Tensor:
        return input + self.fc2(self.shift(self.fc1(self.pre_norm(input))))
