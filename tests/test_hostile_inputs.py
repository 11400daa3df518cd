"""Hostile inputs and plugins get an error that names what was expected and what came, before any
kernel runs (eager and under torch.compile); and every padding and interpolation, compiled or
runtime, answers the same way about the shift gradient."""
from __future__ import annotations

import math

import pytest
import torch

import shiftzoo
from helpers import gen
from shiftzoo import plugin_registry
from shiftzoo.functional import shift

X = torch.randn(2, 3, 4, 5, generator=gen(1))
S = torch.zeros(3, 2)


@pytest.mark.parametrize("x, s, match", [
    (X.to(torch.complex64), S, r"expected a floating-point, integer or bool input, got torch.complex64"),
    (X.to(torch.float8_e4m3fn), S, r"expected a float32, float64, float16 or bfloat16 input, got torch.float8_e4m3fn"),
    (X, S.to(torch.complex64), r"expected floating-point shifts, got torch.complex64"),
    (X, S.to(torch.int32), r"expected floating-point shifts, got torch.int32"),
    (X, torch.zeros(3, 2, 1), r"expected shifts of shape \(C, d\) = \(3, 2\)"),
])
def test_unsupported_dtypes_and_shapes(x, s, match):
    with pytest.raises(ValueError, match=match):
        shift(x, s, "zeros", "nearest")


@pytest.mark.host_checks
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("padding", ["zeros", "runtime_zeros"])
def test_non_finite_shifts_are_rejected_under_compile(runtime_zeros, bad, padding):
    s = S.clone()
    s[2, 0] = bad
    compiled = torch.compile(lambda x, s: shift(x, s, padding, "linear"), fullgraph=True, backend="eager")
    with pytest.raises(ValueError, match=r"shifts must be finite, got .* for channel 2, spatial axis 0"):
        compiled(X, s)
    layer = shiftzoo.SparseShift2d(3)
    with torch.no_grad():
        layer.weight[1, 1] = bad
    with pytest.raises(ValueError, match=r"shifts must be finite"):
        torch.compile(layer, backend="eager")(X)


@pytest.fixture
def runtime_zeros():
    shiftzoo.register_padding("runtime_zeros", lambda i, n: torch.where((i >= 0) & (i < n), i, torch.full_like(i, -1)),
                              period=0)
    yield "runtime_zeros"
    plugin_registry.unregister("padding", "runtime_zeros")


@pytest.fixture
def registered():
    names = []

    def add(kind, name, *args, **kwargs):
        (shiftzoo.register_padding if kind == "padding" else shiftzoo.register_interp)(name, *args, **kwargs)
        names.append((kind, name))
        return name

    yield add
    for kind, name in names:
        plugin_registry.unregister(kind, name)


def _linear_except(f, where, make):
    """Linear weights, except where ``where(f)``: there ``make(w)``."""
    w = torch.stack((1 - f, f), -1)
    return torch.where(where(f).unsqueeze(-1), make(w), w)


