"""The inference form: the shift_affine op (a whole-pixel shift with per-channel maps folded in) and
shiftzoo.optimize_for_inference, whose outputs must equal the unoptimized model's bit for bit."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import shiftzoo
from helpers import PADDINGS, gen, make_input
from shiftzoo import reference
from shiftzoo._sampling import Sampling
from shiftzoo.inference import InferenceShift, optimize_for_inference
from test_convert import TinyMobileNetV2


def fma_map(x, scale, bias, lo, hi):
    """v -> clamp(scale * v + bias, lo, hi), the product and sum rounded once (exact in float64 for
    float32 operands, then rounded once to float32)."""
    view = (1, -1) + (1,) * (x.dim() - 2)
    if scale is not None:
        x = (x.double() * scale.double().view(view) + bias.double().view(view)).to(x.dtype)
    return x.clamp(lo, hi)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("sampling", [(1, 0), (2, 0), (2, "crop")], ids=["unit", "s2", "s2-crop"])
@pytest.mark.parametrize("maps", ["both", "pre", "post", "clamps"])
@pytest.mark.parametrize("channels", ["any-order", "in-runs", "few-offsets"])
def test_shift_affine_is_the_shift_between_its_maps(dims, layout, padding, sampling, maps, channels):
    if channels == "in-runs":  # groups of 6 alike (as a grouped shift's), read a run at a time in channels_last
        C = 24
        s = torch.randint(-2, 3, (C // 6, dims), generator=gen(1)).float().repeat_interleave(6, dim=0)
    elif channels == "few-offsets":  # 3 shifts taken in turn (SSL's usual): channels_last moves vectors of them
        C = 20
        s = torch.randint(-2, 3, (3, dims), generator=gen(1)).float().repeat(7, 1)[:C]
    else:
        C = 12
        s = torch.randint(-2, 3, (C, dims), generator=gen(1)).float()
    x = make_input((2, C) + (9, 8, 7)[:dims], torch.float32, layout, seed=dims) * 4
    s[3] = 20.0  # far beyond the axis
    stride, crop = sampling
    crop = [(1, -1)] * dims if crop == "crop" else crop
    a1, b1 = torch.rand(C, generator=gen(2)) + 0.5, torch.randn(C, generator=gen(3))
    b1[3] = 1.0  # the far channel's pre(0) is not 0: a tap reading nothing (post(0)) differs from a mapped 0
    a2, b2 = torch.rand(C, generator=gen(4)) + 0.5, torch.randn(C, generator=gen(5))
    pre = (a1, b1) if maps in ("both", "pre") else (None, None)
    post = (a2, b2) if maps in ("both", "post") else (None, None)
    want = fma_map(reference.shift(fma_map(x, *pre, 0.0, 6.0), s, padding, "nearest", stride=stride, crop=crop),
                   *post, -1.0, 2.0)
    got = torch.ops.shiftzoo.shift_affine(x, s, padding, *Sampling.of(dims, stride, crop).op_args(), *pre, 0.0, 6.0,
                                          *post, -1.0, 2.0)
    assert got.shape == want.shape
    assert torch.equal(got, want)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("maps", ["both", "none"])
def test_channels_shifted_far_on_wide_channels_last_rows(padding, maps):
    """Rows wide enough that a channel shifted 20 pixels along W is read on its own (the gather's
    far channels), beside channels shifted by a pixel or two, on rows where all of those read
    inside the input: a far channel whose source row reads nothing (zeros padding) must give
    post(0), not a mapped zero; one whose row is read, its own pixels through the padding."""
    C = 12
    s = torch.randint(-2, 3, (C, 2), generator=gen(1)).float()
    s[3] = 20.0  # beyond the axis on both axes
    s[5] = torch.tensor([1.0, -20.0])  # beyond the row only
    x = make_input((2, C, 8, 24), torch.float32, "channels_last", seed=4) * 4
    a1, b1 = torch.rand(C, generator=gen(2)) + 0.5, torch.rand(C, generator=gen(3)) + 0.5  # pre(0) != 0
    a2, b2 = torch.rand(C, generator=gen(4)) + 0.5, torch.randn(C, generator=gen(5))
    pre, post = ((a1, b1), (a2, b2)) if maps == "both" else ((None, None), (None, None))
    want = fma_map(reference.shift(fma_map(x, *pre, 0.0, 6.0), s, padding, "nearest"), *post, -1.0, 2.0)
    got = torch.ops.shiftzoo.shift_affine(x, s, padding, *Sampling.of(2).op_args(), *pre, 0.0, 6.0, *post, -1.0, 2.0)
    assert torch.equal(got, want)
    plain = torch.ops.shiftzoo.shift(x, s, padding, "nearest", "nearest", *Sampling.of(2).op_args())
    assert torch.equal(plain, reference.shift(x, s, padding, "nearest"))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("channels", ["any-order", "in-runs"])
def test_shift_affine_keeps_nan_and_clamps_infinities(layout, channels):
    C = 24
    x = make_input((2, C, 7, 9), torch.float32, "contiguous", seed=3) * 4
    x.view(-1)[::7] = float("nan")
    x.view(-1)[1::11] = float("inf")
    x.view(-1)[2::13] = -float("inf")
    x = x.contiguous(memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format)
    s = torch.randint(-2, 3, (C, 2), generator=gen(1)).float()
    if channels == "in-runs":
        s = s[::6].repeat_interleave(6, dim=0)
    a1, b1 = torch.rand(C, generator=gen(2)) + 0.5, torch.randn(C, generator=gen(3))
    a2, b2 = torch.rand(C, generator=gen(4)) - 0.5, torch.randn(C, generator=gen(5))
    want = fma_map(reference.shift(fma_map(x, a1, b1, 0.0, 6.0), s, "zeros", "nearest"), a2, b2, -1.0, 2.0)
    got = torch.ops.shiftzoo.shift_affine(x, s, "zeros", *Sampling.of(2).op_args(), a1, b1, 0.0, 6.0, a2, b2, -1.0, 2.0)
    assert got.isnan().any() and (got == 2.0).any() and (got == -1.0).any()
    torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)


def test_shift_affine_checks_its_maps_and_has_no_gradient():
    x, s = torch.randn(1, 3, 5, 5), torch.zeros(3, 2)
    unit = ([1, 1], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="pre_scale and pre_bias must be given together"):
        torch.ops.shiftzoo.shift_affine(x, s, "zeros", *unit, torch.ones(3), None, 0.0, 1.0, None, None, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"expected post scale and bias of shape \(3,\)"):
        torch.ops.shiftzoo.shift_affine(x, s, "zeros", *unit, None, None, 0.0, 1.0, torch.ones(4), torch.ones(4),
                                        0.0, 1.0)
    with pytest.raises(ValueError, match="post_min 2 exceeds post_max 1"):
        torch.ops.shiftzoo.shift_affine(x, s, "zeros", *unit, None, None, 0.0, 1.0, None, None, 2.0, 1.0)
    out = torch.ops.shiftzoo.shift_affine(x.requires_grad_(), s, "zeros", *unit, None, None, 0.0, 1.0, None, None,
                                          -math.inf, math.inf)
    with pytest.raises(RuntimeError, match="inference form .* has no gradient"):
        out.sum().backward()


def test_an_empty_axis_reads_nothing_everywhere():
    """Positions beyond an axis of length 0 (a negative crop) read nothing, for every padding."""
    x = torch.randn(2, 3, 0)
    for padding in PADDINGS:
        out = shiftzoo.functional.shift(x, torch.zeros(3, 1), padding, "linear", crop=[(-2, -1)])
        assert out.shape == (2, 3, 3) and torch.equal(out, torch.zeros_like(out))
        bias = torch.tensor([0.5, -1.0, 7.0])
        folded = torch.ops.shiftzoo.shift_affine(x, torch.zeros(3, 1), padding, [1], [-2], [-1], None, None, 0.0, 1.0,
                                                 torch.ones(3), bias, -math.inf, 6.0)
        assert torch.equal(folded, bias.clamp(max=6.0).view(1, 3, 1).expand(2, 3, 3))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_shift_affine_tables_kept_between_calls_follow_every_change(layout):
    """shift_affine keeps the tables of its frozen shifts between calls (a cache keyed by the
    shift values, the geometry, the sampling and the padding): every change of any of them, the
    shifts edited in place included, and more distinct layers than the cache holds, still give
    the reference's values."""
    C = 16
    a, b = torch.rand(C, generator=gen(20)) + 0.5, torch.randn(C, generator=gen(21))

    def check(x, s, padding="zeros", stride=1):
        want = fma_map(reference.shift(fma_map(x, a, b, 0.0, 6.0), s, padding, "nearest", stride=stride),
                       None, None, -math.inf, math.inf)
        got = torch.ops.shiftzoo.shift_affine(x, s, padding, [stride] * 2, [0, 0], [0, 0], a, b, 0.0, 6.0, None, None,
                                              -math.inf, math.inf)
        assert torch.equal(got, want)

    s = torch.randint(-2, 3, (C, 2), generator=gen(22)).float()
    x = make_input((2, C, 9, 8), torch.float32, layout, seed=23)
    check(x, s)
    s[5] = torch.tensor([2.0, -1.0]) - s[5]           # the same tensor, edited in place
    check(x, s)
    check(x, s, padding="reflect")                     # another padding
    check(x, s, stride=2)                              # another sampling
    check(make_input((2, C, 5, 11), torch.float32, layout, seed=24), s)  # another size
    for k in range(70):                                # more layers than the cache keeps
        check(x, torch.randint(-3, 4, (C, 2), generator=gen(100 + k)).float())
    check(x, s)


