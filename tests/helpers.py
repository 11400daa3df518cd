"""Independent ways to compute per-channel shifts with PyTorch's own ops (torch.roll, F.pad,
F.grid_sample), shared by the tests of the reference and of the compiled op."""
from __future__ import annotations

import torch
import torch.nn.functional as F

F64 = torch.float64
PADDINGS = ["zeros", "border", "periodic", "reflect", "symmetric"]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_input(shape, dtype, layout, seed=0, device="cpu"):
    """A tensor of ``shape`` on ``device`` with the given memory layout: "contiguous",
    "channels_last" (channels innermost, for every rank) or "strided" (every other element of a
    larger tensor, along C and the last axis). The same values, and the same strides on every
    device, for the same arguments."""
    d = len(shape) - 2
    base = torch.randn(shape, dtype=F64, generator=gen(seed)).to(dtype)
    if layout == "contiguous":
        return base.to(device)
    if layout == "channels_last":
        perm = (0,) + tuple(range(2, 2 + d)) + (1,)
        return base.permute(perm).contiguous().to(device).permute(tuple(perm.index(i) for i in range(2 + d)))
    assert layout == "strided", layout
    big = torch.zeros((shape[0], 2 * shape[1]) + tuple(shape[2:-1]) + (2 * shape[-1],), dtype=dtype, device=device)
    view = big[:, ::2, ..., 1::2]
    view.copy_(base.to(device))
    return view


def in_layout_of(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """t (same rank as ``like``, any sizes) with its axes laid out in memory in ``like``'s order
    (channels innermost when ``like`` is channels-last), dense: an upstream gradient as the layer
    after a shift would pass it."""
    order = sorted(range(like.dim()), key=lambda i: -like.stride(i))  # outermost axis first
    return t.permute(order).contiguous().permute([order.index(i) for i in range(like.dim())])


def output_and_grads(fn, x, s, g, shifts_grad=True):
    """fn(x, s) and its gradients to x and (if ``shifts_grad``) to s for the upstream gradient g."""
    x = x.detach().requires_grad_()
    s = s.detach().requires_grad_(shifts_grad)
    out = fn(x, s)
    return (out,) + torch.autograd.grad(out, (x, s) if shifts_grad else (x,), g)


def roll_per_channel(x: torch.Tensor, int_shifts: list[list[int]]) -> torch.Tensor:
    """Periodic integer shift: torch.roll of each channel."""
    d = x.dim() - 2
    chans = [torch.roll(x[:, c], shifts=tuple(int_shifts[c]), dims=tuple(range(1, d + 1)))
             for c in range(x.shape[1])]
    return torch.stack(chans, 1)


def pad_slice_per_channel(x: torch.Tensor, int_shifts: list[list[int]]) -> torch.Tensor:
    """Zero-padded integer shift: pad generously with zeros, then slice (out[x] = in[x - s])."""
    d = x.dim() - 2
    spatial = x.shape[2:]
    chans = []
    for c in range(x.shape[1]):
        margin = [abs(s) + 1 for s in int_shifts[c]]
        pad = []
        for k in reversed(range(d)):  # F.pad lists the last dim first
            pad += [margin[k], margin[k]]
        padded = F.pad(x[:, c], pad)
        index = [slice(None)]
        for k in range(d):
            start = margin[k] - int_shifts[c][k]
            index.append(slice(start, start + spatial[k]))
        chans.append(padded[tuple(index)])
    return torch.stack(chans, 1)


def grid_sample_shift(x, s, mode, padding_mode, align_corners):
    """Per-channel shift through F.grid_sample: each (n, c) plane becomes its own image."""
    N, C = x.shape[:2]
    spatial = x.shape[2:]
    d = len(spatial)
    planes = x.reshape((N * C, 1) + tuple(spatial))
    axes = torch.meshgrid(*[torch.arange(n, dtype=x.dtype) for n in spatial], indexing="ij")
    coords = []
    for k in range(d):
        p = axes[k].unsqueeze(0) - s[:, k].to(x.dtype).view((C,) + (1,) * d)  # sample position x - s
        n = spatial[k]
        coords.append(2 * p / (n - 1) - 1 if align_corners else (2 * p + 1) / n - 1)
    grid = torch.stack(coords[::-1], dim=-1)  # grid_sample wants (x, y[, z]) = last axis first
    grid = grid.repeat((N,) + (1,) * (d + 1))
    out = F.grid_sample(planes, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    return out.reshape(x.shape)


def fractional_shifts(C, d, seed):
    """Shifts in [-4, 4), every other channel in [-20, 20) (larger than the test axes)."""
    g = gen(seed)
    s = torch.rand(C, d, dtype=F64, generator=g) * 8 - 4
    s[::2] = torch.rand(len(s[::2]), d, dtype=F64, generator=g) * 40 - 20
    return s


# (padding, grid_sample padding_mode, align_corners): these agree exactly on every tap.
GRID_PADDINGS = [
    ("zeros", "zeros", True),
    ("zeros", "zeros", False),
    ("border", "border", True),
    ("border", "border", False),
    ("reflect", "reflection", True),      # reflection about 0 and n-1 (no edge repeat)
    ("symmetric", "reflection", False),   # reflection about -1/2 and n-1/2 (edge repeated)
]


# (interp, grid_sample mode) pairs that sample alike in 2D.
GRID_MODES = [("linear", "bilinear"), ("cubic", "bicubic")]


def grid_sample_case_2d(mode, padding_mode, align_corners, dtype=F64):
    """A 2D input, fractional shifts and F.grid_sample's shift of it: (x, s, expected)."""
    x = torch.randn(2, 5, 6, 7, dtype=F64, generator=gen(4)).to(dtype)
    s = fractional_shifts(5, 2, 5).to(dtype)
    return x, s, grid_sample_shift(x, s, mode, padding_mode, align_corners)
