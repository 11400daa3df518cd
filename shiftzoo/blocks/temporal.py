"""TSM's temporal shift (Lin et al. 2019) for video batches laid out as ``(N*T, C, H, W)``."""
from __future__ import annotations

from typing import ClassVar, Dict, Optional, Tuple

import torch
from einops import rearrange
from torch import Tensor, nn

from ..block_registry import register_block
from ..nn.layers import FixedShift
from ..nn.patterns import temporal_pattern
from .common import check_positive

__all__ = ["TemporalShift"]


@register_block("temporal_shift")
class TemporalShift(nn.Module):
    """Moves ``1/fold_div`` of the channels one frame back in time and (bidirectional) another
    ``1/fold_div`` one frame forward, zeros at the clip ends, then applies ``module``.

    The time axis becomes a spatial axis of one :func:`shiftzoo.functional.shift` call
    (``(N*T, C, H, W) -> (N, C, T, H*W)``), out of place: the input is never modified.

    Args:
        channels: channels of the input (taken from ``module.in_channels`` when omitted).
        module: what runs on the shifted frames (e.g. a ResNet block's first conv); identity if None.
        n_segment: frames per clip ``T``; the batch is ``N*T`` frames, clip by clip.
        fold_div: ``1/fold_div`` of the channels per direction (TSM: 8).
        bidirectional: False gives online TSM: only past frames are read, so a stream can be processed
            frame by frame with :meth:`step` and an explicit state.
    """

    # The authors' name of the wrapped module (TSM's TemporalShift.net) -> ours, for map_authors_state_dict.
    authors_keys: ClassVar[Dict[str, str]] = {"net": "module"}

    def __init__(self, channels: Optional[int] = None, module: Optional[nn.Module] = None, n_segment: int = 8,
                 fold_div: int = 8, bidirectional: bool = True) -> None:
        super().__init__()
        if channels is None:
            channels = getattr(module, "in_channels", None)
            if channels is None:
                raise ValueError("temporal_shift: give channels (the wrapped module has no in_channels)")
        check_positive(channels=channels, n_segment=n_segment, fold_div=fold_div)
        self.module = module if module is not None else nn.Identity()
        self.n_segment, self.fold_div, self.bidirectional = n_segment, fold_div, bidirectional
        time_shifts = temporal_pattern(channels, fold_div, bidirectional)
        # Axes of the shifted view: (T, H*W); nothing moves along H*W.
        self.shift = FixedShift(torch.cat([time_shifts, torch.zeros_like(time_shifts)], dim=1))
        self.fold = channels // fold_div

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() != 4:
            raise ValueError(f"temporal_shift: expected frames (N*T, C, H, W), got shape {tuple(input.shape)}")
        frames, _, height, _ = input.shape
        if frames % self.n_segment:
            raise ValueError(f"temporal_shift: a batch of {frames} frames is not a whole number of "
                             f"clips of n_segment={self.n_segment}")
        clips = rearrange(input, "(n t) c h w -> n c t (h w)", t=self.n_segment)
        shifted = rearrange(self.shift(clips), "n c t (h w) -> (n t) c h w", h=height)
        return self.module(shifted)

    def step(self, frame: Tensor, state: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Online TSM on one frame ``(N, C, H, W)``: channels ``[0, fold)`` come from the previous
        frame (``state``; zeros for the first frame). Returns ``(module output, next state)``."""
        if self.bidirectional:
            raise RuntimeError("temporal_shift: step() needs bidirectional=False (a bidirectional shift reads "
                               "the next frame, which a stream does not have yet)")
        if state is None:
            state = frame.new_zeros((frame.shape[0], self.fold) + tuple(frame.shape[2:]))
        shifted = torch.cat([state, frame[:, self.fold:]], dim=1)
        return self.module(shifted), frame[:, :self.fold].clone()

    def extra_repr(self) -> str:
        return f"n_segment={self.n_segment}, fold_div={self.fold_div}, bidirectional={self.bidirectional}"
