"""Speed of ``shiftzoo.functional.shift`` against the ops it is meant to replace.

Run from the repository root (``shiftzoo`` must be importable)::

    python benchmarks/bench_shift.py [--quick]
    python benchmarks/bench_shift.py --shapes 32x256x1024 4x32x16x56x56 --threads 2 --json out.json

Every row is one shift variant on one input shape. All candidates run in ONE process on the SAME
input tensors, interleaved: each round runs every candidate of a row group once, in a fresh random
order (so that no candidate always follows the same one, e.g. the cache-flushing depthwise conv),
after a few warm-up rounds, and the per-candidate median
of R rounds is reported (``time.perf_counter``). The interleaving spreads machine noise and
allocator-state drift over all candidates alike. Reported ratios (op time / baseline time):

* ``×clone``: to ``x.clone()`` of the same tensor, the floor for any op returning a new tensor;
* ``×dwconv``: to the depthwise convolution with kernel 3 that a shift layer replaces
  (``F.conv{1,2,3}d(x, w, padding=1, groups=C)``), forward for forward rows and
  forward+backward (input and weight gradients) for forward+backward rows;
* ``×best-pytorch``: to the best pure-PyTorch equivalent: per-channel-group slicing into a zero
  tensor (integer shifts, ``zeros``), ``torch.roll`` (``periodic``), ``F.pad`` + crop
  (``border``, ``reflect``), and per-channel ``F.grid_sample`` for interpolated shifts.

Forward+backward rows time ``y = op(x); y.backward(g)`` with a pre-made ``g``; gradients are
reset to ``None`` (outside the timed region) before every run. Row kinds:

* ``ssl``: SparseShift, ``interp="nearest", grad_interp="linear"``, real shifts in [-2, 2);
* ``grouped``: GroupedShift (ShiftNet), nearest, frozen integer shifts in {-1, 0, 1} assigned to
  contiguous channel groups; only the input gradient is computed;
* ``active``: ActiveShift, ``interp="linear"`` (or ``"cubic"``), real shifts in [-2, 2);
* ``ref:`` rows, in the forward+backward groups: the floors of the two gradient kinds, PyTorch's
  cheapest autograd ops with the same memory traffic and no shift at all: ``torch.neg`` (input
  gradient only, as Grouped) and a per-channel scale ``x * s`` with ``s`` learned (input and
  per-channel parameter gradients, as SSL and Active). They carry no target.

This is a measurement tool: it asserts nothing about time. Before timing, each pure-PyTorch
comparator's forward is checked against the op's and any mismatch is printed; any error raised by
a candidate is reported in place of its timing.

``--device cuda`` times the CUDA kernels instead (``run_cuda``): per shape (default
``64x128x56x56 256x64x56x56 256x1024x7x7``), dtype (float32, bfloat16) and layout (contiguous,
channels_last), a device-to-device copy (``x.clone()``, with its GB/s), cuDNN's depthwise 3x3
convolution forward and forward+backward, and the shift rows (nearest forward with GroupedShift's
integer shifts, linear forward, SSL forward and forward+backward, ActiveShift linear
forward+backward), timed with CUDA events (``timing.cuda_event_timings``: interleaved rounds of
``--iters`` iterations each, after warm-up rounds; medians). Reported: ms, ×copy, the fraction
of the copy's bandwidth a forward reaches (copy ms / op ms: both read and write the tensor once),
and the speed-up over the depthwise convolution (conv ms / op ms: forward against its forward,
forward+backward against its forward+backward).
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

import shiftzoo
from shiftzoo import reference
from shiftzoo.functional import shift
from timing import (Candidate, add_run_options, cuda_event_timings, cuda_info, describe_error, interleaved_timings,
                    machine_info, parse_run_options, run_under_conditions, strip_options)

Fn = Callable[[Tensor], Tensor]
Selector = slice | Tensor
PADDINGS = ("zeros", "border", "periodic", "reflect", "symmetric")
ISSUE5_SHAPES = ("32x64x56x56", "8x256x28x28", "64x32x112x112", "32x256x1024", "4x32x16x56x56")
# plus a late-stage shape (ShiftNet/FE-Net's last blocks: many channels of 7x7 planes), which the
# issue's suite lacks; its rows are reported but held to no target
DEFAULT_SHAPES = ISSUE5_SHAPES + ("32x1024x7x7",)
QUICK_SHAPES = ("32x64x56x56", "8x256x28x28")
CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_PAD_MODE = {"border": "replicate", "reflect": "reflect"}  # symmetric: no torch equivalent
INTEGER_BEST = {"zeros": "slicing", "periodic": "roll", "border": "pad+crop", "reflect": "pad+crop"}


# ------------------------------------------------------------------------------------------------
# Pure-PyTorch comparators
# ------------------------------------------------------------------------------------------------

def channel_groups(int_shifts: Tensor) -> list[tuple[tuple[int, ...], Selector]]:
    """Channels grouped by equal integer shift: ``(shift, slice if contiguous else index)``."""
    keys, inverse = torch.unique(int_shifts.long(), dim=0, return_inverse=True)
    groups = []
    for k, key in enumerate(keys.tolist()):
        idx = (inverse == k).nonzero().flatten()
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        groups.append((tuple(key), slice(lo, hi) if hi - lo == idx.numel() else idx))
    return groups


def shift_pytorch(x: Tensor, groups: Sequence[tuple[tuple[int, ...], Selector]],
                  padding: str) -> Tensor:
    """Integer per-channel shift ``out[:, c, p] = x[:, c, p - s_c]`` with plain PyTorch ops."""
    spatial, dims = x.shape[2:], tuple(range(2, x.dim()))
    if padding == "periodic":
        out = torch.empty_like(x)
        for key, sel in groups:
            out[:, sel] = torch.roll(x[:, sel], key, dims)
        return out
    if padding in TORCH_PAD_MODE:
        p = max(abs(v) for key, _ in groups for v in key)
        xp = F.pad(x, [p] * (2 * len(spatial)), mode=TORCH_PAD_MODE[padding])
        out = torch.empty_like(x)
        for key, sel in groups:
            out[:, sel] = xp[(slice(None), sel, *(slice(p - s, p - s + n)
                                                  for s, n in zip(key, spatial)))]
        return out
    assert padding == "zeros", padding
    out = torch.zeros_like(x)
    for key, sel in groups:
        if any(abs(s) >= n for s, n in zip(key, spatial)):
            continue  # shifted entirely out: stays zero
        dst = (slice(max(s, 0), n + min(s, 0)) for s, n in zip(key, spatial))
        src = (slice(max(-s, 0), n - max(s, 0)) for s, n in zip(key, spatial))
        out[(slice(None), sel, *dst)] = x[(slice(None), sel, *src)]
    return out


class GridSampleShift:
    """Per-channel real shift with ``F.grid_sample`` on ``(N*C, 1, *S)`` (zeros padding).

    1D inputs are lifted to 2D with a height of one. ``grid(shifts)`` is differentiable in
    ``shifts``; the base coordinate grid is built once here.
    """

    def __init__(self, shape: Sequence[int], mode: str, dtype: torch.dtype):
        n, c, *spatial = shape
        self.n, self.c, self.mode = n, c, mode
        self.lifted = len(spatial) == 1
        self.sizes = [1, *spatial] if self.lifted else list(spatial)
        axes = [torch.arange(s, dtype=torch.float64) for s in self.sizes]
        # (*S, d) coordinates, x (the last axis) first as grid_sample wants
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).flip(-1)
        scale = 2.0 / (torch.tensor(self.sizes, dtype=torch.float64).flip(0) - 1).clamp(min=1)
        self.base = (coords * scale - 1).to(dtype)
        self.scale = scale.to(dtype)

    def grid(self, shifts: Tensor) -> Tensor:
        s = shifts.to(self.base.dtype)
        if self.lifted:
            s = torch.cat([s.new_zeros(self.c, 1), s], 1)
        d = len(self.sizes)
        g = self.base - (s.flip(-1) * self.scale).view(self.c, *[1] * d, d)  # (C, *S, d)
        return g.expand(self.n, *g.shape).reshape(self.n * self.c, *self.sizes, d)

    def __call__(self, x: Tensor, grid: Tensor) -> Tensor:
        y = F.grid_sample(x.reshape(self.n * self.c, 1, *self.sizes), grid, mode=self.mode,
                          padding_mode="zeros", align_corners=True)
        return y.reshape(x.shape)


# ------------------------------------------------------------------------------------------------
# Rows, candidates and interleaved timing
# ------------------------------------------------------------------------------------------------

@dataclass
class RowSpec:
    """One row: a shiftzoo forward and (optionally) a pure-PyTorch comparator of it."""
    name: str
    op: Fn
    leaves: tuple[Tensor, ...] = ()           # parameters besides x whose gradient is computed
    best: Fn | None = None
    best_name: str = "—"


@dataclass
class Target:
    """One of issue 5's speed targets as it applies to a row: ``value <= limit``."""
    what: str     # e.g. "×clone", "×contiguous", "×dwconv"
    limit: float
    value: float

    @property
    def met(self) -> bool:
        return self.value <= self.limit

    def __str__(self) -> str:
        return f"{self.what} ≤ {self.limit:.2f}: {'met' if self.met else f'MISSED ({self.value:.2f})'}"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None where either was not measured."""
    return None if numerator is None or denominator is None else numerator / denominator


@dataclass
class RowResult:
    shape: str
    group: str
    row: str
    op_ms: float | None = None
    clone_ms: float | None = None
    dwconv_ms: float | None = None
    best_ms: float | None = None
    best_name: str = "—"
    check_max_abs_diff: float | None = None  # |op - best| on the forward, before timing
    errors: list[str] = field(default_factory=list)
    quartiles_ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # op/clone/...
    targets: list[Target] = field(default_factory=list)  # filled in by assess_targets

    def ratio(self, base_ms: float | None) -> float | None:
        return ratio(self.op_ms, base_ms)

    def to_json(self) -> dict:
        return {**asdict(self), "x_clone": self.ratio(self.clone_ms),
                "x_dwconv": self.ratio(self.dwconv_ms), "x_best_pytorch": self.ratio(self.best_ms),
                "targets": [{**asdict(t), "met": t.met} for t in self.targets]}


def make_candidate(fn: Fn, x: Tensor, backward: bool, leaves: Sequence[Tensor],
                   g: Tensor | None) -> Candidate:
    """``fn(x)``, or ``fn(x).backward(g)`` with the gradients of ``x`` and ``leaves`` reset."""
    if not backward:
        return Candidate(run=lambda: fn(x), reset=lambda: None)
    params = (x, *leaves)

    def reset() -> None:
        for p in params:
            p.grad = None

    return Candidate(run=lambda: fn(x).backward(g), reset=reset)


def run_group(shape_str: str, group: str, x: Tensor, backward: bool, rows: Sequence[RowSpec],
              conv_w: Tensor, rounds: int, warmup: int) -> list[RowResult]:
    """Times one row group: clone, the depthwise conv and every row's op and comparator."""
    xg = x.detach().requires_grad_(backward)  # same storage as x
    g = torch.randn_like(x) if backward else None
    w = conv_w.detach().requires_grad_(backward)
    c = x.shape[1]
    cands = {"clone": make_candidate(torch.clone, x, False, (), None),
             "dwconv": make_candidate(lambda t: CONV[x.dim() - 2](t, w, padding=1, groups=c),
                                      xg, backward, (w,), g)}
    results = []
    for row in rows:
        res = RowResult(shape_str, group, row.name, best_name=row.best_name)
        results.append(res)
        fns = {"op": row.op} | ({"best": row.best} if row.best is not None else {})
        outs = {}
        for kind, fn in fns.items():
            try:
                with torch.no_grad():
                    outs[kind] = fn(x)
                cand = make_candidate(fn, xg, backward, row.leaves, g)
                cand.reset()
                cand.run()  # fails here if the backward does
                cands[f"{kind}:{row.name}"] = cand
            except Exception as e:  # a measurement tool: report, keep going
                res.errors.append(f"{kind}: {describe_error(e)}")
        if len(outs) == 2:
            res.check_max_abs_diff = (outs["op"].float() - outs["best"].float()).abs().max().item()
    timings = interleaved_timings(cands, rounds, warmup)
    for res in results:
        mine = {"clone": timings["clone"], "dwconv": timings["dwconv"]}
        mine |= {k: timings[f"{k}:{res.row}"] for k in ("op", "best")
                 if f"{k}:{res.row}" in timings}
        res.op_ms, res.clone_ms, res.dwconv_ms, res.best_ms = (
            mine[k].median_ms if k in mine else None for k in ("op", "clone", "dwconv", "best"))
        res.quartiles_ms = {k: (t.q1_ms, t.q3_ms) for k, t in mine.items()}
        if res.best_ms is None:
            res.best_name = "—"
    return results


