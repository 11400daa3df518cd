"""The CUDA backend against the CPU backend and the float64 reference: values and both gradients
for every padding x interpolation x 1D/2D/3D x dtype x layout, sampling, edge shapes, runtime
plugins, the inference form, gradcheck, determinism, CUDA graphs, torch.compile's
``reduce-overhead``, streams and the behaviour of non-finite shifts on the device.

Runs only where CUDA is available and the extension has CUDA kernels; everywhere else every test
skips, saying why. Sizes are small: the whole file takes well under two minutes on one H100.

What the CUDA backend is held to here, beyond the CPU's semantics (docs/semantics.md):

* a non-finite shift does not raise on CUDA (raising would need the shifts on the host, a sync
  every call): the channel whose shift is NaN or infinite is NaN everywhere in the output and in
  both gradients, the other channels are computed as on the CPU (docs/semantics.md);
* no host synchronisation in the compiled ops (CUDA graph capture, ``set_sync_debug_mode("error")``);
* kernels run on the current stream and the tensors' own device;
* outputs and gradients keep the CPU's strides (the drivers allocate them, the same code on both);
* integer data whose channel has a non-finite shift reads nothing (its fill) instead of NaN.
"""
from __future__ import annotations

import contextlib
import copy
import itertools
import math

import pytest
import torch
from torch import nn

import shiftzoo
from helpers import F64, PADDINGS, fractional_shifts, gen, make_input, output_and_grads
from test_shift_values import EDGE_CASES as CPU_EDGE_CASES
from test_shift_values import LAYOUTS, TOL  # (atol, rtol) per dtype, against the CPU's or the reference's
from shiftzoo import plugin_registry, reference
from shiftzoo._sampling import Sampling
from shiftzoo.functional import shift

OPS = ("shift", "shift_backward", "shift_affine", "shift_tabled", "shift_tabled_backward")
# Every compiled interpolation, as the extension lists them (as tests/test_plugins.py does).
INTERPS = sorted(name for name, _ in shiftzoo._extension.builtin_plugins()["interp"])


def _has_cuda_kernel(op: str) -> bool:
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key(f"shiftzoo::{op}", "CUDA")
    except RuntimeError:  # the op is not even defined (no extension)
        return False


def _why_not_cuda():
    if not torch.cuda.is_available():
        return (f"CUDA is not available (torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
                "these tests run on a GPU machine")
    if not shiftzoo.has_extension():
        return "shiftzoo's compiled extension is not loaded"
    if not _has_cuda_kernel("shift"):
        return ("the shiftzoo extension has no CUDA kernels (build it with nvcc present: "
                "SHIFTZOO_CUDA=1 python setup.py build_ext --inplace)")
    return None


SKIP_REASON = _why_not_cuda()
pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=str(SKIP_REASON))

# "cuda" is the current device; with several GPUs the last one too, the current device left at 0:
# the kernels must run on their tensors' device, whatever the current one.
DEVICES = ["cuda"] + ([f"cuda:{torch.cuda.device_count() - 1}"] if torch.cuda.device_count() > 1 else [])

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
# Sizes past a warp and a few thread blocks along the last axis, with odd lengths everywhere.
SHAPES = {1: (3, 5, 70), 2: (2, 5, 13, 37), 3: (2, 4, 5, 7, 9)}
# (stride, crop) applied to every axis (as test_strided)
SAMPLINGS = {
    "s2": (2, 0),
    "s3-crop": (3, (1, 2)),
    "s2-pad": (2, (-2, -1)),   # a conv that pads beyond its kernel's reach
    "s1-crop": (1, (1, 0)),    # stride 1 with a crop
    "s5-wide": (5, (-3, 0)),   # a stride wider than the taps
}


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _exact_float32():
    """No TF32 in the convolutions of the model tests (CPU and CUDA compared in float32)."""
    if SKIP_REASON is not None:
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------



def mixed_shifts(C, dims, seed):
    """Fractional shifts, large ones on even channels, plus a whole shift and an x.5 tie."""
    s = fractional_shifts(C, dims, seed)
    s[1] = torch.tensor([-1.0, 2.0, 0.0][:dims], dtype=F64)
    s[2] = torch.tensor([0.5, -1.5, 2.5][:dims], dtype=F64)  # ties: rounded half to even
    return s




def assert_close(got, want, dtype, what, scaled=False):
    """``got`` (on CUDA) equals ``want`` (CPU or reference) to ``dtype``'s tolerance; ``scaled``:
    relative to ``want``'s largest magnitude (a shift gradient: a sum of many products)."""
    assert got.is_cuda, what
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    atol, rtol = TOL[dtype]
    want = want.detach().to(F64)
    if scaled and want.numel():
        atol = atol * (1 + want.abs().max().item())
    torch.testing.assert_close(got.detach().cpu().to(F64), want, atol=atol, rtol=rtol, msg=lambda m: f"{what}: {m}")


def compare(dev, cpu, dtype, what="", ref=None):
    """(out, grad_input[, grad_shifts]) on CUDA against the CPU's, and against the float64
    reference's if given; the output and the input gradient keep the CPU's strides."""
    names = ("output", "input gradient", "shift gradient")
    for k, (a, b) in enumerate(zip(dev, cpu)):
        assert_close(a, b, dtype, f"{what} {names[k]} (CUDA vs CPU)", scaled=(k == 2))
        if k < 2 and a.numel() > 1:
            assert a.stride() == b.stride(), f"{what} {names[k]}: strides {a.stride()} on CUDA, {b.stride()} on CPU"
    if ref is not None:
        for k, (a, b) in enumerate(zip(dev, ref)):
            assert_close(a, b.to(a.dtype) if k < 2 else b, dtype, f"{what} {names[k]} (CUDA vs reference)",
                         scaled=(k == 2))


