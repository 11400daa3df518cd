"""Gradients of the compiled op: gradcheck, the adjoint (dot-product) identity, SSL's
straight-through shift gradient, frozen shifts, the direction of descent, and the same bits
whichever gradients are asked for."""
from __future__ import annotations

import pytest
import torch

from helpers import F64, PADDINGS, gen
from shiftzoo import reference
from shiftzoo.functional import shift

SHAPES = {1: (2, 3, 6), 2: (1, 3, 4, 5), 3: (1, 2, 3, 4, 3)}


def away_from_integers(C, d, seed, scale=3.0):
    """Shifts whose fractional parts sit in [0.2, 0.8]: finite differences never cross a tap."""
    g = gen(seed)
    whole = torch.randint(-int(scale), int(scale) + 1, (C, d), generator=g).to(F64)
    return whole + 0.2 + 0.6 * torch.rand(C, d, dtype=F64, generator=g)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("interp", ["linear", "quadratic", "cubic"])
def test_gradcheck(dims, padding, interp):
    shape = SHAPES[dims]
    x = torch.randn(shape, dtype=F64, generator=gen(dims)).requires_grad_()
    s = away_from_integers(shape[1], dims, seed=10 + dims).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: shift(a, b, padding, interp), (x, s), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("interp", ["nearest", "linear", "quadratic", "cubic"])
def test_adjoint_identity(dims, padding, interp):
    """<S x, y> == <x, S^T y>, with S^T the op's input gradient, for shifts large and small."""
    shape = (2, 4) + SHAPES[dims][2:]
    s = torch.tensor([[0.0] * dims, [1.0, -2.0, 3.0][:dims], [-5.5, 7.25, 0.5][:dims],
                      [13.0, -9.0, 2.5][:dims]], dtype=F64)
    x = torch.randn(shape, dtype=F64, generator=gen(1)).requires_grad_()
    y = torch.randn(shape, dtype=F64, generator=gen(2))
    (adjoint_y,) = torch.autograd.grad(shift(x, s, padding, interp), x, y)
    lhs = (shift(x.detach(), s, padding, interp) * y).sum()
    rhs = (x.detach() * adjoint_y).sum()
    torch.testing.assert_close(lhs, rhs, atol=1e-10, rtol=1e-12)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("padding", PADDINGS)
def test_ssl_shift_gradient_is_linears(dims, padding):
    shape = SHAPES[dims]
    x = torch.randn(shape, dtype=F64, generator=gen(3))
    s = torch.randn(shape[1], dims, dtype=F64, generator=gen(4)) * 3
    g = torch.randn(shape, dtype=F64, generator=gen(5))
    grads = {}
    for interp, grad_interp in (("nearest", "linear"), ("linear", "linear")):
        xs, ss = x.clone().requires_grad_(), s.clone().requires_grad_()
        out = shift(xs, ss, padding, interp, grad_interp)
        grads[interp] = torch.autograd.grad(out, (xs, ss), g)
    torch.testing.assert_close(grads["nearest"][1], grads["linear"][1], atol=1e-12, rtol=1e-12)
    # the input gradient stays the exact adjoint of the rounded shift
    xs = x.clone().requires_grad_()
    (want,) = torch.autograd.grad(shift(xs, s.round(), padding, "nearest"), xs, g)
    torch.testing.assert_close(grads["nearest"][0], want, atol=0, rtol=0)


def test_nearest_without_grad_interp_has_zero_shift_gradient():
    x = torch.randn(1, 2, 5, 5, dtype=F64)
    s = torch.tensor([[0.4, 1.2], [-2.7, 3.5]], dtype=F64, requires_grad=True)
    shift(x, s, "zeros", "nearest").sum().backward()
    assert torch.equal(s.grad, torch.zeros_like(s))