def randomize_batchnorms(model):
    g = gen(7)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 2 + 0.1)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) * 2 + 0.2)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))


@pytest.mark.parametrize("family", ["sparse", "grouped"])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["contiguous", "cl"])
@pytest.mark.parametrize("downsample", ["sample", "pool"])
def test_optimized_mobilenet_gives_the_same_outputs(family, memory_format, downsample):
    torch.manual_seed(0)
    model = TinyMobileNetV2()
    shiftzoo.replace_depthwise(model, layer=family, downsample=downsample)
    randomize_batchnorms(model)
    model = model.eval().to(memory_format=memory_format)
    x = torch.randn(2, 3, 33, 31, generator=gen(8)).contiguous(memory_format=memory_format)
    with torch.no_grad():
        before = model(x)
    batchnorms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    report = optimize_for_inference(model)
    assert not any(isinstance(m, shiftzoo.ShiftLayer) for m in model.modules())
    assert len(report.integer) == 5 and len(report.folded) == 5 and not report.skipped, report
    both = "BatchNorm2d -> ReLU6 before, BatchNorm2d -> ReLU6 after"
    if downsample == "sample":
        assert all(what == both for what in report.folded.values())
        assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == batchnorms - 10  # 2 per shift
    else:  # the strided shifts are followed by their crop-and-pool: only the maps before them fold
        assert report.folded["blocks.0.conv.3.shift"] == "BatchNorm2d -> ReLU6 before, nothing after"
        assert report.folded["blocks.1.conv.3"] == both
    with torch.no_grad():
        assert torch.equal(model(x), before)
    assert not any(p.requires_grad for m in model.modules() if isinstance(m, InferenceShift) for p in m.parameters())


