"""Tests that fail where the code is wrong (issue "Hardening", item 6).

The tests here were written against mutations of the library that the rest of the suite let pass,
each applied by hand, seen to fail here, and reverted: the containers and every block recomputed by
hand from their own submodules; DepthwiseGeometry and ``emulate_dw`` against real convolutions
with a one-hot centre kernel in every ``padding_mode``; quantized input in every padding; the fake
kernels of the backward ops under opcheck (channels-last strides included); a frozen shift that
really skips its gradient's work. Alongside them, checks of what cannot be mutated from Python
(the C++ kernels): bfloat16 ties rounded half to even, cubic in low precision on strided and
transposed layouts, bit-identical results across runs and thread counts, inductor's backward, and
a torchshifts checkpoint.
"""
from __future__ import annotations

import io
import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import shiftzoo
from helpers import F64, PADDINGS, gen
from shiftzoo import reference
from shiftzoo.blocks import (AxialShiftBlock, ChannelLayerNorm, Concat, CSCBlock, FEBlock, Residual, ShiftViTBlock,
                             SpatialShiftBlock, TemporalShift)
from shiftzoo.compat import QuantizedShift, Shift1d, Shift2d, Shift3d
from shiftzoo.functional import shift
from shiftzoo.nn import DepthwiseGeometry, FixedShift
from shiftzoo.nn.layers import FAMILIES

CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
SEED_SHIFTS = {1: Shift1d, 2: Shift2d, 3: Shift3d}


def randomized(module: nn.Module, seed: int) -> nn.Module:
    """Every parameter and BatchNorm statistic drawn at random (as a trained checkpoint), float64;
    the shift layers keep their shifts."""
    module = module.double()
    g = gen(seed)
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, shiftzoo.ShiftLayer):
                continue
            for name, tensor in itertools.chain(sub.named_parameters(recurse=False), sub.named_buffers(recurse=False)):
                if name == "running_var":
                    tensor.copy_(torch.rand(tensor.shape, generator=g, dtype=tensor.dtype) + 0.5)
                elif tensor.is_floating_point():
                    tensor.copy_(torch.randn(tensor.shape, generator=g, dtype=tensor.dtype) * 0.5)
    return module


def both_modes(block: nn.Module, by_hand, x: torch.Tensor) -> None:
    """The block equals its hand-written forward in eval mode (running statistics) and in train mode."""
    for training in (False, True):
        block.train(training)
        torch.testing.assert_close(block(x), by_hand(block, x))


