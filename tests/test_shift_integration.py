"""shiftzoo.shift as a PyTorch citizen: opcheck, torch.compile(fullgraph=True), the fallback."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from helpers import PADDINGS, gen
from shiftzoo import _extension
from shiftzoo.functional import shift


@pytest.mark.parametrize("interp, grad_interp", [("nearest", "linear"), ("linear", "linear"),
                                                 ("cubic", "cubic"), ("nearest", "nearest")])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("sampling", [([1, 1], [0, 0], [0, 0]), ([2, 3], [1, -1], [0, 2])], ids=["unit", "strided"])
def test_opcheck_shift(interp, grad_interp, padding, sampling):
    x = torch.randn(2, 3, 4, 5, generator=gen(1), requires_grad=True)
    s = (torch.randn(3, 2, generator=gen(2)) * 2).requires_grad_()
    torch.library.opcheck(torch.ops.shiftzoo.shift.default, (x, s, padding, interp, grad_interp, *sampling))


@pytest.mark.parametrize("input_grad, shifts_grad", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("stride, size", [(1, 6), (2, 3)])
def test_opcheck_shift_backward(input_grad, shifts_grad, stride, size):
    g = torch.randn(2, 3, size, generator=gen(3))
    x = torch.randn(2, 3, 6, generator=gen(4))
    s = torch.randn(3, 1, generator=gen(5))
    torch.library.opcheck(torch.ops.shiftzoo.shift_backward.default,
                          (g, x, s, "reflect", "nearest", "linear", [stride], [0], [0], [2, 3, 6], input_grad,
                           shifts_grad))


LAYOUTS = {  # (N, C, *S) tensors whose axes lie in memory in other orders than (N, C, *S)
    "channels_last": lambda: torch.randn(2, 3, 4, 5, generator=gen(6)).contiguous(memory_format=torch.channels_last),
    "channels_inner_1d": lambda: torch.randn(2, 5, 3, generator=gen(6)).transpose(1, 2),
    "w_before_h": lambda: torch.randn(2, 3, 5, 4, generator=gen(6)).transpose(2, 3),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("stride", [1, 2])
def test_opcheck_other_memory_orders(stride, layout):
    """Outputs and input gradients keep the input's order of axes in memory, sampled or not (the
    fake kernels' strides must match)."""
    x = LAYOUTS[layout]()
    d = x.dim() - 2
    s = torch.randn(3, d, generator=gen(7)).requires_grad_()
    args = (x.requires_grad_(), s, "border", "linear", "linear", [stride] * d, [0] * d, [0] * d)
    torch.library.opcheck(torch.ops.shiftzoo.shift.default, args)
    out = torch.ops.shiftzoo.shift.default(*args)
    order = sorted(range(x.dim()), key=lambda i: -x.stride(i))
    assert sorted(range(out.dim()), key=lambda i: -out.stride(i)) == order and out.is_contiguous(
        memory_format=torch.channels_last) == x.is_contiguous(memory_format=torch.channels_last)
    grad_in, _ = torch.ops.shiftzoo.shift_backward.default(torch.ones_like(out), x, s, "border", "linear", "linear",
                                                           *args[5:], list(x.shape), True, True)
    assert grad_in.stride() == x.stride()


class TinyShiftNet(torch.nn.Module):
    """1x1 conv -> shift (SSL) -> 1x1 conv, the shape of a ShiftNet block."""

    def __init__(self, channels=8):
        super().__init__()
        self.expand = torch.nn.Conv2d(3, channels, 1)
        self.shifts = torch.nn.Parameter(torch.randn(channels, 2, generator=gen(8)))
        self.project = torch.nn.Conv2d(channels, 3, 1)

    def forward(self, x):
        y = torch.relu(self.expand(x))
        y = shift(y, self.shifts, "zeros", "nearest", "linear")
        return self.project(y)


def test_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    model = TinyShiftNet()
    x = torch.randn(2, 3, 9, 10, generator=gen(9))
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    eager_out = model(x)
    eager_grads = torch.autograd.grad(eager_out.square().sum(), list(model.parameters()))
    out = compiled(x)
    grads = torch.autograd.grad(out.square().sum(), list(model.parameters()))
    torch.testing.assert_close(out, eager_out)
    for a, b in zip(grads, eager_grads):
        torch.testing.assert_close(a, b)


def test_compile_inductor_dynamic_shapes():
    torch._dynamo.reset()
    s = torch.randn(4, 1, generator=gen(10))
    fn = torch.compile(lambda x: shift(x, s, "periodic", "linear") * 2, fullgraph=True, dynamic=True)
    for length in (7, 12):
        x = torch.randn(3, 4, length, generator=gen(length))
        torch.testing.assert_close(fn(x), shift(x, s, "periodic", "linear") * 2)


def test_export_sees_one_node():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.s = torch.nn.Parameter(torch.randn(3, 2, generator=gen(11)))

        def forward(self, x):
            return shift(x, self.s, "reflect", "linear")

    ep = torch.export.export(M(), (torch.randn(1, 3, 6, 6),))
    targets = [n.target for n in ep.graph.nodes if n.op == "call_function"]
    assert targets == [torch.ops.shiftzoo.shift.default]


