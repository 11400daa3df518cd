"""TorchScript: every layer and block traces with torch.jit.trace, survives torch.jit.save/load, gives
the eager outputs (also for another batch and spatial size) and, for the learnable layers, the eager
gradients through the loaded module. torch.jit.script does not compile the layers: the error is
pinned here and documented in docs/deployment.md."""
import contextlib
import io
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

import shiftzoo
from shiftzoo.block_registry import get_block, list_blocks
from shiftzoo.nn.layers import FAMILIES
from helpers import gen


@contextlib.contextmanager
def _jit_warnings_ignored():
    """PyTorch 2.13 deprecates TorchScript (a DeprecationWarning from every torch.jit entry point),
    and the tracer warns about the layers' shape checks (they hold for the traced rank and channels)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def _traced_roundtrip(module, example):
    """torch.jit.trace, then save to bytes and load back."""
    with _jit_warnings_ignored():
        traced = torch.jit.trace(module, example)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
        buffer.seek(0)
        return torch.jit.load(buffer)


def _node_kinds(scripted):
    """The ops of the forward, submodules' calls inlined."""
    return {node.kind() for node in scripted.inlined_graph.nodes()}


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=gen(seed))


# name -> (layer factory, example input shape, another input shape)
def _layer_cases():
    cases = {}
    spatial = {1: ((9,), (6,)), 2: ((7, 6), (5, 9)), 3: ((5, 4, 6), (4, 6, 3))}
    for family, variants in FAMILIES.items():
        for dims, cls in variants.items():
            channels = 27 if family == "grouped" and dims == 3 else 9
            first, second = spatial[dims]
            cases[cls.__name__] = (lambda cls=cls, c=channels: cls(c), (2, channels) + first, (3, channels) + second)
    for dims in (1, 2, 3):
        first, second = spatial[dims]
        pattern = torch.randint(-2, 3, (5, dims), generator=gen(dims)).float()
        cases[f"FixedShift{dims}d"] = (lambda p=pattern: shiftzoo.FixedShift(p, padding="periodic"),
                                       (2, 5) + first, (1, 5) + second)
    cases["SparseShift2d-strided"] = (lambda: shiftzoo.SparseShift2d(6, padding="reflect", stride=2, crop=1),
                                      (2, 6, 9, 8), (1, 6, 7, 11))
    cases["ActiveShift3d-strided"] = (lambda: shiftzoo.ActiveShift3d(4, interp="cubic", stride=(1, 2, 2)),
                                      (1, 4, 3, 6, 6), (2, 4, 4, 5, 7))
    return cases


LAYERS = _layer_cases()


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_trace_layer(name):
    make, shape, other_shape = LAYERS[name]
    torch.manual_seed(0)
    layer = make()
    x = _randn(*shape, seed=1)
    loaded = _traced_roundtrip(layer, x)

    assert "shiftzoo::shift" in _node_kinds(loaded)  # one op node, no Python left in the graph
    assert "prim::PythonOp" not in _node_kinds(loaded)
    for inp in (x, _randn(*other_shape, seed=2)):  # also another batch and spatial size
        assert torch.equal(loaded(inp), layer(inp))

    # gradients through the loaded module equal eager ones (input, and shifts when they learn)
    learnable = isinstance(layer.weight, nn.Parameter)
    assert [n for n, _ in loaded.named_parameters()] == (["weight"] if learnable else [])
    x = x.clone().requires_grad_()
    grad = _randn(*layer(x).shape, seed=3)
    eager_grads = torch.autograd.grad(layer(x), [x] + list(layer.parameters()), grad)
    loaded_grads = torch.autograd.grad(loaded(x), [x] + list(loaded.parameters()), grad)
    assert len(loaded_grads) == 1 + learnable
    for got, expected in zip(loaded_grads, eager_grads):
        assert torch.equal(got, expected)
    if learnable:
        assert eager_grads[1].abs().sum() > 0
        # the shifts are the module's parameter, not constants baked into the trace
        with torch.no_grad():
            layer.weight.add_(1.5)
            loaded.weight.add_(1.5)
        assert torch.equal(loaded(x), layer(x))


def _block_cases():
    conv = {"type": "conv2d", "in_channels": 8, "out_channels": 8, "kernel_size": 1}
    return {
        "csc": ({"type": "csc", "in_channels": 9, "out_channels": 18, "stride": 2}, (2, 9, 6, 6), (1, 9, 7, 5)),
        "fe_block": ({"type": "fe_block", "in_channels": 8, "out_channels": 12, "stride": 2}, (2, 8, 6, 6),
                     (3, 8, 5, 7)),
        "temporal_shift": ({"type": "temporal_shift", "channels": 8, "n_segment": 2, "module": conv}, (4, 8, 5, 5),
                           (6, 8, 4, 7)),
        "shiftvit_block": ({"type": "shiftvit_block", "channels": 12, "n_div": 4}, (2, 12, 5, 5), (1, 12, 6, 4)),
        "axial_shift": ({"type": "axial_shift", "channels": 8, "shift_size": 3}, (2, 8, 6, 6), (1, 8, 5, 7)),
        "spatial_shift": ({"type": "spatial_shift", "channels": 8}, (2, 8, 5, 5), (3, 8, 6, 4)),
        "sequential": ({"type": "sequential", "layers": [conv, {"type": "sparse_shift2d", "channels": 8}, "relu"]},
                       (2, 8, 5, 5), (1, 8, 4, 6)),
        "concat": ({"type": "concat", "layers": [{"type": "active_shift2d", "channels": 9},
                                                 {"type": "grouped_shift2d", "channels": 9}]},
                   (2, 9, 5, 5), (1, 9, 6, 7)),
        "residual": ({"type": "residual", "body": {"type": "sparse_shift2d", "channels": 8, "init_shift": 2.0}},
                     (2, 8, 5, 5), (1, 8, 3, 6)),
    }