# ------------------------------------------------------------------------------------------------
# Row definitions
# ------------------------------------------------------------------------------------------------

def shiftnet_shifts(c: int, d: int) -> Tensor:
    """ShiftNet assignment: the 3**d directions in {-1, 0, 1}**d on contiguous channel groups,
    the remainder channels joining the (last) zero-shift group."""
    dirs = [v for v in itertools.product((-1, 0, 1), repeat=d) if any(v)] + [(0,) * d]
    per = c // len(dirs)
    s = torch.zeros(c, d)
    for k, v in enumerate(dirs[:-1]):
        s[k * per:(k + 1) * per] = torch.tensor(v, dtype=s.dtype)
    return s


def sz(shifts: Tensor, padding: str = "zeros", interp: str = "nearest",
       grad_interp: str | None = None) -> Fn:
    return lambda t: shift(t, shifts, padding=padding, interp=interp, grad_interp=grad_interp)


def build_rows(shape: Sequence[int], dtype: torch.dtype, all_paddings: bool
               ) -> dict[str, tuple[bool, bool, list[RowSpec]]]:
    """Row groups for one shape: ``group -> (backward, channels_last, rows)``."""
    c, d = shape[1], len(shape) - 2
    real = torch.empty(c, d).uniform_(-2, 2)               # SSL / Active
    real_g = real.clone().requires_grad_(True)
    grp = shiftnet_shifts(c, d)                            # Grouped (frozen)
    ssl_groups, grp_groups = channel_groups(torch.round(real)), channel_groups(grp)
    linear = GridSampleShift(shape, "bilinear", dtype)
    linear_grid = linear.grid(real)                        # forward rows: built once, untimed

    def slicing(groups, padding="zeros") -> tuple[Fn | None, str]:
        if padding not in INTEGER_BEST:
            return None, "—"
        return (lambda t: shift_pytorch(t, groups, padding)), INTEGER_BEST[padding]

    def ssl_fwd(padding: str, suffix: str = "") -> RowSpec:
        best, best_name = slicing(ssl_groups, padding)
        label = "" if padding == "zeros" else f" ({padding})"
        return RowSpec(f"ssl fwd{label}{suffix}", sz(real, padding, "nearest", "linear"),
                       best=best, best_name=best_name)

    def active_linear_fwd(suffix: str = "") -> RowSpec:
        return RowSpec(f"active linear fwd{suffix}", sz(real, interp="linear"),
                       best=lambda t: linear(t, linear_grid), best_name="grid_sample")

    cubic_best = {}
    if d == 2:  # grid_sample has bicubic for 4-D inputs only
        cubic = GridSampleShift(shape, "bicubic", dtype)
        cubic_grid = cubic.grid(real)
        cubic_best = {"best": lambda t: cubic(t, cubic_grid), "best_name": "grid_sample"}

    # Runtime plugins (no compiler): the built-in zeros padding re-registered from Python; the
    # comparator column is the compiled built-in it mirrors.
    shiftzoo.register_padding("runtime_zeros", reference.pad_zeros, period=0, override=True)
    runtime_rows = [
        RowSpec(f"{name} fwd [runtime padding]", sz(real, "runtime_zeros", interp, grad),
                best=sz(real, "zeros", interp, grad), best_name="compiled")
        for name, interp, grad in (("ssl", "nearest", "linear"), ("active linear", "linear", None))]

    grp_best, _ = slicing(grp_groups)
    fwd = [ssl_fwd("zeros")]
    fwd += [ssl_fwd(p) for p in PADDINGS[1:]] if all_paddings else []
    fwd += [RowSpec("grouped fwd", sz(grp), best=grp_best, best_name="slicing"),
            active_linear_fwd(),
            RowSpec("active cubic fwd", sz(real, interp="cubic"), **cubic_best)]
    fwd += runtime_rows if all_paddings else []

    scale = torch.randn(1, c, *[1] * d, dtype=dtype).requires_grad_(True)

    def fwd_bwd(suffix: str = "") -> list[RowSpec]:
        return [
            RowSpec(f"ssl fwd+bwd{suffix}", sz(real_g, "zeros", "nearest", "linear"), leaves=(real_g,)),
            RowSpec(f"grouped fwd+bwd{suffix}", sz(grp), best=grp_best, best_name="slicing"),
            RowSpec(f"active linear fwd+bwd{suffix}", sz(real_g, interp="linear"), leaves=(real_g,),
                    best=lambda t: linear(t, linear.grid(real_g)), best_name="grid_sample"),
            # the floors of the two gradient kinds, measured in the same group (no targets)
            RowSpec(f"{REF}neg fwd+bwd{suffix}", torch.neg),
            RowSpec(f"{REF}channel scale fwd+bwd{suffix}", lambda t: t * scale, leaves=(scale,)),
        ]

    groups = {"fwd": (False, False, fwd), "fwd+bwd": (True, False, fwd_bwd())}
    if len(shape) in CHANNELS_LAST:
        cl = " [channels_last]"
        groups["fwd channels_last"] = (False, True, [
            ssl_fwd("zeros", cl), RowSpec(f"grouped fwd{cl}", sz(grp), best=grp_best, best_name="slicing"),
            active_linear_fwd(cl)])
        groups["fwd+bwd channels_last"] = (True, True, fwd_bwd(cl))
    return groups


