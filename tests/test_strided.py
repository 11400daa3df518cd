"""Strided and cropped shifts (``stride``, ``crop``): the compiled op keeps only the sampled positions,
and its values and both gradients equal the float64 reference's, whose sampling is itself checked
against convolutions and slicing in test_reference.py."""
from __future__ import annotations

import pytest
import torch

from helpers import F64, PADDINGS, fractional_shifts, gen, in_layout_of, make_input, output_and_grads
from shiftzoo import plugin_registry, reference
from shiftzoo.functional import shift
from test_shift_values import TOL

SHAPES = {1: (2, 3, 11), 2: (2, 3, 9, 10), 3: (2, 3, 5, 6, 7)}
# (stride, crop) per case, applied to every axis
SAMPLINGS = {
    "s2": (2, 0),
    "s3-crop": (3, (1, 2)),
    "s2-pad": (2, (-2, -1)),       # a conv that pads beyond its kernel's reach
    "s1-crop": (1, (1, 0)),        # stride 1 with a crop: the scatter adjoint at unit stride
    "s5-wide": (5, (-3, 0)),       # a stride wider than the taps: raw indices no tap reads
}
LAYOUTS = ["contiguous", "channels_last", "strided"]


def per_axis(value, dims):
    return [value] * dims




def check(x, s, padding, interp, stride, crop, atol, rtol, g_seed=3):
    grad_interp = "linear" if interp == "nearest" else None
    kw = dict(stride=stride, crop=crop)
    want = reference.shift(x.to(F64), s, padding, interp, grad_interp, **kw)
    g = torch.randn(want.shape, dtype=F64, generator=gen(g_seed))
    # grad_output laid out as the input is (channels-last: channels innermost, as a next layer passes it)
    out, gx, gs = output_and_grads(lambda a, b: shift(a, b, padding, interp, grad_interp, **kw), x, s,
                                   in_layout_of(g.to(x.dtype), x))
    ref = output_and_grads(lambda a, b: reference.shift(a, b, padding, interp, grad_interp, **kw), x.to(F64), s, g)
    assert out.shape == want.shape and gx.shape == x.shape
    torch.testing.assert_close(out.to(F64), ref[0], atol=atol, rtol=rtol)
    torch.testing.assert_close(gx.to(F64), ref[1], atol=atol, rtol=rtol)
    torch.testing.assert_close(gs, ref[2], atol=atol * (1 + ref[2].abs().max().item()), rtol=rtol)
    return out


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("interp", ["nearest", "linear", "quadratic", "cubic"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", list(SAMPLINGS))
def test_strided_matches_reference(dims, padding, interp, layout, case):
    stride, crop = SAMPLINGS[case]
    shape = SHAPES[dims]
    x = make_input(shape, F64, layout, seed=dims)
    s = fractional_shifts(shape[1], dims, seed=40 + dims)
    s[1] = torch.tensor([1.0, -2.0, 0.5][:dims])  # whole and tied shifts
    out = check(x, s, padding, interp, per_axis(stride, dims), per_axis(crop, dims), 1e-12, 1e-12)
    if layout == "channels_last" and dims > 1 and out.numel():
        assert out.is_contiguous(memory_format=torch.channels_last if dims == 2 else torch.channels_last_3d)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("interp", ["nearest", "linear"])
def test_strided_dtypes(dims, dtype, layout, interp):
    shape = SHAPES[dims]
    x = make_input(shape, dtype, layout, seed=5)
    s = fractional_shifts(shape[1], dims, seed=6)
    check(x, s, "reflect", interp, per_axis(2, dims), per_axis((1, -1), dims), *TOL[dtype])


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16], ids=str)
def test_strided_channel_runs_and_far_channels(layout, dtype):
    """Many channels: runs of equal whole shifts (moved a vector of channels at a time), and channels
    shifted far beyond the row (gathered one by one), strided."""
    C = 24
    x = make_input((2, C, 13, 17), dtype, layout, seed=7)
    pattern = torch.tensor([[-1.0, 1.0], [0.0, 0.0], [1.0, -1.0]]).repeat_interleave(8, 0)
    check(x, pattern, "zeros", "nearest", [2, 2], [(1, 0), (0, 1)], *TOL[dtype])
    far = pattern.clone()
    far[3] = torch.tensor([0.0, 30.0])
    far[9] = torch.tensor([-12.0, -20.0])
    check(x, far, "border", "nearest", [2, 3], [0, (-1, 1)], *TOL[dtype])
    check(x, fractional_shifts(C, 2, 8), "periodic", "linear", [3, 2], [1, 0], *TOL[dtype])


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("padding", ["zeros", "reflect"])
@pytest.mark.parametrize("interp", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("crop", [0, (1, -2)], ids=["no-crop", "crop"])
def test_stride_two_rows_long_enough_for_vectors(dims, padding, interp, dtype, crop):
    """Stride 2 on contiguous rows of 20-25 kept outputs: the row kernels' vectors of every other
    element (the forward's reads, the correlations' taps, the input gradient's adds; 8 floats or
    4 doubles, then a tail) and their edges, against the reference; cubic taps overlap from one
    output to the next (added output by output instead)."""
    shape = (2, 3) + (5, 4, 49)[-dims:] if dims < 3 else (2, 3, 3, 4, 45)
    x = make_input(shape, dtype, "contiguous", seed=11)
    s = fractional_shifts(shape[1], dims, seed=12)
    s[1] = torch.tensor([1.0, -2.0, 3.0][:dims])  # whole shifts: odd and even offsets
    check(x, s, padding, interp, per_axis(2, dims), per_axis(crop, dims), *TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("kept", [3, 7, 8, 15, 19])
def test_stride_two_rows_that_end_their_tensors(dtype, kept):
    """Stride 2 where the last kept input element is the input's last element and the last output
    row ends the output (a vector short of, at, or past a whole vector): the row kernels' vector
    loops stop at the interior's end. Under tools/sanitize.sh nothing may be read or written past
    either tensor."""
    x = make_input((1, 2, 61, 2 * kept - 1), dtype, "contiguous", seed=13)  # past the small-plane paths
    s = torch.zeros(2, 2, dtype=F64)
    s[1] = torch.tensor([0.25, -0.4])  # fractional: the shift gradient's taps reach past the row
    check(x, s, "zeros", "nearest", [2, 2], [0, 0], *TOL[dtype])
    check(x, s, "reflect", "linear", [2, 2], [0, 0], *TOL[dtype])


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("interp", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("stride", [2, 3])
def test_strided_input_gradient_is_the_same_in_both_layouts(dims, padding, interp, dtype, stride):
    """Both layouts add each input element's terms in one order (output row, leading tap, pixel,
    tap), so a strided input gradient is bit-identical whether the tensors are contiguous or
    channels-last: many channels, fractional, whole and far shifts (far ones leave the others'
    rows to the channels-last kernel's plain offsets), rows long enough for both its edge and its
    interior pixels, a crop."""
    shape = (2, 40, 13, 41) if dims == 2 else (2, 24, 5, 7, 37)
    g = gen(60 + dims)
    x = torch.randn(shape, dtype=dtype, generator=g)
    s = torch.rand(shape[1], dims, dtype=F64, generator=g) * 6 - 3
    s[::5] = torch.randint(-20, 20, (len(s[::5]), dims), generator=g).to(F64)
    grads = []
    for layout in ("contiguous", "channels_last"):
        a = make_input(shape, dtype, layout, seed=0).copy_(x).requires_grad_()
        out = shift(a, s.to(dtype), padding, interp, "linear" if interp == "nearest" else None,
                    stride=per_axis(stride, dims), crop=per_axis((1, -2), dims))
        g_out = in_layout_of(torch.randn(out.shape, dtype=dtype, generator=gen(1)), a)
        grads.append(torch.autograd.grad(out, a, g_out)[0])
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("interp", ["linear", "quadratic", "cubic"])
def test_strided_gradcheck(dims, padding, interp):
    shape = (2, 3) + (7, 6, 5)[:dims]
    x = torch.randn(shape, dtype=F64, generator=gen(dims)).requires_grad_()
    g = gen(50 + dims)
    s = (torch.randint(-3, 4, (3, dims), generator=g).to(F64) + 0.2 + 0.6 * torch.rand(3, dims, dtype=F64, generator=g))
    fn = lambda a, b: shift(a, b, padding, interp, stride=2, crop=[(1, -1)] * dims)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, s.requires_grad_()), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("interp", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_strided_adjoint_identity(dims, padding, interp, layout):
    """<S x, y> == <x, S^T y>, S^T the op's input gradient of a strided, cropped shift."""
    shape = (2, 4) + (9, 8, 7)[:dims]
    s = torch.tensor([[0.0] * dims, [1.0, -2.0, 3.0][:dims], [-5.5, 7.25, 0.5][:dims], [13.0, -9.0, 2.5][:dims]],
                     dtype=F64)
    x = make_input(shape, F64, layout, seed=1).requires_grad_()
    kw = dict(stride=[2, 3, 2][:dims], crop=[(1, 0), (-2, 1), 0][:dims])
    out = shift(x, s, padding, interp, **kw)
    y = torch.randn(out.shape, dtype=F64, generator=gen(2))
    (adjoint_y,) = torch.autograd.grad(out, x, y)
    torch.testing.assert_close((out * y).sum(), (x.detach() * adjoint_y).sum(), atol=1e-10, rtol=1e-12)


def test_empty_output_gives_a_zero_input_gradient():
    x = torch.randn(2, 3, 4, 5, dtype=F64, requires_grad=True)
    s = torch.randn(3, 2, dtype=F64, requires_grad=True)
    out = shift(x, s, "zeros", "linear", stride=2, crop=[(3, 1), 0])
    assert out.shape == (2, 3, 0, 3)
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x)) and torch.equal(s.grad, torch.zeros_like(s))


@pytest.mark.parametrize("padding", ["zeros", "reflect"])
@pytest.mark.parametrize("interp", ["nearest", "linear", "cubic"])
def test_runtime_plugins_stride_like_compiled(padding, interp):
    name = "strided_rt_" + padding
    info = plugin_registry.get_padding(padding)
    torch.manual_seed(0)
    shiftzoo_padding = info.padding
    import shiftzoo
    shiftzoo.register_padding(name, shiftzoo_padding, period=shiftzoo_padding.period)
    try:
        x = torch.randn(2, 3, 9, 8, dtype=F64)
        s = fractional_shifts(3, 2, 60)
        g = torch.randn(2, 3, 4, 4, dtype=F64, generator=gen(61))
        kw = dict(stride=2, crop=[(1, 0), (-1, 1)])
        grad_interp = "linear" if interp == "nearest" else interp
        compiled = output_and_grads(lambda a, b: shift(a, b, padding, interp, grad_interp, **kw), x, s, g)
        runtime = output_and_grads(lambda a, b: shift(a, b, name, interp, grad_interp, **kw), x, s, g)
        for a, b in zip(compiled, runtime):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
    finally:
        plugin_registry.unregister("padding", name)


def test_bad_sampling_arguments_are_refused():
    x = torch.randn(1, 2, 5, 5)
    s = torch.zeros(2, 2)
    with pytest.raises(ValueError, match=r"stride must be an int >= 1 or 2 such ints"):
        shift(x, s, stride=0)
    with pytest.raises(ValueError, match=r"stride must be an int >= 1 or 2 such ints"):
        shift(x, s, stride=(2, 2, 2))
    with pytest.raises(ValueError, match=r"crop must be an int, or one int or \(begin, end\) pair of ints per axis \(2 axes\)"):
        shift(x, s, crop=[(1, 2, 3), 0])