def in_runs(shifts: torch.Tensor) -> bool:
    """Whether equal rows of shifts (C, d) are adjacent: one run per distinct displacement."""
    classes = torch.unique(shifts, dim=0, return_inverse=True)[1]
    return 1 + int((classes[1:] != classes[:-1]).sum()) == int(classes.max()) + 1


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["contiguous", "cl"])
@pytest.mark.parametrize("downsample", ["sample", "pool"])
def test_permuted_channels_move_in_runs_and_agree_up_to_rounding(memory_format, downsample):
    torch.manual_seed(0)
    model = TinyMobileNetV2()
    shiftzoo.replace_depthwise(model, layer="sparse", downsample=downsample)
    randomize_batchnorms(model)
    model = model.eval().to(memory_format=memory_format)
    x = torch.randn(2, 3, 33, 31, generator=gen(8)).contiguous(memory_format=memory_format)
    with torch.no_grad():
        before = model(x)
    layers = {n: m.weight.detach().round() for n, m in model.named_modules() if isinstance(m, shiftzoo.ShiftLayer)}
    assert not any(in_runs(s) for s in layers.values())  # else the test shows nothing
    report = optimize_for_inference(model, permute_channels=True)
    strided = {"blocks.0.conv.3.shift", "blocks.2.conv.3.shift"} if downsample == "pool" else set()
    assert set(report.permuted) == set(layers) - strided, report
    for name in strided:  # followed by their crop and pool, not by a convolution
        assert report.unpermuted[name].startswith("no convolution right after")
    modules = dict(model.named_modules())
    for name in report.permuted:
        assert in_runs(modules[name].shifts)
        assert sorted(map(tuple, modules[name].shifts.tolist())) == sorted(map(tuple, layers[name].tolist()))
    with torch.no_grad():
        after = model(x)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)  # the second conv sums in another order


def test_channels_are_not_permuted_where_something_else_reads_them():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.expand, self.shift, self.project = nn.Conv2d(6, 12, 1), shiftzoo.SparseShift2d(12), nn.Conv2d(12, 12, 1)
            with torch.no_grad():
                self.shift.weight.copy_(torch.randint(-1, 2, (12, 2), generator=gen(13)).float())

        def forward(self, x):
            shifted = self.shift(self.expand(x))
            return self.project(shifted) + shifted

    model = Residual().eval()
    report = optimize_for_inference(model, permute_channels=True)
    assert report.integer == ["shift"] and not report.permuted
    assert report.unpermuted["shift"].startswith("no convolution right after")