def reference_grads(x, s, g, padding, interp, grad_interp, **sampling):
    """The float64 reference's output and gradients on the CPU, for x, s and g on any device."""
    return output_and_grads(lambda a, b: reference.shift(a, b, padding, interp, grad_interp, **sampling),
                 x.detach().cpu().to(F64), s.detach().cpu(), g.detach().cpu().to(F64))


def case(device, shape, dtype, layout, seed=0):
    """x on the device and on the CPU: the same values and strides."""
    x_dev = make_input(shape, dtype, layout, seed, device)
    x_cpu = make_input(shape, dtype, layout, seed, "cpu")
    return x_dev, x_cpu


def run_both(device, shape, dtype, layout, s, padding, interp, grad_interp=None, seed=0, g_shape=None,
             shifts_grad=True, **sampling):
    """The op on CUDA and on the CPU: ((out, gx, gs) on CUDA, (out, gx, gs) on the CPU, x on the CPU, g)."""
    x_dev, x_cpu = case(device, shape, dtype, layout, seed)
    if g_shape is None:
        with torch.no_grad():
            g_shape = shift(x_cpu, s, padding, interp, grad_interp, **sampling).shape
    g_cpu = make_input(tuple(g_shape), dtype, "channels_last" if layout == "channels_last" else "contiguous",
                       seed + 1000, "cpu")
    g_dev = g_cpu.to(device)
    fn = lambda a, b: shift(a, b, padding, interp, grad_interp, **sampling)  # noqa: E731
    dev = output_and_grads(fn, x_dev, s.to(device), g_dev, shifts_grad)
    cpu = output_and_grads(fn, x_cpu, s, g_cpu, shifts_grad)
    return dev, cpu, x_cpu, g_cpu


# ------------------------------------------------------------------------------------------------
# the build
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", OPS)
def test_every_op_has_a_cuda_kernel(op):
    assert _has_cuda_kernel(op), f"shiftzoo::{op} has no CUDA kernel"