BLOCKS = _block_cases()


def test_every_library_block_is_traced():
    ours = {name for name in list_blocks() if getattr(get_block(name), "__module__", "").startswith("shiftzoo.blocks")}
    assert ours == set(BLOCKS)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_trace_block(name):
    config, shape, other_shape = BLOCKS[name]
    torch.manual_seed(0)
    block = shiftzoo.build_shift(config).eval()
    x = _randn(*shape, seed=4)
    loaded = _traced_roundtrip(block, x)

    assert "shiftzoo::shift" in _node_kinds(loaded) and "prim::PythonOp" not in _node_kinds(loaded)
    for inp in (x, _randn(*other_shape, seed=5)):
        torch.testing.assert_close(loaded(inp), block(inp), rtol=0, atol=0)

    eager_params = dict(block.named_parameters())
    loaded_params = dict(loaded.named_parameters())
    assert loaded_params.keys() == eager_params.keys()
    grad = _randn(*block(x).shape, seed=6)
    names = sorted(eager_params)
    eager_grads = torch.autograd.grad(block(x), [eager_params[n] for n in names], grad)
    loaded_grads = torch.autograd.grad(loaded(x), [loaded_params[n] for n in names], grad)
    for n, got, expected in zip(names, loaded_grads, eager_grads):
        torch.testing.assert_close(got, expected, rtol=0, atol=0, msg=n)
    shift_params = [n for n, m in block.named_modules() if isinstance(m, shiftzoo.ShiftLayer)
                    and isinstance(m.weight, nn.Parameter)]
    for prefix in shift_params:
        assert dict(zip(names, loaded_grads))[f"{prefix}.weight" if prefix else "weight"].abs().sum() > 0


def test_trace_inference_form():
    nn_ = nn
    model = nn_.Sequential(nn_.Conv2d(4, 8, 1, bias=False), nn_.BatchNorm2d(8), nn_.ReLU6(),
                           shiftzoo.SparseShift2d(8, init_shift=2.0), nn_.BatchNorm2d(8), nn_.ReLU6(),
                           nn_.Conv2d(8, 4, 1))
    with torch.no_grad():
        for bn in (model[1], model[4]):
            bn.running_mean.uniform_(-1, 1, generator=gen(7))
            bn.running_var.uniform_(0.5, 2, generator=gen(8))
    model.eval()
    report = shiftzoo.optimize_for_inference(model)
    assert report.folded
    x = _randn(2, 4, 6, 6, seed=9)
    loaded = _traced_roundtrip(model, x)
    assert "shiftzoo::shift_affine" in _node_kinds(loaded)
    for inp in (x, _randn(1, 4, 9, 5, seed=10)):
        assert torch.equal(loaded(inp), model(inp))


_LOAD = """
import sys, torch
{imports}
module = torch.jit.load(sys.argv[1])
x, expected = torch.load(sys.argv[2])
assert torch.equal(module(x), expected)
print("ok")
"""


def test_loading_needs_shiftzoo_imported(tmp_path):
    """The saved file holds the op's name, not its kernels: a fresh interpreter must import shiftzoo
    (which registers shiftzoo::shift) before torch.jit.load."""
    layer = shiftzoo.SparseShift2d(4, padding="reflect")
    x = _randn(2, 4, 6, 6, seed=11)
    with _jit_warnings_ignored():
        torch.jit.save(torch.jit.trace(layer, x), str(tmp_path / "layer.pt"))
    torch.save((x, layer(x).detach()), tmp_path / "data.pt")

    def run(imports):
        return subprocess.run([sys.executable, "-c", _LOAD.format(imports=imports), str(tmp_path / "layer.pt"),
                               str(tmp_path / "data.pt")], capture_output=True, text=True, timeout=120)

    without = run("")
    assert without.returncode != 0
    assert "Unknown builtin op: shiftzoo::shift" in without.stderr
    with_import = run("import shiftzoo")
    assert with_import.returncode == 0, with_import.stderr[-2000:]
    assert with_import.stdout.strip() == "ok"


@pytest.mark.parametrize("make, name", [
    (lambda: shiftzoo.SparseShift2d(4), "SparseShift2d"), (lambda: shiftzoo.GroupedShift1d(3), "GroupedShift1d"),
    (lambda: shiftzoo.build_shift({"type": "csc", "in_channels": 9, "out_channels": 9}), "GroupedShift2d"),
    (lambda: shiftzoo.InferenceShift(torch.zeros(3, 2), "zeros"), "InferenceShift"),
], ids=["SparseShift2d", "GroupedShift1d", "csc", "InferenceShift"])
def test_script_is_not_supported(make, name):
    """torch.jit.script cannot compile the layers (nor a module holding one; PyTorch deprecates
    TorchScript): the error names the layer and what works instead (torch.export, torch.compile,
    torch.jit.trace). Pinned so that the documented behaviour holds."""
    with _jit_warnings_ignored(), pytest.raises(TypeError, match=f"^{name}: torch.jit.script cannot compile "
                                                                  "shiftzoo's layers .*use torch.export.export"):
        torch.jit.script(make())
