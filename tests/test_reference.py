"""Tests of shiftzoo.reference against independent facts (hand tables, torch.roll, F.pad, F.grid_sample,
finite differences), never against itself."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from shiftzoo import reference

from helpers import (F64, GRID_MODES, GRID_PADDINGS, fractional_shifts, gen, grid_sample_case_2d,
                     grid_sample_shift, pad_slice_per_channel, roll_per_channel)
from helpers import PADDINGS as PADDING_NAMES


# ----------------------------------------------------------------------------------------------
# Paddings against hand-written tables
# ----------------------------------------------------------------------------------------------

# n = 4 (data a b c d = 0 1 2 3), i = -10 ... 14; -1 = zero.
TABLE_N4 = {
    #            -10 -9 -8 -7 -6 -5 -4 -3 -2 -1 | 0  1  2  3 | 4  5  6  7  8  9 10 11 12 13 14
    "zeros":     [-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1],
    "border":    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3],
    "periodic":  [2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2],
    "reflect":   [2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2],
    "symmetric": [1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1],
}

# n = 2 (a b), i = -4 ... 5
TABLE_N2 = {
    "zeros":     [-1, -1, -1, -1, 0, 1, -1, -1, -1, -1],
    "border":    [0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
    "periodic":  [0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
    "reflect":   [0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
    "symmetric": [0, 1, 1, 0, 0, 1, 1, 0, 0, 1],
}

# n = 1 (a), i = -3 ... 3
TABLE_N1 = {
    "zeros":     [-1, -1, -1, 0, -1, -1, -1],
    "border":    [0, 0, 0, 0, 0, 0, 0],
    "periodic":  [0, 0, 0, 0, 0, 0, 0],
    "reflect":   [0, 0, 0, 0, 0, 0, 0],
    "symmetric": [0, 0, 0, 0, 0, 0, 0],
}

PERIODS = {  # n -> period, written out
    "zeros": {1: 0, 2: 0, 4: 0},
    "border": {1: 0, 2: 0, 4: 0},
    "periodic": {1: 1, 2: 2, 4: 4},
    "reflect": {1: 1, 2: 2, 4: 6},
    "symmetric": {1: 2, 2: 4, 4: 8},
}


@pytest.mark.parametrize("name", PADDING_NAMES)
@pytest.mark.parametrize("n, lo, table", [(4, -10, TABLE_N4), (2, -4, TABLE_N2), (1, -3, TABLE_N1)])
def test_padding_tables(name, n, lo, table):
    expected = table[name]
    i = torch.arange(lo, lo + len(expected))
    got = reference.PADDINGS[name](i, n)
    assert got.dtype == torch.int64
    assert got.tolist() == expected
    # any shape works
    assert reference.PADDINGS[name](i.view(1, -1, 1), n).flatten().tolist() == expected


@pytest.mark.parametrize("name", PADDING_NAMES)
def test_padding_period(name):
    for n, p in PERIODS[name].items():
        assert reference.PADDINGS[name].period(n) == p


def _py_pad(name: str, i: int, n: int) -> int:
    """Python-integer padding, built by unrolling one period of the pattern."""
    if name == "zeros":
        return i if 0 <= i < n else -1
    if name == "border":
        return min(max(i, 0), n - 1)
    if name == "periodic":
        cycle = list(range(n))
    elif name == "reflect":
        cycle = list(range(n)) + list(range(n - 2, 0, -1)) if n > 1 else [0]
    else:
        cycle = list(range(n)) + list(range(n - 1, -1, -1))
    return cycle[i % len(cycle)]


@pytest.mark.parametrize("name", PADDING_NAMES)
def test_padding_huge_indices(name):
    big = 2**61 + 3
    values = [big, -big, big + 1, -big - 5, 2**62, -(2**62)]
    i = torch.tensor(values, dtype=torch.int64)
    for n in (1, 2, 3, 4, 5, 7):
        got = reference.PADDINGS[name](i, n).tolist()
        assert got == [_py_pad(name, v, n) for v in values], n
    # The unrolled cycles agree with the hand tables (a check of the helper itself).
    assert [_py_pad(name, v, 4) for v in range(-10, 15)] == TABLE_N4[name]


# ----------------------------------------------------------------------------------------------
# Integer shifts: torch.roll and F.pad
# ----------------------------------------------------------------------------------------------

INT_CASES = [
    ((2, 3, 7), [[1], [-3], [16]]),
    ((2, 3, 5, 6), [[0, 1], [-7, 2], [13, -12]]),
    ((1, 2, 3, 4, 5), [[1, -2, 3], [-4, 9, -11]]),
]


@pytest.mark.parametrize("shape, int_shifts", INT_CASES)
@pytest.mark.parametrize("interp", ["nearest", "linear", "quadratic", "cubic"])
@pytest.mark.parametrize("padding, by_torch", [("periodic", roll_per_channel), ("zeros", pad_slice_per_channel)],
                         ids=["periodic=roll", "zeros=pad+slice"])
def test_integer_shift_equals_torch(shape, int_shifts, interp, padding, by_torch):
    x = torch.randn(shape, dtype=F64, generator=gen(1))
    s = torch.tensor(int_shifts, dtype=F64)
    assert torch.equal(reference.shift(x, s, padding, interp), by_torch(x, int_shifts))


def test_shift_axis_single_axis_equals_roll():
    x = torch.randn(2, 3, 4, 5, 6, dtype=F64, generator=gen(3))
    s = torch.tensor([2.0, -1.0, 7.0], dtype=F64)
    got = reference.shift_axis(x, s, 1, reference.PADDINGS["periodic"], reference.INTERPS["linear"])
    assert torch.equal(got, roll_per_channel(x, [[0, 2, 0], [0, -1, 0], [0, 7, 0]]))


# ----------------------------------------------------------------------------------------------
# Fractional shifts against F.grid_sample
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("padding, mode_pad, ac", GRID_PADDINGS)
@pytest.mark.parametrize("interp, mode", GRID_MODES)
def test_2d_matches_grid_sample(padding, mode_pad, ac, interp, mode):
    # bicubic applies the padding to each of the 4x4 taps (not to the sample point), like the
    # reference, so it matches exactly for all of zeros, border and both reflections.
    x, s, want = grid_sample_case_2d(mode, mode_pad, ac)
    torch.testing.assert_close(reference.shift(x, s, padding, interp), want, atol=1e-10, rtol=0)


@pytest.mark.parametrize("padding, mode_pad, ac", GRID_PADDINGS)
@pytest.mark.parametrize("interp, mode", [("linear", "bilinear"), ("cubic", "bicubic")])
def test_1d_matches_grid_sample(padding, mode_pad, ac, interp, mode):
    # 1D as an image of height 1 (shift 0 on that axis); align_corners=True needs length > 1, so the
    # height-1 axis only appears with align_corners=False.
    x = torch.randn(2, 4, 9, dtype=F64, generator=gen(6))
    s = fractional_shifts(4, 1, 7)
    if ac:
        x2 = x.unsqueeze(2).expand(2, 4, 2, 9).contiguous()
    else:
        x2 = x.unsqueeze(2)
    s2 = torch.cat((torch.zeros(4, 1, dtype=F64), s), 1)
    want = grid_sample_shift(x2, s2, mode, mode_pad, ac)[:, :, 0]
    torch.testing.assert_close(reference.shift(x, s, padding, interp), want, atol=1e-10, rtol=0)


@pytest.mark.parametrize("padding, mode_pad, ac", GRID_PADDINGS)
def test_3d_linear_matches_grid_sample(padding, mode_pad, ac):
    x = torch.randn(1, 3, 4, 5, 6, dtype=F64, generator=gen(8))
    s = fractional_shifts(3, 3, 9)
    want = grid_sample_shift(x, s, "bilinear", mode_pad, ac)  # trilinear for 5D input
    torch.testing.assert_close(reference.shift(x, s, padding, "linear"), want, atol=1e-10, rtol=0)


def test_cubic_weights_are_keys():
    # Keys kernel, A = -0.75, evaluated by hand at f = 0.25: distances 1.25, 0.25, 0.75, 1.75.
    A = -0.75

    def keys(t):
        t = abs(t)
        if t <= 1:
            return (A + 2) * t**3 - (A + 3) * t**2 + 1
        return A * t**3 - 5 * A * t**2 + 8 * A * t - 4 * A

    w = reference.INTERPS["cubic"].weights(torch.tensor([0.25], dtype=F64))
    assert w.shape == (1, 4)
    torch.testing.assert_close(w[0], torch.tensor([keys(1.25), keys(0.25), keys(0.75), keys(1.75)], dtype=F64))
    assert reference.INTERPS["cubic"].support == 4
    assert reference.INTERPS["linear"].support == 2 and reference.INTERPS["nearest"].support == 1
    torch.testing.assert_close(reference.INTERPS["linear"].weights(torch.tensor(0.25, dtype=F64)),
                               torch.tensor([0.75, 0.25], dtype=F64))


# ----------------------------------------------------------------------------------------------
# Nearest: the shift is rounded half to even
# ----------------------------------------------------------------------------------------------

def test_nearest_rounds_half_to_even():
    halves = [0.5, 1.5, -0.5, 2.5, -1.5, -2.5, 3.5, 0.49, 0.51]
    rounded = [0, 2, 0, 2, -2, -2, 4, 0, 1]  # written out by hand
    assert torch.round(torch.tensor(halves)).tolist() == rounded  # the convention users can reproduce
    C = len(halves)
    x = torch.randn(2, C, 11, dtype=F64, generator=gen(10))
    s = torch.tensor(halves, dtype=F64).view(C, 1)
    ints = [[r] for r in rounded]
    assert torch.equal(reference.shift(x, s, "periodic", "nearest"), roll_per_channel(x, ints))
    assert torch.equal(reference.shift(x, s, "zeros", "nearest"), pad_slice_per_channel(x, ints))


# ----------------------------------------------------------------------------------------------
# Huge shifts
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("interp", ["nearest", "linear", "quadratic", "cubic"])
def test_huge_periodic_equals_exact_roll(interp):
    n = 7
    x = torch.randn(2, 4, n, dtype=F64, generator=gen(11))
    values = [1e30, -1e30, 3.0e20 + 2**20, float(torch.tensor(1e30, dtype=torch.float32))]
    s = torch.tensor(values, dtype=F64).view(4, 1)
    ints = [[int(v) % n] for v in values]  # exact integer arithmetic on the float's value
    assert [[int(math.fmod(v, n)) % n] for v in values] == ints
    assert torch.equal(reference.shift(x, s, "periodic", interp), roll_per_channel(x, ints))


def test_huge_float32_shifts():
    n = 6
    x = torch.randn(1, 2, n, generator=gen(12))
    s = torch.tensor([[1e30], [-3e38]], dtype=torch.float32)
    ints = [[int(float(v)) % n] for v in s[:, 0]]
    assert torch.equal(reference.shift(x, s, "periodic", "linear"), roll_per_channel(x, ints))


@pytest.mark.parametrize("interp, reach", [("nearest", 0.5), ("linear", 0.0), ("cubic", 1.0)])
def test_huge_zeros_and_border(interp, reach):
    n = 5
    x = torch.randn(2, 7, n, dtype=F64, generator=gen(13)) + 10
    # Beyond n + reach every tap with a nonzero weight is outside the axis.
    values = [n + reach, -(n + reach), n + reach + 0.3, 1e30, -1e30, 12345.6, -12345.6]
    s = torch.tensor(values, dtype=F64).view(7, 1)
    assert torch.equal(reference.shift(x, s, "zeros", interp), torch.zeros_like(x))
    # border: positive shifts bring the left edge value everywhere, negative the right one.
    big = torch.tensor([[1e30], [-1e30], [7e15], [-7e15], [1e3], [-1e3], [n + 2.5]], dtype=F64)
    out = reference.shift(x, big, "border", interp)
    edges = torch.stack([x[:, 0, 0], x[:, 1, -1], x[:, 2, 0], x[:, 3, -1], x[:, 4, 0], x[:, 5, -1], x[:, 6, 0]], 1)
    torch.testing.assert_close(out, edges.unsqueeze(-1).expand_as(x), atol=1e-12, rtol=0)


@pytest.mark.parametrize("padding", ["reflect", "symmetric"])
def test_huge_mirrors_equal_python_indexing(padding):
    n = 5
    x = torch.randn(1, 3, n, dtype=F64, generator=gen(14))
    values = [1e30, -1e30, 2.0**70 + 2.0**20]
    s = torch.tensor(values, dtype=F64).view(3, 1)
    want = torch.stack([x[0, c, [_py_pad(padding, i - int(v), n) for i in range(n)]]
                        for c, v in enumerate(values)]).unsqueeze(0)
    for interp in ("nearest", "linear", "cubic"):
        assert torch.equal(reference.shift(x, s, padding, interp), want)


# ----------------------------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------------------------

def _shifts_off_integers(C, d, seed):
    g = gen(seed)
    whole = torch.randint(-3, 4, (C, d), generator=g).to(F64)
    frac = 0.2 + 0.6 * torch.rand(C, d, dtype=F64, generator=g)
    return whole + frac


@pytest.mark.parametrize("padding", PADDING_NAMES)
@pytest.mark.parametrize("interp", ["linear", "cubic"])
@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 2, 4, 5)])
def test_gradcheck(padding, interp, shape):
    x = torch.randn(shape, dtype=F64, generator=gen(15)).requires_grad_()
    s = _shifts_off_integers(shape[1], len(shape) - 2, 16).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: reference.shift(a, b, padding, interp), (x, s))


def test_gradcheck_3d_linear_and_nearest():
    x = torch.randn(1, 2, 3, 4, 3, dtype=F64, generator=gen(17)).requires_grad_()
    s = _shifts_off_integers(2, 3, 18).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: reference.shift(a, b, "reflect", "linear"), (x, s))
    # nearest: piecewise constant in s, so the exact shift derivative is 0 (fractions are away from .5)
    s_mid = (torch.tensor([[0.1, -2.2, 1.3], [3.8, -0.7, 4.2]], dtype=F64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: reference.shift(a, b, "symmetric", "nearest"), (x, s_mid))


def test_gradient_descent_sign():
    # A signal shifted by the true shift; one gradient step on a squared error must move toward it.
    n = 32
    t = torch.arange(n, dtype=F64)
    x = torch.exp(-0.5 * ((t - 12) / 2.5) ** 2).view(1, 1, n)
    target = torch.exp(-0.5 * ((t - 15) / 2.5) ** 2).view(1, 1, n)  # = x shifted by +3
    s = torch.tensor([[1.4]], dtype=F64, requires_grad=True)
    ((reference.shift(x, s, "zeros", "linear") - target) ** 2).sum().backward()
    assert s.grad.item() < 0


@pytest.mark.parametrize("padding", PADDING_NAMES)
def test_straight_through(padding):
    x = torch.randn(2, 3, 5, 6, dtype=F64, generator=gen(19))
    s0 = torch.tensor([[0.4, 1.6], [-2.3, 0.5], [7.2, -1.5]], dtype=F64)
    upstream = torch.randn(2, 3, 5, 6, dtype=F64, generator=gen(20))

    def grads(interp, grad_interp):
        xi = x.clone().requires_grad_()
        si = s0.clone().requires_grad_()
        out = reference.shift(xi, si, padding, interp, grad_interp)
        out.backward(upstream)
        return out.detach(), xi.grad, si.grad

    out_st, gx_st, gs_st = grads("nearest", "linear")
    out_nn, gx_nn, gs_nn = grads("nearest", None)
    _, _, gs_lin = grads("linear", None)
    assert torch.equal(out_st, out_nn)
    torch.testing.assert_close(gx_st, gx_nn, atol=1e-12, rtol=0)
    torch.testing.assert_close(gs_st, gs_lin, atol=1e-12, rtol=0)
    assert torch.equal(gs_nn, torch.zeros_like(gs_nn))
    # nearest's value: the rounded shift (half to even)
    s_round = torch.round(s0)
    ints = [[int(v) for v in row] for row in s_round.tolist()]
    if padding == "periodic":
        assert torch.equal(out_st, roll_per_channel(x, ints))


# ----------------------------------------------------------------------------------------------
# Dtypes, layouts, degenerate shapes, names
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float16, 1e-2), (torch.bfloat16, 5e-2)])
def test_low_precision_dtypes(dtype, tol):
    x = torch.randn(2, 3, 5, 6, dtype=F64, generator=gen(21))
    s = fractional_shifts(3, 2, 22)
    want = reference.shift(x.to(dtype).to(F64), s.to(dtype).to(F64), "border", "cubic")
    got = reference.shift(x.to(dtype), s.to(dtype), "border", "cubic")
    assert got.dtype == dtype
    torch.testing.assert_close(got.to(F64), want, atol=tol, rtol=tol)


def test_integer_input_nearest_equals_roll():
    x = torch.randint(-100, 100, (2, 3, 6), generator=gen(23))
    s = torch.tensor([[1.0], [-2.6], [8.0]])
    out = reference.shift(x, s, "periodic", "nearest")
    assert out.dtype == torch.int64
    assert torch.equal(out, roll_per_channel(x, [[1], [-3], [8]]))


def test_layouts_give_identical_results():
    x = torch.randn(2, 6, 5, 7, dtype=F64, generator=gen(24))
    s = fractional_shifts(6, 2, 25)
    want = reference.shift(x, s, "symmetric", "cubic")
    cl = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(reference.shift(cl, s, "symmetric", "cubic"), want)
    strided = torch.randn(2, 12, 5, 14, dtype=F64)[:, ::2, :, ::2]
    strided.copy_(x)
    assert torch.equal(reference.shift(strided, s, "symmetric", "cubic"), want)
    expanded = x[:1].expand(3, 6, 5, 7)
    assert torch.equal(reference.shift(expanded, s, "symmetric", "cubic"), want[:1].expand(3, 6, 5, 7))


def test_batch_zero_and_length_one_axes():
    s = torch.tensor([[1.0, 0.3], [-0.5, 2.0]], dtype=F64, requires_grad=True)
    empty = torch.randn(0, 2, 4, 5, dtype=F64, requires_grad=True)
    out = reference.shift(empty, s, "zeros", "linear")
    assert out.shape == (0, 2, 4, 5)
    out.sum().backward()
    assert torch.equal(s.grad, torch.zeros_like(s))
    x = torch.randn(3, 2, 1, 1, dtype=F64, generator=gen(26))
    s1 = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=F64)
    assert torch.equal(reference.shift(x, s1, "zeros", "linear"), torch.zeros_like(x))  # shifted out
    for padding in ("border", "periodic", "reflect", "symmetric"):
        s_frac = torch.tensor([[0.7, -3.2], [5.5, 1e30]], dtype=F64)
        torch.testing.assert_close(reference.shift(x, s_frac, padding, "cubic"), x, atol=1e-12, rtol=0)


def test_zero_length_axis():
    x = torch.randn(2, 2, 0, 3, dtype=F64)
    s = torch.tensor([[1.5, 0.5], [-1.0, 2.0]], dtype=F64)
    for padding in PADDING_NAMES:
        assert reference.shift(x, s, padding, "linear").shape == x.shape


def test_unknown_names_list_valid_ones():
    x = torch.randn(1, 1, 4)
    s = torch.zeros(1, 1)
    with pytest.raises(ValueError, match="reflect"):
        reference.shift(x, s, padding="mirror")
    with pytest.raises(ValueError, match="cubic"):
        reference.shift(x, s, interp="bilinear")
    with pytest.raises(ValueError, match="linear"):
        reference.shift(x, s, grad_interp="lanczos")


def test_runtime_plugins_through_the_reference():
    # A user padding with no `period` attribute and a user 2-tap interpolation (linear written
    # differently): the reference must use them as given.
    def wrap(i, n):
        return (i % n + n) % n

    lin = reference.Interp("mylinear", 2, lambda f: torch.stack((1 - f, f), -1))
    x = torch.randn(2, 3, 6, dtype=F64, generator=gen(27))
    assert torch.equal(reference.shift(x, torch.tensor([[2.0], [-1.0], [13.0]], dtype=F64), wrap, lin),
                       roll_per_channel(x, [[2], [-1], [13]]))


# ----------------------------------------------------------------------------------------------
# Strided sampling (stride, crop) against convolutions and slicing
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("kernel, stride, pad", [(3, 2, 1), (3, 2, 0), (5, 3, 2), (3, 1, 0), (4, 2, 1), (3, 2, 3)])
def test_strided_integer_shift_equals_one_hot_depthwise_conv(dims, kernel, stride, pad):
    """A zeros-padded strided shift by whole pixels is a strided depthwise conv whose kernel is
    one-hot at the tap the shift reads, with crop = (e//2 - p, e - e//2 - p), e = kernel - 1."""
    C = 4
    size = (9, 8, 7)[:dims]
    x = torch.randn((2, C) + size, dtype=F64, generator=gen(30 + dims))
    reach = (kernel - 1) // 2
    ints = torch.randint(-reach, reach + 1, (C, dims), generator=gen(31)).to(F64)
    e = kernel - 1
    weight = torch.zeros((C, 1) + (kernel,) * dims, dtype=F64)
    for c in range(C):
        weight[(c, 0) + tuple(e // 2 - int(v) for v in ints[c])] = 1.0
    conv = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]
    want = conv(x, weight, stride=stride, padding=pad, groups=C)
    got = reference.shift(x, ints, "zeros", "nearest", stride=stride, crop=[(e // 2 - pad, e - e // 2 - pad)] * dims)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


@pytest.mark.parametrize("padding", PADDING_NAMES)
@pytest.mark.parametrize("interp", ["nearest", "linear", "quadratic", "cubic"])
@pytest.mark.parametrize("stride, crop", [(2, 0), (3, [(1, 2), (1, 2)]), ((2, 1), ((1, 0), (2, 3))), (1, (2, 1))])
def test_strided_shift_equals_full_shift_sliced(padding, interp, stride, crop):
    x = torch.randn(2, 3, 9, 10, dtype=F64, generator=gen(32))
    s = fractional_shifts(3, 2, 33)
    s[0] = 1e30  # huge shifts: the reduction keeps every sampled position's taps where they were
    strides = (stride, stride) if isinstance(stride, int) else stride
    crops = [(c, c) if isinstance(c, int) else c for c in ((crop, crop) if isinstance(crop, int) else crop)]
    full = reference.shift(x, s, padding, interp)
    want = full[:, :, crops[0][0]:9 - crops[0][1]:strides[0], crops[1][0]:10 - crops[1][1]:strides[1]]
    torch.testing.assert_close(reference.shift(x, s, padding, interp, stride=stride, crop=crop), want,
                               atol=1e-12, rtol=0)


@pytest.mark.parametrize("interp", ["nearest", "linear", "cubic"])
def test_negative_crop_reads_the_padding(interp):
    """Positions before the axis (a conv that pads more than its kernel reaches) sample the padded
    input: with zeros padding, the shift of the zero-padded input."""
    x = torch.randn(2, 3, 7, dtype=F64, generator=gen(34))
    s = fractional_shifts(3, 1, 35)
    s[1] = -1e30
    want = reference.shift(F.pad(x, (3, 2)), s, "zeros", interp)[..., ::2]
    torch.testing.assert_close(reference.shift(x, s, "zeros", interp, stride=2, crop=[(-3, -2)]), want,
                               atol=1e-12, rtol=0)
    # a saturating padding far out: every sampled position reads the edge its taps fell beyond
    edges = reference.shift(x, torch.tensor([[1e30], [-1e30], [5e20]], dtype=F64), "border", interp,
                            stride=3, crop=[(-4, -5)])
    assert torch.equal(edges[:, 0], x[:, 0, :1].expand_as(edges[:, 0]))
    assert torch.equal(edges[:, 1], x[:, 1, -1:].expand_as(edges[:, 1]))


def test_crop_beyond_the_axis_gives_an_empty_output():
    x = torch.randn(2, 3, 5, 6, dtype=F64, generator=gen(36))
    out = reference.shift(x, torch.zeros(3, 2, dtype=F64), "zeros", "linear", stride=2, crop=((3, 2), 0))
    assert out.shape == (2, 3, 0, 3)