# ------------------------------------------------------------------------------------------------
# values and both gradients: CUDA = CPU = reference
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("interp", INTERPS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_matches_cpu(device, padding, interp, dims, dtype, layout):
    shape = SHAPES[dims]
    s = mixed_shifts(shape[1], dims, seed=7 + dims)
    grad_interp = "linear" if interp == "nearest" else None  # SSL's straight-through gradient for nearest
    dev, cpu, x_cpu, g_cpu = run_both(device, shape, dtype, layout, s, padding, interp, grad_interp, seed=dims)
    ref = reference_grads(x_cpu, s, g_cpu, padding, interp, grad_interp)
    compare(dev, cpu, dtype, f"{padding}/{interp}", ref=ref)
    out, gx, gs = dev
    assert out.dtype == dtype and gx.dtype == dtype and gs.dtype == s.dtype
    if layout != "strided":  # the output keeps the input's memory format
        x_dev = make_input(shape, dtype, layout, dims, device)
        assert out.stride() == torch.empty_like(x_dev).stride() and gx.stride() == x_dev.stride()
    if interp == "nearest":  # a whole-pixel forward moves values: bit-identical to the CPU's
        assert torch.equal(out.cpu(), cpu[0])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("case_name", list(SAMPLINGS))
@pytest.mark.parametrize("interp", INTERPS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_sampling_matches_cpu(device, padding, interp, case_name, dims, layout):
    """stride and crop: only the kept positions, their input gradient a scatter, on CUDA as on the CPU."""
    stride, crop = SAMPLINGS[case_name]
    shape = SHAPES[dims]
    s = mixed_shifts(shape[1], dims, seed=40 + dims)
    grad_interp = "linear" if interp == "nearest" else None
    kw = dict(stride=[stride] * dims, crop=[crop] * dims)
    dev, cpu, x_cpu, g_cpu = run_both(device, shape, torch.float32, layout, s, padding, interp, grad_interp,
                                      seed=dims, **kw)
    ref = reference_grads(x_cpu, s, g_cpu, padding, interp, grad_interp, **kw)
    compare(dev, cpu, torch.float32, f"{padding}/{interp}/{case_name}", ref=ref)
    if interp == "nearest":
        assert torch.equal(dev[0].cpu(), cpu[0])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("interp", ["nearest", "linear", "cubic"])
def test_sampling_in_other_dtypes(device, interp, dims, layout, dtype):
    shape = SHAPES[dims]
    s = mixed_shifts(shape[1], dims, seed=50 + dims)
    grad_interp = "linear" if interp == "nearest" else None
    kw = dict(stride=[2, 3, 2][:dims], crop=[(1, -1), (0, 2), (-2, 0)][:dims])
    dev, cpu, _, _ = run_both(device, shape, dtype, layout, s, "reflect", interp, grad_interp, seed=dims, **kw)
    compare(dev, cpu, dtype, f"{interp}/{dtype}")


# the CPU suite's edge cases (batch 0, length-1 axes, shifts beyond the axis, huge shifts), and a 3D one
EDGE_CASES = [*CPU_EDGE_CASES,
              ((2, 3, 3, 5, 2), [[1e30, 0.5, -1e30], [-3.5, 1e20, 2.25], [-1e25, -1e25, 1e25]])]


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape, shifts", EDGE_CASES, ids=[str(c[0]) for c in EDGE_CASES])
@pytest.mark.parametrize("interp", INTERPS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_edge_shapes_and_huge_shifts(device, padding, interp, shape, shifts, layout):
    s = torch.tensor(shifts, dtype=F64)
    for dtype in (torch.float64, torch.float32):
        dev, cpu, x_cpu, g_cpu = run_both(device, shape, dtype, layout, s, padding, interp, seed=11)
        ref = reference_grads(x_cpu, s, g_cpu, padding, interp, None) if dtype == F64 else None
        compare(dev, cpu, dtype, f"{shape} {padding}/{interp}", ref=ref)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("pair", [(a, b) for a in INTERPS for b in INTERPS if a != b], ids="-".join)
@pytest.mark.parametrize("padding", PADDINGS)
def test_grad_interp_differs_from_interp(device, padding, pair, dims):
    """The output and the input gradient from interp, the shift gradient from grad_interp."""
    interp, grad_interp = pair
    shape = SHAPES[dims]
    s = mixed_shifts(shape[1], dims, seed=60 + dims)
    dev, cpu, x_cpu, g_cpu = run_both(device, shape, F64, "contiguous", s, padding, interp, grad_interp, seed=dims)
    ref = reference_grads(x_cpu, s, g_cpu, padding, interp, grad_interp)
    compare(dev, cpu, F64, f"{padding}/{interp}->{grad_interp}", ref=ref)


@pytest.mark.parametrize("shape", [(2, 40000, 3), (70000, 1, 4), (1, 3, 1000, 5), (1, 2, 3, 129, 257),
                                   (2, 300, 7, 7), (1, 1, 2000)], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("interp", ["nearest", "linear", "cubic"])
def test_grid_sized_shapes(device, shape, layout, interp):
    """Many planes (more than a grid's y or z dimension holds), long rows and columns, many channels."""
    dims = len(shape) - 2
    s = torch.rand(shape[1], dims, dtype=F64, generator=gen(70)) * 10 - 5
    grad_interp = "linear" if interp == "nearest" else None
    dev, cpu, _, _ = run_both(device, shape, torch.float32, layout, s, "symmetric", interp, grad_interp, seed=71)
    compare(dev, cpu, torch.float32, f"{shape}")


@pytest.mark.parametrize("padding", PADDINGS)
def test_an_empty_axis_reads_nothing_everywhere(device, padding):
    """Positions beyond an axis of length 0 (a negative crop) read zero, whatever the padding; the
    inference op writes post(0) there."""
    x = torch.randn(2, 3, 0, device=device, requires_grad=True)
    s = torch.tensor([[0.5], [-2.0], [1e30]], device=device, requires_grad=True)
    out = shift(x, s, padding, "linear", crop=[(-2, -1)])
    assert out.shape == (2, 3, 3) and torch.equal(out.detach().cpu(), torch.zeros(2, 3, 3))
    gx, gs = torch.autograd.grad(out, (x, s), torch.ones_like(out))
    assert gx.shape == x.shape and torch.equal(gs.cpu(), torch.zeros(3, 1))
    bias = torch.tensor([0.5, -1.0, 7.0])
    folded = torch.ops.shiftzoo.shift_affine(x.detach(), torch.zeros(3, 1, device=device), padding, [1], [-2], [-1],
                                             None, None, 0.0, 1.0, torch.ones(3, device=device), bias.to(device),
                                             -math.inf, 6.0)
    assert torch.equal(folded.cpu(), bias.clamp(max=6.0).view(1, 3, 1).expand(2, 3, 3))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_more_than_2_to_the_31_elements(device, layout):
    """A float16 tensor of 2.2e9 elements (4.4 GB; about 18 GB in all): offsets past 2**31 elements.
    Planes are independent, so the first, a middle and the last batch items are checked against the
    CPU op on those items alone (output and input gradient)."""
    if torch.cuda.get_device_properties(device).total_memory < 40 * 2**30:
        pytest.skip("needs a GPU with 40 GiB or more")
    shape = (2**15, 64, 32, 33)  # 2.21e9 elements
    assert math.prod(shape) > 2**31
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    s = torch.rand(64, 2, generator=gen(16)) * 8 - 4
    x = torch.randn(shape, device=device, dtype=torch.float16).contiguous(memory_format=fmt).requires_grad_()
    out = shift(x, s.to(device), "reflect", "linear")
    g = torch.randn_like(out)
    (gx,) = torch.autograd.grad(out, x, g)
    for items in (slice(0, 1), slice(2**14, 2**14 + 1), slice(-2, None)):
        xc = x[items].detach().cpu().contiguous(memory_format=fmt).requires_grad_()
        oc = shift(xc, s, "reflect", "linear")
        (gc,) = torch.autograd.grad(oc, xc, g[items].cpu())
        assert_close(out[items], oc, torch.float16, f"output of items {items}")
        assert_close(gx[items], gc, torch.float16, f"input gradient of items {items}")
    del x, out, g, gx
    torch.cuda.empty_cache()


def test_shifts_in_another_float_dtype(device):
    x_cpu = torch.randn(2, 3, 5, 6, dtype=torch.float32, generator=gen(8))
    s = fractional_shifts(3, 2, 9)
    g = torch.randn(2, 3, 5, 6, generator=gen(10))
    for sdtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        fn = lambda a, b: shift(a, b, "border", "linear")  # noqa: E731
        dev = output_and_grads(fn, x_cpu.to(device), s.to(sdtype).to(device), g.to(device))
        cpu = output_and_grads(fn, x_cpu, s.to(sdtype), g)
        compare(dev, cpu, torch.float32, f"shifts {sdtype}")
        assert dev[2].dtype == sdtype and dev[2].is_cuda


def test_frozen_shifts_and_gradients_not_asked_for(device):
    """A gradient nobody asked for: none computed (GroupedShift's frozen shifts; an input without grad)."""
    x_cpu = torch.randn(2, 6, 9, 11, generator=gen(12))
    s = torch.randint(-2, 3, (6, 2), generator=gen(13)).float()
    g = torch.randn(2, 6, 9, 11, generator=gen(14))
    dev = output_and_grads(lambda a, b: shift(a, b, "reflect", "nearest"), x_cpu.to(device), s.to(device), g.to(device), False)
    cpu = output_and_grads(lambda a, b: shift(a, b, "reflect", "nearest"), x_cpu, s, g, False)
    compare(dev, cpu, torch.float32, "frozen")
    # only the shifts get a gradient
    sd = s.to(device).requires_grad_()
    (gs,) = torch.autograd.grad(shift(x_cpu.to(device), sd, "zeros", "linear"), sd, g.to(device))
    sc = s.clone().requires_grad_()
    (gs_cpu,) = torch.autograd.grad(shift(x_cpu, sc, "zeros", "linear"), sc, g)
    assert_close(gs, gs_cpu, torch.float32, "shift gradient alone", scaled=True)
    # nearest's own shift gradient is zero: a tensor of zeros
    (gz,) = torch.autograd.grad(shift(x_cpu.to(device), sd, "zeros", "nearest"), sd, g.to(device))
    assert gz.is_cuda and torch.equal(gz.cpu(), torch.zeros_like(s))


def test_double_backward_raises(device):
    x = torch.randn(1, 2, 4, 5, device=device, requires_grad=True)
    s = torch.randn(2, 2, device=device, requires_grad=True)
    gx, = torch.autograd.grad(shift(x, s, "zeros", "linear").square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        gx.sum().backward()


# ------------------------------------------------------------------------------------------------
# layers
# ------------------------------------------------------------------------------------------------

def _layer(family, dims, channels, **kw):
    """A shift layer of ``family`` with shifts drawn from a fixed seed."""
    torch.manual_seed(3)
    if family == "sparse":
        return getattr(shiftzoo.nn, f"SparseShift{dims}d")(channels, padding="reflect", init_shift=3.0, **kw)
    if family == "active":
        return getattr(shiftzoo.nn, f"ActiveShift{dims}d")(channels, padding="symmetric", interp="cubic",
                                                           init_shift=3.0, **kw)
    return getattr(shiftzoo.nn, f"GroupedShift{dims}d")(channels, kernel_size=3, dilation=2, padding="zeros", **kw)


@pytest.mark.parametrize("sampling", [{}, {"stride": 2, "crop": 1}], ids=["unit", "s2"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("family", ["sparse", "active", "grouped"])
def test_layers_match_cpu(device, family, dims, layout, sampling):
    C = 3 ** dims + 2
    cpu_layer = _layer(family, dims, C, **sampling)
    dev_layer = copy.deepcopy(cpu_layer).to(device)
    shape = (2, C) + (6, 7, 9)[3 - dims:] if dims < 3 else (2, C, 4, 5, 6)
    x_dev, x_cpu = case(device, shape, torch.float32, layout, seed=dims)
    x_dev.requires_grad_()
    x_cpu.requires_grad_()
    out_dev, out_cpu = dev_layer(x_dev), cpu_layer(x_cpu)
    g = torch.randn(out_cpu.shape, generator=gen(5))
    out_dev.backward(g.to(device))
    out_cpu.backward(g)
    assert_close(out_dev, out_cpu, torch.float32, f"{family} output")
    assert out_dev.stride() == out_cpu.stride()
    assert_close(x_dev.grad, x_cpu.grad, torch.float32, f"{family} input gradient")
    if family == "grouped":
        assert not dev_layer.weight.requires_grad and dev_layer.weight.grad is None
    else:
        assert_close(dev_layer.weight.grad, cpu_layer.weight.grad, torch.float32, f"{family} shift gradient",
                     scaled=True)
        assert_close(dev_layer.sparsity_loss(), cpu_layer.sparsity_loss(), torch.float32, "sparsity loss")


# ------------------------------------------------------------------------------------------------
# runtime plugins
# ------------------------------------------------------------------------------------------------

@pytest.fixture
def runtime_twins():
    """Every built-in re-registered as a runtime plugin named rt_<name> (as in tests/test_plugins.py);
    removed afterwards."""
    for name in PADDINGS:
        info = plugin_registry.get_padding(name)
        shiftzoo.register_padding("rt_" + name, info.padding, period=info.padding.period, override=True)
    for name in INTERPS:
        info = plugin_registry.get_interp(name)
        shiftzoo.register_interp("rt_" + name, support=info.support, weights=info.interp.weights, override=True)
    yield
    for name in PADDINGS:
        plugin_registry.unregister("padding", "rt_" + name)
    for name in INTERPS:
        plugin_registry.unregister("interp", "rt_" + name)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("interp", INTERPS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_runtime_plugins_match_cpu(device, runtime_twins, padding, interp, dims, dtype):
    shape = (2, 3) + (4, 5, 6)[3 - dims:]
    s = torch.randn(3, dims, dtype=F64, generator=gen(9)) * 4
    s[0] = 1e30  # huge shifts go through the period
    s[1] = torch.tensor([0.5, -1.5, 2.5][:dims])  # ties
    grad_interp = "linear" if interp == "nearest" else interp
    dev, cpu, _, _ = run_both(device, shape, dtype, "contiguous", s, "rt_" + padding, "rt_" + interp,
                              "rt_" + grad_interp, seed=dims)
    compare(dev, cpu, dtype, f"rt_{padding}/rt_{interp}")
    # and the runtime twin equals the compiled built-in on the device
    compiled, _, _, _ = run_both(device, shape, dtype, "contiguous", s, padding, interp, grad_interp, seed=dims)
    for k, (a, b) in enumerate(zip(dev, compiled)):
        assert_close(a, b.cpu(), dtype, f"runtime vs compiled on CUDA [{k}]", scaled=(k == 2))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=str)
def test_runtime_plugins_in_every_layout_and_dtype(device, runtime_twins, dtype, layout):
    for dims, sampling in itertools.product((1, 2, 3), ({}, {"stride": 2, "crop": (1, 0)})):
        shape = SHAPES[dims]
        s = mixed_shifts(shape[1], dims, seed=80 + dims)
        kw = {"stride": [sampling["stride"]] * dims, "crop": [sampling["crop"]] * dims} if sampling else {}
        dev, cpu, _, _ = run_both(device, shape, dtype, layout, s, "rt_reflect", "rt_cubic", seed=dims, **kw)
        compare(dev, cpu, dtype, f"{dims}d {sampling}")
        dev, cpu, _, _ = run_both(device, shape, dtype, layout, s, "rt_periodic", "nearest", "rt_linear", seed=dims,
                                  **kw)
        compare(dev, cpu, dtype, f"{dims}d {sampling} mixed")


def test_new_runtime_plugins_on_cuda(device):
    """The README's plugins, written in Python: a padding and a 4-tap interpolation."""
    def edge_then_zeros(i, n):
        return torch.where((i >= -1) & (i <= n), i.clamp(0, n - 1), torch.full_like(i, -1))

    def lanczos2(f):
        d = torch.stack([f + 1, f, f - 1, f - 2], -1)
        w = torch.sinc(d) * torch.sinc(d / 2)
        return w / w.sum(-1, keepdim=True)

    shiftzoo.register_padding("cuda_edge_then_zeros", edge_then_zeros, period=0, override=True)
    shiftzoo.register_interp("cuda_lanczos2", support=4, weights=lanczos2, override=True)
    try:
        s = mixed_shifts(5, 2, seed=90)
        for padding, interp in (("cuda_edge_then_zeros", "linear"), ("reflect", "cuda_lanczos2"),
                                ("cuda_edge_then_zeros", "cuda_lanczos2")):
            dev, cpu, _, _ = run_both(device, SHAPES[2], F64, "channels_last", s, padding, interp, seed=91)
            compare(dev, cpu, F64, f"{padding}/{interp}")
    finally:
        plugin_registry.unregister("padding", "cuda_edge_then_zeros")
        plugin_registry.unregister("interp", "cuda_lanczos2")


# ------------------------------------------------------------------------------------------------
# the inference form
# ------------------------------------------------------------------------------------------------

def _fma_map(x, scale, bias, lo, hi):
    view = (1, -1) + (1,) * (x.dim() - 2)
    if scale is not None:
        x = (x.double() * scale.double().view(view) + bias.double().view(view)).to(x.dtype)
    return x.clamp(lo, hi)


def _affine_args(C, maps, dtype=torch.float32):
    a1, b1 = torch.rand(C, generator=gen(2)) + 0.5, torch.randn(C, generator=gen(3))
    a2, b2 = torch.rand(C, generator=gen(4)) - 0.5, torch.randn(C, generator=gen(5))
    pre = (a1, b1) if maps in ("both", "pre") else (None, None)
    post = (a2, b2) if maps in ("both", "post") else (None, None)
    return [t if t is None else t.to(dtype) for t in pre], [t if t is None else t.to(dtype) for t in post]


def _affine(x, s, padding, sampling, pre, post):
    """shift_affine on x's device: pre clamps to [0, 6], post to [-1, 2]."""
    move = lambda t: None if t is None else t.to(x.device)  # noqa: E731
    return torch.ops.shiftzoo.shift_affine(x, s.to(x.device), padding, *sampling.op_args(), *map(move, pre), 0.0, 6.0,
                                           *map(move, post), -1.0, 2.0)


@pytest.mark.parametrize("channels", ["any-order", "in-runs"])
@pytest.mark.parametrize("sampling", [(1, 0), (2, 0), (2, "crop")], ids=["unit", "s2", "s2-crop"])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_shift_affine_matches_cpu(device, dims, layout, padding, sampling, channels):
    """The inference op: bit-identical to the CPU's (the same fma and clamps on the same values)."""
    if channels == "in-runs":  # groups of 6 alike, as a grouped shift's
        C = 24
        s = torch.randint(-2, 3, (C // 6, dims), generator=gen(1)).float().repeat_interleave(6, dim=0)
    else:
        C = 12
        s = torch.randint(-2, 3, (C, dims), generator=gen(1)).float()
    s[3] = 20.0  # far beyond the axis
    stride, crop = sampling
    crop = [(1, -1)] * dims if crop == "crop" else crop
    samp = Sampling.of(dims, stride, crop)
    shape = (2, C) + (9, 8, 7)[:dims]
    x_dev, x_cpu = case(device, shape, torch.float32, layout, seed=dims)
    x_dev.mul_(4)
    x_cpu.mul_(4)
    pre, post = _affine_args(C, "both")
    got = _affine(x_dev, s, padding, samp, pre, post)
    want = _affine(x_cpu, s, padding, samp, pre, post)
    assert got.is_cuda and got.shape == want.shape and got.stride() == want.stride()
    assert torch.equal(got.cpu(), want)
    ref = _fma_map(reference.shift(_fma_map(x_cpu, *pre, 0.0, 6.0), s, padding, "nearest", stride=stride, crop=crop),
                   *post, -1.0, 2.0)
    assert torch.equal(got.cpu(), ref)


@pytest.mark.parametrize("maps", ["both", "pre", "post", "clamps"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_shift_affine_maps_and_dtypes(device, maps, dtype, layout):
    C = 16
    s = torch.randint(-3, 4, (C, 2), generator=gen(6)).float()
    x_dev, x_cpu = case(device, (3, C, 11, 10), dtype, layout, seed=7)
    x_dev.mul_(4)
    x_cpu.mul_(4)
    # NaN and infinities pass through the maps as on the CPU (NaN stays NaN, infinities clamp)
    for t in (x_dev, x_cpu):
        t[0, 1, 2, 3] = float("nan")
        t[1, 2, 4, 5] = float("inf")
        t[2, 3, 6, 7] = -float("inf")
    pre, post = _affine_args(C, maps, dtype)
    samp = Sampling.of(2, [2, 1], [(0, 1), (-1, 0)])
    got = _affine(x_dev, s, "reflect", samp, pre, post)
    want = _affine(x_cpu, s, "reflect", samp, pre, post)
    assert got.dtype == dtype and got.stride() == want.stride()
    if dtype in (torch.float32, torch.float64):
        torch.testing.assert_close(got.cpu(), want, rtol=0, atol=0, equal_nan=True)
    else:
        atol, rtol = TOL[dtype]
        torch.testing.assert_close(got.cpu().to(F64), want.to(F64), rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool], ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_integer_data_matches_cpu(device, padding, layout, dtype):
    """Whole-pixel shifts of integer and bool data (and its fill), exactly as on the CPU; quantized
    tensors' integers through a layer."""
    C = 6
    s = torch.randint(-4, 5, (C, 2), generator=gen(9)).float()
    s[1, 0] = 1e30
    base = make_input((2, C, 9, 8), torch.float64, layout, seed=10)
    x_cpu = torch.empty_strided(base.shape, base.stride(), dtype=dtype).copy_(base * 40 if dtype != torch.bool
                                                                            else base > 0)
    x_dev = torch.empty_strided(base.shape, base.stride(), dtype=dtype, device=device).copy_(x_cpu)
    fill = ((torch.arange(C) % 2) * (1 if dtype == torch.bool else 7)).to(dtype)
    for stride, crop in [(1, 0), (2, [(1, -1), (0, 2)])]:
        got = shift(x_dev, s.to(device), padding, "nearest", stride=stride, crop=crop, fill=fill.to(device))
        want = shift(x_cpu, s, padding, "nearest", stride=stride, crop=crop, fill=fill)
        assert got.is_cuda and got.dtype == dtype and got.stride() == want.stride()
        assert torch.equal(got.cpu(), want)


def _tiny_mobilenet(family, dtype, memory_format):
    from test_convert import TinyMobileNetV2
    from test_inference import randomize_batchnorms

    torch.manual_seed(0)
    model = TinyMobileNetV2()
    shiftzoo.replace_depthwise(model, layer=family)
    randomize_batchnorms(model)
    model = model.eval().to(dtype=dtype, memory_format=memory_format)
    x = torch.randn(2, 3, 33, 31, generator=gen(8)).to(dtype).contiguous(memory_format=memory_format)
    return model, x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["contiguous", "cl"])
@pytest.mark.parametrize("family", ["sparse", "grouped"])
def test_optimized_model_moved_to_cuda_gives_the_cpu_outputs(device, family, memory_format, dtype):
    model, x = _tiny_mobilenet(family, dtype, memory_format)
    report = shiftzoo.optimize_for_inference(model)
    assert len(report.integer) == 5, report
    if dtype == torch.float32:  # (float64 folds are kept apart where the CPU's BatchNorm rounds otherwise)
        assert len(report.folded) == 5, report
    with torch.no_grad():
        want = model(x)
        model.to(device)
        got = model(x.to(device))
    assert sum(isinstance(m, shiftzoo.inference.InferenceShift) for m in model.modules()) == 5
    tol = 1e-4 if dtype == torch.float32 else 1e-10  # the convolutions round differently on the two devices
    torch.testing.assert_close(got.cpu(), want, atol=tol, rtol=tol)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["contiguous", "cl"])
def test_optimized_on_cuda_equals_the_unoptimized_model_there(device, memory_format):
    """optimize_for_inference of a model on the GPU: its folds are checked there, the outputs unchanged."""
    model, x = _tiny_mobilenet("sparse", torch.float32, memory_format)
    model.to(device)
    x = x.to(device)
    with torch.no_grad():
        before = model(x)
    report = shiftzoo.optimize_for_inference(model)
    assert len(report.integer) == 5, report
    with torch.no_grad():
        after = model(x)
    assert torch.equal(after, before), report


# ------------------------------------------------------------------------------------------------
# gradcheck
# ------------------------------------------------------------------------------------------------

def away_from_integers(C, d, seed, scale=3.0):
    """Shifts whose fractional parts sit in [0.2, 0.8]: finite differences never cross a tap."""
    g = gen(seed)
    whole = torch.randint(-int(scale), int(scale) + 1, (C, d), generator=g).to(F64)
    return whole + 0.2 + 0.6 * torch.rand(C, d, dtype=F64, generator=g)


@pytest.mark.parametrize("sampling", [{}, {"stride": 2, "crop": (1, -1)}], ids=["unit", "s2-crop"])
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("interp", ["linear", "cubic"])
@pytest.mark.parametrize("padding", PADDINGS)
def test_gradcheck(device, padding, interp, dims, sampling):
    shape = {1: (2, 3, 6), 2: (1, 3, 4, 5), 3: (1, 2, 3, 4, 3)}[dims]
    x = torch.randn(shape, dtype=F64, generator=gen(dims)).to(device).requires_grad_()
    s = away_from_integers(shape[1], dims, seed=10 + dims).to(device).requires_grad_()
    kw = {"stride": [sampling["stride"]] * dims, "crop": [sampling["crop"]] * dims} if sampling else {}
    assert torch.autograd.gradcheck(lambda a, b: shift(a, b, padding, interp, **kw), (x, s), eps=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------------------------
# determinism
# ------------------------------------------------------------------------------------------------

KINDS = {  # (padding, interp, grad_interp, frozen shifts)
    "ssl": ("reflect", "nearest", "linear", False),
    "active-linear": ("periodic", "linear", None, False),
    "active-cubic": ("symmetric", "cubic", None, False),
    "grouped": ("border", "nearest", None, True),
    "runtime": ("cuda_det_zeros", "linear", None, False),
}


@pytest.fixture
def det_padding():
    def zeros(i, n):
        return torch.where((i >= 0) & (i < n), i, torch.full_like(i, -1))

    shiftzoo.register_padding("cuda_det_zeros", zeros, period=0, override=True)
    yield
    plugin_registry.unregister("padding", "cuda_det_zeros")


def _det_run(device, kind, layout, stride):
    padding, interp, grad_interp, frozen = KINDS[kind]
    C = 32
    x = make_input((16, C, 41, 43), torch.float32, layout, seed=20, device=device)
    if frozen:
        s = torch.randint(-1, 2, (C, 2), generator=gen(21)).float().to(device)
    else:
        s = (torch.rand(C, 2, generator=gen(21)) * 6 - 3).to(device)
    crop = 1 if stride > 1 else 0

    def fn(a, b):
        return shift(a, b, padding, interp, grad_interp, stride=stride, crop=crop)

    with torch.no_grad():
        shape = fn(x, s).shape
    g = make_input(tuple(shape), torch.float32, layout, seed=22, device=device)
    return output_and_grads(fn, x, s, g, shifts_grad=not frozen)


@pytest.mark.parametrize("deterministic", [False, True], ids=["default", "use_deterministic_algorithms"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_bit_identical_runs(device, det_padding, kind, layout, stride, deterministic):
    """Values and both gradients bit-identical from run to run (a batch of 16, so that any
    reduction in an unfixed order would show), and under torch.use_deterministic_algorithms(True)
    (which also fills fresh memory with NaN: every output element must be written)."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic)
    try:
        runs = [_det_run(device, kind, layout, stride) for _ in range(3)]
    finally:
        torch.use_deterministic_algorithms(before)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert torch.equal(a, b), kind
    for t in runs[0]:
        assert t.isfinite().all()
    if deterministic:  # the same bits as without the flag
        for a, b in zip(runs[0], _det_run(device, kind, layout, stride)):
            assert torch.equal(a, b)


# ------------------------------------------------------------------------------------------------
# non-finite shifts: no exception on CUDA, the channel reads NaN
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("interp", INTERPS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_non_finite_shift_gives_nan_in_its_channel_without_raising(device, padding, interp, bad):
    """The compiled ops do not look at the shifts' values on the host (that would synchronise every
    call): a non-finite shift raises nothing on CUDA, forward or backward; its channel is NaN
    everywhere in the output and in both gradients; every other channel is computed as on the CPU."""
    C = 4
    s = mixed_shifts(C, 2, seed=30).float()
    x_cpu = torch.randn(2, C, 6, 7, generator=gen(31))
    g_cpu = torch.randn(2, C, 6, 7, generator=gen(32))
    bad_s = s.clone()
    bad_s[1, 1] = bad  # channel 1, axis W
    grad_interp = "linear" if interp == "nearest" else None
    xd = x_cpu.to(device).requires_grad_()
    sd = bad_s.to(device).requires_grad_()
    out = shift(xd, sd, padding, interp, grad_interp)  # no exception
    gx, gs = torch.autograd.grad(out, (xd, sd), g_cpu.to(device))  # nor in the backward
    torch.cuda.synchronize(device)
    assert out[:, 1].isnan().all(), "the channel with a non-finite shift must be NaN in the output"
    assert gx[:, 1].isnan().all(), "the channel with a non-finite shift must be NaN in the input gradient"
    assert gs[1].isnan().all(), "the channel with a non-finite shift must have a NaN shift gradient"
    # the other channels: as on the CPU (which rejects non-finite shifts; the bad channel is left out)
    keep = [0, 2, 3]
    cpu = output_and_grads(lambda a, b: shift(a, b, padding, interp, grad_interp), x_cpu[:, keep], s[keep], g_cpu[:, keep])
    assert_close(out[:, keep], cpu[0], torch.float32, "other channels' output")
    assert_close(gx[:, keep], cpu[1], torch.float32, "other channels' input gradient")
    assert_close(gs[keep], cpu[2], torch.float32, "other channels' shift gradient", scaled=True)
    # the op itself, as torch.compile's graphs call it, raises nothing either
    with torch.no_grad():
        raw = torch.ops.shiftzoo.shift(x_cpu.to(device), bad_s.to(device), padding, interp, grad_interp or interp,
                                       *Sampling.of(2).op_args())
    assert raw.cpu()[:, 1].isnan().all()


# ------------------------------------------------------------------------------------------------
# no host synchronisation: sync debug mode, CUDA graphs, torch.compile's reduce-overhead
# ------------------------------------------------------------------------------------------------

def test_compiled_ops_do_not_synchronise(device):
    """Forward and backward of the compiled ops, and the inference op, under
    torch.cuda.set_sync_debug_mode("error"): any synchronising call (a copy to the host, .item())
    raises."""
    with torch.cuda.device(device):
        _no_sync_case(device)


def _no_sync_case(device):
    x = torch.randn(4, 8, 12, 13, device=device).requires_grad_()
    s = (torch.rand(8, 2, device=device) * 6 - 3).requires_grad_()
    g = torch.randn(4, 8, 12, 13, device=device)
    scale, bias = torch.rand(8, device=device) + 0.5, torch.randn(8, device=device)
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for padding, interp, grad_interp in (("reflect", "nearest", "linear"), ("zeros", "cubic", None),
                                             ("periodic", "linear", None)):
            out = shift(x, s, padding, interp, grad_interp, stride=2, crop=(1, 0))
            torch.autograd.grad(out, (x, s), torch.ones_like(out))
            out = shift(x.detach(), s.detach(), padding, interp, grad_interp)
            out = shift(x, s.detach(), padding, interp, grad_interp)  # frozen shifts: the input gradient alone
            torch.autograd.grad(out, (x,), g)
        with torch.no_grad():
            torch.ops.shiftzoo.shift_affine(x, s.round(), "zeros", *Sampling.of(2).op_args(), scale, bias, 0.0, 6.0,
                                            None, None, -math.inf, math.inf)
    finally:
        torch.cuda.set_sync_debug_mode(previous)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("family", ["sparse", "active", "grouped"])
def test_cuda_graph_capture_of_forward_and_backward(device, family, layout):
    """Forward+backward of a shift layer captured in a CUDA graph, replayed on new input data (and
    new shifts) copied into the static tensors: the same as eager."""
    with torch.cuda.device(device):
        _graph_case(device, family, layout)


def _graph_case(device, family, layout):
    C = 12
    layer = _layer(family, 2, C).to(device)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    static_x = torch.randn(4, C, 15, 17, device=device).contiguous(memory_format=fmt).requires_grad_()
    static_g = torch.randn(4, C, 15, 17, device=device).contiguous(memory_format=fmt)
    learns = layer.weight.requires_grad

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up, as torch.cuda.graph's documentation asks
        for _ in range(3):
            static_x.grad = layer.weight.grad = None
            layer(static_x).backward(static_g)
    torch.cuda.current_stream().wait_stream(side)
    static_x.grad = layer.weight.grad = None

    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = layer(static_x)
        static_out.backward(static_g)
    static_gx, static_gs = static_x.grad, layer.weight.grad

    for step in range(3):
        new_x = torch.randn(4, C, 15, 17, generator=gen(100 + step)).to(device)
        new_g = torch.randn(4, C, 15, 17, generator=gen(200 + step)).to(device)
        with torch.no_grad():
            static_x.copy_(new_x)
            static_g.copy_(new_g)
            if learns and step:  # new shifts, in place: the plan is made on the device at every replay
                layer.weight.copy_((torch.rand(C, 2, generator=gen(300 + step)) * 8 - 4).to(device))
        graph.replay()
        torch.cuda.synchronize()
        xe = new_x.contiguous(memory_format=fmt).requires_grad_()
        out = layer(xe)
        wrt = (xe, layer.weight) if learns else (xe,)
        eager = torch.autograd.grad(out, wrt, new_g.contiguous(memory_format=fmt))
        assert torch.equal(static_out, out.detach()), f"step {step}: output"
        assert torch.equal(static_gx, eager[0]), f"step {step}: input gradient"
        if learns:
            assert torch.equal(static_gs, eager[1]), f"step {step}: shift gradient"


def test_torch_compile_reduce_overhead(device):
    """torch.compile(mode="reduce-overhead") (Inductor with CUDA graphs) of a small module of shift
    layers: forward and both gradients equal eager, over several steps, with no graph skipped."""
    pytest.importorskip("triton")
    with torch.cuda.device(device):
        _compile_case(device)


def _compile_case(device):
    import torch._inductor.config as inductor_config
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    C = 12
    torch.manual_seed(0)
    model = nn.Sequential(shiftzoo.SparseShift2d(C, padding="reflect", init_shift=2.0), nn.ReLU(),
                          shiftzoo.ActiveShift2d(C, padding="zeros", interp="cubic", init_shift=2.0),
                          shiftzoo.GroupedShift2d(C, padding="border")).to(device)
    compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True)
    params = [p for p in model.parameters() if p.requires_grad]
    # compile the few Triton kernels in this process: no pool of compile workers to start
    patch = inductor_config.patch(compile_threads=1) if hasattr(inductor_config, "compile_threads") \
        else contextlib.nullcontext()
    with patch:
        for step in range(4):
            torch.compiler.cudagraph_mark_step_begin()
            x = torch.randn(3, C, 10, 11, generator=gen(step)).to(device).requires_grad_()
            g = torch.randn(3, C, 10, 11, generator=gen(50 + step)).to(device)
            out = compiled(x)
            got = (out.detach().clone(),) + tuple(t.clone() for t in torch.autograd.grad(out, (x, *params), g))
            out = model(x)
            want = (out.detach(),) + torch.autograd.grad(out, (x, *params), g)
            for k, (a, b) in enumerate(zip(got, want)):
                torch.testing.assert_close(a, b, msg=lambda m: f"step {step} [{k}]: {m}")
        with torch.no_grad():  # inference through the compiled module too
            torch.compiler.cudagraph_mark_step_begin()
            x = torch.randn(3, C, 10, 11, generator=gen(99)).to(device)
            torch.testing.assert_close(compiled(x).clone(), model(x))
    skips = counters["inductor"]["cudagraph_skips"]
    torch._dynamo.reset()
    assert skips == 0, "Inductor skipped CUDA graphs (see the log's 'skipping cudagraphs due to ...')"


# ------------------------------------------------------------------------------------------------
# streams
# ------------------------------------------------------------------------------------------------

def test_runs_on_the_current_stream(device):
    """Everything on a non-default stream, whose input is written only after the stream has spun
    for a while: a kernel launched on another stream would read the input before it is written."""
    with torch.cuda.device(device):
        _stream_case(device)


def _stream_case(device):
    C = 16
    src = torch.randn(4, C, 23, 29, generator=gen(40)).to(device)
    s = (torch.rand(C, 2, generator=gen(41)) * 6 - 3).to(device)
    g = torch.randn(4, C, 23, 29, generator=gen(42)).to(device)
    scale, bias = (torch.rand(C, generator=gen(43)) + 0.5).to(device), torch.randn(C, generator=gen(44)).to(device)
    cases = [("reflect", "nearest", "linear"), ("zeros", "cubic", None), ("symmetric", "linear", None)]

    def run_all(x):
        results = []
        for padding, interp, grad_interp in cases:
            xs, ss = x.detach().requires_grad_(), s.detach().requires_grad_()
            out = shift(xs, ss, padding, interp, grad_interp, stride=[1, 2], crop=[(0, 0), (1, -1)])
            results += [out.detach()] + list(torch.autograd.grad(out, (xs, ss), g[..., :out.shape[-1]]))
        with torch.no_grad():
            results.append(torch.ops.shiftzoo.shift_affine(x, s.round(), "border", *Sampling.of(2).op_args(), scale,
                                                           bias, 0.0, 6.0, None, None, -math.inf, math.inf))
        return results

    want = run_all(src)
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        x = torch.zeros_like(src)
        torch.cuda._sleep(50_000_000)  # keeps this stream busy for some milliseconds
        x.copy_(src)
        got = run_all(x)
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    for k, (a, b) in enumerate(zip(got, want)):
        assert torch.equal(a, b), f"result {k} differs on a side stream"
