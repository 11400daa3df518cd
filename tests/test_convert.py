"""Replacing depthwise convolutions: ShiftLayer.from_depthwise and shiftzoo.replace_depthwise on a
MobileNetV2-style network."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import shiftzoo
from helpers import gen
from shiftzoo.nn import ActiveShift1d, DepthwiseGeometry, GroupedShift2d, GroupedShift3d, SparseShift2d, SparseShift3d


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand -> BN -> ReLU6 -> 3x3 depthwise (stride) -> BN -> ReLU6 -> 1x1 -> BN."""

    def __init__(self, inp, out, stride, expand):
        super().__init__()
        hidden = inp * expand
        self.use_residual = stride == 1 and inp == out
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


class TinyMobileNetV2(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(inplace=True))
        # MobileNetV2's first block has no expansion: a depthwise conv straight on the stem
        self.first = nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1, groups=16, bias=False), nn.BatchNorm2d(16),
                                   nn.ReLU6(inplace=True), nn.Conv2d(16, 8, 1, bias=False), nn.BatchNorm2d(8))
        self.blocks = nn.Sequential(InvertedResidual(8, 12, 2, 6), InvertedResidual(12, 12, 1, 6),
                                    InvertedResidual(12, 16, 2, 6), InvertedResidual(16, 16, 1, 6))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes))

    def forward(self, x):
        return self.head(self.blocks(self.first(self.stem(x))))


DEPTHWISE = ["first.0", "blocks.0.conv.3", "blocks.1.conv.3", "blocks.2.conv.3", "blocks.3.conv.3"]


@pytest.mark.parametrize("family, cls", [("sparse", SparseShift2d), ("active", shiftzoo.ActiveShift2d),
                                         ("grouped", GroupedShift2d)])
@pytest.mark.parametrize("downsample", ["sample", "pool"])
def test_replace_depthwise_in_mobilenetv2(family, cls, downsample):
    torch.manual_seed(0)
    model = TinyMobileNetV2()
    x = torch.randn(2, 3, 33, 31, generator=gen(1))
    before = model(x)
    dw_params = sum(model.get_submodule(n).weight.numel() for n in DEPTHWISE)
    report = shiftzoo.replace_depthwise(model, layer=family, downsample=downsample)
    assert report.replaced == DEPTHWISE and not report.skipped
    assert not any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in model.modules())
    assert sum(isinstance(m, cls) for m in model.modules()) == 5
    assert isinstance(model.get_submodule("blocks.1.conv.3"), cls)  # stride 1, "same": the bare layer
    strided = model.get_submodule("blocks.0.conv.3")
    if downsample == "sample":  # the layer samples where the conv does: stride 2, no crop
        assert isinstance(strided, cls) and strided.sampling.stride == (2, 2) and strided.sampling.crop == ((0, 0),) * 2
    else:  # shift + geometry (crop, average pooling)
        assert isinstance(strided, nn.Sequential) and isinstance(strided.geometry, DepthwiseGeometry)
    suffix = [""] * 5 if downsample == "sample" else ["", ".shift", "", ".shift", ""]
    shift_params = 0 if family == "grouped" else sum(model.get_submodule(n + s).weight.numel() for n, s in
                                                     zip(DEPTHWISE, suffix))
    assert report.params_before - report.params_after == report.saved == dw_params - shift_params
    assert f"saved {report.saved}" in str(report)
    out = model(x)
    assert out.shape == before.shape
    loss = out.square().mean() + shiftzoo.sparsity_loss(model)
    loss.backward()
    assert model.stem[0].weight.grad.abs().sum() > 0  # the gradient crosses every shift
    shifts = [m for m in model.modules() if isinstance(m, cls)]
    if family == "grouped":
        assert all(m.weight.grad is None for m in shifts)
    else:
        assert all(m.weight.grad is not None and m.weight.grad.abs().sum() > 0 for m in shifts)