def test_optimized_blocks_of_ours():
    """ShiftNet's CSC block (BN -> ReLU before the shift, a 1x1 conv after) and FE-Net's block."""
    torch.manual_seed(0)
    model = shiftzoo.build_shift({"type": "sequential", "layers": [
        {"type": "csc", "in_channels": 8, "out_channels": 16, "expansion": 2},
        {"type": "fe_block", "in_channels": 16, "out_channels": 24, "stride": 2,
         "shift": {"type": "sparse_shift2d", "init_shift": 2.0}}]})
    randomize_batchnorms(model)
    model.eval()
    x = torch.randn(2, 8, 12, 10, generator=gen(9))
    with torch.no_grad():
        before = model(x)
    report = optimize_for_inference(model)
    assert len(report.folded) == 2 and all("BatchNorm2d -> ReLU before" in w for w in report.folded.values()), report
    with torch.no_grad():
        assert torch.equal(model(x), before)


def test_what_is_left_alone_and_why():
    torch.manual_seed(0)

    class Functional(nn.Module):  # a clamp written as a function call cannot be replaced by a module
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(9)
            self.shift = shiftzoo.SparseShift2d(9)
            self.zero = shiftzoo.GroupedShift2d(9, kernel_size=1)  # moves nothing
            self.active = shiftzoo.ActiveShift2d(9)

        def forward(self, x):
            return self.active(self.zero(self.shift(torch.relu(self.bn(x)))))

    model = Functional().eval()
    x = torch.randn(2, 9, 6, 7, generator=gen(10))
    with torch.no_grad():
        before = model(x)
    report = optimize_for_inference(model)
    assert report.integer == ["shift"] and report.identity == ["zero"] and not report.folded
    assert "interpolates ('linear')" in report.skipped["active"]
    assert isinstance(model.zero, nn.Identity) and isinstance(model.bn, nn.BatchNorm2d)
    with torch.no_grad():
        assert torch.equal(model(x), before)
    with pytest.raises(ValueError, match="training mode; call model.eval"):
        optimize_for_inference(Functional())


def test_an_untraceable_model_still_gets_whole_pixel_shifts():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn, self.shift = nn.BatchNorm2d(4), shiftzoo.SparseShift2d(4)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
                x = x * 2
            return self.shift(self.bn(x))

    model = Branchy().eval()
    x = torch.randn(1, 4, 5, 5, generator=gen(11))
    with torch.no_grad():
        before = model(x)
    report = optimize_for_inference(model)
    assert report.integer == ["shift"] and not report.folded and "could not be traced by torch.fx" in report.notes[0]
    with torch.no_grad():
        assert torch.equal(model(x), before)


def test_optimized_model_compiles_and_exports():
    torch.manual_seed(0)
    model = TinyMobileNetV2()
    shiftzoo.replace_depthwise(model, layer="sparse")
    randomize_batchnorms(model)
    model.eval()
    optimize_for_inference(model)
    x = torch.randn(2, 3, 33, 31, generator=gen(12))
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(torch.compile(model, fullgraph=True, backend="aot_eager")(x), want)
    exported = torch.export.export(model, (x,))
    targets = [n.target for n in exported.graph.nodes if n.op == "call_function"]
    assert targets.count(torch.ops.shiftzoo.shift_affine.default) == 5
    torch.library.opcheck(torch.ops.shiftzoo.shift_affine.default,
                          (x[:, :3].contiguous(), torch.tensor([[1.0, -1.0], [0.0, 2.0], [-3.0, 0.0]]), "zeros",
                           [2, 1], [0, 1], [1, 0], torch.rand(3) + 1, torch.randn(3), 0.0, 6.0, None, None, -1.0, 1.0))


def test_inference_shift_without_the_extension_matches(monkeypatch):
    """The pure-PyTorch fallback computes the same maps (unfused) as the op."""
    layer = InferenceShift(torch.tensor([[1.0], [-2.0], [0.0]]), "reflect", 2, 0,
                           pre=((torch.rand(3) + 1, torch.randn(3)), 0.0, 6.0), post=(None, -1.0, 1.0))
    x = torch.randn(2, 3, 11, dtype=torch.float32)
    want = layer(x)
    monkeypatch.setattr(shiftzoo._extension, "available", lambda: False)
    torch.testing.assert_close(layer(x), want, atol=1e-6, rtol=0)
