"""The CUDA backend's kernels, run on the host over the same grid (backends/cuda/launch_host.h).

The library ``shiftzoo_gpu_emulation`` (built into every extension, CUDA or not) registers the
GPU backend's operator drivers for CPU tensors with a launcher that runs each kernel of
``backends/cuda/kernels.h`` block by block, phase by phase, thread by thread: the very bodies the
GPU runs, with the same partition and order of the shift gradient's reduction. Every test here
compares them with the float64 pure-PyTorch reference (``shiftzoo.reference``) or, for the ops
the reference has no twin of, with the CPU backend's op, itself held to the reference by the rest
of the suite. A change to a kernel body fails these tests on any machine.
"""
from __future__ import annotations

import math
import os

import pytest
import torch

from shiftzoo import _tabled, plugin_registry, reference
from shiftzoo._sampling import Sampling
from helpers import PADDINGS, gen, make_input, output_and_grads

pytestmark = pytest.mark.skipif(not hasattr(torch.ops, "shiftzoo_gpu_emulation")
                                or not hasattr(torch.ops.shiftzoo_gpu_emulation, "shift"),
                                reason="the extension shiftzoo._C is not built")

INTERPS = ["nearest", "linear", "quadratic", "cubic"]
DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
# a few units in the last place of each dtype
EPS = {torch.float64: 4e-15, torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3}
# the emulation's ops: shiftzoo's schemas, the GPU backend's drivers and kernels
EMU = torch.ops.shiftzoo_gpu_emulation if hasattr(torch.ops, "shiftzoo_gpu_emulation") else None
CPU = torch.ops.shiftzoo


def shape_of(dims: int, batch: int = 2, channels: int = 5) -> tuple:
    return (batch, channels) + (6, 7, 5)[3 - dims:]


def sampling_of(dims: int, sampled: bool) -> Sampling:
    if not sampled:
        return Sampling.of(dims, 1, 0, "test")
    crops = [(1, -1), (0, 2), (-2, 0)][:dims]
    return Sampling.of(dims, [2, 3, 2][:dims], crops, "test")


def reference_grads(x, s, g, padding, interp, grad_interp, sampling):
    """Output and both gradients of the float64 reference at x's and s's values."""
    out, gx, gs = output_and_grads(
        lambda a, b: reference.shift(a, b, padding, interp, grad_interp, sampling.stride, sampling.crop),
        x.double(), s.double(), g.double())
    return out.detach(), gx, gs


def assert_close(actual, expected, dtype, scale=None):
    """Within a few ulps of `dtype` of the magnitude `scale` (default: the largest expected value)."""
    expected = expected.double()
    scale = expected.abs().max().item() if scale is None and expected.numel() else (scale or 1.0)
    tol = 4 * EPS[dtype]
    torch.testing.assert_close(actual.double(), expected, rtol=tol, atol=tol * max(scale, 1.0))


def run_and_check(x, s, padding, interp, grad_interp, sampling, g_seed=1):
    """Forward and both gradients of the emulated ops against the reference."""
    dtype = x.dtype
    args = (padding, interp, grad_interp, *sampling.op_args())
    out = EMU.shift(x, s, *args)
    g = torch.randn(out.shape, generator=gen(g_seed), dtype=torch.float64).to(dtype)
    gx, gs = EMU.shift_backward(g, x, s, *args, list(x.shape), True, True)
    want_out, want_gx, want_gs = reference_grads(x, s, g, padding, interp, grad_interp, sampling)
    assert out.dtype == dtype and out.shape == want_out.shape
    assert_close(out, want_out, dtype)
    assert_close(gx, want_gx, dtype)
    # the shift gradient sums over every output: its error grows with the sum of its terms' magnitudes
    # (summed in float32 for the half types, and returned in the shifts' dtype)
    terms = (g.double().abs().sum() * x.double().abs().max()).item() / max(x.shape[1], 1)
    summed = EPS[torch.float64 if dtype == torch.float64 else torch.float32] * 16 * max(terms, 1.0)
    rounded = 2 * EPS[s.dtype] * want_gs.abs().max().item() if want_gs.numel() else 0.0
    torch.testing.assert_close(gs.double(), want_gs, rtol=0, atol=summed + rounded)
    return out, gx