def bench_shape(shape: Sequence[int], dtype: torch.dtype, all_paddings: bool, rounds: int,
                warmup: int) -> list[RowResult]:
    shape_str = "x".join(map(str, shape))
    x = torch.randn(*shape, dtype=dtype)
    w = torch.randn(shape[1], 1, *[3] * (len(shape) - 2), dtype=dtype)
    fmt = CHANNELS_LAST.get(len(shape))
    x_cl = x.contiguous(memory_format=fmt) if fmt else None
    results = []
    for group, (backward, cl, rows) in build_rows(shape, dtype, all_paddings).items():
        xin = x_cl if cl else x
        wg = w.contiguous(memory_format=fmt) if cl else w
        results += run_group(shape_str, group, xin, backward, rows, wg, rounds, warmup)
    return results


# ------------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------------

CL = " [channels_last]"
REF = "ref: "  # reference rows: PyTorch's own cheapest ops of the same traffic, held to no target
DWCONV_SHAPES = ("32x64x56x56", "8x256x28x28")


def clone_limit(row: str, spatial_dims: int, dtype: str) -> float | None:
    """Issue 5's ×clone target for a row (contiguous layout), or None where it sets none."""
    row = row.removesuffix(CL)
    if row.startswith(("ssl fwd", "grouped fwd")) and "bwd" not in row and "runtime" not in row:
        return 1.5 if spatial_dims == 3 or dtype == "bfloat16" else 1.3
    if row == "active linear fwd":
        return 4.0 if spatial_dims == 3 else 2.5
    return {"grouped fwd+bwd": 2.5, "ssl fwd+bwd": 4.0,
            "active linear fwd+bwd": 6.0 if spatial_dims == 2 else None}.get(row)


