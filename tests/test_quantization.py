"""Quantized inference: torchao's PT2E flow (shiftzoo.quantization: the shifts share their input's
quantization parameters and move the quantized integers) and the eager flow (quantized tensors,
shiftzoo.quant_mapping)."""
import warnings

import pytest
import torch
from torch import nn

import shiftzoo

pytest.importorskip("torchao", reason="the PT2E flow needs torchao (pip install torchao)")
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e  # noqa: E402

from shiftzoo.quantization import (ShiftQuantizer, fold_quantized_shifts,  # noqa: E402
                                   x86_inductor_quantizer)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.*quantiz.*:UserWarning")


def small_cnn() -> nn.Module:
    """SSL, Grouped and Active layers between 1x1 convolutions (the Active one interpolates)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 1), nn.ReLU(), shiftzoo.SparseShift2d(16, init_shift=2),
                         nn.Conv2d(16, 18, 1), nn.ReLU(), shiftzoo.GroupedShift2d(18), nn.Conv2d(18, 8, 1),
                         shiftzoo.ActiveShift2d(8), nn.Conv2d(8, 4, 1)).eval()


def quantize(model: nn.Module, x: torch.Tensor, quantizer=None, dynamic_batch=False):
    dynamic = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    exported = torch.export.export(model, (x,), dynamic_shapes=dynamic).module()
    prepared = prepare_pt2e(exported, quantizer or x86_inductor_quantizer())
    for _ in range(3):
        prepared(x)  # calibration
    return convert_pt2e(prepared)


def shift_nodes(model):
    ops = torch.ops.shiftzoo
    return [n for n in model.graph.nodes if n.op == "call_function" and n.target in (ops.shift.default,
                                                                                       ops.shift_affine.default)]


def test_pt2e_shifts_move_the_quantized_integers():
    model, x = small_cnn(), torch.randn(2, 3, 10, 10)
    quantized = quantize(model, x)
    unfolded = quantized(x)
    report = fold_quantized_shifts(quantized)
    assert report.on_integers == ["2", "5"] and list(report.in_float) == ["7"]
    assert "interpolates ('linear')" in report.in_float["7"]
    # the whole-pixel shifts now read the uint8 output of a quantize, the Active one a float conv
    quantize_op = torch.ops.quantized_decomposed.quantize_per_tensor.default
    kinds = [(n.target.name(), n.args[0].target) for n in shift_nodes(quantized)]
    assert kinds == [("shiftzoo::shift_affine", quantize_op)] * 2 + [("shiftzoo::shift", torch.ops.aten.conv2d.default)]
    assert all(n.args[0].args[-1] == torch.uint8 for n in shift_nodes(quantized)[:2])
    # the same numbers bit for bit as dequantize -> shift -> quantize, and near the float model
    folded = quantized(x)
    assert torch.equal(folded, unfolded)
    want = model(x)
    assert (folded - want).abs().max() < 0.05 * want.abs().max()


def test_pt2e_shift_is_within_one_quantization_step_of_float():
    """A shift alone: quantize, shift the integers, dequantize is the float shift of the input
    rounded to the quantization grid, so within half a step of the float model."""
    torch.manual_seed(1)
    layer = nn.Sequential(shiftzoo.SparseShift2d(6, init_shift=3)).eval()
    x = torch.randn(2, 6, 9, 9)
    quantized = quantize(layer, x, ShiftQuantizer())
    report = fold_quantized_shifts(quantized)
    assert report.on_integers == ["0"]
    dequantize = [n for n in quantized.graph.nodes
                  if n.target == torch.ops.quantized_decomposed.dequantize_per_tensor.default][-1]
    scale, zero_point = dequantize.args[1], dequantize.args[2]
    got, want = quantized(x), layer(x)
    assert (got - want).abs().max() <= scale / 2 + 1e-6
    # taps outside read the zero point: exactly 0.0 after dequantization
    outside = functional_outside(layer[0], x)
    assert zero_point != 0 and (got[outside] == 0).all()


def functional_outside(layer, x):
    """Where the zeros padding reads nothing (a shift of ones reads 0 there)."""
    return shiftzoo.functional.shift(torch.ones_like(x), layer.weight.detach(), "zeros", "nearest") == 0


def test_pt2e_model_compiles_with_inductor():
    model, x = small_cnn(), torch.randn(2, 3, 10, 10)
    quantized = quantize(model, x)
    fold_quantized_shifts(quantized)
    eager = quantized(x)
    torch._dynamo.reset()
    compiled = torch.compile(quantized)(x)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)


def test_shifts_with_folded_maps_stay_in_float():
    model, x = small_cnn(), torch.randn(2, 3, 10, 10)
    model = nn.Sequential(nn.Conv2d(3, 16, 1), nn.BatchNorm2d(16), nn.ReLU(), shiftzoo.GroupedShift2d(16),
                          nn.Conv2d(16, 4, 1)).eval()
    shiftzoo.optimize_for_inference(model)
    quantized = quantize(model, x)
    report = fold_quantized_shifts(quantized)
    assert not report.on_integers and "maps are folded into it" in next(iter(report.in_float.values()))


def test_eager_flow_and_quant_mapping():
    """The eager flow: shiftzoo's layers take quantized tensors as they are (no mapping needed);
    shiftzoo.quant_mapping (compat's) adds the seed API's modules."""
    import torch.ao.quantization as tq

    assert shiftzoo.quant_mapping is shiftzoo.compat.quant_mapping
    assert shiftzoo.compat.Shift2d in shiftzoo.quant_mapping

    class Net(nn.Module):
        """SSL and Grouped layers on quantized tensors; the Active one (it interpolates) in float."""

        def __init__(self):
            super().__init__()
            self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
            self.conv = nn.Conv2d(3, 9, 1)
            self.sparse = shiftzoo.SparseShift2d(9, init_shift=2)
            self.conv2 = nn.Conv2d(9, 9, 1)
            self.grouped = shiftzoo.GroupedShift2d(9)
            self.active = shiftzoo.ActiveShift2d(9)
            self.head = nn.Conv2d(9, 4, 1)

        def forward(self, x):
            x = self.grouped(self.conv2(self.sparse(self.conv(self.quant(x)))))
            return self.head(self.active(self.dequant(x)))

    torch.manual_seed(0)
    net = Net().eval()
    net.qconfig = tq.get_default_qconfig("x86")
    net.active.qconfig = net.head.qconfig = None  # the float tail
    x = torch.randn(2, 3, 8, 8)
    want = net(x)
    tq.prepare(net, inplace=True)
    net(x)
    qnet = tq.convert(net, mapping=shiftzoo.quant_mapping)
    inner = qnet.conv(qnet.quant(x))
    for layer in (qnet.sparse, qnet.grouped):
        shifted = layer(inner)
        assert shifted.is_quantized and shifted.q_zero_point() == inner.q_zero_point()
        whole = torch.round(layer.weight.detach())
        assert torch.equal(shifted.dequantize(), shiftzoo.functional.shift(inner.dequantize(), whole, "zeros",
                                                                           "nearest"))
    got = qnet(x)
    assert not got.is_quantized and (got - want).abs().max() < 0.05 * want.abs().max()


def test_pt2e_model_exports_to_onnx(tmp_path):
    """The folded model exports with shiftzoo.export_onnx: ONNX's QuantizeLinear/DequantizeLinear
    around the convolutions, the shifts as standard operators on the uint8 data; onnxruntime agrees
    with PyTorch up to a quantization step moved by float rounding in the convolutions."""
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    model, x = small_cnn(), torch.randn(2, 3, 10, 10)
    quantized = quantize(model, x, dynamic_batch=True)  # (exported with a dynamic batch from the start)
    assert len(fold_quantized_shifts(quantized).on_integers) == 2
    path = tmp_path / "quantized.onnx"
    with warnings.catch_warnings():  # (a converted GraphModule says it is in training mode: no matter here)
        warnings.simplefilter("ignore", UserWarning)
        shiftzoo.export_onnx(quantized, x, path, verbose=False)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "GatherND"} <= ops
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x3 = torch.randn(3, 3, 10, 10)
    (out,) = session.run(None, {session.get_inputs()[0].name: x3.numpy()})
    want = quantized(x3).detach()
    assert (torch.from_numpy(out) - want).abs().max() < 0.02 * want.abs().max()