@pytest.mark.parametrize("sampled", [False, True], ids=["unit", "sampled"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("interp", INTERPS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_every_plugin_dim_dtype_layout(padding, interp, dims, layout, sampled):
    sampling = sampling_of(dims, sampled)
    grad_interp = "linear" if interp == "nearest" else interp  # SparseShift's pair for nearest
    shape = shape_of(dims)
    for dtype in DTYPES:
        x = make_input(shape, dtype, layout, seed=dims)
        s = torch.rand(shape[1], dims, generator=gen(2), dtype=torch.float64) * 16 - 8  # beyond the axes too
        out, gx = run_and_check(x, s, padding, interp, grad_interp, sampling)
        if not sampled:  # the output keeps the input's layout (its strides, where it is dense)
            assert out.stride() == torch.empty_like(x).stride()
            assert gx.stride() == torch.empty_like(x).stride()


@pytest.mark.parametrize("padding", PADDINGS)
def test_huge_and_whole_and_tie_shifts(padding):
    s = torch.tensor([[1e30, -1e30], [-1e30, 3.0], [0.5, -2.5], [1e15 + 0.5, 0.0], [0.0, 0.0]], dtype=torch.float64)
    x = torch.randn(shape_of(2), generator=gen(3), dtype=torch.float64)
    for interp in ("nearest", "linear", "cubic"):
        run_and_check(x, s, padding, interp, "linear" if interp == "nearest" else interp, sampling_of(2, False))


def test_shifts_in_other_dtypes_than_the_input():
    x = torch.randn(shape_of(2), generator=gen(4)).to(torch.bfloat16)
    for shift_dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        s = (torch.rand(5, 2, generator=gen(5), dtype=torch.float64) * 6 - 3).to(shift_dtype)
        out, gx = run_and_check(x, s, "reflect", "linear", "linear", sampling_of(2, False))


@pytest.mark.parametrize("shape", [(0, 3, 4, 5), (2, 0, 4, 5), (2, 3, 1, 5), (2, 3, 4, 1), (2, 3, 1, 1), (1, 1, 1, 1),
                                   (2, 3, 0, 5), (2, 3, 1), (2, 3, 1, 1, 1)])
def test_empty_and_length_one_axes(shape):
    dims = len(shape) - 2
    x = torch.randn(shape, generator=gen(6), dtype=torch.float64)
    s = torch.rand(shape[1], dims, generator=gen(7), dtype=torch.float64) * 6 - 3
    for padding in PADDINGS:
        for interp in ("nearest", "linear", "cubic"):
            args = (padding, interp, "linear", *sampling_of(dims, False).op_args())
            out = EMU.shift(x, s, *args)
            torch.testing.assert_close(out, CPU.shift(x, s, *args), rtol=0, atol=1e-14)
            g = torch.randn(out.shape, generator=gen(8), dtype=torch.float64)
            for got, want in zip(EMU.shift_backward(g, x, s, *args, list(shape), True, True),
                                 CPU.shift_backward(g, x, s, *args, list(shape), True, True)):
                torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_many_blocks_per_channel():
    """A shape whose shift gradient spreads each channel over many blocks (4 * 64 * 64 elements per
    channel: 32 blocks of 128 threads each), summed in a fixed order."""
    x = torch.randn(4, 2, 64, 64, generator=gen(9), dtype=torch.float32)
    s = torch.tensor([[0.3, -1.7], [2.25, 0.5]], dtype=torch.float64)
    for padding in ("zeros", "reflect"):
        run_and_check(x, s, padding, "linear", "linear", sampling_of(2, False))
        run_and_check(x, s, padding, "nearest", "cubic", sampling_of(2, True))


def test_gradients_asked_for_separately():
    x = torch.randn(shape_of(2), generator=gen(10), dtype=torch.float64)
    s = torch.rand(5, 2, generator=gen(11), dtype=torch.float64) * 6 - 3
    args = ("symmetric", "cubic", "cubic", *sampling_of(2, True).op_args())
    out = EMU.shift(x, s, *args)
    g = torch.randn(out.shape, generator=gen(12), dtype=torch.float64)
    both = EMU.shift_backward(g, x, s, *args, list(x.shape), True, True)
    only_input = EMU.shift_backward(g, None, s, *args, list(x.shape), True, False)
    only_shifts = EMU.shift_backward(g, x, s, *args, list(x.shape), False, True)
    assert torch.equal(only_input[0], both[0]) and only_input[1].numel() == 0
    assert torch.equal(only_shifts[1], both[1]) and only_shifts[0].numel() == 0


def test_runs_are_bit_identical():
    x = torch.randn(3, 4, 33, 17, generator=gen(13), dtype=torch.float32)
    s = torch.rand(4, 2, generator=gen(14)) * 10 - 5
    args = ("border", "cubic", "cubic", *sampling_of(2, False).op_args())
    g = torch.randn(x.shape, generator=gen(15))
    first = EMU.shift_backward(g, x, s, *args, list(x.shape), True, True)
    for _ in range(2):
        again = EMU.shift_backward(g, x, s, *args, list(x.shape), True, True)
        assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_non_finite_shifts_give_their_channel_nan_without_raising():
    """A GPU op cannot refuse a non-finite shift without a host sync: the channel becomes NaN."""
    x = torch.randn(2, 3, 5, 6, generator=gen(16), dtype=torch.float64)
    s = torch.tensor([[math.inf, 0.0], [1.5, -0.5], [0.0, math.nan]], dtype=torch.float64)
    for padding in PADDINGS:
        for interp in ("nearest", "linear"):
            out = EMU.shift(x, s, padding, interp, interp, [1, 1], [0, 0], [0, 0])
            assert out[:, 0].isnan().all() and out[:, 2].isnan().all()
            finite = reference.shift(x[:, 1:2], s[1:2], padding, interp)
            torch.testing.assert_close(out[:, 1:2], finite, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("padding", PADDINGS)
def test_shift_affine_equals_the_cpu_op(padding, layout):
    """The inference form (pre and post per-channel maps around a nearest shift), bit for bit."""
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        for dims in (1, 2, 3):
            shape = shape_of(dims)
            x = make_input(shape, dtype, layout, seed=17)
            s = (torch.rand(shape[1], dims, generator=gen(18)) * 12 - 6).round()
            C = shape[1]
            scale, bias = torch.rand(C, generator=gen(19)) + 0.5, torch.randn(C, generator=gen(20))
            for pre, post in [((None, None, -math.inf, math.inf), (scale, bias, 0.0, 6.0)),
                              ((scale, bias, 0.0, math.inf), (None, None, -math.inf, math.inf)),
                              ((scale, bias, -1.0, 1.0), (bias, scale, 0.0, math.inf))]:
                for sampled in (False, True):
                    args = (x, s, padding, *sampling_of(dims, sampled).op_args(), *pre, *post)
                    got, want = EMU.shift_affine(*args), CPU.shift_affine(*args)
                    assert got.stride() == want.stride()
                    torch.testing.assert_close(got, want, rtol=0, atol=0)


INTEGER_DTYPES = [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool]
NO_MAPS = (None, None, -math.inf, math.inf)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("padding", PADDINGS)
def test_integer_data_moves_exactly(padding, layout):
    """shift_affine of integer and bool data (moved as unsigned integers of their width), taps
    outside reading the fill: equal to the reference's integer path, with int32 and int64 indices."""
    for dims in (1, 2, 3):
        shape = shape_of(dims)
        base = make_input(shape, torch.float64, layout, seed=27)
        s = torch.rand(shape[1], dims, generator=gen(28), dtype=torch.float64) * 14 - 7
        for dtype in INTEGER_DTYPES:
            x = torch.empty_strided(base.shape, base.stride(), dtype=dtype).copy_(base * 50 if dtype != torch.bool
                                                                                  else base > 0)
            fill = ((torch.arange(shape[1]) % 2 == 0) * (1 if dtype == torch.bool else 9)).to(dtype)
            for sampled in (False, True):
                sampling = sampling_of(dims, sampled)
                want = reference.shift(x, s, padding, "nearest", stride=sampling.stride, crop=sampling.crop, fill=fill)
                for limit in (None, 16):
                    if limit is None:
                        got = EMU.shift_affine(x, s, padding, *sampling.op_args(), *NO_MAPS, *NO_MAPS, fill)
                    else:
                        with Index32Limit(limit):
                            got = EMU.shift_affine(x, s, padding, *sampling.op_args(), *NO_MAPS, *NO_MAPS, fill)
                    assert got.dtype == dtype and torch.equal(got, want), (dims, dtype, sampled, limit)


def test_fill_goes_through_the_post_map():
    """Floating data: a tap that reads nothing reads the fill, then the post map (bit for bit the CPU op)."""
    x = make_input((2, 4, 5, 6), torch.float32, "channels_last", seed=29)
    s = torch.tensor([[2.0, -3.0], [0.0, 7.0], [-1.0, 1.0], [9.0, 0.0]])
    scale, bias = torch.rand(4, generator=gen(30)) + 0.5, torch.randn(4, generator=gen(31))
    fill = torch.tensor([0.5, -2.0, 3.0, 0.0])
    args = (x, s, "zeros", [1, 1], [0, 0], [0, 0], scale, bias, 0.0, 6.0, bias, scale, -1.0, 2.0, fill)
    got, want = EMU.shift_affine(*args), CPU.shift_affine(*args)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    nothing = (fill.double() * bias.double() + scale.double()).clamp(-1.0, 2.0).float()  # post(fill), one rounding
    assert torch.equal(want[0, 3, :, :3], nothing[3].expand(5, 3))


def test_non_finite_shifts_give_integer_channels_their_fill():
    """Integer data has no NaN: a channel whose shift is not finite reads nothing (the fill)."""
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.int32).view(2, 3, 4, 5)
    s = torch.tensor([[math.inf, 0.0], [1.0, -1.0], [0.0, math.nan]], dtype=torch.float64)
    fill = torch.tensor([-1, -2, -3], dtype=torch.int32)
    out = EMU.shift_affine(x, s, "reflect", [1, 1], [0, 0], [0, 0], *NO_MAPS, *NO_MAPS, fill)
    assert (out[:, 0] == -1).all() and (out[:, 2] == -3).all()
    assert torch.equal(out[:, 1], reference.shift(x[:, 1:2], s[1:2], "reflect", "nearest")[:, 0])


def tabled_plans(x, s, padding, interp, grad_interp, sampling):
    """The runtime-plugin op's arguments, planned in Python as shiftzoo does for runtime plugins."""
    pad = plugin_registry.get_padding(padding)
    value = _tabled.plan(x.shape, s, pad, plugin_registry.get_interp(interp), sampling)
    grad = _tabled.plan(x.shape, s, pad, plugin_registry.get_interp(grad_interp), sampling)
    return (value.offsets, value.tables, value.weights, grad.offsets, grad.tables, grad.weights, padding,
            *sampling.op_args())


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("padding", PADDINGS)
def test_tabled_ops_equal_the_cpu_ops(padding, dims, layout):
    """shift_tabled and its backward (the gradient of the tap weights) against the CPU backend."""
    for interp, grad_interp in (("linear", "linear"), ("nearest", "cubic"), ("quadratic", "quadratic")):
        for sampled in (False, True):
            shape = shape_of(dims)
            x = make_input(shape, torch.float64, layout, seed=21)
            s = torch.rand(shape[1], dims, generator=gen(22), dtype=torch.float64) * 16 - 8
            plan = tabled_plans(x, s, padding, interp, grad_interp, sampling_of(dims, sampled))
            out = EMU.shift_tabled(x, *plan)
            torch.testing.assert_close(out, CPU.shift_tabled(x, *plan), rtol=1e-13, atol=1e-13)
            g = torch.randn(out.shape, generator=gen(23), dtype=torch.float64)
            for got, want in zip(EMU.shift_tabled_backward(g, x, *plan, list(shape), True, True),
                                 CPU.shift_tabled_backward(g, x, *plan, list(shape), True, True)):
                torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_wrong_tables_read_nothing_outside_the_input():
    """Table entries outside the axis read zero: no kernel reads outside the input, whatever the
    tables say (the CPU op refuses them; the GPU cannot check them without a host sync)."""
    x = torch.randn(1, 2, 4, 5, generator=gen(24), dtype=torch.float64)
    s = torch.zeros(2, 2, dtype=torch.float64)
    plan = list(tabled_plans(x, s, "zeros", "nearest", "nearest", sampling_of(2, False)))
    plan[1] = [t.clone() for t in plan[1]]
    plan[1][1][0, 2] = 10**12
    plan[1][1][1, :] = -(10**12)
    out = EMU.shift_tabled(x, *plan)
    assert out[0, 1].eq(0).all() and out[0, 0, :, 2].eq(0).all()
    torch.testing.assert_close(out[0, 0, :, :2], x[0, 0, :, :2], rtol=0, atol=0)


class Index32Limit:
    """Runs the int64-indexed kernels on small tensors: every tensor spans more than `limit`."""

    def __init__(self, limit: int):
        self.limit = limit

    def __enter__(self):
        self.previous = EMU.set_index32_limit(self.limit)

    def __exit__(self, *exc):
        EMU.set_index32_limit(self.previous)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("padding", PADDINGS)
def test_int64_indexed_kernels(padding, layout):
    with Index32Limit(16):
        for dims in (1, 2, 3):
            for interp in ("nearest", "linear", "cubic"):
                x = make_input(shape_of(dims), torch.float32, layout, seed=25)
                s = torch.rand(5, dims, generator=gen(26), dtype=torch.float64) * 10 - 5
                run_and_check(x, s, padding, interp, "linear" if interp == "nearest" else interp,
                              sampling_of(dims, dims == 2))


def test_int32_index_limit_is_checked():
    with pytest.raises(ValueError, match="set_index32_limit: expected"):
        EMU.set_index32_limit(0)


def test_an_input_beyond_2_31_elements(tmp_path):
    """An input of 2.2e9 elements (a sparse file mapped into memory: only the pages read exist)
    sampled every 3000 positions: its offsets need 64 bits. The forward and the shift gradient
    against the taps gathered by index, with the gradient by autograd through the same weights."""
    C, n, step = 2, 33_000, 3_000
    numel = C * n * n
    assert numel > 2**31
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        f.truncate(numel * 4)
    x = torch.from_file(str(path), shared=True, size=numel, dtype=torch.float32).view(1, C, n, n)
    s = torch.tensor([[2.25, -1.5], [-0.75, 3.5]], dtype=torch.float64)
    positions = torch.arange(0, n, step)  # the kept positions (stride 3000, no crop)
    m = len(positions)
    # the taps every output reads: floor(p - s) and the next along each axis (linear, zeros padding)
    values = torch.randn(C, m, m, 2, 2, generator=gen(27))
    rows, cols, fracs = [], [], []
    for c in range(C):
        p_h, p_w = positions.double() - s[c, 0], positions.double() - s[c, 1]
        rows.append(p_h.floor().long()), cols.append(p_w.floor().long())
        fracs.append((p_h - p_h.floor(), p_w - p_w.floor()))
    for c in range(C):  # write the values that the taps read (the rest of the file stays zero, unallocated)
        for a in range(2):
            for b in range(2):
                r, q = rows[c] + a, cols[c] + b
                inside_r, inside_q = (r >= 0) & (r < n), (q >= 0) & (q < n)
                v = values[c, :, :, a, b] * inside_r.view(-1, 1) * inside_q.view(1, -1)
                values[c, :, :, a, b] = v
                x[0, c, r.clamp(0, n - 1)[inside_r].view(-1, 1), q.clamp(0, n - 1)[inside_q].view(1, -1)] = \
                    v[inside_r][:, inside_q]
    args = ("zeros", "linear", "linear", [step, step], [0, 0], [0, 0])
    out = EMU.shift(x, s, *args)
    g = torch.randn(out.shape, generator=gen(28))
    _, gs = EMU.shift_backward(g, x, s, *args, list(x.shape), False, True)
    shifts = s.clone().requires_grad_()
    want = []
    for c in range(C):
        f_h = positions.double() - shifts[c, 0]
        f_w = positions.double() - shifts[c, 1]
        f_h, f_w = f_h - f_h.detach().floor(), f_w - f_w.detach().floor()  # the fractions, differentiable in s
        w_h = torch.stack([1 - f_h, f_h], -1)  # (m, 2)
        w_w = torch.stack([1 - f_w, f_w], -1)
        want.append(torch.einsum("ia,jb,ijab->ij", w_h, w_w, values[c].double()))
    want = torch.stack(want).unsqueeze(0)
    torch.testing.assert_close(out.double(), want.detach(), rtol=1e-5, atol=1e-5)
    (want_gs,) = torch.autograd.grad(want, shifts, g.double())
    torch.testing.assert_close(gs.double(), want_gs, rtol=1e-4, atol=1e-4)
    del x
    os.remove(path)