def assess_targets(results: Sequence[RowResult], dtype: str) -> None:
    """Attaches to each row the targets of issue 5 that apply to it (2 threads, float32 is what
    the issue specifies; other settings are assessed against the same numbers, for reference)."""
    contiguous = {(r.shape, r.row): r.ratio(r.clone_ms) for r in results if CL not in r.row}
    for r in results:
        x_clone = r.ratio(r.clone_ms)
        if x_clone is None or r.shape not in ISSUE5_SHAPES or r.row.startswith(REF):
            continue
        dims = r.shape.count("x") - 1
        base = contiguous.get((r.shape, r.row.removesuffix(CL)))
        if CL in r.row:  # channels-last rows, any row, are held to their contiguous figure
            if base:
                r.targets.append(Target("×contiguous", 1.3, x_clone / base))
        elif (limit := clone_limit(r.row, dims, dtype)) is not None:
            r.targets.append(Target("×clone", limit, x_clone))
        x_dw = r.ratio(r.dwconv_ms)
        if r.shape in DWCONV_SHAPES and x_dw is not None and r.row in ("ssl fwd", "ssl fwd+bwd"):
            r.targets.append(Target("×dwconv", 1 / 3 if r.row == "ssl fwd" else 1 / 5, x_dw))


def fmt_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}"