def ceil_avg_pool(x: torch.Tensor, stride) -> torch.Tensor:
    """Average of each ``stride``-sized window, the last one of an axis partial (ceil_mode), by hand:
    the axes padded with NaN to whole windows, then the mean of each window's numbers."""
    stride = tuple(stride)
    pads = []
    for n, s in zip(reversed(x.shape[2:]), reversed(stride)):
        pads += [0, -n % s]
    padded = F.pad(x, pads, value=float("nan"))
    shape = list(x.shape[:2])
    for n, s in zip(padded.shape[2:], stride):
        shape += [n // s, s]
    return padded.reshape(shape).nanmean(tuple(range(3, len(shape), 2)))


# ------------------------------------------------------------------------------------------------
# 1. The containers, by value
# ------------------------------------------------------------------------------------------------

def test_residual_adds_its_shortcut():
    torch.manual_seed(0)
    body, projection = nn.Conv2d(3, 3, 1).double(), nn.Conv2d(3, 3, 1).double()
    x = torch.randn(2, 3, 4, 5, generator=gen(1), dtype=F64)
    torch.testing.assert_close(Residual(body)(x), body(x) + x)
    torch.testing.assert_close(Residual(body, projection)(x), body(x) + projection(x))
    built = shiftzoo.build_shift({"type": "residual", "body": {"type": "conv2d", "in_channels": 3, "out_channels": 3,
                                                               "kernel_size": 1}}).double()
    torch.testing.assert_close(built(x), built.body(x) + x)


def test_concat_keeps_the_order_and_the_dim():
    torch.manual_seed(0)
    first, second = nn.Conv2d(3, 2, 1).double(), nn.Conv2d(3, 5, 1).double()
    x = torch.randn(2, 3, 4, 5, generator=gen(2), dtype=F64)
    out = Concat([first, second])(x)
    assert out.shape == (2, 7, 4, 5)
    torch.testing.assert_close(out[:, :2], first(x))  # the children's outputs in their order, along C
    torch.testing.assert_close(out[:, 2:], second(x))
    wide, narrow = nn.Conv2d(3, 4, 1).double(), nn.Conv2d(3, 4, 1).double()
    for dim in (2, 3, -1):
        out = Concat([wide, narrow], dim=dim)(x)
        a, b = wide(x), narrow(x)
        assert out.shape[dim] == 2 * x.shape[dim]
        n = x.shape[dim]
        torch.testing.assert_close(out.narrow(dim, 0, n), a)
        torch.testing.assert_close(out.narrow(dim, n, n), b)
    built = shiftzoo.build_shift({"type": "concat", "dim": 2, "layers": [
        "relu", {"type": "conv2d", "in_channels": 3, "out_channels": 3, "kernel_size": 1}, "identity"]}).double()
    torch.testing.assert_close(built(x), torch.cat([x.relu(), built.layers[1](x), x], 2))


# ------------------------------------------------------------------------------------------------
# 2. Every block's forward, written by hand from its own submodules (test_paper_fidelity.py covers
#    CSC in ShiftResNet's order, TSM, ShiftViT with batch/group norm and AS-MLP with group norm
#    against the authors' code; here: the other orders, norms, paddings and the FE/S2 blocks)
# ------------------------------------------------------------------------------------------------

def norm_by_hand(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A block's norm from its own parameters (BatchNorm is called: its statistics depend on the mode)."""
    if isinstance(norm, ChannelLayerNorm):  # LayerNorm over the channels of each position
        return F.layer_norm(x.movedim(1, -1), (x.shape[1],), norm.weight, norm.bias, norm.eps).movedim(-1, 1)
    if isinstance(norm, nn.GroupNorm):
        assert norm.num_groups == 1
        mean = x.mean((1, 2, 3), keepdim=True)
        var = x.var((1, 2, 3), unbiased=False, keepdim=True)
        return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)
    assert isinstance(norm, nn.BatchNorm2d)
    return norm(x)


def mlp_residual_by_hand(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x + fc2(GELU(fc1(norm(x))))`` (dropout 0), the second half of every MLP-family block."""
    fc1, fc2 = block.mlp[0], block.mlp[3]
    return x + fc2(F.gelu(fc1(norm_by_hand(block.norm, x))))


def csc_by_hand(block: CSCBlock, x: torch.Tensor) -> torch.Tensor:
    b = block.body
    branch = b.bn2(b.shrink(b.shift(F.relu(b.bn1(b.expand(x))))))
    if isinstance(block.shortcut, nn.Identity):
        shortcut = x
    else:
        conv, bn = block.shortcut
        shortcut = bn(conv(x))
    if block.residual == "shiftresnet":  # the ReLU in the branch, none after the sum
        return F.relu(branch) + shortcut
    return F.relu(branch + shortcut)  # ResNet's order


@pytest.mark.parametrize("residual", ["shiftresnet", "resnet"])
@pytest.mark.parametrize("in_channels, out_channels, stride, expansion, shift", [
    (9, 9, 1, 2.0, "grouped_shift2d"), (9, 12, 1, 1.0, "grouped_shift2d"), (8, 12, 2, 1.5, "sparse_shift2d"),
    (10, 10, 2, 1.0, {"type": "active_shift2d", "padding": "reflect"})])
def test_csc_block_by_hand(residual, in_channels, out_channels, stride, expansion, shift):
    torch.manual_seed(0)
    block = randomized(CSCBlock(in_channels, out_channels, stride, expansion, shift, residual), 3)
    assert block.body.expand.stride == (1, 1) and block.body.shrink.stride == (stride, stride)
    assert isinstance(block.shortcut, nn.Identity) == (stride == 1 and in_channels == out_channels)
    x = torch.randn(2, in_channels, 7, 6, generator=gen(4), dtype=F64)
    both_modes(block, csc_by_hand, x)


def fe_by_hand(block: FEBlock, x: torch.Tensor) -> torch.Tensor:
    b = block.body[0]
    new = F.relu(b.bn2(b.shrink(b.shift(F.relu(b.bn1(b.expand(x[:, :block.active])))))))
    kept = x[:, block.active:]
    if kept.shape[1] == 0:
        return new
    if block.stride > 1:
        kept = ceil_avg_pool(kept, (block.stride,) * 2)
    return torch.cat([new, kept], 1)  # the new channels first


@pytest.mark.parametrize("in_channels, out_channels, split, stride, active, size", [
    (16, 20, 0.25, 1, 4, (6, 5)), (16, 20, 0.25, 2, 4, (7, 7)), (12, 16, 0.5, 3, 6, (7, 8)), (8, 8, 1.0, 2, 8, (5, 6))])
def test_fe_block_by_hand(in_channels, out_channels, split, stride, active, size):
    torch.manual_seed(0)
    block = randomized(FEBlock(in_channels, out_channels, split, stride, expansion=1.5), 5)
    assert block.active == active and block.body[0].shrink.stride == (stride, stride)
    x = torch.randn(2, in_channels, *size, generator=gen(6), dtype=F64)
    out = block(x)
    assert out.shape == (2, out_channels) + tuple(-(-n // stride) for n in size)
    both_modes(block, fe_by_hand, x)


def tsm_by_hand(block: TemporalShift, x: torch.Tensor) -> torch.Tensor:
    """Per clip: channels [0, fold) read frame t + 1, [fold, 2 fold) frame t - 1, zeros past the clip."""
    t, fold = block.n_segment, block.fold
    clips = x.reshape((-1, t) + tuple(x.shape[1:]))
    out = torch.zeros_like(clips)
    out[:, :-1, :fold] = clips[:, 1:, :fold]
    out[:, 1:, fold:2 * fold] = clips[:, :-1, fold:2 * fold]
    out[:, :, 2 * fold:] = clips[:, :, 2 * fold:]
    return block.module(out.reshape(x.shape))


def test_temporal_shift_by_hand_on_channels_last_frames():
    """(TSM's values against the authors' module: test_paper_fidelity.py; here a channels-last batch,
    and the input gradient, the shift's adjoint.)"""
    torch.manual_seed(0)
    block = randomized(TemporalShift(module=nn.Conv2d(12, 5, 1), n_segment=3, fold_div=4), 7)
    x = torch.randn(6, 12, 4, 5, generator=gen(8), dtype=F64).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    out, want = block(x), tsm_by_hand(block, x)
    torch.testing.assert_close(out, want)
    g = torch.randn(out.shape, generator=gen(9), dtype=F64)
    torch.testing.assert_close(torch.autograd.grad(out, x, g)[0], torch.autograd.grad(want, x, g)[0])


def shiftvit_by_hand(block: ShiftViTBlock, x: torch.Tensor) -> torch.Tensor:
    return mlp_residual_by_hand(block, block.shift(x))  # no residual around the shift itself


def axial_by_hand(block: AxialShiftBlock, x: torch.Tensor) -> torch.Tensor:
    conv1, norm1 = block.conv1[0], block.conv1[1]
    h = F.gelu(norm_by_hand(norm1, conv1(norm_by_hand(block.pre_norm, x))))
    h = F.gelu(block.conv_w[0](block.shift_w(h))) + F.gelu(block.conv_h[0](block.shift_h(h)))
    x = x + block.conv3[1](norm_by_hand(block.conv3[0], h))
    return mlp_residual_by_hand(block, x)


def spatial_by_hand(block: SpatialShiftBlock, x: torch.Tensor) -> torch.Tensor:
    h = F.gelu(block.fc1[0](norm_by_hand(block.pre_norm, x)))
    x = x + block.fc2(block.shift(h))
    return mlp_residual_by_hand(block, x)


MIXERS = [
    (lambda: ShiftViTBlock(16, n_div=4, mlp_ratio=1.5, norm="layer", padding="reflect"), shiftvit_by_hand),
    (lambda: ShiftViTBlock(24, norm="group", padding="periodic"), shiftvit_by_hand),
    (lambda: ShiftViTBlock(13, n_div=4, norm="batch", padding="border"), shiftvit_by_hand),
    (lambda: AxialShiftBlock(10, shift_size=5, dilation=2, norm="layer", padding="periodic"), axial_by_hand),
    (lambda: AxialShiftBlock(9, shift_size=3, norm="batch", padding="symmetric", mlp_ratio=2.5), axial_by_hand),
    (lambda: AxialShiftBlock(8, shift_size=3), axial_by_hand),
    (lambda: SpatialShiftBlock(12), spatial_by_hand),
    (lambda: SpatialShiftBlock(11, norm="batch", padding="border", mlp_ratio=2.0), spatial_by_hand),
    (lambda: SpatialShiftBlock(8, norm="group", padding="reflect"), spatial_by_hand),
]


@pytest.mark.parametrize("make_block, by_hand", MIXERS, ids=[f"{f.__name__}-{i}" for i, (_, f) in enumerate(MIXERS)])
def test_mixer_block_by_hand(make_block, by_hand):
    torch.manual_seed(0)
    block = randomized(make_block(), 10)
    x = torch.randn(2, block.mlp[0].in_channels, 6, 7, generator=gen(11), dtype=F64)
    both_modes(block, by_hand, x)


# ------------------------------------------------------------------------------------------------
# 4. DepthwiseGeometry and emulate_dw against a real depthwise convolution whose kernel is one-hot
#    at its centre: the convolution then samples its (padded) input at the kernel centres, which a
#    shift by 0 followed by the geometry must reproduce exactly, over-padding and padding_mode included
# ------------------------------------------------------------------------------------------------

GEOMETRIES = [  # (dims, kernel, stride, padding, dilation); several pad more than the kernel reaches
    (2, 1, 1, 0, 1), (2, 1, 1, 1, 1), (2, 1, 2, 2, 1), (2, 3, 1, 1, 1), (2, 3, 1, 0, 1), (2, 3, 1, 2, 1),
    (2, 3, 2, 3, 1), (2, 3, 3, 1, 1), (2, 5, 1, 3, 1), (2, 5, 2, 0, 1), (2, 5, 3, 4, 1), (2, 4, 1, 3, 1),
    (2, 2, 2, 1, 1), (2, 3, 1, 3, 2), (2, 3, 2, 1, 2), (2, 5, 1, "same", 1), (2, 4, 1, "same", 1),
    (2, 3, 1, "valid", 2), (2, (3, 5), (1, 2), (2, 1), 1), (2, (1, 3), (3, 1), (1, 3), (1, 2)),
    (1, 3, 1, 2, 1), (1, 5, 2, 3, 1), (1, 4, 3, 2, 1), (3, 3, 1, 2, 1), (3, (1, 3, 5), (1, 2, 1), (1, 2, 3), 1),
]
SIZES = {1: (9,), 2: (7, 9), 3: (5, 6, 7)}


def one_hot_centre_conv(dims, channels, kernel, stride, padding, dilation, padding_mode):
    """A depthwise convolution whose kernel is 1 at the tap the geometry centres on (``e // 2``), 0 elsewhere."""
    conv = CONVS[dims](channels, channels, kernel, stride=stride, padding=padding, dilation=dilation,
                       groups=channels, bias=False, padding_mode=padding_mode).double()
    centre = []
    for k, d in zip(conv.kernel_size, conv.dilation):
        e = d * (k - 1)
        assert (e // 2) % d == 0, "no kernel tap at the centre"
        centre.append(e // 2 // d)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[(slice(None), 0) + tuple(centre)] = 1.0
    return conv


def geometry_cases():
    for case in GEOMETRIES:
        for mode in ("zeros", "reflect", "replicate", "circular"):
            if case[3] == "same" and case[2] != 1:
                continue
            yield case + (mode,)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.filterwarnings("ignore:emulate_dw. a shift has no dilation:UserWarning")
@pytest.mark.parametrize("dims, kernel, stride, padding, dilation, padding_mode", list(geometry_cases()))
def test_geometry_and_emulate_dw_equal_a_one_hot_centre_conv(dims, kernel, stride, padding, dilation, padding_mode):
    C = 3
    x = torch.randn((2, C) + SIZES[dims], generator=gen(20), dtype=F64)
    conv = one_hot_centre_conv(dims, C, kernel, 1 if isinstance(padding, str) else stride, padding, dilation,
                               padding_mode)
    geometry = DepthwiseGeometry.from_conv(conv)
    unit = geometry.stride == (1,) * dims
    # stride 1: the geometry is the conv itself; stride s: the seed's average of s-sized windows of it
    stride1 = one_hot_centre_conv(dims, C, kernel, 1, padding, dilation, padding_mode)
    want = stride1(x) if unit else ceil_avg_pool(stride1(x), geometry.stride)
    assert want.shape == conv(x).shape
    torch.testing.assert_close(geometry(x), want, rtol=0, atol=1e-15)
    # torchshifts' emulate_dw: shift (all shifts 0, the padding from padding_mode), then the same geometry
    spec = {"kernel_size": kernel, "stride": conv.stride, "padding": padding, "padding_mode": padding_mode,
            "dilation": dilation}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seed_layer = SEED_SHIFTS[dims](C, emulate_dw=spec).double()
    with torch.no_grad():
        seed_layer.weight.zero_()
    torch.testing.assert_close(seed_layer(x)[0], want, rtol=0, atol=1e-15)
    # from_depthwise: "sample" takes the conv's own samples; "pool" is the shift followed by the geometry
    for downsample in ("sample", "pool"):
        module = FAMILIES["sparse"][dims].from_depthwise(conv, downsample=downsample)
        with torch.no_grad():
            (module if isinstance(module, shiftzoo.ShiftLayer) else module.shift).weight.zero_()
        expected = conv(x) if downsample == "sample" else want
        torch.testing.assert_close(module(x), expected, rtol=0, atol=1e-15)


# ------------------------------------------------------------------------------------------------
# 5. Quantized input, every padding: the integer representation equals the float path's on the
#    dequantized input, quantized again with the input's parameters
# ------------------------------------------------------------------------------------------------

def whole_pixel_layer(kind: str, dims: int, padding: str, **sampling) -> shiftzoo.ShiftLayer:
    torch.manual_seed(dims)
    channels = 9 if dims < 3 else 11
    if kind == "grouped":
        kernel = {1: 5, 2: 3, 3: (1, 3, 3)}[dims]
        return FAMILIES["grouped"][dims](channels, kernel_size=kernel, dilation=2, padding=padding, **sampling)
    # shifts of up to 7 pixels: past the 4..6-pixel axes, where the paddings differ most
    shifts = (torch.rand(channels, dims, generator=gen(30 + dims)) * 15 - 7.5)
    if kind == "fixed":
        return FixedShift(torch.round(shifts), padding, **sampling)
    layer = FAMILIES["sparse"][dims](channels, padding=padding, **sampling)
    with torch.no_grad():
        layer.weight.copy_(shifts)
    return layer


def quantized_inputs(layer: shiftzoo.ShiftLayer, layout: str):
    size = {1: (6,), 2: (5, 6), 3: (4, 5, 6)}[layer.dims]
    x = torch.randn((2, layer.channels) + size, generator=gen(40 + layer.dims)) * 2
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last if layer.dims == 2 else torch.channels_last_3d)
    C = layer.channels
    scales = torch.rand(C, generator=gen(41), dtype=F64) * 0.1 + 0.02
    zero_points = torch.randint(-20, 20, (C,), generator=gen(42))
    return [torch.quantize_per_tensor(x, 0.05, 70, torch.quint8),
            torch.quantize_per_channel(x, scales, zero_points, 1, torch.qint8)]


def requantized_like(out: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    if q.qscheme() == torch.per_tensor_affine:
        return torch.quantize_per_tensor(out, q.q_scale(), q.q_zero_point(), q.dtype)
    return torch.quantize_per_channel(out, q.q_per_channel_scales(), q.q_per_channel_zero_points(), 1, q.dtype)


def quantized_cases():
    for dims in (1, 2, 3):
        for kind in ("grouped", "fixed", "sparse"):
            for layout in (("contiguous",) if dims == 1 else ("contiguous", "channels_last")):
                yield dims, kind, layout


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's quantized tensors are deprecated
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dims, kind, layout", list(quantized_cases()))
def test_quantized_input_takes_the_padding(dims, kind, layout, padding):
    layer = whole_pixel_layer(kind, dims, padding)
    for q in quantized_inputs(layer, layout):
        out = layer(q)
        assert out.is_quantized and out.qscheme() == q.qscheme() and out.dtype == q.dtype
        floating = layer(q.dequantize())
        assert torch.equal(out.int_repr(), requantized_like(floating, q).int_repr())
    # the case is one where the padding shows
    assert torch.equal(floating, whole_pixel_layer(kind, dims, "zeros")(q.dequantize())) == (padding == "zeros")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("padding", ["zeros", "reflect", "periodic"])
def test_quantized_input_with_stride_and_crop(padding):
    layer = whole_pixel_layer("sparse", 2, padding, stride=2, crop=((1, -2), (-1, 0)))
    for layout in ("contiguous", "channels_last"):
        for q in quantized_inputs(layer, layout):
            want = requantized_like(layer(q.dequantize()), q)
            assert torch.equal(layer(q).int_repr(), want.int_repr())


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_compat_quantized_shift_takes_the_padding(dims, padding):
    torch.manual_seed(0)
    seed_layer = SEED_SHIFTS[dims](11, padding=padding, init_shift=7)
    converted = QuantizedShift.from_float(seed_layer)
    assert converted.shift.padding == padding
    size = {1: (6,), 2: (5, 6), 3: (4, 5, 6)}[dims]
    x = torch.randn((2, 11) + size, generator=gen(43)) * 2
    for q in (torch.quantize_per_tensor(x, 0.05, 70, torch.quint8),
              torch.quantize_per_channel(x, torch.rand(11, dtype=F64) * 0.1 + 0.02, torch.randint(-9, 9, (11,)), 1,
                                         torch.qint8)):
        out, loss = converted(q)
        want = requantized_like(seed_layer(q.dequantize())[0].detach(), q)
        assert loss is None and torch.equal(out.int_repr(), want.int_repr())


# ------------------------------------------------------------------------------------------------
# 6. bfloat16 ties: a linear shift by a half pixel averages two neighbours; where they are adjacent
#    bfloat16 values their average lies exactly halfway between them, and must round half to even
#    (as torch's float32 -> bfloat16 conversion), in every layout. Random data never meets a tie.
# ------------------------------------------------------------------------------------------------

def bfloat16_tie_rows(channels: int, width: int, seed: int) -> torch.Tensor:
    """(channels, width) bfloat16: per channel a random value ``a`` (any sign and exponent) and its
    bfloat16 neighbour ``b`` alternate along the row, so the average of any two neighbours is a tie;
    half the channels start their run on an even significand, half on an odd one."""
    g = gen(seed)
    a = (torch.randn(channels, generator=g) * 4).exp2() * torch.randn(channels, generator=g).sign()
    a = a.to(torch.bfloat16)
    bits = a.view(torch.int16)
    bits = torch.where(torch.arange(channels) % 2 == 0, bits & ~1, bits | 1)  # even / odd last significand bit
    a = bits.view(torch.bfloat16)
    b = (a.view(torch.int16) + 1).view(torch.bfloat16)  # the next bfloat16 away from zero
    row = torch.stack([a, b], 1).repeat(1, (width + 1) // 2)[:, :width]
    mid = (a.float() + b.float()) / 2
    assert (mid.to(torch.bfloat16) != a).any() and (mid.to(torch.bfloat16) != b).any()  # both directions occur
    return row


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("axes", ["w", "hw"])
def test_bfloat16_ties_round_half_to_even(layout, axes):
    C, H, W = 37, 5, 70  # channel counts past a vector width and a tail; rows past 64 pixels
    rows = bfloat16_tie_rows(C, W, 60)
    x = rows[None, :, None, :].expand(2, C, H, W).contiguous()
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    # every shift a half pixel (W, and H too for "hw", where each row repeats: still the same tie)
    half = torch.tensor([0.5, -0.5, 1.5, -2.5, 0.5], dtype=torch.float32)
    s = torch.zeros(C, 2)
    s[:, 1] = half[torch.arange(C) % 5]
    if axes == "hw":
        s[:, 0] = half[(torch.arange(C) + 2) % 5]
    s[30:, 1] = 0.5  # a run of equal shifts
    want = shift(x.float(), s, "zeros", "linear").to(torch.bfloat16)
    out = shift(x, s, "zeros", "linear")
    assert out.dtype == torch.bfloat16
    interior = (..., slice(3, -3), slice(3, -3))
    exact = shift(x.float(), s, "zeros", "linear")
    assert (exact[interior] != want[interior].float()).all()  # ties everywhere
    bits = exact.view(torch.int32).to(torch.int64)
    half_up = ((bits + 0x8000) >> 16).to(torch.int16)  # rounding half away from zero, on the bits
    assert (half_up != want.view(torch.int16)).float().mean() > 0.3  # which this test tells apart
    assert torch.equal(out.view(torch.int16), want.view(torch.int16))
    # the input gradient sums the same two products: a tie again
    g = x.clone()
    xg = x.detach().requires_grad_()
    (gx,) = torch.autograd.grad(shift(xg, s, "zeros", "linear"), xg, g)
    want_gx = torch.autograd.grad(shift(xg.float(), s, "zeros", "linear"), xg, g.float())[0]
    assert torch.equal(gx.view(torch.int16), want_gx.view(torch.int16))


# ------------------------------------------------------------------------------------------------
# 7. Cubic in float16/bfloat16 on strided and transposed layouts; determinism; opcheck of the
#    runtime-plugin backward; inductor's backward; a torchshifts checkpoint
# ------------------------------------------------------------------------------------------------

LOW_TOL = {torch.float16: (2e-3, 2e-3), torch.bfloat16: (2e-2, 1e-2)}


def laid_out(base: torch.Tensor, layout: str) -> torch.Tensor:
    """``base``'s values in another memory layout: a strided view (every other channel and last-axis
    element of a larger tensor), or transposed (the last two spatial axes swapped in memory)."""
    if layout == "strided":
        shape = base.shape
        big = torch.zeros((shape[0], 2 * shape[1]) + tuple(shape[2:-1]) + (2 * shape[-1],), dtype=base.dtype)
        view = big[:, ::2, ..., 1::2]
        view.copy_(base)
        return view
    if base.dim() == 3:  # (N, C, L): the batch innermost
        return base.permute(2, 1, 0).contiguous().permute(2, 1, 0)
    return base.transpose(-1, -2).contiguous().transpose(-1, -2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("layout", ["strided", "transposed"])
@pytest.mark.parametrize("shape", [(2, 5, 13), (2, 5, 6, 9), (1, 4, 3, 5, 6)], ids=str)
def test_low_precision_cubic_on_strided_layouts(dtype, layout, shape):
    dims = len(shape) - 2
    x = laid_out(torch.randn(shape, generator=gen(70), dtype=F64).to(dtype), layout)
    g = laid_out(torch.randn(shape, generator=gen(71), dtype=F64).to(dtype), layout)
    assert not x.is_contiguous()
    s = torch.rand(shape[1], dims, generator=gen(72), dtype=F64) * 6 - 3
    s[0] = 7.25  # past the axes
    for padding in ("zeros", "reflect", "periodic"):
        xs, ss = x.detach().requires_grad_(), s.clone().requires_grad_()
        out = shift(xs, ss, padding, "cubic")
        gx, gs = torch.autograd.grad(out, (xs, ss), g)
        xr, sr = x.double().requires_grad_(), s.clone().requires_grad_()
        ref = reference.shift(xr, sr, padding, "cubic")
        ref_gx, ref_gs = torch.autograd.grad(ref, (xr, sr), g.double())
        atol, rtol = LOW_TOL[dtype]
        assert out.dtype == dtype and gx.dtype == dtype
        torch.testing.assert_close(out.double(), ref, atol=atol, rtol=rtol)
        torch.testing.assert_close(gx.double(), ref_gx, atol=atol, rtol=rtol)
        torch.testing.assert_close(gs, ref_gs, atol=atol * (1 + ref_gs.abs().max().item()), rtol=rtol)


def run_twice_per_thread_count(fn):
    """``fn()`` twice at 1, 2 and 4 threads; every result must be bit-identical to the first."""
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 1, 2, 2, 4, 4):
            torch.set_num_threads(n)
            results.append([t.detach().clone() for t in fn()])
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.dtype == b.dtype and a.stride() == b.stride()
            assert torch.equal(a.contiguous().view(-1).view(torch.uint8), b.contiguous().view(-1).view(torch.uint8))


def shift_and_gradients(x, s, g, **kwargs):
    x, s = x.detach().requires_grad_(), s.detach().requires_grad_()
    out = shift(x, s, **kwargs)
    return (out, *torch.autograd.grad(out, (x, s), g))


@pytest.mark.parametrize("case", ["3d-ssl", "3d-linear-cl", "cubic", "bf16-linear", "bf16-cubic-cl", "3d-bf16-strided"])
def test_deterministic_across_runs_and_thread_counts(case):
    shape = (2, 8, 6, 17, 19) if case.startswith("3d") else (3, 16, 23, 29)
    dtype = torch.bfloat16 if "bf16" in case else torch.float32
    x = torch.randn(shape, generator=gen(80)).to(dtype)
    g = torch.randn(shape if "strided" not in case else shape[:2] + (2, 8, 9), generator=gen(81)).to(dtype)
    if case.endswith("-cl"):
        fmt = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
        x, g = x.contiguous(memory_format=fmt), g.contiguous(memory_format=fmt)
    s = torch.rand(shape[1], x.dim() - 2, generator=gen(82)) * 8 - 4
    kwargs = {"3d-ssl": dict(padding="reflect", interp="nearest", grad_interp="linear"),
              "3d-linear-cl": dict(padding="symmetric", interp="linear"),
              "cubic": dict(padding="zeros", interp="cubic"),
              "bf16-linear": dict(padding="border", interp="linear"),
              "bf16-cubic-cl": dict(padding="periodic", interp="cubic"),
              "3d-bf16-strided": dict(padding="zeros", interp="linear", stride=2, crop=1)}[case]
    run_twice_per_thread_count(lambda: shift_and_gradients(x, s, g, **kwargs))


def test_active_shift_layer_is_deterministic_across_thread_counts():
    torch.manual_seed(0)
    layer = shiftzoo.ActiveShift2d(16, init_shift=3.0)
    x = torch.randn(3, 16, 23, 29, generator=gen(83)).contiguous(memory_format=torch.channels_last)

    def step():
        layer.zero_grad()
        xs = x.detach().requires_grad_()
        out = layer(xs)
        out.square().sum().backward()
        return out, xs.grad, layer.weight.grad

    run_twice_per_thread_count(step)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck_shift_tabled_backward(layout):
    """The runtime-plugin path's backward op (opcheck of shift_tabled itself: test_plugins.py); in
    channels-last the fake kernel must give the gradient the real one's strides."""
    from shiftzoo import _tabled, plugin_registry
    from shiftzoo._sampling import Sampling

    x = torch.randn(2, 3, 6, 5, generator=gen(90))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    s = torch.randn(3, 2, generator=gen(91)) * 2
    nearest, linear = plugin_registry.get_interp("nearest"), plugin_registry.get_interp("linear")
    samplings = (("zeros", Sampling.of(2)), ("reflect", Sampling.of(2, stride=2, crop=((1, 0), (0, -1)))))
    for padding, sampling in samplings:
        pad = plugin_registry.get_padding(padding)
        plan = _tabled.plan(x.shape, s, pad, nearest, sampling)  # SSL: nearest forward, linear gradient
        grad_plan = _tabled.plan(x.shape, s, pad, linear, sampling)
        plans = (plan.offsets, plan.tables, plan.weights, grad_plan.offsets, grad_plan.tables, grad_plan.weights)
        out = torch.ops.shiftzoo.shift_tabled(x, *plans, padding, *sampling.op_args())
        g = torch.randn(out.shape, generator=gen(92)).contiguous(memory_format=torch.contiguous_format
                                                                 if layout == "contiguous" else torch.channels_last)
        for input_grad, weights_grad in ((True, True), (True, False), (False, True)):
            args = (g, x if weights_grad else None, *plans, padding, *sampling.op_args(), list(x.shape),
                    input_grad, weights_grad)
            checks = {} if layout == "contiguous" else {"test_utils": ("test_schema", "test_faketensor")}
            torch.library.opcheck(torch.ops.shiftzoo.shift_tabled_backward.default, args, **checks)


@pytest.mark.parametrize("stride", [1, 2])
def test_opcheck_shift_backward_channels_last(stride):
    """The compiled backward op in channels-last (test_shift_integration.py opchecks it on (N, C, L))."""
    x = torch.randn(2, 3, 6, 5, generator=gen(96)).contiguous(memory_format=torch.channels_last)
    s = torch.randn(3, 2, generator=gen(97)) * 2
    size = (6, 5) if stride == 1 else (3, 3)
    g = torch.randn(2, 3, *size, generator=gen(98)).contiguous(memory_format=torch.channels_last)
    for input_grad, shifts_grad in ((True, True), (True, False), (False, True)):
        torch.library.opcheck(torch.ops.shiftzoo.shift_backward.default,
                              (g, x if shifts_grad else None, s, "border", "nearest", "linear", [stride] * 2,
                               [0, 0], [0, 0], list(x.shape), input_grad, shifts_grad),
                              test_utils=("test_schema", "test_faketensor"))


def test_inductor_backward_equals_eager():
    """Inductor compiles the forward and the backward around the shift ops (channels-last: the
    generated code trusts the fake kernels' strides)."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 1), shiftzoo.SparseShift2d(8, init_shift=2.0), nn.ReLU(),
                          nn.Conv2d(8, 4, 1))
    x = torch.randn(2, 3, 9, 10, generator=gen(93)).contiguous(memory_format=torch.channels_last)

    def loss_and_grads(fn):
        xs = x.clone().requires_grad_()
        loss = fn(xs).square().mean()
        return (loss, *torch.autograd.grad(loss, (xs, *model.parameters())))

    eager = loss_and_grads(model)
    compiled = loss_and_grads(torch.compile(model, fullgraph=True))  # inductor, forward and backward
    for a, b in zip(compiled, eager):
        torch.testing.assert_close(a, b)
    assert eager[4].shape == (8, 2) and eager[4].abs().sum() > 0  # the shift gradient is there, and not 0


@pytest.mark.parametrize("kwargs", [{}, {"active_flag": True, "padding": "reflect"},
                                    {"emulate_dw": {"kernel_size": 3, "stride": 2, "padding": 2,
                                                    "padding_mode": "circular"}, "init_thumb_rule": 2}])
def test_torchshifts_checkpoint_round_trip(kwargs):
    torch.manual_seed(0)
    trained = Shift2d(6, **kwargs)
    with torch.no_grad():
        trained.weight.add_(torch.randn(6, 2, generator=gen(94)))  # a trained state, not an initialisation
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)
    fresh = Shift2d(6, **kwargs)
    x = torch.randn(2, 6, 9, 8, generator=gen(95))
    assert not torch.equal(fresh(x)[0], trained(x)[0])
    fresh.load_state_dict(torch.load(buffer))
    out, loss = fresh(x)
    want, want_loss = trained(x)
    assert torch.equal(out, want) and torch.equal(loss, want_loss)
    assert torch.equal(fresh.weights, trained.weights)


# ------------------------------------------------------------------------------------------------
# 8. Frozen shifts skip the shift gradient's work (a shift tensor that never required grad has no
#    .grad whatever the op does: what can fail is the work the backward is asked for)
# ------------------------------------------------------------------------------------------------

class BackwardSpy(TorchDispatchMode):
    """Records ``(input_grad, shifts_grad)`` of every shiftzoo.shift_backward the engine calls."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.shiftzoo.shift_backward.default:
            self.calls.append(tuple(args[-2:]))
        return func(*args, **(kwargs or {}))


def test_frozen_shifts_skip_the_shift_gradient():
    for frozen, layer in ((True, shiftzoo.GroupedShift2d(9)), (True, FixedShift(torch.ones(9, 2))),
                          (False, shiftzoo.SparseShift2d(9)), (False, shiftzoo.ActiveShift2d(9))):
        model = nn.Sequential(nn.Conv2d(9, 9, 1), layer)
        model.requires_grad_(True)  # unfreezing the model must not make a fixed pattern trainable
        out = model(torch.randn(1, 9, 5, 5, generator=gen(100)))
        with BackwardSpy() as spy:
            out.sum().backward()
        assert spy.calls == [(True, not frozen)], (type(layer).__name__, spy.calls)
        assert (layer.weight.grad is None) == frozen and model[0].weight.grad is not None
    # the functional form: only a shift tensor that requires grad gets (and costs) a gradient
    x = torch.randn(1, 2, 5, 5, generator=gen(101), requires_grad=True)
    for learn in (False, True):
        s = torch.tensor([[1.0, -1.0], [0.0, 2.0]], requires_grad=learn)
        out = shift(x, s, "zeros", "nearest", "linear")
        with BackwardSpy() as spy:
            out.sum().backward()
        assert spy.calls == [(True, learn)] and (s.grad is not None) == learn