def test_integer_shift_derivative_is_the_floor_based_pair():
    """On an integer shift the linear derivative is one-sided: taps floor(p), floor(p) + 1."""
    x = torch.tensor([[[0.0, 1.0, 4.0, 9.0, 16.0]]], dtype=F64)
    s = torch.tensor([[1.0]], dtype=F64, requires_grad=True)
    out = shift(x, s, "zeros", "linear")
    torch.testing.assert_close(out, torch.tensor([[[0.0, 0.0, 1.0, 4.0, 9.0]]], dtype=F64))
    g = torch.zeros_like(out)
    g[0, 0, 3] = 1.0  # output 3 samples p = 2 - 0: taps in[2], in[3]; d out / d s = -(in[3] - in[2])
    (gs,) = torch.autograd.grad(out, s, g)
    assert gs.item() == -(9.0 - 4.0)


def test_gradient_descent_moves_shifts_toward_the_optimum():
    """The seed's shift gradients had the wrong sign: check descent recovers a known shift."""
    grid = torch.arange(16, dtype=F64)
    blob = torch.exp(-((grid.view(-1, 1) - 7) ** 2 + (grid.view(1, -1) - 8) ** 2) / 8)
    x = blob.expand(1, 3, 16, 16)  # one smooth bump: the loss has a single basin
    target_shift = torch.tensor([[1.3, -0.6], [0.2, 0.9], [-1.1, 0.4]], dtype=F64)
    target = shift(x, target_shift, "border", "linear")
    s = torch.zeros(3, 2, dtype=F64, requires_grad=True)
    opt = torch.optim.Adam([s], lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        ((shift(x, s, "border", "linear") - target) ** 2).mean().backward()
        opt.step()
    torch.testing.assert_close(s.detach(), target_shift, atol=0.05, rtol=0)


def test_backward_op_skips_unrequested_gradients():
    g = torch.randn(1, 2, 5, 5)
    x = torch.randn(1, 2, 5, 5)
    s = torch.randn(2, 2)
    unit = ([1, 1], [0, 0], [0, 0], list(x.shape))
    gi, gs = torch.ops.shiftzoo.shift_backward(g, None, s, "zeros", "nearest", "linear", *unit, True, False)
    assert gi.shape == x.shape and gs.numel() == 0
    gi, gs = torch.ops.shiftzoo.shift_backward(g, x, s, "zeros", "nearest", "linear", *unit, False, True)
    assert gi.numel() == 0 and gs.shape == s.shape
    with pytest.raises(ValueError, match="shift gradient needs the input"):
        torch.ops.shiftzoo.shift_backward(g, None, s, "zeros", "nearest", "linear", *unit, False, True)


def test_double_backward_raises_a_clear_error():
    x = torch.randn(1, 2, 5, 5, dtype=F64, requires_grad=True)
    s = torch.randn(2, 2, dtype=F64, requires_grad=True)
    (gx,) = torch.autograd.grad(shift(x, s, "zeros", "linear").pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        gx.sum().backward()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("interp, grad_interp", [("nearest", "linear"), ("linear", "linear"), ("cubic", "cubic")])
def test_small_plane_gradients_do_not_depend_on_where_the_tensors_lie(interp, grad_interp, dtype):
    """Small planes' shift gradients sum whole vectors that read past the plane; at the tensors'
    ends (the first and last planes) those loads go lane by lane. Both must give the same bits, so
    that the same values give the same gradient wherever the tensors lie in memory: placed at
    several offsets inside larger buffers, the gradients are identical."""
    shape = (3, 10, 7, 7)
    x = torch.randn(shape, dtype=dtype, generator=gen(80))
    g = torch.randn(shape, dtype=dtype, generator=gen(81))
    s = torch.rand(shape[1], 2, dtype=F64, generator=gen(82)) * 6 - 3

    def placed(t, at):
        buffer = torch.full((t.numel() + 2 * at + 40,), float("nan"), dtype=t.dtype)
        view = buffer[at:at + t.numel()].view(t.shape)
        view.copy_(t)
        return view

    grads = []
    for at in (0, 1, 5, 49, 100):
        xs, ss = placed(x, at).requires_grad_(), s.clone().requires_grad_()
        grads.append(torch.autograd.grad(shift(xs, ss, "zeros", interp, grad_interp), (xs, ss), placed(g, at + 3)))
    for gx, gs in grads[1:]:
        assert torch.equal(gx, grads[0][0]) and torch.equal(gs, grads[0][1])
    assert grads[0][1].abs().sum() > 0


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("padding", ["zeros", "reflect"])
@pytest.mark.parametrize("size", [7, 28, 50], ids=lambda n: f"{n}x{n}")
def test_ssl_gradients_do_not_depend_on_which_are_asked_for(size, padding, layout):
    """SparseShift's backward computes the input gradient together with the shift gradient where
    both are asked for (small planes plane by plane by their translations, large ones plane by
    plane, channels_last row by row) and each on its own otherwise: both ways give the same bits."""
    x = torch.randn(4, 12, size, size, generator=gen(90))
    g = torch.randn(4, 12, size, size, generator=gen(91))
    s = torch.rand(12, 2, generator=gen(92)) * 6 - 3
    if layout == "channels_last":
        x, g = (t.contiguous(memory_format=torch.channels_last) for t in (x, g))

    def grads(want_input, want_shifts):
        xs, ss = x.clone().requires_grad_(want_input), s.clone().requires_grad_(want_shifts)
        wanted = [t for t in (xs, ss) if t.requires_grad]
        return torch.autograd.grad(shift(xs, ss, padding, "nearest", "linear"), wanted, g)

    gx, gs = grads(True, True)
    (gx_alone,) = grads(True, False)
    (gs_alone,) = grads(False, True)
    assert torch.equal(gx, gx_alone) and torch.equal(gs, gs_alone)
    assert gx.abs().sum() > 0 and gs.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("padding", ["zeros", "reflect"])
@pytest.mark.parametrize("interp, grad_interp", [("nearest", "linear"), ("linear", "linear"), ("quadratic", "quadratic"),
                                                 ("cubic", "cubic")])
@pytest.mark.parametrize("shape", [(3, 10, 9, 9), (3, 10, 4, 16), (2, 6, 3, 5, 6)], ids=lambda s: "x".join(map(str, s)))
def test_small_plane_gradients_match_the_reference(shape, interp, grad_interp, padding, dtype):
    """Planes of at most 256 elements correlate by their classes' translations, every tap
    combination's products summed in its own vector lanes and the lanes summed by a transpose, four
    combinations at a time, the rest one by one (2D linear: 4 combinations, 3D linear: 8, 2D
    quadratic: 9, 2D cubic: 16), then each tap's fixes (reflect's mapped taps). Planes of 8 to 12
    vectors of floats, so that every lane holds products: both gradients against the float64
    reference."""
    dims = len(shape) - 2
    x = torch.randn(shape, dtype=dtype, generator=gen(100 + dims))
    g = torch.randn(shape, dtype=dtype, generator=gen(110 + dims))
    s = torch.rand(shape[1], dims, dtype=F64, generator=gen(120 + dims)) * 5 - 2.5
    # The last plane's taps read half a pixel ahead on every axis: its translations start at the
    # plane and up to a row and more after it. On 4x16 planes (whole vectors: the upstream
    # gradient's last plane ends its tensor exactly) only the input's extent tells that the
    # translations' whole vectors would read past its end, so they go lane by lane
    # (tools/sanitize.sh checks that nothing is read past it).
    s[-1] = -0.5
    got = torch.autograd.grad(shift(x.requires_grad_(), s.requires_grad_(), padding, interp, grad_interp), (x, s), g)
    x64, s64 = x.detach().to(F64).requires_grad_(), s.detach().clone().requires_grad_()
    want = torch.autograd.grad(reference.shift(x64, s64, padding, interp, grad_interp), (x64, s64), g.to(F64))
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(got[0].to(F64), want[0], atol=tol, rtol=tol)
    torch.testing.assert_close(got[1], want[1], atol=tol * (1 + want[1].abs().max().item()), rtol=tol)
    assert want[1].abs().sum() > 0