def markdown_table(results: Sequence[RowResult]) -> str:
    lines = ["| shape | row | op ms | ×clone | ×dwconv | ×best-pytorch | issue-5 targets |",
             "|---|---|--:|--:|--:|--:|---|"]
    for r in results:
        if r.op_ms is None:
            op = f"error ({'; '.join(e for e in r.errors if e.startswith('op'))})"
        else:
            op = f"{r.op_ms:.3f}"
        best = fmt_ratio(r.ratio(r.best_ms))
        best = best if best == "—" else f"{best} ({r.best_name})"
        targets = "; ".join(map(str, r.targets)) or "—"
        lines.append(f"| {r.shape} | {r.row} | {op} | {fmt_ratio(r.ratio(r.clone_ms))} | "
                     f"{fmt_ratio(r.ratio(r.dwconv_ms))} | {best} | {targets} |")
    return "\n".join(lines)


def summary_table(results: Sequence[RowResult]) -> str:
    """Rows x shapes, ×clone (×dwconv for SSL rows: to the conv in the same layout), a missed
    issue-5 target marked with "✗"."""
    shapes = list(dict.fromkeys(r.shape for r in results))
    rows = list(dict.fromkeys(r.row for r in results))
    by_key = {(r.shape, r.row): r for r in results}
    lines = ["| ×clone (✗: misses its target) | " + " | ".join(shapes) + " |",
             "|---|" + "--:|" * len(shapes)]
    for row in rows:
        cells = []
        for shape in shapes:
            r = by_key.get((shape, row))
            x = None if r is None else r.ratio(r.clone_ms)
            if x is None:
                cells.append("—")
                continue
            cell = f"{x:.2f}"
            if row.startswith("ssl") and r.ratio(r.dwconv_ms) is not None:
                cell += f" ({r.ratio(r.dwconv_ms):.2f} dw)"
            cells.append(cell + (" ✗" if any(not t.met for t in r.targets) else ""))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(results: Sequence[RowResult], dtype: torch.dtype) -> list[str]:
    """Per-group baseline timings, errors and comparator mismatches."""
    tol = 1e-3 if dtype == torch.float32 else 5e-2
    why = ("; expected: grid_sample's grid has the input's dtype, so its sampling positions are "
           f"rounded to {str(dtype).split('.')[-1]}" if dtype != torch.float32 else "")
    out = []
    seen = set()
    for r in results:
        key = (r.shape, r.group)
        if key not in seen:
            seen.add(key)
            out.append(f"{r.shape} {r.group}: clone {r.clone_ms:.3f} ms, "
                       f"dwconv{' fwd+bwd' if 'bwd' in r.group else ''} {r.dwconv_ms:.3f} ms")
        out += [f"ERROR {r.shape} {r.row}: {e}" for e in r.errors]
        if r.check_max_abs_diff is not None and r.check_max_abs_diff > tol:
            out.append(f"MISMATCH {r.shape} {r.row}: max |op - {r.best_name}| = "
                       f"{r.check_max_abs_diff:.3g} (forward, before timing"
                       f"{why if r.best_name == 'grid_sample' else ''})")
    return out


def parse_shape(s: str) -> tuple[int, ...]:
    shape = tuple(int(v) for v in s.lower().split("x"))
    if not 3 <= len(shape) <= 5:
        raise argparse.ArgumentTypeError(f"shape {s!r}: need N x C x 1-3 spatial sizes")
    return shape


