"""Shift layers under torch.autocast: a shift keeps its input's dtype (it moves data, like pooling),
float32 shifts work with bfloat16/float16 activations and get float32 gradients, and torch.compile
records the same dtypes as eager mode. The policy is registered explicitly (shiftzoo/_autocast.py)."""
import pytest
import torch
from torch import nn

import shiftzoo
import shiftzoo._autocast as autocast_policy  # registers the policy (idempotent)
from shiftzoo.functional import shift
from helpers import gen

BF16 = torch.bfloat16
AUTOCAST_CPU = dict(device_type="cpu", dtype=BF16)


def _shift_layers():
    return {
        "sparse": lambda: shiftzoo.SparseShift2d(9, padding="reflect", init_shift=2.0),
        "active": lambda: shiftzoo.ActiveShift2d(9, interp="cubic", init_shift=2.0),
        "grouped": lambda: shiftzoo.GroupedShift2d(9, padding="zeros"),
    }


LAYERS = _shift_layers()


def _cnn(kind, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 9, 3, padding=1), LAYERS[kind](), nn.ReLU(), nn.Conv2d(9, 5, 1))


class _Spy:
    """Records the shift layer's input, output and the gradient arriving at its output."""

    def __init__(self, layer):
        self.input = self.output = self.grad_output = None
        layer.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.input, self.output = args[0].detach(), output.detach()
        if output.requires_grad:
            output.register_hook(self._grad)

    def _grad(self, grad):
        self.grad_output = grad.detach()


@pytest.mark.parametrize("name", autocast_policy.OPS)
@pytest.mark.parametrize("key", autocast_policy.AUTOCAST_KEYS)
def test_policy_is_an_explicit_fallthrough(name, key):
    qualname = f"shiftzoo::{name}"
    assert torch._C._dispatch_has_kernel_for_dispatch_key(qualname, key)
    line = next(line for line in torch._C._dispatch_dump_table(qualname).splitlines() if line.startswith(key + ":"))
    assert "fallthrough" in line and "backend fallback" not in line, line


def test_register_is_idempotent():
    before = autocast_policy.registered()
    assert autocast_policy.register() == before


@pytest.mark.parametrize("interp, grad_interp", [("nearest", "linear"), ("linear", None), ("cubic", None)])
@pytest.mark.parametrize("dtype", [BF16, torch.float32])
def test_op_keeps_the_input_dtype(interp, grad_interp, dtype):
    x = torch.randn(2, 4, 7, 8, generator=gen(1)).to(dtype)
    s = torch.empty(4, 2).uniform_(-3, 3, generator=gen(2))
    expected = shift(x, s, "reflect", interp, grad_interp)
    with torch.autocast(**AUTOCAST_CPU):
        out = shift(x, s, "reflect", interp, grad_interp)
    assert out.dtype == dtype
    assert torch.equal(out, expected)


def test_shifts_are_not_cast():
    # 2.505 is 2.5 in bfloat16, which rounds (half to even) to 2; the float32 shift rounds to 3.
    x = torch.randn(1, 2, 1, 9, generator=gen(3)).to(BF16)
    s = torch.tensor([[0.0, 2.505], [0.0, -0.3]])
    if_cast = shift(x, s.to(BF16), "zeros", "nearest", "linear")
    expected = shift(x, s, "zeros", "nearest", "linear")
    assert not torch.equal(if_cast, expected)  # the check below can tell the two apart
    with torch.autocast(**AUTOCAST_CPU):
        out = shift(x, s, "zeros", "nearest", "linear")
    assert torch.equal(out, expected)


@pytest.mark.parametrize("interp", ["linear", "quadratic", "cubic"])
@pytest.mark.parametrize("dtype", [BF16, torch.float16])
def test_low_precision_equals_float32_rounded_once(interp, dtype):
    """Why the policy does not promote to float32: nothing would be gained."""
    x = torch.randn(2, 6, 9, 11, generator=gen(4)).to(dtype)
    s = torch.empty(6, 2).uniform_(-3, 3, generator=gen(5))
    assert torch.equal(shift(x, s, "symmetric", interp), shift(x.float(), s, "symmetric", interp).to(dtype))


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_cnn_under_autocast(kind):
    model = _cnn(kind)
    layer, spy = model[1], _Spy(model[1])
    x = torch.randn(2, 3, 8, 8, generator=gen(6))
    with torch.autocast(**AUTOCAST_CPU):
        out = model(x)
        loss = out.float().square().mean()
    loss.backward()
    assert spy.input.dtype == BF16  # the autocast convolution's output ...
    assert spy.output.dtype == BF16  # ... stays bfloat16 through the shift
    assert layer.weight.dtype == torch.float32
    # the same as the op called on that bfloat16 input outside autocast, values and gradients
    x_in = spy.input.clone().requires_grad_()
    weight = layer.weight.detach().clone().requires_grad_(layer.weight.requires_grad)
    expected = shift(x_in, weight, layer.padding, layer.interp, layer.grad_interp)
    assert torch.equal(spy.output, expected.detach())
    if layer.weight.requires_grad:
        (grad_x, grad_s) = torch.autograd.grad(expected, (x_in, weight), spy.grad_output)
        assert layer.weight.grad.dtype == torch.float32
        assert torch.equal(layer.weight.grad, grad_s)
        assert grad_s.abs().sum() > 0
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())


