"""shiftzoo.compat: the seed's Shift1d/2d/3d API, each option applied (the seed ignored some), the
depthwise-conv emulation against real convolutions, and the quantized path."""
from __future__ import annotations

import inspect
import warnings

import pytest
import torch
import torch.ao.quantization as tq
from torch import nn

import shiftzoo
from helpers import F64, gen, pad_slice_per_channel
from shiftzoo.compat import QuantizedShift, Shift1d, Shift2d, Shift3d, quant_mapping

CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


@pytest.mark.parametrize("cls", [Shift1d, Shift2d, Shift3d])
def test_the_seeds_signature_exactly(cls):
    params = inspect.signature(cls).parameters
    assert [(p.name, p.default) for p in params.values()] == [
        ("in_channels", inspect.Parameter.empty), ("padding", "zeros"), ("init_shift", 1), ("sparsity_term", 5e-4),
        ("active_flag", False), ("emulate_dw", None), ("init_thumb_rule", 1)]
    assert cls.dims == int(cls.__name__[-2])


def test_returns_output_and_loss():
    torch.manual_seed(0)
    layer = Shift2d(in_channels=6)
    x = torch.randn(2, 6, 5, 5, generator=gen(1))
    out, loss = layer(x)
    assert out.shape == x.shape
    torch.testing.assert_close(loss, 5e-4 * layer.weight.abs().sum())
    loss.backward()
    assert layer.weight.grad is not None
    assert Shift1d(3, sparsity_term=0)(torch.randn(1, 3, 4))[1] is None
    layer.sparsity_term = 0  # one value under both names: the seed's attribute turns the penalty off
    assert layer(x)[1] is None and layer.sparsity_loss().item() == 0.0
    assert layer.in_channels == 6 and layer.weights is layer.weight
    assert list(layer.state_dict()) == ["weight"]  # the seed's checkpoint key


def test_ssl_and_active_forwards():
    x = torch.randn(2, 4, 6, 7, generator=gen(2), dtype=F64)
    shifts = torch.tensor([[0.6, -1.4], [2.5, 0.2], [-0.3, 0.0], [1.0, -2.2]])
    ssl, active = Shift2d(4), Shift2d(4, active_flag=True, sparsity_term=0)
    for layer in (ssl, active):
        with torch.no_grad():
            layer.weight.copy_(shifts)
    torch.testing.assert_close(ssl(x)[0], pad_slice_per_channel(x, [[1, -1], [2, 0], [0, 0], [1, -2]]))
    reference = shiftzoo.functional.shift(x, shifts, "zeros", "linear")
    torch.testing.assert_close(active(x)[0], reference)
    assert isinstance(shiftzoo.SparseShift2d(4), shiftzoo.ShiftLayer) and isinstance(ssl, shiftzoo.ShiftLayer)


def test_thumb_rule_two_is_applied():
    signs = set()
    for seed in range(8):
        torch.manual_seed(seed)
        w = Shift2d(300, init_shift=2, init_thumb_rule=2).weight.detach()
        assert w.abs().max() <= 2 and w.abs().max() > 1.5
        column_signs = torch.sign(w).unique(dim=0)
        assert len(column_signs) == 1  # uniform(0, r) times ONE random sign per axis
        signs.add(tuple(column_signs[0].tolist()))
    assert len(signs) > 1
    torch.manual_seed(0)
    w = Shift2d(300, init_shift=2, init_thumb_rule=1).weight.detach()
    assert ((w > 0).any(0) & (w < 0).any(0)).all()  # rule 1: both signs in every column


@pytest.mark.parametrize("dims, kernel, stride, padding, dilation", [
    (2, 3, 1, 1, 1), (2, 3, 1, 0, 1), (2, 3, 2, 1, 1), (2, 3, 2, 0, 1), (2, 5, 1, 2, 1), (2, 5, 2, 1, 1),
    (2, 5, 3, 0, 1), (2, 4, 1, 0, 1), (2, 4, 2, 1, 1), (2, 1, 2, 0, 1), (2, 3, 1, 3, 1), (2, 1, 1, 1, 1),
    (2, (3, 5), (1, 2), (1, 0), 1), (2, 3, 1, "same", 1), (2, 3, 2, "valid", 1), (2, 3, 1, 1, 2),
    (2, 3, 2, 0, (2, 1)), (1, 3, 2, 0, 1), (1, 7, 1, 3, 1), (1, 4, 3, 2, 1), (3, 3, 2, 1, 1), (3, (1, 3, 3), 1, 0, 1),
])
def test_emulate_dw_output_shape_equals_the_depthwise_conv(dims, kernel, stride, padding, dilation):
    spec = {"kernel_size": kernel, "stride": stride, "padding": padding}
    if dilation != 1:
        spec["dilation"] = dilation
    cls = {1: Shift1d, 2: Shift2d, 3: Shift3d}[dims]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer = cls(4, emulate_dw=spec)
    assert any("dilation" in str(w.message) for w in caught) == ("dilation" in spec)
    conv = CONVS[dims](4, 4, kernel, stride=stride, padding=padding, dilation=dilation, groups=4)
    for size in ((9, 10, 11), (8, 13, 7)):
        x = torch.randn(1, 4, *size[:dims], generator=gen(3))
        out, _ = layer(x)
        assert out.shape == conv(x).shape, (size, spec)


