"""Argument checks shared by the functional API, the fake kernels, the fallback, the layers and the
blocks, so every path rejects bad input with the same message (the C++ ops check again for memory
safety)."""
from __future__ import annotations

import math
import numbers
from typing import Any, NoReturn

import torch
from torch import Tensor

# The floating dtypes the kernels take.
FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

# The input layout of each number of spatial axes.
AXES = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def check_number(name: str, value: Any, low: float = 0.0, high: float = math.inf, *,
                 low_open: bool = True, high_open: bool = False) -> float:
    """``value`` as a float if it is a finite real number from ``low`` (excluded if ``low_open``) to
    ``high`` (excluded if ``high_open``); else ``ValueError`` naming ``name`` and the range."""
    if math.isinf(high):
        wanted = f"{'>' if low_open else '>='} {low:g}"
    else:
        wanted = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or value < low or value > high or (low_open and value == low) or (high_open and value == high)):
        raise ValueError(f"{name} must be a finite number {wanted}, got {value!r}")
    return float(value)


def check_batched(where: str, input: Tensor, dims: int, channels: int) -> None:
    """Raises ``ValueError`` saying how to add the batch axis if ``input`` is one sample without it:
    ``dims + 1`` dimensions, the first of ``channels`` entries."""
    if 1 <= dims <= 3 and input.dim() == dims + 1 and input.shape[0] == channels:
        raise ValueError(f"{where}: got an unbatched input of shape {tuple(input.shape)}; expected {AXES[int(dims)]} "
                         f"with C={channels}: add the batch axis with x.unsqueeze(0)")


def is_integer_data(input: Tensor) -> bool:
    """Whether ``input`` holds integer or bool data (which moves by whole pixels only)."""
    return not (input.dtype.is_floating_point or input.dtype.is_complex)


def check_shift_args(input: Tensor, shifts: Tensor, integer_data: bool = False) -> None:
    """Raises ``ValueError`` (``TypeError`` for non-tensors) naming what was expected and what came.
    ``integer_data``: integer and bool inputs are accepted too (whole-pixel shifts)."""
    for name, value in (("input", input), ("shifts", shifts)):
        if not isinstance(value, Tensor):
            raise TypeError(f"shiftzoo.shift: {name} must be a torch.Tensor, got {type(value).__name__}")
    if shifts.dim() == 2:
        check_batched("shiftzoo.shift", input, shifts.shape[1], shifts.shape[0])
    if not 3 <= input.dim() <= 5:
        raise ValueError(
            "shiftzoo.shift: expected input of shape (N, C, L), (N, C, H, W) or (N, C, D, H, W), "
            f"got {input.dim()} dimensions {tuple(input.shape)}")
    if not input.dtype.is_floating_point and not (integer_data and is_integer_data(input)):
        wanted = "a floating-point, integer or bool" if integer_data else "a floating-point"
        raise ValueError(f"shiftzoo.shift: expected {wanted} input, got {input.dtype}")
    if input.dtype.is_floating_point and input.dtype not in FLOAT_DTYPES:
        raise ValueError(f"shiftzoo.shift: expected a float32, float64, float16 or bfloat16 input, got {input.dtype}")
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


def refuse_scripting(module: Any) -> NoReturn:
    """What ``torch.jit.script`` meets in a shift module (its ``__prepare_scriptable__``): a clear
    error and the ways that work, instead of TorchScript's complaint about an annotation."""
    raise TypeError(f"{type(module).__name__}: torch.jit.script cannot compile shiftzoo's layers (PyTorch "
                    "deprecates TorchScript); use torch.export.export, torch.compile or torch.jit.trace")