CASES = [  # (dims, kernel, stride, padding, dilation, padding_mode)
    (2, 3, 1, 1, 1, "zeros"), (2, 3, 2, 1, 1, "zeros"), (2, 3, 1, 0, 1, "reflect"), (2, 5, 2, 2, 1, "zeros"),
    (2, 5, 3, 0, 1, "replicate"), (2, 3, 1, 2, 1, "zeros"), (2, 3, 2, 3, 1, "circular"), (2, 7, 1, "same", 1, "zeros"),
    (2, (1, 5), (2, 1), (0, 2), 1, "zeros"), (2, 3, 1, 2, 2, "zeros"), (2, 3, 2, "valid", (1, 2), "zeros"),
    (1, 3, 2, 1, 1, "zeros"), (1, 5, 1, 0, 3, "zeros"), (3, 3, 2, 1, 1, "zeros"), (3, (3, 1, 3), 1, (0, 1, 2), 1, "zeros"),
    (2, 4, 2, 1, 1, "zeros"), (2, (2, 3), 1, "same", 1, "reflect"), (1, 2, 2, 0, 3, "zeros"),  # even kernels
]


@pytest.mark.parametrize("dims, kernel, stride, padding, dilation, padding_mode", CASES)
def test_from_depthwise_keeps_the_output_shape(dims, kernel, stride, padding, dilation, padding_mode):
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims](
        50, 50, kernel, stride=stride, padding=padding, dilation=dilation, groups=50, padding_mode=padding_mode)
    size = {1: (23,), 2: (11, 14), 3: (7, 9, 8)}[dims]
    x = torch.randn(1, 50, *size, generator=gen(2))
    for family in ("sparse", "active", "grouped"):
        for downsample in ("sample", "pool"):
            module = shiftzoo.nn.layers.FAMILIES[family][dims].from_depthwise(conv, downsample=downsample)
            assert module(x).shape == conv(x).shape
    assert DepthwiseGeometry.from_conv(conv).output_size(size) == tuple(conv(x).shape[2:])


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("dims, kernel, padding, dilation", [
    (2, 3, 1, 1), (2, 3, 0, 1), (2, 3, 2, 2), (2, 4, "same", 1), (2, (2, 3), 0, 1), (2, 4, 1, (2, 1)),
    (1, 5, 2, 1), (1, 4, 0, 3), (1, 2, 0, 1)])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_grouped_from_depthwise_reads_the_taps_of_the_conv(dims, kernel, padding, dilation, stride):
    """ShiftNet: a shift is a depthwise conv whose kernel is one-hot. Every group of the converted layer
    must equal the conv one-hot at one of its taps, each tap taken by exactly one group; strided, the
    layer samples exactly where the conv does."""
    if padding == "same" and stride > 1:
        pytest.skip("PyTorch convolutions take padding='same' at stride 1 only")
    conv_cls = {1: nn.Conv1d, 2: nn.Conv2d}[dims]
    taps = int(torch.tensor(nn.modules.utils._ntuple(dims)(kernel)).prod())
    channels = 2 * taps
    conv = conv_cls(channels, channels, kernel, stride=stride, padding=padding, dilation=dilation, groups=channels,
                    bias=False)
    module = shiftzoo.nn.layers.FAMILIES["grouped"][dims].from_depthwise(conv)
    x = torch.randn(2, channels, *{1: (13,), 2: (9, 10)}[dims], generator=gen(4))
    out = module(x)
    found = {}
    for tap in range(taps):  # the conv one-hot at `tap` (raster order), on every channel
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight.view(channels, taps)[:, tap] = 1
        reference = conv(x)
        for c in range(channels):
            if torch.allclose(out[:, c], reference[:, c]):
                found.setdefault(c, []).append(tap)
    assert all(len(found.get(c, [])) == 1 for c in range(channels)), found
    assert sorted(found[c][0] for c in range(0, channels, 2)) == list(range(taps))  # groups of 2, one tap each