def test_emulate_dw_padding_mode_is_applied():
    assert Shift2d(4, emulate_dw={"kernel_size": 3, "padding": 1, "padding_mode": "replicate"}).padding == "border"
    assert Shift2d(4, emulate_dw={"kernel_size": 3, "padding_mode": "circular"}).padding == "periodic"
    assert Shift2d(4, emulate_dw={"kernel_size": 3, "padding_mode": "reflect"}).padding == "reflect"
    assert Shift2d(4, padding="symmetric", emulate_dw={"kernel_size": 3}).padding == "symmetric"
    with pytest.raises(ValueError, match="contradicts emulate_dw padding_mode='circular'"):
        Shift2d(4, padding="reflect", emulate_dw={"kernel_size": 3, "padding_mode": "circular"})


def test_emulate_dw_scales_the_init_to_the_kernel():
    torch.manual_seed(0)
    w = Shift2d(500, emulate_dw={"kernel_size": (5, 1)}).weight.detach()
    assert w[:, 0].abs().max() <= 2 and w[:, 0].abs().max() > 1.8 and (w[:, 1] == 0).all()
    w = Shift2d(500, init_shift=0.5, emulate_dw={"kernel_size": 5, "stride": 2}).weight.detach()
    assert w.abs().max() <= 2 and w.abs().max() > 1.8  # reach 2, times stride 2, times init_shift 0.5
    w = Shift1d(500, init_thumb_rule=2, emulate_dw={"kernel_size": 3}).weight.detach()
    assert w.abs().max() <= 3 and w.abs().max() > 2.8  # rule 2 reaches the kernel size (the seed's rule)


@pytest.mark.parametrize("spec, error, match", [
    ({"kernel": 3}, ValueError, r"unknown key 'kernel'.*did you mean 'kernel_size'"),
    ({"stride": 2}, ValueError, r"needs at least 'kernel_size'"),
    ({"kernel_size": 3, "out_channels": 8}, ValueError, r"out_channels=8 differs from in_channels=4"),
    ({"kernel_size": 3, "padding_mode": "mirror"}, ValueError, r"unknown padding 'mirror'"),
    ({"kernel_size": (3, 3, 3)}, ValueError, r"kernel_size must be an int >= 1 or a sequence of 2"),
    ([3], TypeError, r"emulate_dw must be a dict"),
])
def test_emulate_dw_errors(spec, error, match):
    with pytest.raises(error, match=match):
        Shift2d(4, emulate_dw=spec)


def test_conv_kwargs_are_accepted_as_is():
    conv_kwargs = {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1,
                   "groups": 4, "bias": False}
    layer = Shift2d(4, emulate_dw=conv_kwargs)
    x = torch.randn(1, 4, 9, 9)
    assert layer(x)[0].shape == nn.Conv2d(**conv_kwargs)(x).shape


def test_repr_names_the_options():
    text = repr(Shift3d(2, active_flag=True, sparsity_term=0))
    assert text.startswith("Shift3d(") and "active_flag=True" in text and "sparsity_term=0" in text


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_quant_mapping_converts_and_shifts_exactly():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
            self.conv = nn.Conv2d(3, 6, 1)
            self.shift = Shift2d(6, emulate_dw={"kernel_size": 3, "stride": 2, "padding": 0})

        def forward(self, x):
            y = self.quant(x)
            y, _ = self.shift(self.conv(y))
            return self.dequant(y)

    torch.manual_seed(0)
    net = Net().eval()
    net.qconfig = tq.get_default_qconfig("fbgemm")
    tq.prepare(net, inplace=True)
    net(torch.randn(8, 3, 9, 9, generator=gen(4)))
    qnet = tq.convert(net, mapping=quant_mapping)
    assert isinstance(qnet.shift, QuantizedShift) and isinstance(qnet.conv, torch.ao.nn.quantized.Conv2d)
    x = torch.randn(2, 3, 9, 9, generator=gen(5))
    q = qnet.conv(qnet.quant(x))
    out, loss = qnet.shift(q)
    assert loss is None and out.is_quantized
    rounded = torch.round(net.shift.weight.detach()).long().tolist()
    shifted = pad_slice_per_channel(q.int_repr().double() - q.q_zero_point(), rounded) + q.q_zero_point()
    expected = torch.nn.functional.avg_pool2d(
        torch._make_per_tensor_quantized_tensor(shifted.to(torch.uint8), q.q_scale(), q.q_zero_point())[:, :, 1:-1, 1:-1],
        2, 2, ceil_mode=True)
    assert torch.equal(out.int_repr(), expected.int_repr())
    assert qnet(x).shape == (2, 6, 4, 4)


def test_from_depthwise_points_to_the_new_layers():
    with pytest.raises(TypeError, match="SparseShift2d.from_depthwise"):
        Shift2d.from_depthwise(nn.Conv2d(4, 4, 3, groups=4))


def test_active_shift_does_not_quantize():
    with pytest.raises(ValueError, match="only SSL shifts"):
        QuantizedShift.from_float(Shift2d(4, active_flag=True))


def test_jit_trace():
    layer = Shift2d(4, emulate_dw={"kernel_size": 3, "stride": 2})
    x = torch.randn(1, 4, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(layer, x)
    torch.testing.assert_close(traced(x)[0], layer(x)[0])