def run_setting(shapes: Sequence[Sequence[int]], dtype_name: str, threads: int, rounds: int,
                warmup: int, seed: int) -> dict:
    """Every shape at one (dtype, thread count): prints the table, returns the JSON part."""
    dtype = getattr(torch, dtype_name)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    info = machine_info(torch.get_num_threads())
    t_start = time.perf_counter()
    results: list[RowResult] = []
    for i, shape in enumerate(shapes):
        results += bench_shape(shape, dtype, all_paddings=(i == 0), rounds=rounds, warmup=warmup)
    elapsed = time.perf_counter() - t_start
    assess_targets(results, dtype_name)

    print(f"## shiftzoo.shift on {info['cpu_model'] or info['processor']}, torch {info['torch']}, "
          f"{info['threads']} threads, {dtype_name}, allocator: {info['malloc']}; medians of {rounds} "
          f"interleaved rounds (+{warmup} warm-up), {elapsed:.0f} s.\n")
    print(markdown_table(results))
    print()
    for line in notes(results, dtype):
        print(f"- {line}")
    met = sum(t.met for r in results for t in r.targets)
    missed = sum(not t.met for r in results for t in r.targets)
    print(f"- issue-5 targets: {met} met, {missed} missed (see the last column)")
    print("\nSummary (×clone; for SSL rows also ×dwconv, below 1 is faster than the conv):\n")
    print(summary_table(results))
    print()
    return {"machine": info, "config": {"shapes": ["x".join(map(str, s)) for s in shapes],
                                        "dtype": dtype_name, "threads": threads, "rounds": rounds,
                                        "warmup": warmup, "seed": seed, "elapsed_s": elapsed},
            "rows": [r.to_json() for r in results]}


# ------------------------------------------------------------------------------------------------
# CUDA (--device cuda)
# ------------------------------------------------------------------------------------------------

CUDA_SHAPES = ("64x128x56x56", "256x64x56x56", "256x1024x7x7")
CUDA_QUICK_SHAPES = ("64x128x56x56",)
CUDA_LAYOUTS = ("contiguous", "channels_last")
CUDA_ROUNDS, CUDA_QUICK_ROUNDS, CUDA_WARMUP = 10, 3, 2
# (row, forward+backward, baseline of its speed-up): the copy first, the convolution, then ours
CUDA_ROWS = (
    ("copy", False, None),
    ("dwconv3x3 fwd", False, None),
    ("dwconv3x3 fwd+bwd", True, None),
    ("nearest fwd (grouped)", False, "dwconv3x3 fwd"),
    ("linear fwd", False, "dwconv3x3 fwd"),
    ("ssl fwd", False, "dwconv3x3 fwd"),
    ("ssl fwd+bwd", True, "dwconv3x3 fwd+bwd"),
    ("active linear fwd+bwd", True, "dwconv3x3 fwd+bwd"),
)


@dataclass
class CudaRow:
    shape: str
    dtype: str
    layout: str
    row: str
    ms: float | None = None
    q1_ms: float | None = None
    q3_ms: float | None = None
    copy_ms: float | None = None
    dwconv_ms: float | None = None  # the convolution this row's speed-up is against
    bytes_moved: int = 0  # one read and one write of the input tensor
    host_bound: bool = False
    error: str | None = None

    @property
    def x_copy(self) -> float | None:
        return ratio(self.ms, self.copy_ms)

    @property
    def copy_bandwidth_fraction(self) -> float | None:
        """For forwards: the fraction of the copy's bandwidth (same bytes read and written)."""
        if self.ms is None or self.copy_ms is None or "bwd" in self.row or self.row.startswith("dwconv"):
            return None
        return self.copy_ms / self.ms

    @property
    def speedup_vs_dwconv(self) -> float | None:
        return ratio(self.dwconv_ms, self.ms)

    @property
    def gbps(self) -> float | None:
        """Bytes read + written by a copy of the tensor per second (the copy row: its bandwidth)."""
        return None if self.ms is None else self.bytes_moved / (self.ms * 1e-3) / 1e9

    def to_json(self) -> dict:
        return {**asdict(self), "x_copy": self.x_copy, "copy_bandwidth_fraction": self.copy_bandwidth_fraction,
                "speedup_vs_dwconv": self.speedup_vs_dwconv, "gbps": self.gbps}


