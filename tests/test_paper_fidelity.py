"""Our layers and blocks against the papers' own code, as a user porting a published model meets it.

Each ``*_port`` below is written here from the published behaviour of the authors' implementation
(ShiftNet's CUDA kernel, TSM's ``TemporalShift``, SPACH's ShiftViT block, AS-MLP's axial shift, S2-MLP's
Algorithm 1), out of place and with the authors' module names, so that (1) the shifts move the same
channels the same way, and (2) a checkpoint saved from the authors' module loads into ours through
``shiftzoo.map_authors_state_dict`` and gives the same outputs. The channel-to-displacement tables are
spelled out next to each test: they are the published behaviour, not something derived from our code.
"""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import shiftzoo
from helpers import F64, gen
from shiftzoo.blocks import AxialShiftBlock, CSCBlock, ShiftViTBlock, SpatialShiftBlock, TemporalShift


def randomized(module: nn.Module, seed: int) -> nn.Module:
    """Every parameter and BatchNorm statistic drawn at random (a checkpoint, not an initialisation)."""
    g = gen(seed)
    with torch.no_grad():
        for name, tensor in itertools.chain(module.named_parameters(), module.named_buffers()):
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=g, dtype=tensor.dtype) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=g, dtype=tensor.dtype) * 0.5)
    return module


def assert_ported(theirs: nn.Module, ours: nn.Module, x: torch.Tensor) -> None:
    """Load the authors' state dict into ours (strict) and compare outputs in eval and train mode."""
    ours.load_state_dict(shiftzoo.map_authors_state_dict(ours, theirs.state_dict()))
    for training in (False, True):
        theirs.train(training), ours.train(training)
        torch.testing.assert_close(ours(x), theirs(x))


# ------------------------------------------------------------------------------------------------
# ShiftNet (Wu et al. 2018): the GenericShift CUDA kernel of ShiftResNet
# ------------------------------------------------------------------------------------------------

