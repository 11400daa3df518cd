"""Concurrency and determinism: the ops called from several Python threads at once give what they
give one after the other (their caches are shared), and they run, bit-identically, under
``torch.use_deterministic_algorithms(True)``. (Bit-identity across runs and thread counts of each
op kind: test_mutations_guard.py; memory over many calls: tools/memory_growth.py.)"""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

import shiftzoo
from helpers import gen
from shiftzoo import plugin_registry
from shiftzoo.functional import shift
from shiftzoo.inference import InferenceShift

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runtime_padding():
    shiftzoo.register_padding("thread_zeros", lambda i, n: torch.where((i >= 0) & (i < n), i, torch.full_like(i, -1)),
                              period=0)
    yield "thread_zeros"
    plugin_registry.unregister("padding", "thread_zeros")


def _case(kind: str, seed: int, runtime_padding: str):
    """One forward+backward of an op kind on inputs drawn from ``seed``: output and gradients."""
    g = gen(seed)
    channels_last = kind.endswith("_cl")
    x = torch.randn(3, 24, 13, 17, generator=g)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    if kind.startswith("affine"):  # the inference form: its tables live in a process-wide cache
        shifts = torch.randint(-2, 3, (24, 2), generator=g).double()
        scale = torch.rand(24, generator=g) + 0.5
        layer = InferenceShift(shifts, "zeros", pre=((scale, -scale), 0.0, 6.0))
        with torch.no_grad():
            return (layer(x),)
    x.requires_grad_()
    s = (torch.rand(24, 2, generator=g) * 6 - 3).requires_grad_()
    padding, interp, grad_interp = {
        "ssl": ("reflect", "nearest", "linear"), "ssl_cl": ("zeros", "nearest", "linear"),
        "cubic": ("symmetric", "cubic", None), "runtime": (runtime_padding, "linear", None),
        "strided": ("border", "linear", None)}[kind]
    stride = 2 if kind == "strided" else 1
    out = shift(x, s, padding, interp, grad_interp, stride=stride, crop=1 if stride > 1 else 0)
    grad_x, grad_s = torch.autograd.grad(out, [x, s], torch.randn(out.shape, generator=g))
    return out.detach(), grad_x, grad_s


KINDS = ["ssl", "ssl_cl", "cubic", "runtime", "strided", "affine", "affine_cl"]


def test_concurrent_calls_equal_sequential_ones(runtime_padding):
    jobs = [(kind, seed) for seed in range(6) for kind in KINDS]
    sequential = [_case(kind, seed, runtime_padding) for kind, seed in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(2):
            concurrent = list(pool.map(lambda job: _case(*job, runtime_padding), jobs))
            for (kind, seed), one, other in zip(jobs, sequential, concurrent):
                for a, b in zip(one, other):
                    assert torch.equal(a, b), (kind, seed)


def test_deterministic_algorithms_are_honoured(runtime_padding):
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        for kind in KINDS:
            first, second = _case(kind, 7, runtime_padding), _case(kind, 7, runtime_padding)
            for a, b in zip(first, second):
                assert torch.equal(a, b), kind
    finally:
        torch.use_deterministic_algorithms(before)


def test_memory_growth_script_runs():
    """tools/memory_growth.py with a few calls (the 10,000-call figure is in the script's docs)."""
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "memory_growth.py"), "--calls", "300",
                           "--limit-mib", "64"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RSS growth" in done.stdout