@pytest.mark.parametrize("kind, args, kwargs, call, error, match", [
    ("padding", (lambda i, n: i.clamp(0, n - 1).float(),), {}, dict(padding="p", interp="nearest", shift=1.0),
     ValueError, r"padding 'p' must return an integer tensor of its input's shape \(3, 4\), got torch.float32"),
    ("padding", (lambda i, n: i.clamp(0, n - 1)[:, 1:],), {}, dict(padding="p", interp="nearest", shift=1.0),
     ValueError, r"padding 'p' must return an integer tensor of its input's shape \(3, 4\), got torch.int64 of "
                 r"shape \(3, 3\)"),
    ("padding", (lambda i, n: [0] * n,), {}, dict(padding="p", interp="nearest", shift=1.0),
     ValueError, r"padding 'p' must return an integer tensor .*, got list"),
    ("padding", (lambda i, n: 1 // 0,), {}, dict(padding="p", interp="nearest", shift=1.0),
     RuntimeError, r"padding 'p' raised ZeroDivisionError: integer division or modulo by zero"),
    ("interp", (), dict(support=2, weights=lambda f: _linear_except(f, lambda f: (f > 0.2) & (f < 0.21),
                                                                   lambda w: w * math.nan)),
     dict(padding="zeros", interp="p", shift=0.795), ValueError,
     r"interp 'p': weights\(f\) at f = 0\.20.* are \[nan, nan\]; they must be finite and sum to 1"),
    ("interp", (), dict(support=2, weights=lambda f: _linear_except(f, lambda f: (f > 0.3) & (f < 0.31),
                                                                   lambda w: 2 * w)),
     dict(padding="zeros", interp="p", shift=0.695), ValueError,
     r"interp 'p': weights\(f\) at f = 0\.30.* are \[1\.3.*, 0\.6.*\]; they must be finite and sum to 1"),
    ("interp", (), dict(support=2, weights=lambda f: torch.stack((1 - f, f), -1) if f.numel() > 3 else f),
     dict(padding="zeros", interp="p", shift=0.5), ValueError,
     r"interp 'p': weights\(f\) must return floating weights of shape f.shape \+ \(2,\) = \(3, 2\), got "
     r"torch.float\d+ of shape \(3,\)"),
    ("interp", (), dict(support=2, weights=lambda f: torch.stack((1 - f, f), -1) if f.numel() > 3 else 1 // 0),
     dict(padding="zeros", interp="p", shift=0.5), RuntimeError, r"interp 'p' raised ZeroDivisionError"),
])
def test_hostile_runtime_plugins(registered, kind, args, kwargs, call, error, match):
    registered(kind, "p", *args, **kwargs)
    with pytest.raises(error, match=match):
        shift(X.float(), torch.full((3, 2), call["shift"]), call["padding"], call["interp"])


def test_a_weight_function_that_raises_is_refused_at_registration():
    with pytest.raises(ValueError, match=r"interp 'raises': weights\(f\) raised ZeroDivisionError"):
        shiftzoo.register_interp("raises", support=2, weights=lambda f: 1 // 0)
    assert "raises" not in {p.name for p in shiftzoo.list_interps()}


# ------------------------------------------------------------------------------------------------
# Consistency: the shift gradient of every padding x interpolation, compiled or runtime
# ------------------------------------------------------------------------------------------------

@pytest.fixture
def runtime_twins(registered):
    """A runtime copy of every compiled plugin (same functions, declared the same way)."""
    for info in list(shiftzoo.list_paddings()):
        if info.compiled:
            registered("padding", f"rt_{info.name}", info.padding, period=info.padding.period)
    for info in list(shiftzoo.list_interps()):
        if info.compiled:
            registered("interp", f"rt_{info.name}", support=info.support, weights=info.interp.weights)
    registered("interp", "rt_constant", support=1, weights=lambda f: torch.ones(f.shape + (1,), dtype=f.dtype))
    return registered


def test_every_plugin_pair_gives_the_shifts_a_gradient_tensor(runtime_twins):
    """interp="nearest" (or any single-tap interpolation) with no grad_interp: a zero shift
    gradient, not None, whichever padding and interpolation are compiled or runtime."""
    x = torch.randn(2, 3, 5, 6, generator=gen(2), dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 3, 5, 6, generator=gen(3), dtype=torch.float64)
    for padding in shiftzoo.list_paddings():
        for interp in shiftzoo.list_interps():
            s = (torch.rand(3, 2, generator=gen(4), dtype=torch.float64) * 4 - 2).requires_grad_()
            grad_x, grad_s = torch.autograd.grad(shift(x, s, padding.name, interp.name), [x, s], g, allow_unused=True)
            where = f"{padding.name} x {interp.name}"
            assert grad_x is not None and grad_s is not None, where
            if interp.support == 1:
                assert torch.equal(grad_s, torch.zeros_like(s)), where
            else:
                assert grad_s.abs().sum() > 0, where