def cuda_candidates(shape: Sequence[int], dtype: torch.dtype, channels_last: bool, device: torch.device,
                    seed: int) -> tuple[dict[str, Candidate], dict[str, str]]:
    """The candidates of one setting (``CUDA_ROWS``) on one input tensor, each run once to check
    that it works; rows that raise come back in the second dict with their error."""
    torch.manual_seed(seed)
    c, d = shape[1], len(shape) - 2
    fmt = CHANNELS_LAST.get(len(shape)) if channels_last else torch.contiguous_format
    x = torch.randn(*shape, device=device, dtype=dtype).contiguous(memory_format=fmt)
    xg = x.detach().requires_grad_(True)  # same storage
    g = torch.randn_like(x)
    w = torch.randn(c, 1, *[3] * d, device=device, dtype=dtype).contiguous(memory_format=fmt)
    wg = w.detach().clone().requires_grad_(True)
    conv = CONV[d]
    real = torch.empty(c, d, device=device).uniform_(-2, 2)  # SSL / Active shifts
    real_g = real.clone().requires_grad_(True)
    grouped = shiftnet_shifts(c, d).to(device)  # whole-pixel, frozen, in contiguous groups
    specs: dict[str, tuple[Fn, bool, tuple[Tensor, ...]]] = {
        "copy": (torch.clone, False, ()),
        "dwconv3x3 fwd": (lambda t: conv(t, w, padding=1, groups=c), False, ()),
        "dwconv3x3 fwd+bwd": (lambda t: conv(t, wg, padding=1, groups=c), True, (wg,)),
        "nearest fwd (grouped)": (sz(grouped, "zeros", "nearest"), False, ()),
        "linear fwd": (sz(real, "zeros", "linear"), False, ()),
        "ssl fwd": (sz(real, "zeros", "nearest", "linear"), False, ()),
        "ssl fwd+bwd": (sz(real_g, "zeros", "nearest", "linear"), True, (real_g,)),
        "active linear fwd+bwd": (sz(real_g, "zeros", "linear"), True, (real_g,)),
    }
    cands, errors = {}, {}
    for name, (fn, backward, leaves) in specs.items():
        cand = make_candidate(fn, xg if backward else x, backward, leaves, g if backward else None)
        try:
            cand.reset()
            cand.run()
            torch.cuda.synchronize()
            cands[name] = cand
        except Exception as e:  # a measurement tool: report, keep going
            errors[name] = describe_error(e)
    return cands, errors


def bench_cuda_setting(shape: Sequence[int], dtype_name: str, layout: str, device: torch.device, rounds: int,
                       warmup: int, iters: int, seed: int) -> list[CudaRow]:
    dtype = getattr(torch, dtype_name)
    shape_str = "x".join(map(str, shape))
    cands, errors = cuda_candidates(shape, dtype, layout == "channels_last", device, seed)
    timings = cuda_event_timings(cands, rounds, warmup, iters)
    nbytes = 2 * math.prod(shape) * dtype.itemsize
    rows = []
    for name, _, baseline in CUDA_ROWS:
        t = timings.get(name)
        row = CudaRow(shape_str, dtype_name, layout, name, bytes_moved=nbytes, error=errors.get(name))
        if t is not None:
            row.ms, row.q1_ms, row.q3_ms, row.host_bound = t.median_ms, t.q1_ms, t.q3_ms, t.host_bound
        if "copy" in timings:
            row.copy_ms = timings["copy"].median_ms
        if baseline is not None and baseline in timings:
            row.dwconv_ms = timings[baseline].median_ms
        rows.append(row)
    return rows


CUDA_TABLE_HEADER = ("| shape | dtype | layout | row | ms | ×copy | of copy bandwidth | speed-up vs dwconv |\n"
                     "|---|---|---|---|--:|--:|--:|--:|")


def cuda_table(rows: Sequence[CudaRow]) -> str:
    """The rows of the table (CUDA_TABLE_HEADER above them)."""
    fmt = lambda v, spec=".2f": "—" if v is None else format(v, spec)  # noqa: E731
    lines = []
    for r in rows:
        if r.ms is None:
            ms = f"error ({r.error})" if r.error else "—"
        else:
            ms = f"{r.ms:.4f}" + (" (host-bound)" if r.host_bound else "")
        bandwidth = f"{r.gbps:.0f} GB/s" if r.row == "copy" and r.ms is not None else fmt(r.copy_bandwidth_fraction)
        lines.append(f"| {r.shape} | {r.dtype} | {r.layout} | {r.row} | {ms} | "
                     f"{fmt(r.x_copy) if r.row != 'copy' else '1.00'} | {bandwidth} | "
                     f"{fmt(r.speedup_vs_dwconv)}{'×' if r.speedup_vs_dwconv is not None else ''} |")
    return "\n".join(lines)