def test_from_depthwise_defaults_follow_the_conv():
    conv = nn.Conv2d(18, 18, (5, 3), padding=(2, 1), groups=18, padding_mode="replicate")
    layer = SparseShift2d.from_depthwise(conv)
    assert isinstance(layer, SparseShift2d) and layer.padding == "border" and layer.init_shift == (2.0, 1.0)
    grouped = GroupedShift2d.from_depthwise(nn.Conv2d(30, 30, 3, padding=2, dilation=2, groups=30))
    assert grouped.kernel_size == (3, 3) and grouped.dilation == (2, 2)
    assert grouped.weight.abs().max() == 2
    override = SparseShift2d.from_depthwise(conv, padding="symmetric", sparsity=0.1)
    assert override.padding == "symmetric" and override.sparsity == 0.1
    half = SparseShift3d.from_depthwise(nn.Conv3d(4, 4, 3, padding=1, groups=4).double())
    assert half.weight.dtype == torch.float64


@pytest.mark.parametrize("downsample", ["sample", "pool"])
def test_crop_is_centred_like_the_conv(downsample):
    """A 3x3 conv without padding sees x[1:-1] at its centres: an unshifted layer must keep exactly that."""
    def unshifted(conv):
        module = SparseShift2d.from_depthwise(conv, downsample=downsample)
        layer = module if downsample == "sample" else module.shift
        with torch.no_grad():
            layer.weight.zero_()
        return module

    x = torch.randn(1, 9, 6, 7, generator=gen(3))
    torch.testing.assert_close(unshifted(nn.Conv2d(9, 9, 3, padding=0, groups=9))(x), x[:, :, 1:-1, 1:-1])
    even = unshifted(nn.Conv2d(9, 9, (4, 2), padding=0, groups=9))  # centres at +1.5, +0.5
    torch.testing.assert_close(even(x), x[:, :, 1:-2, 0:-1])  # the centre rounds down, like padding="same"
    assert isinstance(SparseShift2d.from_depthwise(nn.Conv2d(9, 9, 4, padding="same", groups=9)), SparseShift2d)
    strided = unshifted(nn.Conv2d(9, 9, 1, stride=2, groups=9))
    want = x[:, :, ::2, ::2] if downsample == "sample" else nn.functional.avg_pool2d(x, 2, 2, ceil_mode=True)
    torch.testing.assert_close(strided(x), want)


def test_downsample_mode_is_checked():
    with pytest.raises(ValueError, match="downsample must be 'sample' or 'pool', got 'avg'"):
        SparseShift2d.from_depthwise(nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4), downsample="avg")


@pytest.mark.parametrize("make_call, error, match", [
    (lambda: SparseShift2d.from_depthwise(nn.Conv2d(4, 8, 3, groups=4)), ValueError, "expected a depthwise convolution"),
    (lambda: SparseShift2d.from_depthwise(nn.Conv2d(4, 4, 3)), ValueError, "groups=1"),
    (lambda: SparseShift2d.from_depthwise(nn.Conv1d(4, 4, 3, groups=4)), ValueError, "has 2 spatial axes but Conv1d has 1"),
    (lambda: ActiveShift1d.from_depthwise(nn.Linear(3, 3)), TypeError, "expected an nn.Conv1d"),
    (lambda: GroupedShift3d.from_depthwise(nn.Conv3d(8, 8, 3, groups=8)), ValueError, "8 channels cannot hold"),
    (lambda: shiftzoo.nn.FixedShift.from_depthwise(nn.Conv2d(4, 4, 3, groups=4)), TypeError, "no pattern"),
    (lambda: shiftzoo.replace_depthwise(nn.Sequential(), layer="sprase"), ValueError, "closest match: 'sparse'"),
    (lambda: shiftzoo.replace_depthwise(nn.Conv2d(4, 4, 3, groups=4)), ValueError, "model itself is a depthwise"),
])
def test_errors(make_call, error, match):
    with pytest.raises(error, match=match):
        make_call()