def shiftnet_reads(channels: int, kernel_size: tuple, dilation: int) -> list:
    """Per channel, the offset each axis reads (``out[x] = in[x + r]``), as the authors' kernel
    computes it for a square 2D kernel and here for any kernel in the same raster order (last axis
    fastest): the first ``T * (C // T)`` channels take the ``T = prod(kernel_size)`` taps in turn,
    axis ``j``'s index being ``(c // prod(kernel_size[j+1:])) % kernel_size[j]``, its read
    ``dilation * (index - k // 2)``; the leftover channels read ``0``."""
    taps = math.prod(kernel_size)
    moving = taps * (channels // taps)
    reads = []
    for c in range(channels):
        read = []
        for j, k in enumerate(kernel_size):
            index = (c // math.prod(kernel_size[j + 1:])) % k
            read.append(dilation * (index - k // 2) if c < moving else 0)
        reads.append(tuple(read))
    return reads


def shiftnet_kernel_port(x: torch.Tensor, kernel_size: tuple, dilation: int, direction: int = 1) -> torch.Tensor:
    """The kernel itself, pixel by pixel: ``dst[c, p] = src[c, p + direction * r_c]``, zero outside
    the image (``direction=-1`` is its backward pass)."""
    spatial = x.shape[2:]
    out = torch.zeros_like(x)
    for c, read in enumerate(shiftnet_reads(x.shape[1], kernel_size, dilation)):
        for p in itertools.product(*(range(n) for n in spatial)):
            q = tuple(pi + direction * ri for pi, ri in zip(p, read))
            if all(0 <= qi < n for qi, n in zip(q, spatial)):
                out[(slice(None), c) + p] = x[(slice(None), c) + q]
    return out


# The 3x3 kernel's channels, as read by ShiftNet's kernel: channel -> (dh, dw), out[h, w] = in[h+dh, w+dw].
SHIFTNET_3X3_READS = {0: (-1, -1), 1: (-1, 0), 2: (-1, 1),
                      3: (0, -1), 4: (0, 0), 5: (0, 1),
                      6: (1, -1), 7: (1, 0), 8: (1, 1)}


def test_shiftnet_table():
    assert {c: r for c, r in enumerate(shiftnet_reads(9, (3, 3), 1))} == SHIFTNET_3X3_READS
    layer = shiftzoo.GroupedShift2d(20)  # 2 rounds of the 9 taps, 2 leftover channels
    expected = [[-dh, -dw] for _ in range(2) for dh, dw in SHIFTNET_3X3_READS.values()] + [[0, 0]] * 2
    assert layer.weight.long().tolist() == expected  # our shift is minus what a channel reads
    # channel 0's content moves down-right by one pixel, as in ShiftNet
    x = torch.zeros(1, 9, 5, 5)
    x[0, :, 2, 2] = 1.0
    assert layer.channels == 20 and shiftzoo.GroupedShift2d(9)(x)[0, 0, 3, 3] == 1.0


# "blocks": channels [2g, 2g+2) of an 18-channel 3x3 layer shift by tap g (they read minus it).
BLOCKS_3X3_SHIFTS = {0: (-1, -1), 1: (-1, 0), 2: (-1, 1), 3: (0, -1), 4: (0, 0), 5: (0, 1),
                     6: (1, -1), 7: (1, 0), 8: (1, 1)}


def test_blocks_table():
    layer = shiftzoo.GroupedShift2d(18, pattern="blocks")
    assert layer.weight.long().tolist() == [list(BLOCKS_3X3_SHIFTS[c // 2]) for c in range(18)]


@pytest.mark.parametrize("channels, kernel, dilation", [(9, 3, 1), (20, 3, 1), (29, 3, 2), (27, 5, 1), (50, 5, 2),
                                                        (12, 2, 1), (17, 4, 3)])
def test_grouped_shift_matches_shiftnet_kernel(channels, kernel, dilation):
    layer = shiftzoo.GroupedShift2d(channels, kernel_size=kernel, dilation=dilation)
    x = torch.randn(2, channels, 6, 7, generator=gen(11), dtype=F64, requires_grad=True)
    out = layer(x)
    torch.testing.assert_close(out, shiftnet_kernel_port(x.detach(), (kernel, kernel), dilation))
    cl = layer(x.detach().to(memory_format=torch.channels_last))
    torch.testing.assert_close(cl, out.detach())
    g = torch.randn(out.shape, generator=gen(12), dtype=F64)
    (grad,) = torch.autograd.grad(out, x, g)  # the kernel's backward: direction -1
    torch.testing.assert_close(grad, shiftnet_kernel_port(g, (kernel, kernel), dilation, direction=-1))


@pytest.mark.parametrize("layer_cls, kernel, shape", [
    (shiftzoo.GroupedShift1d, (3,), (7,)), (shiftzoo.GroupedShift1d, (5,), (9,)),
    (shiftzoo.GroupedShift3d, (3, 3, 3), (3, 4, 5)), (shiftzoo.GroupedShift3d, (1, 3, 5), (2, 4, 6))])
def test_grouped_shift_generalises_shiftnet_to_1d_and_3d(layer_cls, kernel, shape):
    channels = 2 * math.prod(kernel) + 3
    layer = layer_cls(channels, kernel_size=kernel)
    x = torch.randn(2, channels, *shape, generator=gen(13), dtype=F64)
    torch.testing.assert_close(layer(x), shiftnet_kernel_port(x, kernel, 1))


class ShiftConvPort(nn.Module):
    """ShiftResNet's block (the authors' ``ShiftConv``), with their module names."""

    def __init__(self, in_planes, out_planes, stride=1, expansion=1):
        super().__init__()
        mid_planes = int(out_planes * expansion)
        self.conv1 = nn.Conv2d(in_planes, mid_planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_planes)
        self.conv2 = nn.Conv2d(mid_planes, out_planes, kernel_size=1, bias=False, stride=stride)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_planes))

    def forward(self, x):
        shortcut = self.shortcut(x)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(shiftnet_kernel_port(x, (3, 3), 1))))
        return x + shortcut


class TinyResNet(nn.Module):
    """The authors' ResNet skeleton (conv1, bn1, layer1, linear) around any block."""

    def __init__(self, block):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = nn.Sequential(block(16, 16, 1), block(16, 24, 2))
        self.linear = nn.Linear(24, 5)

    def forward(self, x):
        out = self.layer1(F.relu(self.bn1(self.conv1(x))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


@pytest.mark.parametrize("in_planes, out_planes, stride, expansion", [(16, 16, 1, 1), (16, 32, 2, 1), (8, 8, 1, 3),
                                                                     (8, 12, 2, 2.5)])
def test_shiftresnet_block_loads_the_authors_checkpoint(in_planes, out_planes, stride, expansion):
    theirs = randomized(ShiftConvPort(in_planes, out_planes, stride, expansion), 14).double()
    ours = CSCBlock(in_planes, out_planes, stride, expansion).double()
    assert_ported(theirs, ours, torch.randn(2, in_planes, 6, 7, generator=gen(15), dtype=F64))


def test_shiftresnet_network_loads_the_authors_checkpoint():
    theirs = randomized(TinyResNet(ShiftConvPort), 16).double()
    ours = TinyResNet(lambda i, o, s: CSCBlock(i, o, s)).double()
    mapped = shiftzoo.map_authors_state_dict(ours, theirs.state_dict())
    assert "layer1.1.body.expand.weight" in mapped and "layer1.1.conv1.weight" not in mapped
    assert "conv1.weight" in mapped and "linear.bias" in mapped  # outside the blocks: unchanged
    assert_ported(theirs, ours, torch.randn(2, 3, 8, 8, generator=gen(17), dtype=F64))


# ------------------------------------------------------------------------------------------------
# TSM (Lin et al. 2019): ops/temporal_shift.py's TemporalShift(net, n_segment, n_div)
# ------------------------------------------------------------------------------------------------

class TemporalShiftPort(nn.Module):
    """TSM's module: ``fold = C // n_div`` channels read the next frame, the next ``fold`` the
    previous one (zeros at the clip ends), then ``net``."""

    def __init__(self, net, n_segment=3, n_div=8):
        super().__init__()
        self.net, self.n_segment, self.fold_div = net, n_segment, n_div

    def forward(self, x):
        nt, c, h, w = x.shape
        x = x.view(nt // self.n_segment, self.n_segment, c, h, w)
        fold = c // self.fold_div
        out = torch.zeros_like(x)
        out[:, :-1, :fold] = x[:, 1:, :fold]
        out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]
        out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
        return self.net(out.view(nt, c, h, w))


def online_tsm_port(frames, fold):
    """Online TSM's stream: the first ``fold`` channels of each frame come from the previous frame."""
    state = torch.zeros_like(frames[:, 0, :fold])
    outs = []
    for t in range(frames.shape[1]):
        outs.append(torch.cat([state, frames[:, t, fold:]], 1))
        state = frames[:, t, :fold]
    return torch.stack(outs, 1)


# 16 channels, fold_div 8: channel block -> the frame it reads (t + offset)
TSM_16_READS = {range(0, 2): +1, range(2, 4): -1, range(4, 16): 0}
ONLINE_TSM_16_READS = {range(0, 2): -1, range(2, 16): 0}


def test_tsm_tables():
    for bidirectional, table in [(True, TSM_16_READS), (False, ONLINE_TSM_16_READS)]:
        time_shifts = TemporalShift(16, fold_div=8, bidirectional=bidirectional).shift.weight[:, 0]
        assert [-int(s) for s in time_shifts] == [read for block, read in table.items() for _ in block]


@pytest.mark.parametrize("channels, n_segment, fold_div", [(16, 4, 8), (19, 3, 4), (10, 5, 3)])
def test_tsm_matches_and_loads_the_authors_module(channels, n_segment, fold_div):
    theirs = randomized(TemporalShiftPort(nn.Conv2d(channels, 6, 1), n_segment, fold_div), 18).double()
    ours = TemporalShift(module=nn.Conv2d(channels, 6, 1), n_segment=n_segment, fold_div=fold_div).double()
    x = torch.randn(2 * n_segment, channels, 3, 4, generator=gen(19), dtype=F64)
    assert_ported(theirs, ours, x)
    frames = x.view(2, n_segment, channels, 3, 4)
    online = TemporalShift(channels, n_segment=n_segment, fold_div=fold_div, bidirectional=False)
    torch.testing.assert_close(online(x).view_as(frames), online_tsm_port(frames, channels // fold_div))


class ResidualBlock(nn.Module):
    """A residual block with TSM on its first conv, as TSM's ``place="blockres"`` makes it."""

    def __init__(self, conv1):
        super().__init__()
        self.conv1, self.bn1, self.conv2 = conv1, nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.bn1(self.conv1(x))))


def test_tsm_inside_a_network_loads_the_authors_checkpoint():
    theirs = randomized(nn.Sequential(ResidualBlock(TemporalShiftPort(nn.Conv2d(8, 8, 3, padding=1), 4, 4))), 20)
    ours = nn.Sequential(ResidualBlock(TemporalShift(module=nn.Conv2d(8, 8, 3, padding=1), n_segment=4, fold_div=4)))
    assert "0.conv1.net.weight" in theirs.state_dict()
    assert_ported(theirs.double(), ours.double(), torch.randn(8, 8, 5, 5, generator=gen(21), dtype=F64))


# ------------------------------------------------------------------------------------------------
# ShiftViT (Wang et al. 2022): SPACH's ShiftViTBlock
# ------------------------------------------------------------------------------------------------

class ShiftViTBlockPort(nn.Module):
    """SPACH's block: ``shift_feat`` (4 groups of ``C // n_div`` channels move left, right, up,
    down), then ``x + mlp(norm2(x))``; ``mlp`` is ``fc1`` (1x1) -> GELU -> drop -> ``fc2`` -> drop."""

    def __init__(self, dim, n_div=12, mlp_ratio=4.0, norm_layer=nn.BatchNorm2d):
        super().__init__()
        self.n_div = n_div
        self.norm2 = norm_layer(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Module()
        self.mlp.fc1, self.mlp.fc2 = nn.Conv2d(dim, hidden, 1), nn.Conv2d(hidden, dim, 1)

    def forward(self, x):
        x = self.shift_feat(x, self.n_div)
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))

    @staticmethod
    def shift_feat(x, n_div):
        g = x.shape[1] // n_div
        out = torch.zeros_like(x)
        out[:, 0 * g:1 * g, :, :-1] = x[:, 0 * g:1 * g, :, 1:]  # left
        out[:, 1 * g:2 * g, :, 1:] = x[:, 1 * g:2 * g, :, :-1]  # right
        out[:, 2 * g:3 * g, :-1, :] = x[:, 2 * g:3 * g, 1:, :]  # up
        out[:, 3 * g:4 * g, 1:, :] = x[:, 3 * g:4 * g, :-1, :]  # down
        out[:, 4 * g:] = x[:, 4 * g:]
        return out


# 24 channels, n_div 12: channel block -> (dh, dw) each moves its content by
SHIFTVIT_24_MOVES = {range(0, 2): (0, -1), range(2, 4): (0, 1), range(4, 6): (-1, 0), range(6, 8): (1, 0),
                     range(8, 24): (0, 0)}


def test_shiftvit_table():
    moves = ShiftViTBlock(24).shift.weight.long().tolist()
    assert moves == [list(move) for block, move in SHIFTVIT_24_MOVES.items() for _ in block]


@pytest.mark.parametrize("channels, n_div, norm, mlp_ratio", [(24, 12, "batch", 4.0), (29, 12, "group", 4.0),
                                                             (16, 4, "batch", 2.5), (13, 4, "group", 1.3)])
def test_shiftvit_block_loads_the_authors_checkpoint(channels, n_div, norm, mlp_ratio):
    norm_layer = nn.BatchNorm2d if norm == "batch" else (lambda c: nn.GroupNorm(1, c))
    theirs = randomized(ShiftViTBlockPort(channels, n_div, mlp_ratio, norm_layer), 22).double()
    ours = ShiftViTBlock(channels, n_div=n_div, mlp_ratio=mlp_ratio, norm=norm).double()
    x = torch.randn(2, channels, 5, 6, generator=gen(23), dtype=F64)
    torch.testing.assert_close(ours.shift(x), ShiftViTBlockPort.shift_feat(x, n_div))
    assert_ported(theirs, ours, x)


# ------------------------------------------------------------------------------------------------
# AS-MLP (Lian et al. 2022): models/as_mlp.py's AxialShift and AxialShiftedBlock
# ------------------------------------------------------------------------------------------------

def axial_shift_port(x, shift_size, dim, dilation=1):
    """AS-MLP's shift (its pure-PyTorch form, which its CUDA kernel equals): zero-pad, cut the channels
    with ``torch.chunk(x, shift_size, 1)``, roll chunk ``g`` by ``(g - shift_size // 2)`` along ``dim``,
    crop. (``dilation`` spaces the amounts, a generalisation the authors' code does not have.)"""
    h, w = x.shape[2:]
    pad = shift_size // 2 * dilation
    chunks = torch.chunk(F.pad(x, (pad, pad, pad, pad)), shift_size, 1)
    rolled = [torch.roll(c, s * dilation, dim) for c, s in zip(chunks, range(-(shift_size // 2), shift_size // 2 + 1))]
    return torch.cat(rolled, 1)[:, :, pad:pad + h, pad:pad + w]


class AxialShiftedBlockPort(nn.Module):
    """AS-MLP's block with its module names: ``x + axial_shift(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim, shift_size, mlp_ratio=4.0):
        super().__init__()
        self.shift_size = shift_size
        self.norm1, self.norm2 = nn.GroupNorm(1, dim), nn.GroupNorm(1, dim)
        self.axial_shift = nn.Module()
        for name in ("conv1", "conv2_1", "conv2_2", "conv3"):
            setattr(self.axial_shift, name, nn.Conv2d(dim, dim, 1))
        self.axial_shift.norm1, self.axial_shift.norm2 = nn.GroupNorm(1, dim), nn.GroupNorm(1, dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Module()
        self.mlp.fc1, self.mlp.fc2 = nn.Conv2d(dim, hidden, 1), nn.Conv2d(hidden, dim, 1)

    def axial(self, x):
        a = self.axial_shift
        x = F.gelu(a.norm1(a.conv1(x)))
        x_lr = F.gelu(a.conv2_1(axial_shift_port(x, self.shift_size, 3)))
        x_td = F.gelu(a.conv2_2(axial_shift_port(x, self.shift_size, 2)))
        return a.conv3(a.norm2(x_lr + x_td))

    def forward(self, x):
        x = x + self.axial(self.norm1(x))
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


# shift_size 5 over 10 channels: chunks of 2, chunk g moves by g - 2 (along W for shift_w, H for shift_h)
AS_MLP_10_SHIFT5_MOVES = {range(0, 2): -2, range(2, 4): -1, range(4, 6): 0, range(6, 8): 1, range(8, 10): 2}
# shift_size 3 over 8 channels: chunks of ceil(8 / 3) = 3 (the last one 2), moved by -1, 0, 1
AS_MLP_8_SHIFT3_MOVES = {range(0, 3): -1, range(3, 6): 0, range(6, 8): 1}


@pytest.mark.parametrize("channels, shift_size, table", [(10, 5, AS_MLP_10_SHIFT5_MOVES), (8, 3, AS_MLP_8_SHIFT3_MOVES)])
def test_as_mlp_tables(channels, shift_size, table):
    block = AxialShiftBlock(channels, shift_size=shift_size)
    moves = [move for chunk, move in table.items() for _ in chunk]
    assert block.shift_w.weight.long().tolist() == [[0, m] for m in moves]
    assert block.shift_h.weight.long().tolist() == [[m, 0] for m in moves]


@pytest.mark.parametrize("channels, shift_size, dilation", [(10, 5, 1), (8, 5, 1), (13, 3, 2), (12, 7, 1), (8, 3, 1)])
def test_axial_shift_matches_as_mlp(channels, shift_size, dilation):
    block = AxialShiftBlock(channels, shift_size=shift_size, dilation=dilation)
    x = torch.randn(2, channels, 6, 7, generator=gen(24), dtype=F64)
    torch.testing.assert_close(block.shift_w(x), axial_shift_port(x, shift_size, 3, dilation))
    torch.testing.assert_close(block.shift_h(x), axial_shift_port(x, shift_size, 2, dilation))


@pytest.mark.parametrize("channels, shift_size, mlp_ratio", [(10, 5, 4.0), (13, 3, 4.0), (12, 5, 2.5)])
def test_as_mlp_block_loads_the_authors_checkpoint(channels, shift_size, mlp_ratio):
    theirs = randomized(AxialShiftedBlockPort(channels, shift_size, mlp_ratio), 25).double()
    ours = AxialShiftBlock(channels, shift_size=shift_size, mlp_ratio=mlp_ratio).double()
    assert_ported(theirs, ours, torch.randn(2, channels, 6, 7, generator=gen(26), dtype=F64))


# ------------------------------------------------------------------------------------------------
# S2-MLP (Yu et al. 2021): Algorithm 1 of the paper (no code was published)
# ------------------------------------------------------------------------------------------------

def s2mlp_algorithm1_port(x_nhwc):
    """Algorithm 1 as printed, on ``(N, H, W, C)`` tokens (its first spatial axis, which the paper
    names ``w``, is our H): slice assignments that read the input as it was before the call (the
    in-place original leaves each quarter's first or last line unchanged)."""
    x = x_nhwc
    out = x.clone()
    c = x.shape[-1]
    out[:, 1:, :, :c // 4] = x[:, :-1, :, :c // 4]
    out[:, :-1, :, c // 4:c // 2] = x[:, 1:, :, c // 4:c // 2]
    out[:, :, 1:, c // 2:c * 3 // 4] = x[:, :, :-1, c // 2:c * 3 // 4]
    out[:, :, :-1, c * 3 // 4:] = x[:, :, 1:, c * 3 // 4:]
    return out


# 8 channels: channel block -> (dh, dw) it moves its content by (the last quarter takes any remainder)
S2MLP_8_MOVES = {range(0, 2): (1, 0), range(2, 4): (-1, 0), range(4, 6): (0, 1), range(6, 8): (0, -1)}


def test_s2mlp_table():
    moves = SpatialShiftBlock(8).shift.weight.long().tolist()
    assert moves == [list(move) for block, move in S2MLP_8_MOVES.items() for _ in block]


@pytest.mark.parametrize("channels", [8, 11, 4])
def test_spatial_shift_matches_algorithm_1(channels):
    x = torch.randn(2, channels, 5, 6, generator=gen(27), dtype=F64)
    expected = s2mlp_algorithm1_port(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(SpatialShiftBlock(channels, padding="border").shift(x), expected)
    # the default zeros padding differs exactly on the line each quarter shifts in
    zeros = SpatialShiftBlock(channels).shift(x)
    differs = zeros != expected
    q1, q2, q3 = channels // 4, channels // 2, channels * 3 // 4
    line = torch.zeros_like(differs)
    line[:, :q1, 0, :] = line[:, q1:q2, -1, :] = line[:, q2:q3, :, 0] = line[:, q3:, :, -1] = True
    assert torch.equal(differs, line)
    assert torch.equal(zeros[line], torch.zeros_like(zeros[line]))


# ------------------------------------------------------------------------------------------------
# map_authors_state_dict itself
# ------------------------------------------------------------------------------------------------

def test_map_authors_state_dict_fills_patterns_and_leaves_other_keys():
    ours = CSCBlock(16, 16)
    theirs = ShiftConvPort(16, 16).state_dict()
    mapped = shiftzoo.map_authors_state_dict(ours, theirs)
    assert torch.equal(mapped["body.shift.weight"], ours.body.shift.weight)  # computed by the authors, not stored
    assert set(mapped) == set(ours.state_dict())
    extra = shiftzoo.map_authors_state_dict(ours, {**theirs, "conv9.weight": torch.zeros(1)})
    assert "conv9.weight" in extra  # unknown keys pass, so a strict load names them
    with pytest.raises(RuntimeError, match="conv9.weight"):
        ours.load_state_dict(extra)


def test_a_checkpoint_restores_the_pattern_it_was_trained_with():
    """Fixed patterns are saved as the buffer ``weight``: a model saved with ``pattern="blocks"``
    (the default before "shiftnet") runs as trained when loaded into a default layer."""
    trained = shiftzoo.GroupedShift2d(18, pattern="blocks")
    loaded = shiftzoo.GroupedShift2d(18)
    assert not torch.equal(loaded.weight, trained.weight)
    loaded.load_state_dict(trained.state_dict())
    x = torch.randn(1, 18, 5, 5, generator=gen(28))
    torch.testing.assert_close(loaded(x), trained(x))


def test_a_loaded_shiftresnet_keeps_its_outputs_in_the_inference_form():
    """ShiftNet's interleaved order costs nothing at inference: the permutation sorts it into runs."""
    theirs = randomized(TinyResNet(ShiftConvPort), 29).eval()  # float32: the inference form's folds are checked
    ours = TinyResNet(lambda i, o, s: CSCBlock(i, o, s)).eval()  # bit for bit against float32 BatchNorm
    ours.load_state_dict(shiftzoo.map_authors_state_dict(ours, theirs.state_dict()))
    report = shiftzoo.optimize_for_inference(ours, permute_channels=True)
    assert len(report.permuted) == 2
    x = torch.randn(2, 3, 8, 8, generator=gen(30))
    torch.testing.assert_close(ours(x), theirs(x))
    for layer in ours.modules():
        if isinstance(layer, shiftzoo.InferenceShift):
            shifts = [tuple(s) for s in layer.shifts.tolist()]
            runs = [key for key, _ in itertools.groupby(shifts)]
            assert len(runs) == len(set(shifts)) == 9  # one run per tap