def run_cuda(args, argv: Sequence[str]) -> None:
    """--device cuda: every shape x dtype x layout, printed as one table; JSON with --json."""
    if not torch.cuda.is_available():
        sys.exit(f"bench_shift.py: --device cuda but CUDA is not available (torch {torch.__version__})")
    given = lambda opt: any(a == opt or a.startswith(opt + "=") for a in argv)  # noqa: E731
    rounds = args.rounds if given("--rounds") else (CUDA_QUICK_ROUNDS if args.quick else CUDA_ROUNDS)
    warmup = args.warmup if given("--warmup") else (1 if args.quick else CUDA_WARMUP)
    shapes = args.shapes or [parse_shape(s) for s in (CUDA_QUICK_SHAPES if args.quick else CUDA_SHAPES)]
    dtypes = args.dtype or ["float32", "bfloat16"]
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark  # the convolution at its best algorithm
    info = cuda_info()
    kernels = torch._C._dispatch_has_kernel_for_dispatch_key("shiftzoo::shift", "CUDA")
    print(f"## shiftzoo.shift on {info['gpu']} (sm_{info['capability'].replace('.', '')}), torch {info['torch']}, "
          f"CUDA {info['cuda']}, cuDNN {info['cudnn']} (benchmark={info['cudnn_benchmark']}, "
          f"allow_tf32={info['cudnn_allow_tf32']}); medians of {rounds} interleaved rounds of {args.iters} "
          f"iterations (+{warmup} warm-up), CUDA events.\n")
    if not kernels:
        print("- note: shiftzoo::shift has no CUDA kernel in this build: its rows report the error\n")
    print("×copy: op / x.clone() of the same tensor. Of copy bandwidth (forwards): copy ms / op ms, both "
          "reading and writing the tensor once (the copy row: its GB/s, bytes read + written). Speed-up vs "
          "dwconv: cuDNN's depthwise 3x3 conv ms / op ms (forward vs conv forward, fwd+bwd vs conv fwd+bwd "
          "with input and weight gradients). (host-bound): queueing the iterations took longer than "
          "running them; the figure is the host's.\n", flush=True)
    config = {"shapes": ["x".join(map(str, s)) for s in shapes], "dtypes": dtypes, "layouts": list(args.layouts),
              "rounds": rounds, "warmup": warmup, "iters": args.iters, "seed": args.seed,
              "shiftzoo_cuda_kernels": kernels}
    t_start = time.perf_counter()
    rows: list[CudaRow] = []
    print(CUDA_TABLE_HEADER, flush=True)
    for shape in shapes:
        for dtype_name in dtypes:
            for layout in args.layouts:
                if layout == "channels_last" and len(shape) not in CHANNELS_LAST:
                    continue
                setting = bench_cuda_setting(shape, dtype_name, layout, device, rounds, warmup, args.iters, args.seed)
                rows += setting
                torch.cuda.empty_cache()
                print(cuda_table(setting), flush=True)  # setting by setting: a run cut short keeps what it did
                if args.json:
                    write_cuda_json(args.json, info, {**config, "elapsed_s": time.perf_counter() - t_start}, rows)
    elapsed = time.perf_counter() - t_start
    print(f"\n{len(rows)} rows in {elapsed:.0f} s.")
    if args.json:
        write_cuda_json(args.json, info, {**config, "elapsed_s": elapsed, "complete": True}, rows)
        print(f"wrote {args.json}")


def write_cuda_json(path: str, info: dict, config: dict, rows: Sequence[CudaRow]) -> None:
    with open(path, "w") as f:
        json.dump({"device": "cuda", "machine": info, "config": {"complete": False, **config},
                   "rows": [r.to_json() for r in rows]}, f, indent=2)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cpu (default): the CPU kernels; cuda: the CUDA kernels against a copy and cuDNN's "
                         "depthwise conv, timed with CUDA events (--threads and --malloc do not apply)")
    ap.add_argument("--shapes", nargs="+", type=parse_shape, default=None,
                    help=f"NxCx... shapes, default {' '.join(DEFAULT_SHAPES)} "
                         f"({' '.join(QUICK_SHAPES)} with --quick); "
                         f"on cuda {' '.join(CUDA_SHAPES)} ({' '.join(CUDA_QUICK_SHAPES)} with --quick)")
    ap.add_argument("--threads", type=int, nargs="+", default=[2], help="thread counts (default 2)")
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), nargs="+", default=None,
                    help="default float32 (cpu), float32 bfloat16 (cuda)")
    ap.add_argument("--layouts", choices=CUDA_LAYOUTS, nargs="+", default=list(CUDA_LAYOUTS),
                    help="cuda: memory layouts (default both)")
    ap.add_argument("--iters", type=int, default=10, help="cuda: iterations per timed measurement (default 10)")
    ap.add_argument("--no-cudnn-benchmark", action="store_true",
                    help="cuda: leave torch.backends.cudnn.benchmark off (default: on, the conv at its best)")
    add_run_options(ap, rounds=30, quick="few rounds, two shapes: a smoke test "
                                         f"(cuda: {CUDA_QUICK_ROUNDS} rounds, one shape)")
    args = parse_run_options(ap, argv)
    if args.device == "cuda":
        run_cuda(args, argv)
        return
    args.dtype = args.dtype or ["float32"]

    shapes = args.shapes or [parse_shape(s) for s in (QUICK_SHAPES if args.quick else DEFAULT_SHAPES)]
    rounds, warmup = args.rounds, args.warmup
    print("Ratios = op time / baseline time (lower is better). ×clone: to x.clone() (the floor). "
          "×dwconv < 1 means faster than the depthwise 3-tap conv it replaces "
          "(fwd rows: conv fwd; fwd+bwd rows: conv fwd+bwd). "
          "×best-pytorch: to the pure-PyTorch way named. ×contiguous: a channels_last row's "
          "×clone over the same row's contiguous ×clone.\n", flush=True)

    def run() -> dict:
        return {"settings": [run_setting(shapes, dtype, threads, rounds, warmup, args.seed)
                             for dtype in args.dtype for threads in args.threads]}

    parts = run_under_conditions(strip_options(argv, ("--malloc", "--json")), args.conditions, run)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": [s for part in parts for s in part["settings"]]}, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
