"""Property-based fuzzing (hypothesis) of ``shiftzoo.functional.shift`` against the float64 reference.

Each example draws a whole call: 1 to 3 spatial axes, shapes from empty to a few thousand elements
per plane (0- and 1-length axes, batch 0, widths 1..70, channels up to 40 in runs of equal shifts),
input and upstream-gradient strides (contiguous, channels_last(_3d), any permutation, every other
element, stride 0 along batch or channels), shifts (zero, integers, x.5 ties, 1e-7 from an integer,
subnormal, fractional, 1e6 and 1e30 of either sign), every registered padding and interpolation
(the compiled built-ins and the runtime plugins registered below), ``grad_interp``, stride and crop,
the dtype, which gradients are asked for, and the thread count. The op's output, input gradient and
shift gradient must equal the reference's (``shiftzoo.reference.shift``, in float64, on the same
values) and be bit-identical on 1 and 2 threads (docs/semantics.md). The tolerance is the dtype's,
plus a few ulps (of the op's accumulation precision) of the sum of the magnitudes of the terms that
make up each element: a border-padded edge element's gradient sums hundreds of terms.

One example in eight puts NaN or infinities in the input. The output must then have them where the
reference has them (IEEE: a tap of weight 0 that reads an infinity gives NaN), the input gradient does
not read the input, and the shift gradient is compared where the reference's is finite only: NaN at
positions that no tap reads legitimately differ (README, "Known limitations"). With a ``grad_interp``
of its own, the reference's straight-through output is NaN wherever its surrogate is not finite, so
the output is then compared with the reference's plain ``interp`` shift. Non-finite shifts are a
ValueError (docs/semantics.md), fuzzed by the second test.

Profiles: the default ``shiftzoo-ci`` is derandomized (the same examples on every run, for CI):
300 examples of the main property and 60 of the rejection test. ``SHIFTZOO_FUZZ=long`` selects
``shiftzoo-long``: random seeds, and ``SHIFTZOO_FUZZ_EXAMPLES`` (default 5000) examples of the main
property, a fifth of that of the rejection test.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional

import pytest
import torch
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import shiftzoo
from helpers import F64, gen
from shiftzoo import plugin_registry, reference
from shiftzoo._sampling import Sampling
from shiftzoo.functional import shift

# ---- profiles ---------------------------------------------------------------------------------

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("shiftzoo-ci", max_examples=300, derandomize=True, **_COMMON)
settings.register_profile("shiftzoo-long", derandomize=False,
                          max_examples=int(os.environ.get("SHIFTZOO_FUZZ_EXAMPLES", "5000")), **_COMMON)
PROFILE = "shiftzoo-long" if os.environ.get("SHIFTZOO_FUZZ") == "long" else "shiftzoo-ci"
FUZZ = settings.get_profile(PROFILE)
# the rejection test has a small space: a fifth of the examples
FUZZ_SMALL = settings(FUZZ, max_examples=max(10, FUZZ.max_examples // 5))


# ---- runtime plugins, fuzzed beside the compiled built-ins ------------------------------------

def _alternate(i, n):
    """``a b c d | 0 0 0 0 | a b c d | 0 0 0 0``: the axis repeated with every other copy reading zero
    (period 2n)."""
    m = torch.remainder(i, 2 * n)
    return torch.where(m < n, m, torch.full_like(m, -1))


def _mirror_once(i, n):
    """``0 0 | d c b a | a b c d | d c b a | 0 0``: one mirrored copy on each side, zeros beyond.
    Registered without a period: shifts beyond 2**53 are refused (docs/semantics.md)."""
    m = torch.where(i < 0, -1 - i, torch.where(i >= n, 2 * n - 1 - i, i))
    return torch.where((m >= 0) & (m < n), m, torch.full_like(m, -1))


def _lanczos3(f):
    """Lanczos-3 on 6 taps (even support, taps floor(p) - 2 ... floor(p) + 3), normalised to sum to 1;
    its derivative comes from autograd."""
    distances = torch.stack([f + 2 - k for k in range(6)], -1)
    w = torch.sinc(distances) * torch.sinc(distances / 3)
    return w / w.sum(-1, keepdim=True)


_GAUSS_VAR = 0.64  # sigma = 0.8


def _gauss5(f):
    """A normalised Gaussian on 5 taps (odd support, centred on the rounded p; tap k sits at k - 2 - f)."""
    u = torch.stack([k - 2 - f for k in range(5)], -1)
    e = torch.exp(-u * u / (2 * _GAUSS_VAR))
    return e / e.sum(-1, keepdim=True)


def _dgauss5(f):
    """d _gauss5 / d f, written out: w_k * (u_k - sum_j w_j u_j) / var."""
    u = torch.stack([k - 2 - f for k in range(5)], -1) / _GAUSS_VAR
    w = _gauss5(f)
    return w * (u - (w * u).sum(-1, keepdim=True))


RUNTIME_PADDINGS = {"fuzz_alternate": dict(fn=_alternate, period=lambda n: 2 * n),
                    "fuzz_mirror_once": dict(fn=_mirror_once, period=None)}
RUNTIME_INTERPS = {"fuzz_lanczos3": dict(support=6, weights=_lanczos3),
                   "fuzz_gauss5": dict(support=5, weights=_gauss5, dweights=_dgauss5)}
UNPERIODIC_LIMIT = 2.0**53  # a padding without a period refuses shifts beyond this


@pytest.fixture(scope="module", autouse=True)
def runtime_plugins():
    """Registers the runtime plugins for this module only (other modules list the built-ins)."""
    for name, kw in RUNTIME_PADDINGS.items():
        shiftzoo.register_padding(name, kw["fn"], period=kw["period"])
    for name, kw in RUNTIME_INTERPS.items():
        shiftzoo.register_interp(name, **kw)
    yield
    for name in RUNTIME_PADDINGS:
        plugin_registry.unregister("padding", name)
    for name in RUNTIME_INTERPS:
        plugin_registry.unregister("interp", name)


def test_runtime_plugins_are_registered():
    paddings = {p.name: p for p in shiftzoo.list_paddings()}
    interps = {p.name: p for p in shiftzoo.list_interps()}
    assert all(not paddings[n].compiled for n in RUNTIME_PADDINGS)
    assert all(not interps[n].compiled for n in RUNTIME_INTERPS)
    assert {"zeros", "border", "periodic", "reflect", "symmetric"} <= {n for n, p in paddings.items() if p.compiled}
    assert {"nearest", "linear", "quadratic", "cubic"} <= {n for n, p in interps.items() if p.compiled}


# ---- strategies ------------------------------------------------------------------------------

DTYPES = [torch.float32] * 4 + [torch.float64] * 4 + [torch.float16, torch.bfloat16]
# (atol, rtol) of values computed in the dtype against the float64 reference of the same values
TOL = {torch.float64: (1e-10, 1e-10), torch.float32: (2e-5, 1e-5), torch.float16: (2e-3, 2e-3),
       torch.bfloat16: (2e-2, 1e-2)}
MAX_PLANE = 3000
MAX_ELEMENTS = 40_000  # N * C * plane: keeps the reference and autograd cheap
HUGE = [1e6, -1e6, 1e6 + 0.5, -3e7 - 0.25, 1e30, -1e30, 2.0**62, -(2.0**70)]
TINY = [1e-17, -1e-17, 5e-324, -5e-324, 1e-300]  # 1e-17 - 1 rounds to -1: f is 1.0 exactly
SHIFT_KINDS = ["zero", "integer", "half", "near_integer", "tiny", "fraction", "huge"]


def _rare(draw, one_in):
    """True one time in ``one_in`` (the shrinker moves toward True: the rare case is the simple one)."""
    return draw(st.integers(0, one_in - 1)) == 0


@st.composite
def spatial_shapes(draw, dims):
    """1..3 axes; 0 and 1 lengths now and then; the last axis up to 70; a plane up to MAX_PLANE."""
    def length(hi):
        if _rare(draw, 12):
            return draw(st.sampled_from([0, 1]))
        return draw(st.integers(1, max(1, hi)))

    if dims == 1:
        return (length(3000 if _rare(draw, 4) else 70),)
    width = length(70)
    if dims == 2:
        return (length(min(60, MAX_PLANE // max(width, 1))), width)
    height = length(min(20, MAX_PLANE // max(width, 1)))
    return (length(min(12, MAX_PLANE // max(width * height, 1))), height, width)


@dataclass
class Layout:
    """How a tensor of a given shape sits in memory: ``order`` lists the logical dims from outermost
    to innermost in storage, ``steps``/``offsets`` take every other element of a larger tensor, and
    ``expand`` (0 batch, 1 channels) gives that dim stride 0."""
    kind: str
    order: tuple
    steps: tuple
    offsets: tuple
    expand: Optional[int]


@st.composite
def layouts(draw, ndim):
    kind = draw(st.sampled_from(["contiguous", "contiguous", "channels_last", "channels_last",
                                 "permuted", "sliced", "expanded", "mixed"]))
    order, steps, offsets, expand = tuple(range(ndim)), (1,) * ndim, (0,) * ndim, None
    if kind in ("channels_last", "mixed"):
        order = (0,) + tuple(range(2, ndim)) + (1,)
    if kind in ("permuted", "mixed") and draw(st.booleans()):
        order = tuple(draw(st.permutations(range(ndim))))
    if kind in ("sliced", "mixed"):
        steps = tuple(draw(st.lists(st.sampled_from([1, 2]), min_size=ndim, max_size=ndim)))
        if kind == "sliced" and steps == (1,) * ndim:
            steps = (1,) * (ndim - 1) + (2,)
        offsets = tuple(draw(st.lists(st.sampled_from([0, 1]), min_size=ndim, max_size=ndim)))
    if kind in ("expanded", "mixed") and (kind == "expanded" or draw(st.booleans())):
        expand = draw(st.sampled_from([0, 1]))
    return Layout(kind, order, steps, offsets, expand)


def make_tensor(shape, layout: Layout, dtype, seed, specials=0):
    """Random N(0, 1) values of ``shape`` (float64, rounded to ``dtype``) laid out as ``layout`` says,
    ``specials`` of them NaN or infinite."""
    shape = tuple(shape)
    ndim = len(shape)
    values_shape = list(shape)
    if layout.expand is not None:
        values_shape[layout.expand] = min(1, shape[layout.expand])
    values = torch.randn(values_shape, dtype=F64, generator=gen(seed))
    if values.numel():
        where = gen(seed + 7)
        for _ in range(specials):
            index = torch.randint(values.numel(), (), generator=where)
            values.view(-1)[index] = (math.nan, math.inf, -math.inf)[int(torch.randint(3, (), generator=where))]
    values = values.to(dtype)
    big = [values_shape[i] * layout.steps[i] + layout.offsets[i] for i in range(ndim)]
    storage = torch.full([big[i] for i in layout.order], float("nan"), dtype=dtype)  # unread: NaN
    tensor = storage.permute([layout.order.index(i) for i in range(ndim)])
    view = tensor[tuple(slice(o, None, s) for o, s in zip(layout.offsets, layout.steps))]
    view.copy_(values)
    return view.expand(shape) if layout.expand is not None else view


@st.composite
def shift_values(draw, kinds, n):
    """One shift along an axis of length ``n``, of one of ``kinds``."""
    kind = draw(st.sampled_from(kinds))
    reach = n + 3
    if kind == "zero":
        return draw(st.sampled_from([0.0, -0.0]))
    if kind == "integer":
        return float(draw(st.integers(-reach, reach)))
    if kind == "half":
        return draw(st.integers(-reach, reach)) + 0.5
    if kind == "near_integer":
        return draw(st.integers(-reach, reach)) + draw(st.sampled_from([1e-7, -1e-7]))
    if kind == "tiny":
        return draw(st.sampled_from(TINY))
    if kind == "huge":
        return draw(st.sampled_from(HUGE))
    return draw(st.floats(-reach, reach, allow_nan=False, allow_infinity=False))


@st.composite
def shift_tables(draw, channels, spatial):
    """(C, d) shifts as nested lists: runs of channels with equal shifts (GroupedShift's layout, the
    kernels' run paths), every channel its own, or all alike."""
    kinds = draw(st.lists(st.sampled_from(SHIFT_KINDS), min_size=1, max_size=3, unique=True))
    mode = draw(st.sampled_from(["runs", "runs", "distinct", "alike"]))
    for kind in kinds:
        event(f"shifts drawn from: {kind}")
    event(f"channels {mode}")
    rows = []
    while len(rows) < channels:
        left = channels - len(rows)
        run = {"runs": draw(st.integers(1, left)), "distinct": 1, "alike": left}[mode]
        row = [draw(shift_values(kinds, max(n, 1))) for n in spatial]
        rows += [row] * run
    return rows


@st.composite
def samplings(draw, dims):
    """stride and crop, one case in four (the default otherwise)."""
    if not _rare(draw, 4):
        return 1, 0
    stride = draw(st.lists(st.integers(1, 4), min_size=dims, max_size=dims))
    crop = [draw(st.one_of(st.integers(-3, 4), st.tuples(st.integers(-3, 4), st.integers(-3, 4))))
            for _ in range(dims)]
    return stride, crop


@dataclass
class Case:
    shape: tuple
    layout: Layout
    grad_layout: Layout
    dtype: torch.dtype
    shift_dtype: torch.dtype
    shifts: list
    padding: str
    interp: str
    grad_interp: Optional[str]
    stride: object
    crop: object
    wants: str  # which gradients are asked for: "both", "input", "shifts"
    threads: int
    seed: int
    specials: int  # NaN or infinite input values

    def __repr__(self):
        return (f"Case(shape={self.shape}, dtype={self.dtype}, shift_dtype={self.shift_dtype}, "
                f"padding={self.padding!r}, interp={self.interp!r}, grad_interp={self.grad_interp!r}, "
                f"stride={self.stride!r}, crop={self.crop!r}, wants={self.wants!r}, threads={self.threads}, "
                f"seed={self.seed}, specials={self.specials}, layout={self.layout}, "
                f"grad_layout={self.grad_layout}, shifts={self.shifts})")


@st.composite
def cases(draw):
    dims = draw(st.integers(1, 3))
    spatial = draw(spatial_shapes(dims))
    plane = math.prod(spatial)
    batch = 0 if _rare(draw, 15) else draw(st.integers(1, 3))
    channels = 0 if _rare(draw, 30) else draw(st.integers(1, 40))
    channels = min(channels, max(1, MAX_ELEMENTS // max(1, batch * plane)))
    shape = (batch, channels) + spatial
    stride, crop = draw(samplings(dims))
    out_shape = (batch, channels) + Sampling.of(dims, stride, crop).output_size(spatial)
    # Every registered plugin: the built-ins and the runtime ones of this module (and any other).
    paddings = [p.name for p in shiftzoo.list_paddings()]
    interps = [p.name for p in shiftzoo.list_interps()]
    interp = draw(st.sampled_from(interps))
    return Case(
        shape=shape,
        layout=draw(layouts(len(shape))),
        grad_layout=draw(layouts(len(shape))),
        dtype=draw(st.sampled_from(DTYPES)),
        shift_dtype=draw(st.sampled_from([F64, F64, F64, torch.float32])),
        shifts=draw(shift_tables(channels, spatial)),
        padding=draw(st.sampled_from(paddings)),
        interp=interp,
        grad_interp=draw(st.one_of(st.none(), st.sampled_from(interps))),
        stride=stride,
        crop=crop,
        wants=draw(st.sampled_from(["both", "both", "input", "shifts"])),
        threads=draw(st.sampled_from([1, 2])),
        seed=draw(st.integers(0, 2**31 - 1)),
        specials=draw(st.integers(1, 3)) if _rare(draw, 8) else 0,
    ), out_shape


# ---- the properties --------------------------------------------------------------------------

def _shifts_tensor(case):
    d = len(case.shape) - 2
    return torch.tensor(case.shifts, dtype=F64).reshape(len(case.shifts), d).to(case.shift_dtype)


def _run(fn, x, s, g, wants):
    """fn(x, s) and the gradients asked for (None for the other)."""
    x = x.detach().requires_grad_(wants in ("both", "input"))
    s = s.detach().requires_grad_(wants in ("both", "shifts"))
    out = fn(x, s)
    wrt = [t for t in (x, s) if t.requires_grad]
    if out.requires_grad:
        # (allow_unused: an empty output reads nothing, so the reference's graph may not reach x or s)
        grads = iter(torch.autograd.grad(out, wrt, g, allow_unused=True, materialize_grads=True))
    else:  # the reference on an axis of length 0 reads a stand-in of zeros: no graph, zero gradients
        grads = iter([torch.zeros_like(t) for t in wrt])
    return out, (next(grads) if x.requires_grad else None), (next(grads) if s.requires_grad else None)


def _on_threads(n, fn, *args):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(n)
        return fn(*args)
    finally:
        torch.set_num_threads(before)


def _abs_interp(interp, derivative=False):
    """The interpolation of weights ``|w(f)|`` (``derivative``: ``|w(f)| + |w'(f)|``): shifting ``|x|`` with
    it bounds, element by element, the sum of the magnitudes of the terms the op adds up."""
    def weights(f):
        f = f.detach()
        w = interp.weights(f).abs()
        if derivative:
            with torch.enable_grad():
                leaf = f.clone().requires_grad_()
                taps = interp.weights(leaf)
                dw = [torch.autograd.grad(taps[..., k].sum(), leaf, retain_graph=True, allow_unused=True,
                                          materialize_grads=True)[0] for k in range(interp.support)]
            w = w + torch.stack(dw, -1).abs()
        return w
    return reference.Interp(interp.name + "_abs", interp.support, weights)


def _magnitudes(x, s, g, pad, fwd, bwd, kw):
    """Per element of the output, the input gradient and the shift gradient: the sum of the magnitudes
    of the terms that make it up (float64). Rounding errors of a correct op, which adds those terms in
    its own order and precision, are a few ulps of this, however much the terms cancel."""
    xa = x.detach().to(F64).abs().requires_grad_()
    ga = g.detach().to(F64).abs()
    s = s.detach()
    out = reference.shift(xa, s, pad, _abs_interp(fwd), **kw)
    gx = (torch.autograd.grad(out, xa, ga, allow_unused=True, materialize_grads=True)[0] if out.requires_grad
          else torch.zeros_like(xa))
    per_tap = reference.shift(xa.detach(), s, pad, _abs_interp(bwd, derivative=True), **kw)
    gs = (per_tap * ga).sum([d for d in range(ga.dim()) if d != 1])  # per channel
    return out.detach(), gx, gs.view(-1, 1).expand(s.shape)


def _check(what, got, want, magnitude, atol, rtol, eps, where=None, nonfinite_alike=False):
    """|got - want| <= atol + rtol |want| + 64 eps magnitude, element by element (float64), where
    ``where`` says (everywhere by default). NaN and infinities must be where the reference has them;
    ``nonfinite_alike``: a NaN may stand for an infinity and the reverse."""
    got, want = got.detach().to(F64), want.detach().to(F64)
    excess = (got - want).abs() - (atol + rtol * want.abs() + 64 * eps * magnitude)
    same = (got == want) | (got.isnan() & want.isnan())
    if nonfinite_alike:
        same |= ~got.isfinite() & ~want.isfinite()
    bad = ~((excess <= 0) | same)  # NaN is bad unless both are
    if where is not None:
        bad &= where
    if bad.any():
        worst = torch.where(bad, excess.nan_to_num(math.inf), -math.inf).argmax()
        index = tuple(int(i) for i in torch.unravel_index(worst, got.shape))
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {got.numel()} elements differ; at {index} got {got[index].item()!r}, "
            f"want {want[index].item()!r} (sum of term magnitudes {magnitude[index].item():.3g}, "
            f"atol {atol:.3g}, rtol {rtol:.3g})")


def _takes_tabled_path(case):
    """Whether the call goes through the runtime plugins' path (_tabled.py): any plugin not compiled."""
    plugins = [plugin_registry.get_padding(case.padding), plugin_registry.get_interp(case.interp)]
    if case.grad_interp is not None:
        plugins.append(plugin_registry.get_interp(case.grad_interp))
    return not all(plugin.compiled for plugin in plugins)


@FUZZ
@given(data=st.data())
def test_shift_matches_reference(data):
    case, out_shape = data.draw(cases(), label="case")
    note(repr(case))
    plane = math.prod(case.shape[2:])
    size = "0" if plane == 0 else "<=64" if plane <= 64 else "<=256" if plane <= 256 else ">256"
    event(f"{len(case.shape) - 2}d, plane {size}")
    event(f"{case.dtype}")
    event(f"layout {case.layout.kind}")
    event(f"{'sampled' if case.stride != 1 else 'every position'}")
    event(f"padding {case.padding}")
    event(f"interp {case.interp}")
    event(f"grad_interp {case.grad_interp}")
    channels = case.shape[1]
    event(f"channels {'0' if channels == 0 else '1' if channels == 1 else '<=8' if channels <= 8 else '>8'}")
    event(f"batch {case.shape[0]}")
    event(f"specials {bool(case.specials)}")
    x = make_tensor(case.shape, case.layout, case.dtype, case.seed, case.specials)
    g = make_tensor(out_shape, case.grad_layout, case.dtype, case.seed + 1)
    s = _shifts_tensor(case)
    note(f"x strides {x.stride()}, grad_output strides {g.stride()}")
    kw = dict(stride=case.stride, crop=case.crop)

    if case.padding in RUNTIME_PADDINGS and RUNTIME_PADDINGS[case.padding]["period"] is None \
            and s.numel() and s.double().abs().max() > UNPERIODIC_LIMIT:
        # a padding without a period cannot reduce such a shift exactly: refused (docs/semantics.md)
        with pytest.raises(ValueError, match="declares no period"):
            shift(x, s, case.padding, case.interp, case.grad_interp, **kw)
        return

    op = lambda a, b: shift(a, b, case.padding, case.interp, case.grad_interp, **kw)  # noqa: E731
    got = _on_threads(case.threads, _run, op, x, s, g, case.wants)

    pad = plugin_registry.get_padding(case.padding).padding
    fwd = plugin_registry.get_interp(case.interp).interp
    bwd = fwd if case.grad_interp is None else plugin_registry.get_interp(case.grad_interp).interp
    ref = lambda a, b: reference.shift(a, b, pad, fwd, bwd, **kw)  # noqa: E731
    want = _run(ref, x.to(F64), s, g.to(F64), case.wants)

    out, gx, gs = got
    assert out.shape == want[0].shape == out_shape
    assert out.dtype == case.dtype
    mags = _magnitudes(x, s, g, pad, fwd, bwd, kw)
    atol, rtol = TOL[case.dtype]
    eps = torch.finfo(F64 if case.dtype == F64 else torch.float32).eps  # the op's accumulation
    want_out = want[0]
    if case.specials and bwd is not fwd:
        # The reference's straight-through output, value + (surrogate - surrogate.detach()), is NaN
        # wherever the grad_interp surrogate is infinite or NaN: an artifact of that construction.
        # The output comes from interp alone (docs/semantics.md), as it does with grad_interp=None.
        want_out = reference.shift(x.detach().to(F64), s.detach(), pad, fwd, fwd, **kw)
    # An infinity read by taps whose weights differ in sign sums to NaN or to an infinity depending on
    # the order of the sums (the reference shifts axis by axis; the op may sum the tap products in
    # another order): both are right, so with specials a NaN and an infinity are alike.
    _check("output", out, want_out, mags[0], atol, rtol, eps, nonfinite_alike=bool(case.specials))
    if gx is not None:  # (the input gradient does not read the input: specials do not matter)
        assert gx.dtype == case.dtype and gx.shape == x.shape
        _check("input gradient", gx, want[1], mags[1], atol, rtol, eps)
    if gs is not None:
        assert gs.dtype == s.dtype and gs.shape == s.shape
        if case.shift_dtype == torch.float32:
            atol, rtol = max(atol, TOL[torch.float32][0]), max(rtol, TOL[torch.float32][1])
        # the shift gradient sums many products: atol also relative to its scale (as test_shift_values)
        finite = want[2][want[2].isfinite()]
        scale = 1 + finite.abs().max().item() if finite.numel() else 1
        # With NaN or infinities in the input at positions that no tap reads, the shift gradient is
        # finite on planes of at most 256 elements and NaN on larger ones (README, "Known limitations");
        # the reference's is NaN along some axes (it multiplies those positions by zero) and finite
        # along others. So compare only where the reference's is finite, and on larger planes only
        # where the op's is finite too. (E.g. (1, 1, 6, 43) border cubic, shifts (0, -3), an infinity
        # at column 1: the op gives (NaN, NaN), the reference (NaN, -15.1); on 6x40 the op (4.57, -11.3).)
        where = None
        if case.specials:
            where = want[2].isfinite()
            if plane > 256:
                where &= gs.isfinite()
        _check("shift gradient", gs, want[2], mags[2], atol * scale, rtol, eps, where,
               nonfinite_alike=bool(case.specials))

    # the output keeps the input's memory format (an output with no elements has none to keep: a
    # crop can empty it, and its strides are then those of either format)
    if case.layout.kind == "contiguous":
        assert out.is_contiguous()
    elif case.layout.kind == "channels_last" and len(case.shape) > 3 and out.numel():
        fmt = torch.channels_last if len(case.shape) == 4 else torch.channels_last_3d
        assert out.is_contiguous(memory_format=fmt)

    # values and both gradients are bit-identical on any number of threads
    other = _on_threads(3 - case.threads, _run, op, x, s, g, case.wants)
    for a, b in zip(got, other):
        assert (a is None and b is None) or torch.equal(a.nan_to_num(), b.nan_to_num()), \
            "differs between 1 and 2 threads"


@pytest.mark.host_checks
@FUZZ_SMALL
@given(dims=st.integers(1, 3), channels=st.integers(1, 6), data=st.data(),
       bad=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_non_finite_shifts_are_refused(dims, channels, data, bad):
    """A NaN or infinite shift is a ValueError before anything is computed, whatever the plugins."""
    spatial = data.draw(st.lists(st.integers(0, 6), min_size=dims, max_size=dims), label="spatial")
    x = torch.randn((2, channels) + tuple(spatial), generator=gen(0))
    s = torch.randn(channels, dims, dtype=F64, generator=gen(1))
    channel = data.draw(st.integers(0, channels - 1), label="channel")
    s[channel, data.draw(st.integers(0, dims - 1), label="axis")] = bad
    padding = data.draw(st.sampled_from([p.name for p in shiftzoo.list_paddings()]), label="padding")
    interp = data.draw(st.sampled_from([p.name for p in shiftzoo.list_interps()]), label="interp")
    with pytest.raises(ValueError, match="finite"):
        shift(x, s.requires_grad_(), padding, interp)


@pytest.mark.parametrize("interp, grad_interp", [("nearest", None), ("linear", "nearest")])
def test_single_tap_runtime_shift_gradient_stays_per_channel(interp, grad_interp):
    """Found by fuzzing: with a runtime plugin and a single-tap grad_interp, a non-finite input in one
    channel made every channel's shift gradient NaN (the zero derivative tied all channels together)."""
    x = torch.tensor([[[1.0], [math.inf]]])
    s = torch.zeros(2, 1, requires_grad=True)
    out = shift(x, s, "fuzz_alternate", interp, grad_interp)  # a runtime padding: the tabled path
    (gs,) = torch.autograd.grad(out, s, torch.ones_like(out))
    compiled = torch.autograd.grad(shift(x, s, "zeros", interp, grad_interp), s, torch.ones_like(out))[0]
    assert compiled[0].item() == 0.0  # the compiled op: channel 0 reads only finite values
    assert gs[0].item() == 0.0, f"shift gradient {gs.flatten().tolist()}: NaN leaks from channel 1 into channel 0"