def test_shared_and_multiplier_convs():
    shared = nn.Conv2d(9, 9, 3, padding=1, groups=9)
    multiplier = nn.Conv2d(9, 18, 3, padding=1, groups=9)
    model = nn.Sequential(shared, nn.ReLU(), shared, multiplier)
    report = shiftzoo.replace_depthwise(model, "grouped")
    assert report.replaced == ["0", "2"] and model[0] is model[2] and isinstance(model[0], GroupedShift2d)
    assert list(report.skipped) == ["3"] and model[3] is multiplier
    assert model(torch.randn(1, 9, 5, 5)).shape == (1, 18, 5, 5)
    single = nn.Sequential(nn.Conv1d(1, 1, 3, padding=1), nn.Conv1d(1, 4, 1))  # groups == in == out == 1
    assert shiftzoo.replace_depthwise(single).replaced == ["0"] and isinstance(single[0], shiftzoo.SparseShift1d)


def test_replace_depthwise_changes_nothing_when_one_conv_cannot_be_replaced():
    model = nn.Sequential(nn.Conv2d(18, 18, 3, padding=1, groups=18), nn.Conv2d(8, 8, 3, padding=1, groups=8))
    with pytest.raises(ValueError, match=r"cannot replace '1' \(Conv2d\(8, 8.*the model is unchanged: grouped shift: "
                                         r"8 channels cannot hold the 9 displacements"):
        shiftzoo.replace_depthwise(model, "grouped")
    assert all(type(m) is nn.Conv2d for m in model)
    with pytest.raises(TypeError, match=r"cannot replace '0'.*sparsity"):
        shiftzoo.replace_depthwise(model, "active", sparsity=0.1)
    assert all(type(m) is nn.Conv2d for m in model)


# ------------------------------------------------------------------------------------------------
# replace_shifts: back to depthwise convolutions (the depthwise twin)
# ------------------------------------------------------------------------------------------------

def test_replace_shifts_is_the_inverse_geometry_of_replace_depthwise():
    convs = [nn.Conv2d(27, 27, 3, padding=1, groups=27), nn.Conv2d(27, 27, 3, stride=2, padding=1, groups=27),
             nn.Conv2d(27, 27, 5, stride=(1, 2), padding=2, groups=27, padding_mode="reflect"),
             nn.Conv2d(27, 27, 3, stride=2, padding=0, groups=27)]
    model = nn.Sequential(*convs)
    x = torch.randn(2, 27, 11, 10)
    shapes = [tuple(m(torch.randn(2, 27, 11, 10)).shape) for m in convs]
    shiftzoo.replace_depthwise(model, layer="grouped")
    assert all(isinstance(m, GroupedShift2d) for m in model)
    report = shiftzoo.replace_shifts(model)
    assert report.replaced == ["0", "1", "2", "3"] and str(report).startswith("replaced 4 shift layer(s)")
    for twin, conv, shape in zip(model, convs, shapes):
        assert isinstance(twin, nn.Conv2d) and twin.groups == 27 and twin.bias is None
        for key in ("kernel_size", "stride", "padding", "dilation", "padding_mode"):
            assert getattr(twin, key) == getattr(conv, key), key
        assert tuple(twin(torch.randn(2, 27, 11, 10)).shape) == shape
    assert model(x).shape == convs[3](convs[2](convs[1](convs[0](x)))).shape


def test_replace_shifts_keeps_fixed_patterns_and_sharing():
    shared = SparseShift2d(8, padding="symmetric")  # no conv padding_mode: zeros
    model = nn.Sequential(shared, shiftzoo.FixedShift(torch.zeros(8, 2)), shared, ActiveShift1d(8))
    shiftzoo.replace_shifts(model, kernel_size=5)
    assert model[0] is model[2] and model[0].kernel_size == (5, 5) and model[0].padding_mode == "zeros"
    assert isinstance(model[1], shiftzoo.FixedShift) and isinstance(model[3], nn.Conv1d)
    with pytest.raises(ValueError, match="the model itself is a shift layer"):
        shiftzoo.replace_shifts(SparseShift2d(4))


def test_replace_shifts_refuses_what_a_convolution_cannot_sample():
    odd = nn.Sequential(SparseShift2d(4, crop=((1, 0), (0, 0))))
    with pytest.raises(ValueError, match=r"replace_shifts: cannot replace '0'.*even crop"):
        shiftzoo.replace_shifts(odd)
    assert isinstance(odd[0], SparseShift2d)  # unchanged
