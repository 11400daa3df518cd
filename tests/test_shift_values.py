"""Forward values and both gradients of the compiled op against the float64 reference
(shiftzoo.reference), and against PyTorch's own ops where they apply."""
from __future__ import annotations

import itertools

import pytest
import torch

from helpers import (F64, GRID_MODES, GRID_PADDINGS, PADDINGS, fractional_shifts, gen, grid_sample_case_2d, in_layout_of,
                     make_input, output_and_grads, pad_slice_per_channel, roll_per_channel)
from shiftzoo import reference
from shiftzoo.functional import shift

SHAPES = {1: (2, 3, 11), 2: (2, 3, 5, 6), 3: (2, 3, 3, 4, 5)}
DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
# (atol, rtol) for values computed in the dtype against the float64 reference of the same values
TOL = {torch.float64: (1e-12, 1e-12), torch.float32: (2e-5, 1e-5), torch.float16: (2e-3, 2e-3),
       torch.bfloat16: (2e-2, 1e-2)}
LAYOUTS = ["contiguous", "channels_last", "strided"]






def check_against_reference(x, s, g, padding, interp):
    """The op's output and both gradients (SSL's straight-through shift gradient for nearest)
    equal the float64 reference's on the same values, to the tolerance of x's dtype. Returns the
    op's (output, input gradient, shift gradient)."""
    grad_interp = "linear" if interp == "nearest" else None
    out, gx, gs = output_and_grads(lambda a, b: shift(a, b, padding, interp, grad_interp), x, s, g)
    ref_out, ref_gx, ref_gs = output_and_grads(lambda a, b: reference.shift(a, b, padding, interp, grad_interp),
                                        x.to(F64), s, g.to(F64))
    atol, rtol = TOL[x.dtype]
    torch.testing.assert_close(out.to(F64), ref_out, atol=atol, rtol=rtol)
    torch.testing.assert_close(gx.to(F64), ref_gx, atol=atol, rtol=rtol)
    # the shift gradient sums many products: compare relative to its scale
    torch.testing.assert_close(gs, ref_gs, atol=atol * (1 + ref_gs.abs().max().item()), rtol=rtol)
    return out, gx, gs


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("interp", ["nearest", "linear"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_matches_reference(dims, padding, interp, dtype, layout):
    shape = SHAPES[dims]
    x = make_input(shape, dtype, layout, seed=dims)
    s = fractional_shifts(shape[1], dims, seed=7 + dims)
    s[1] = torch.tensor([-1.0, 2.0, 0.0][:dims])  # an integer shift
    g = torch.randn(shape, dtype=F64, generator=gen(3)).to(dtype)
    out, gx, gs = check_against_reference(x, s, g, padding, interp)
    assert out.dtype == dtype and gx.dtype == dtype and gs.dtype == s.dtype
    if layout != "strided":  # the output keeps the input's memory format
        assert out.stride() == torch.empty_like(x).stride()


EDGE_CASES = [
    # (shape, shifts): batch 0, length-1 axes, |shift| >= axis length, huge shifts
    ((0, 2, 4, 5), [[1.5, -2.0], [0.0, 3.0]]),
    ((2, 2, 1, 5), [[1.0, 0.5], [-1.0, -0.25]]),
    ((2, 2, 1, 1), [[1.0, -1.0], [0.3, 0.6]]),
    ((1, 2, 1), [[1.0], [-0.5]]),
    ((1, 3, 1, 1, 4), [[1.0, 0.0, 2.5], [0.0, -1.0, -7.5], [0.4, 0.4, 0.4]]),
    ((2, 3, 4, 5), [[4.0, -5.0], [-9.5, 12.25], [37.0, -41.0]]),
    ((2, 2, 6), [[1e6 + 0.5], [-3e7 - 0.25]]),
    ((1, 2, 3, 4), [[1e30, -1e30], [-2.0**62, 2.0**70]]),
]


@pytest.mark.parametrize("shape, shifts", EDGE_CASES)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("interp", ["nearest", "linear", "quadratic", "cubic"])
def test_edge_shapes_and_shifts(shape, shifts, padding, interp):
    x = torch.randn(shape, dtype=F64, generator=gen(11))
    s = torch.tensor(shifts, dtype=F64)
    g = torch.randn(shape, dtype=F64, generator=gen(12))
    got = output_and_grads(lambda a, b: shift(a, b, padding, interp), x, s, g)
    want = output_and_grads(lambda a, b: reference.shift(a, b, padding, interp), x, s, g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-12)


def test_length_one_axis_is_shifted():
    # The seed never shifted a length-1 axis; with zeros padding a shift of 1 empties it.
    x = torch.ones(1, 1, 1, 3, dtype=F64)
    out = shift(x, torch.tensor([[1.0, 0.0]], dtype=F64), "zeros", "nearest")
    assert torch.equal(out, torch.zeros_like(x))
    # and reflect on a length-1 axis reads the only element (the seed divided by zero)
    out = shift(x, torch.tensor([[1.0, 0.0]], dtype=F64), "reflect", "linear")
    assert torch.equal(out, x)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("interp", ["nearest", "linear", "quadratic", "cubic"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
def test_integer_periodic_is_bit_identical_to_roll(dims, interp, dtype):
    shape = {1: (2, 4, 9), 2: (2, 4, 5, 7), 3: (1, 4, 3, 4, 5)}[dims]
    ints = [[0] * dims, [1, -2, 3][:dims], [-7, 11, -4][:dims], [20, -13, 9][:dims]]
    x = torch.randn(shape, generator=gen(5)).to(dtype)
    out = shift(x, torch.tensor(ints, dtype=torch.float32), "periodic", interp)
    assert torch.equal(out, roll_per_channel(x, ints))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_integer_zeros_is_bit_identical_to_pad_and_slice(dims):
    shape = {1: (2, 4, 9), 2: (2, 4, 5, 7), 3: (1, 4, 3, 4, 5)}[dims]
    ints = [[0] * dims, [1, -2, 3][:dims], [-7, 11, -4][:dims], [2, -1, 9][:dims]]
    x = torch.randn(shape, generator=gen(6))
    out = shift(x, torch.tensor(ints, dtype=torch.float32), "zeros", "nearest")
    assert torch.equal(out, pad_slice_per_channel(x, ints))


@pytest.mark.parametrize("padding, mode_pad, align_corners", GRID_PADDINGS)
@pytest.mark.parametrize("interp, mode", GRID_MODES)
@pytest.mark.parametrize("dtype, atol, rtol", [(torch.float64, 1e-10, 0.0), (torch.float32, 2e-5, 1e-5)], ids=["f64", "f32"])
def test_2d_matches_grid_sample(padding, mode_pad, align_corners, interp, mode, dtype, atol, rtol):
    # (in float32 grid_sample computes in float32 too: the tolerance of float32 arithmetic)
    x, s, want = grid_sample_case_2d(mode, mode_pad, align_corners, dtype)
    torch.testing.assert_close(shift(x, s, padding, interp), want, atol=atol, rtol=rtol)


@pytest.mark.parametrize("half", [0.5, 1.5, 2.5, -0.5, -1.5, -2.5])
def test_nearest_rounds_the_shift_half_to_even(half):
    x = torch.arange(8, dtype=F64).view(1, 1, 8)
    s = torch.tensor([[half]], dtype=F64)
    r = int(torch.round(torch.tensor(half)))
    assert torch.equal(shift(x, s, "zeros", "nearest"), pad_slice_per_channel(x, [[r]]))


def test_shifts_in_another_float_dtype():
    x = torch.randn(2, 3, 5, 6, dtype=torch.float32, generator=gen(8))
    s = fractional_shifts(3, 2, 9)
    for sdtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        sd = s.to(sdtype)
        out, gx, gs = output_and_grads(lambda a, b: shift(a, b, "border", "linear"), x, sd, torch.ones_like(x))
        ref = reference.shift(x.double(), sd.double(), "border", "linear")
        torch.testing.assert_close(out.double(), ref, atol=2e-5, rtol=1e-5)
        assert gs.dtype == sdtype


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("stride", [1, 2])
def test_deterministic_across_runs_and_thread_counts(layout, batch, stride):
    """Bit-identical values and gradients on 1 and several threads (channels-last with fewer
    batch items than threads makes its input gradient apart from the correlations; a stride makes
    it a scatter)."""
    x = make_input((batch, 8, 17, 19), torch.float32, layout, seed=13)
    s = fractional_shifts(8, 2, 14).float()
    g = make_input((batch, 8) + ((17, 19) if stride == 1 else (9, 10)), torch.float32, layout, seed=15)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in itertools.chain([1], [max(2, threads)] * 3):
            torch.set_num_threads(n)
            results.append(output_and_grads(lambda a, b: shift(a, b, "reflect", "nearest", "linear", stride=stride), x, s, g))
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


@pytest.mark.parametrize("shape", [(2, 3, 17, 19), (1, 2, 5, 9, 11), (2, 3, 40), (2, 3, 48, 50), (1, 2, 3, 29, 30)],
                         ids=str)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("interp", ["nearest", "linear", "quadratic", "cubic"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_planes_with_an_interior_block(shape, padding, interp, dtype):
    """Planes large enough for the kernels' whole-block passes (small shifts leave an interior
    block; the edge rows and columns go through the tables). Planes of more than 2048 elements
    (the last two shapes) take the input gradient, its padding term and the correlations plane
    by plane; smaller ones the input gradient in a pass of its own first."""
    d = len(shape) - 2
    x = torch.randn(shape, dtype=F64, generator=gen(20)).to(dtype)
    s = (torch.rand(shape[1], d, dtype=F64, generator=gen(21)) * 6 - 3)
    g = torch.randn(shape, dtype=F64, generator=gen(22)).to(dtype)
    check_against_reference(x, s, g, padding, interp)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("plane", ["small", "rows"])
def test_planes_moved_as_vectors(plane, dims, padding, dtype):
    """Single-tap dense planes move as masked 32-byte vectors, the last one overlapping the one
    before it: planes of at most 256 elements as one translated plane read past its edges inside
    the input (its first and last planes, whose reads would leave it, element by element); larger
    ones row by row, rows of 1 to 4 vectors (its first and last source rows, whose moved vectors
    would leave the plane, through the row copy). Every row width from one vector up, every
    whole-pixel offset along W from -(W - 1) to W - 1 and past the row, moved up and down. Batch 1
    puts channel 0's plane at the start of the input's memory and the last at its end (the
    sanitizer build sees a read that leaves them). Forward and the input gradient (the same
    kernels with the reversed taps)."""
    lanes = 32 // torch.empty((), dtype=dtype).element_size()
    for width in (lanes, lanes + 1, 2 * lanes + 3, 4 * lanes):
        offsets = list(range(-(width - 1), width)) + [width, -width - 3]
        depth = (2,) * (dims - 2)
        rows = 3 if plane == "small" else 257 // (width * 2 ** (dims - 2)) + 2  # planes > 256 elements
        shape = (1, len(offsets)) + depth + (rows, width)
        x = make_input(shape, dtype, "contiguous", seed=width)
        s = torch.zeros(len(offsets), dims, dtype=F64)
        s[:, -1] = torch.tensor(offsets, dtype=F64)
        s[:, -2] = torch.tensor([(-1) ** c * (c % 3) for c in range(len(offsets))], dtype=F64)
        g = torch.randn(shape, dtype=F64, generator=gen(width)).to(dtype)
        check_against_reference(x, s, g, padding, "nearest")


@pytest.mark.parametrize("shape", [(2, 4, 13), (2, 4, 7, 9), (2, 3, 4, 5, 6), (2, 9, 150)], ids=str)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("interp", ["nearest", "linear", "quadratic", "cubic"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_channels_last_gradients(shape, padding, interp, dtype):
    """Input, grad_output and input gradient all channels-last (the layout-aware loops; rows
    longer than the 64 pixels the correlations sum before going to double)."""
    dims = len(shape) - 2
    x = make_input(shape, dtype, "channels_last", seed=40)
    g = make_input(shape, dtype, "channels_last", seed=41)
    s = torch.rand(shape[1], dims, dtype=F64, generator=gen(42)) * 6 - 3
    s[0] = 11.0  # a shift past the axis
    out, gx, _ = check_against_reference(x, s, g, padding, interp)
    assert out.stride() == x.stride() and gx.stride() == x.stride()


def shifts_in_runs(lengths, dims, seed):
    """Shifts (sum(lengths), dims) constant over consecutive runs of channels of the given
    lengths (GroupedShift's layout); a second run is shifted past every axis."""
    per_run = torch.rand(len(lengths), dims, dtype=F64, generator=gen(seed)) * 6 - 3
    per_run[1:2] = 11.0
    return torch.cat([row.expand(n, dims) for row, n in zip(per_run, lengths)])


@pytest.mark.parametrize("shape,lengths", [
    ((2, 37, 13), [9, 1, 2, 5, 20]), ((2, 37, 5, 9), [9, 1, 2, 5, 20]), ((2, 6, 5, 9), [6]),
    ((2, 12, 1, 9), [4, 8]), ((1, 64, 3, 4, 9), [7] * 8 + [8]), ((2, 20, 3, 2, 5), [4, 16])], ids=str)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
def test_channel_runs(shape, lengths, padding, dtype, layout):
    """Nearest shifts whose channels come in runs of equal shifts (GroupedShift) against the
    reference. Channels-last: moved a run per pixel, in blocks that may overlap the next run
    down (runs shorter than a block, spans at the start of the pixel, zero rows). Contiguous 1D
    and 2D: one block copy per run across its planes, whose rows between two planes' blocks are
    rewritten plane by plane. A run is shifted past every axis."""
    dims = len(shape) - 2
    x = make_input(shape, dtype, layout, seed=43)
    g = make_input(shape, dtype, layout, seed=44)
    s = shifts_in_runs(lengths, dims, seed=45)
    out, gx, _ = check_against_reference(x, s, g, padding, "nearest")
    assert out.stride() == x.stride() and gx.stride() == x.stride()


@pytest.mark.parametrize("shape", [(2, 20, 30), (2, 20, 6, 21), (1, 36, 3, 5, 19)], ids=str)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("interp", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("sampling", [(1, 0), (2, 1)], ids=["unit", "s2-crop"])
def test_channels_last_few_distinct_offsets(shape, padding, interp, dtype, sampling):
    """Channels-last channels in no order that read at a few distinct offsets (SSL's usual
    shifts: 3 shift vectors taken in turn) and one channel shifted far: the gathers move each
    32-byte vector of channels as one masked load per offset among its channels (the channel
    count not a multiple of a vector: the last vector overlaps the one before), rows near the
    edges through one source row per offset (rows that read nothing among them)."""
    dims = len(shape) - 2
    stride, crop = sampling
    x = make_input(shape, dtype, "channels_last", seed=60)
    few = torch.rand(3, dims, dtype=F64, generator=gen(62)) * 3 - 1.5
    s = few.repeat(shape[1], 1)[:shape[1]].contiguous()
    s[5] = 11.0  # past every axis (and more than 8 pixels past the row's ends)
    kwargs = dict(stride=stride, crop=[(crop, -crop)] * dims)
    grad_interp = "linear" if interp == "nearest" else None
    want = reference.shift(x.to(F64), s, padding, interp, grad_interp, **kwargs)
    g = in_layout_of(torch.randn(want.shape, dtype=F64, generator=gen(61)), x).to(dtype)
    out, gx, gs = output_and_grads(lambda a, b: shift(a, b, padding, interp, grad_interp, **kwargs), x, s, g)
    _, ref_gx, ref_gs = output_and_grads(lambda a, b: reference.shift(a, b, padding, interp, grad_interp, **kwargs),
                                         x.to(F64), s, g.to(F64))
    atol, rtol = TOL[dtype]
    torch.testing.assert_close(out.to(F64), want, atol=atol, rtol=rtol)
    torch.testing.assert_close(gx.to(F64), ref_gx, atol=atol, rtol=rtol)
    torch.testing.assert_close(gs, ref_gs, atol=atol * (1 + ref_gs.abs().max().item()), rtol=rtol)
    assert out.stride() == in_layout_of(out, x).stride() and gx.stride() == x.stride()


@pytest.mark.parametrize("shape", [(2, 10, 13), (2, 10, 5, 7), (1, 10, 3, 4, 6)], ids=str)
@pytest.mark.parametrize("padding", ["zeros", "reflect"])
@pytest.mark.parametrize("interp", ["nearest", "linear", "quadratic", "cubic"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16], ids=str)
def test_channels_inner_strided_channels(shape, padding, interp, dtype):
    """Every other channel of a channels-last tensor as input and grad_output (channels closer
    than pixels, but not adjacent): the channels-inner loops gather strided channels, and the
    correlations read grad_output through a dense copy."""
    dims = len(shape) - 2
    wide = (shape[0], 2 * shape[1]) + shape[2:]
    x = make_input(wide, dtype, "channels_last", seed=46)[:, ::2]
    g = make_input(wide, dtype, "channels_last", seed=47)[:, 1::2]
    assert x.stride(1) == 2 and x.stride(-1) == 2 * shape[1]
    s = torch.rand(shape[1], dims, dtype=F64, generator=gen(48)) * 6 - 3
    s[1] = -9.5  # shifted past the axes
    check_against_reference(x, s, g, padding, interp)


@pytest.mark.parametrize("interp", ["linear", "cubic"])
def test_channels_last_bfloat16_specials(interp):
    """bfloat16 channels-last forward with several taps (rounded to bfloat16 in vector code)
    keeps NaN and infinities where the contiguous forward (c10's rounding) has them, and rounds
    alike: bit-identical where both sum the same products in the same order (linear; cubic planes
    go through separable passes)."""
    x = torch.randn(2, 24, 9, 11, dtype=F64, generator=gen(55))
    x[0, 3, 2, 4] = float("nan")
    x[1, 5, 1, 1] = float("inf")
    x[1, 17, 3, 6] = -float("inf")
    x[0, 9, 2, 2] = 3.3e38  # rounds past bfloat16's largest finite value
    x = x.to(torch.bfloat16)
    s = torch.rand(24, 2, dtype=F64, generator=gen(56)) * 4 - 2
    flat = shift(x, s, "zeros", interp)
    last = shift(x.contiguous(memory_format=torch.channels_last), s, "zeros", interp)
    assert last.isnan().any() and last.isinf().any()
    assert torch.equal(last.isnan(), flat.isnan()) and torch.equal(last.isinf(), flat.isinf())
    finite = flat.isfinite()
    torch.testing.assert_close(last[finite].float(), flat[finite].float(), atol=1e-2, rtol=1e-2)
    if interp == "linear":  # away from the edges both sum the same products in the same order
        inner = (..., slice(3, -3), slice(3, -3))
        assert torch.equal(last[inner].nan_to_num(), flat[inner].nan_to_num())


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("interp", ["linear", "quadratic", "cubic"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_small_planes_of_several_taps(dtype, interp, padding):
    """7x7 planes of a several-tap shift, many channels to each reading class (the case that
    takes the per-class translations: the taps' masked passes, then what the padding maps back):
    values and both gradients equal the reference's."""
    n, c = 16, 48
    whole = torch.tensor([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], dtype=F64)
    s = whole.repeat(c // 9 + 1, 1)[:c] + torch.rand(c, 2, dtype=F64, generator=gen(70)) * 0.6 + 0.2
    x = make_input((n, c, 7, 7), dtype, "contiguous", seed=71)
    g = make_input((n, c, 7, 7), dtype, "contiguous", seed=72)
    check_against_reference(x, s, g, padding, interp)


@pytest.mark.parametrize("padding", [p for p in PADDINGS if p != "periodic"])  # periodic reads every column
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_small_planes_ignore_what_no_tap_reads(dtype, padding):
    """Small planes are shifted as a masked copy of the translated plane, and their shift
    gradient sums masked products: a position that no tap reads never enters an output or a sum,
    even where the flat translation passes over it. Each channel has NaN and infinities in the two
    columns (or rows) that its taps never reach (shift magnitude in (2, 3) on a 7x7 plane, nearest
    forward, linear gradient taps): output and both gradients are finite and equal the reference's
    for the same input with those positions zeroed (the reference, separable, differentiates
    every position of its intermediate and would carry their NaN into the gradient)."""
    c, n = 24, 7
    s = torch.zeros(c, 2, dtype=F64)
    magnitude = 2.2 + torch.rand(c, generator=gen(60), dtype=F64) * 0.6
    x = torch.randn(2, c, n, n, dtype=F64, generator=gen(61))
    specials = torch.zeros_like(x, dtype=torch.bool)
    for ch in range(c):
        axis, sign = divmod(ch % 4, 2)      # every direction along both axes
        sign = 1 if sign else -1
        s[ch, axis] = sign * magnitude[ch]
        s[ch, 1 - axis] = torch.rand(1, generator=gen(62 + ch), dtype=F64).item() - 0.5
        unread = slice(n - 2, n) if sign > 0 else slice(0, 2)  # taps read x - 3 .. x - 2 (or x + 2 .. x + 3)
        specials[(slice(None), ch) + ((slice(None), unread) if axis == 1 else (unread, slice(None)))] = True
    clean = x.to(dtype)
    x = clean.masked_fill(specials, float("nan"))
    x[..., ::3] = x[..., ::3].masked_fill(specials[..., ::3], float("inf"))
    g = torch.randn(2, c, n, n, dtype=F64, generator=gen(63)).to(dtype)
    out, gx, gs = output_and_grads(lambda a, b: shift(a, b, padding, "nearest", "linear"), x, s, g)
    ref_out, ref_gx, ref_gs = output_and_grads(lambda a, b: reference.shift(a, b, padding, "nearest", "linear"),
                                        clean.masked_fill(specials, 0).to(F64), s, g.to(F64))
    assert out.isfinite().all() and gs.isfinite().all()
    atol, rtol = TOL[dtype]
    torch.testing.assert_close(out.to(F64), ref_out, atol=atol, rtol=rtol)
    torch.testing.assert_close(gx.to(F64), ref_gx, atol=atol, rtol=rtol)
    torch.testing.assert_close(gs, ref_gs, atol=atol * (1 + ref_gs.abs().max().item()), rtol=rtol)


@pytest.mark.parametrize("expand", ["channels", "width", "batch"])
@pytest.mark.parametrize("interp", ["nearest", "linear", "quadratic", "cubic"])
def test_zero_strides(expand, interp):
    """Expanded inputs (stride 0) are read in place and give the reference's values and gradients."""
    base = torch.randn(2, 1, 6, 1, dtype=F64, generator=gen(50))
    x = {"channels": torch.randn(2, 1, 6, 7, dtype=F64, generator=gen(51)).expand(2, 5, 6, 7),
         "width": base.expand(2, 5, 6, 7),
         "batch": torch.randn(1, 5, 6, 7, dtype=F64, generator=gen(52)).expand(3, 5, 6, 7)}[expand]
    assert 0 in x.stride()
    s = torch.rand(5, 2, dtype=F64, generator=gen(53)) * 6 - 3
    g = torch.randn(x.shape, dtype=F64, generator=gen(54))
    grad_interp = "linear" if interp == "nearest" else None
    got = output_and_grads(lambda a, b: shift(a, b, "reflect", interp, grad_interp), x, s, g)
    want = output_and_grads(lambda a, b: reference.shift(a, b, "reflect", interp, grad_interp), x.contiguous(), s, g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