def test_float32_input_stays_float32_under_autocast():
    layer = shiftzoo.ActiveShift2d(4)
    x = torch.randn(2, 4, 6, 6, generator=gen(7))
    with torch.autocast(**AUTOCAST_CPU):
        out = layer(x)
    assert out.dtype == torch.float32
    assert torch.equal(out, layer(x))


@pytest.fixture
def edge_padding():
    """A runtime padding, registered for one test (others list the registered paddings)."""
    def edge_then_zeros(i, n):
        return torch.where((i >= -1) & (i <= n), i.clamp(0, n - 1), torch.full_like(i, -1))

    shiftzoo.register_padding("autocast_test_edge", edge_then_zeros, period=0, override=True)
    yield "autocast_test_edge"
    shiftzoo.plugin_registry.unregister("padding", "autocast_test_edge")


def test_runtime_plugins_under_autocast(edge_padding):
    layer = shiftzoo.ActiveShift2d(4, padding=edge_padding, interp="cubic")
    x = torch.randn(2, 4, 6, 7, generator=gen(8)).to(BF16)
    expected = layer(x)
    with torch.autocast(**AUTOCAST_CPU):
        out = layer(x)
    assert out.dtype == BF16 and torch.equal(out, expected)
    out.float().sum().backward()
    assert layer.weight.grad.dtype == torch.float32


def test_inference_form_under_autocast():
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8), nn.ReLU6(), shiftzoo.SparseShift2d(8),
                          nn.BatchNorm2d(8), nn.ReLU6(), nn.Conv2d(8, 4, 1)).eval()
    assert shiftzoo.optimize_for_inference(model).folded
    inference = model[3]
    assert isinstance(inference, shiftzoo.InferenceShift)
    x = torch.randn(2, 8, 6, 6, generator=gen(9)).to(BF16)
    with torch.autocast(**AUTOCAST_CPU):
        out = inference(x)
        assert model(torch.randn(2, 3, 6, 6)).dtype == BF16
    assert out.dtype == BF16 and torch.equal(out, inference(x))


def _captured_shift_nodes(model, x):
    """The aten-level forward graph AOTAutograd records for ``model(x)`` under autocast: the
    (input, shifts, output) dtypes of every shiftzoo.shift node."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    found = []

    def fw_compiler(gm, example_inputs):
        for node in gm.graph.nodes:
            if node.op == "call_function" and node.target is torch.ops.shiftzoo.shift.default:
                found.append((node.args[0].meta["val"].dtype, node.args[1].meta["val"].dtype,
                              node.meta["val"].dtype))
        return make_boxed_func(gm.forward)

    torch._dynamo.reset()
    compiled = torch.compile(model, backend=aot_autograd(fw_compiler=fw_compiler), fullgraph=True)
    with torch.autocast(**AUTOCAST_CPU):
        compiled(x)
    return found


def test_compile_records_the_eager_dtypes():
    model = nn.Sequential(nn.Conv2d(3, 9, 1), shiftzoo.SparseShift2d(9), nn.Conv2d(9, 9, 1),
                          shiftzoo.ActiveShift2d(9), shiftzoo.GroupedShift2d(9))
    nodes = _captured_shift_nodes(model, torch.randn(2, 3, 6, 6, generator=gen(10)))
    assert nodes == [(BF16, torch.float32, BF16)] * 3


@pytest.mark.parametrize("backend", ["eager", "aot_eager", "inductor"])
def test_compiled_model_under_autocast(backend):
    def build():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 9, 3, padding=1), shiftzoo.SparseShift2d(9, init_shift=2.0), nn.ReLU(),
                             nn.Conv2d(9, 9, 1), shiftzoo.ActiveShift2d(9), shiftzoo.GroupedShift2d(9),
                             nn.Conv2d(9, 4, 1))

    x = torch.randn(2, 3, 8, 8, generator=gen(11))
    eager, model = build(), build()
    with torch.autocast(**AUTOCAST_CPU):
        expected = eager(x)
    expected.float().square().mean().backward()

    torch._dynamo.reset()
    compiled = torch.compile(model, backend=backend, fullgraph=True)
    with torch.autocast(**AUTOCAST_CPU):
        out = compiled(x)
    out.float().square().mean().backward()
    assert out.dtype == BF16
    # eager and aot_eager run the very same kernels; inductor fuses the surrounding ops
    exact = backend != "inductor"
    tol = dict(rtol=0, atol=0) if exact else dict(rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(out, expected, **tol)
    for (name, p), q in zip(model.named_parameters(), eager.parameters()):
        assert p.grad.dtype == torch.float32, name
        grad_tol = tol if exact else dict(rtol=2e-2, atol=1e-2 * q.grad.abs().max().item())
        torch.testing.assert_close(p.grad, q.grad, **grad_tol, msg=name)
    for i in (1, 4):
        assert model[i].weight.grad.abs().sum() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_cnn_under_cuda_float16_autocast(kind):
    model = _cnn(kind).cuda()
    layer, spy = model[1], _Spy(model[1])
    x = torch.randn(2, 3, 8, 8, generator=gen(12)).cuda()
    with torch.autocast("cuda", dtype=torch.float16):
        out = model(x)
    out.float().square().mean().backward()
    assert spy.input.dtype == spy.output.dtype == torch.float16
    expected = shift(spy.input, layer.weight.detach(), layer.padding, layer.interp, layer.grad_interp)
    assert torch.equal(spy.output, expected)
    if layer.weight.requires_grad:
        assert layer.weight.grad.dtype == torch.float32 and layer.weight.grad.abs().sum() > 0
