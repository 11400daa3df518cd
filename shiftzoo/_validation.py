"""Argument checks shared by the functional API, the fake kernels and the fallback, so every
path rejects bad input with the same message (the C++ ops check again for memory safety)."""
from __future__ import annotations

from torch import Tensor


def check_shift_args(input: Tensor, shifts: Tensor) -> None:
    """Raises ``ValueError`` (``TypeError`` for non-tensors) naming what was expected and what came."""
    for name, value in (("input", input), ("shifts", shifts)):
        if not isinstance(value, Tensor):
            raise TypeError(f"shiftzoo.shift: {name} must be a torch.Tensor, got {type(value).__name__}")
    if not 3 <= input.dim() <= 5:
        raise ValueError(
            "shiftzoo.shift: expected input of shape (N, C, L), (N, C, H, W) or (N, C, D, H, W), "
            f"got {input.dim()} dimensions {tuple(input.shape)}")
    if not input.dtype.is_floating_point:
        raise ValueError(f"shiftzoo.shift: expected a floating-point input, got {input.dtype}")
    if not shifts.dtype.is_floating_point:
        raise ValueError(f"shiftzoo.shift: expected floating-point shifts, got {shifts.dtype}")
    expected = (input.shape[1], input.dim() - 2)
    if tuple(shifts.shape) != expected:
        what = "channel mismatch: " if shifts.dim() == 2 and shifts.shape[1] == expected[1] else ""
        raise ValueError(
            f"shiftzoo.shift: {what}expected shifts of shape (C, d) = {expected} for input "
            f"{tuple(input.shape)}, got {tuple(shifts.shape)}")
    if input.device != shifts.device:
        raise ValueError(f"shiftzoo.shift: input is on {input.device} but shifts are on {shifts.device}")