@pytest.mark.filterwarnings("ignore:Your compiler for AOTAutograd")  # the recording backend's own
def test_compiled_backward_is_one_shift_backward_node():
    """The autograd (C++, backends/autograd.cpp) traces into AOTAutograd's backward graph as a
    single shiftzoo.shift_backward, and the compiled gradients match eager."""
    from torch._dynamo.testing import AotEagerAndRecordGraphs
    torch._dynamo.reset()
    backend = AotEagerAndRecordGraphs()
    x = torch.randn(2, 4, 5, 6, generator=gen(12), requires_grad=True)
    s = (torch.randn(4, 2, generator=gen(13)) * 2).requires_grad_()
    loss = lambda x, s: shift(x, s, "border", "nearest", "linear").square().sum()  # noqa: E731
    compiled_grads = torch.autograd.grad(torch.compile(loss, backend=backend, fullgraph=True)(x, s), (x, s))
    eager_grads = torch.autograd.grad(loss(x, s), (x, s))
    for a, b in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(a, b)
    calls = lambda graph: [n.target for n in graph.graph.nodes if n.op == "call_function"]  # noqa: E731
    assert calls(backend.fw_graphs[0]).count(torch.ops.shiftzoo.shift.default) == 1
    assert calls(backend.bw_graphs[0]).count(torch.ops.shiftzoo.shift_backward.default) == 1


@pytest.mark.parametrize("shifts_learn, kept", [(False, [(4, 2)]), (True, [(2, 4, 5, 6), (4, 2)])])
def test_autograd_keeps_the_input_only_for_the_shift_gradient(shifts_learn, kept):
    """Frozen shifts (GroupedShift) need only the shifts in the backward: the input is not kept."""
    x = torch.randn(2, 4, 5, 6, generator=gen(14), requires_grad=True)
    s = torch.randn(4, 2, generator=gen(15)).requires_grad_(shifts_learn)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(tuple(t.shape)) or t, lambda t: t):
        y = shift(x, s, "zeros", "nearest", "linear")
    assert saved == kept
    y.sum().backward()
    assert x.grad is not None and (s.grad is not None) == shifts_learn


def test_fallback_without_the_extension_warns_and_matches():
    """With shiftzoo._C unimportable, the package warns once and computes with the reference."""
    code = (
        "import sys, warnings, torch\n"
        "sys.modules['shiftzoo._C'] = None  # makes `from . import _C` raise ImportError\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import shiftzoo\n"
        "assert not shiftzoo.has_extension()\n"
        "assert any('could not be loaded' in str(w.message) for w in caught), caught\n"
        "x = torch.arange(10.).view(1, 2, 5); s = torch.tensor([[1.], [-2.]])\n"
        "print(shiftzoo.functional.shift(x, s, 'zeros', 'nearest').tolist())\n"
    )
    env = dict(os.environ, PYTHONWARNINGS="default")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[[[0.0, 0.0, 1.0, 2.0, 3.0], [7.0, 8.0, 9.0, 0.0, 0.0]]]"


def test_baseline_and_avx2_kernels_agree():
    """The kernels are compiled per instruction set; SHIFTZOO_CPU_ISA=baseline forces the
    portable copy (chosen once per process: each run is a subprocess, which reports the instruction
    set it really used). Both must compute the same values (up to FMA rounding)."""
    code = (
        "import torch, shiftzoo\n"
        "from shiftzoo import _extension\n"
        "g = torch.Generator().manual_seed(0)\n"
        "x = torch.randn(2, 5, 9, 11, generator=g, requires_grad=True)\n"
        "s = (torch.randn(5, 2, generator=g) * 3).requires_grad_()\n"
        "outs = []\n"
        "for interp, gi in (('nearest', 'linear'), ('linear', None), ('cubic', None)):\n"
        "    y = shiftzoo.functional.shift(x, s, 'reflect', interp, gi)\n"
        "    outs += [y.detach(), *torch.autograd.grad((y * y).sum(), (x, s))]\n"
        "torch.save(outs, __import__('sys').argv[1])\n"
        "print(_extension.cpu_isa()['active'])\n"
    )
    results, active = [], []
    for isa in ("baseline", "best"):
        path = f"{os.environ.get('TMPDIR', '/tmp')}/shiftzoo_isa_{isa}_{os.getpid()}.pt"
        env = dict(os.environ, SHIFTZOO_CPU_ISA=isa)
        done = subprocess.run([sys.executable, "-c", code, path], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        results.append(torch.load(path))
        active.append(done.stdout.strip().splitlines()[-1])
        os.remove(path)
    compiled = _extension.cpu_isa()["compiled"]
    assert active[0] == "baseline", active  # the variable really switched the kernels
    assert active[1] in compiled, (active, compiled)
    if active[1] == "baseline":
        pytest.skip(f"this CPU runs only the baseline kernels (compiled: {compiled}): nothing to compare")
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
