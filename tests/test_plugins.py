"""The plugin registry: runtime paddings and interpolations (no compiler), their equivalence to
the compiled built-ins, genuinely new plugins against independent computations, every error."""
from __future__ import annotations

import math

import pytest
import torch

import shiftzoo
from helpers import F64, PADDINGS, gen, output_and_grads
from shiftzoo import plugin_registry, reference
from shiftzoo.functional import shift

# Every compiled interpolation, as the extension lists them: each gets a runtime twin below.
INTERPS = sorted(name for name, _ in shiftzoo._extension.builtin_plugins()["interp"])


@pytest.fixture
def runtime_twins():
    """Every built-in re-registered as a runtime plugin named rt_<name>; removed afterwards."""
    for name in PADDINGS:
        info = plugin_registry.get_padding(name)
        shiftzoo.register_padding("rt_" + name, info.padding, period=info.padding.period)
    for name in INTERPS:
        info = plugin_registry.get_interp(name)
        shiftzoo.register_interp("rt_" + name, support=info.support, weights=info.interp.weights)
    yield
    for name in PADDINGS:
        plugin_registry.unregister("padding", "rt_" + name)
    for name in INTERPS:
        plugin_registry.unregister("interp", "rt_" + name)


@pytest.fixture
def cleanup():
    """Names registered by a test, unregistered afterwards."""
    names = []
    yield names
    for kind, name in names:
        plugin_registry.unregister(kind, name)




@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("interp", INTERPS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_runtime_twin_equals_compiled(runtime_twins, dims, padding, interp, dtype):
    shape = (2, 3) + (4, 5, 6)[3 - dims:]
    x = torch.randn(shape, dtype=F64, generator=gen(dims)).to(dtype)
    s = torch.randn(3, dims, dtype=F64, generator=gen(9)) * 4
    s[0] = 1e30  # huge shifts go through the period too
    s[1] = torch.tensor([0.5, -1.5, 2.5][:dims])  # ties: odd supports centre on the shift rounded half to even
    g = torch.randn(shape, dtype=F64, generator=gen(10)).to(dtype)
    grad_interp = "linear" if interp == "nearest" else interp
    compiled = output_and_grads(lambda a, b: shift(a, b, padding, interp, grad_interp), x, s, g)
    runtime = output_and_grads(lambda a, b: shift(a, b, "rt_" + padding, "rt_" + interp, "rt_" + grad_interp), x, s, g)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    for a, b in zip(compiled, runtime):
        torch.testing.assert_close(a, b, atol=tol * (1 + a.abs().max().item()), rtol=tol)


def test_mixed_compiled_and_runtime_plugins(runtime_twins):
    x = torch.randn(2, 3, 6, 7, dtype=F64, generator=gen(1))
    s = torch.randn(3, 2, dtype=F64, generator=gen(2)) * 3
    want = shift(x, s, "reflect", "cubic")
    torch.testing.assert_close(shift(x, s, "rt_reflect", "cubic"), want, atol=1e-12, rtol=0)
    torch.testing.assert_close(shift(x, s, "reflect", "rt_cubic"), want, atol=1e-12, rtol=0)


def test_every_support_parity_has_a_compiled_interp():
    """The tap rule differs for odd and even supports beyond one tap: both kinds are compiled in, so
    test_runtime_twin_equals_compiled holds the kernels' rule to the Python planner's for each."""
    supports = {support for _, support in shiftzoo._extension.builtin_plugins()["interp"]}
    assert {1, 2, 3, 4} <= supports


def test_listing_says_compiled_or_runtime(runtime_twins):
    paddings = {p.name: p for p in shiftzoo.list_paddings()}
    interps = {p.name: p for p in shiftzoo.list_interps()}
    assert all(paddings[n].compiled for n in PADDINGS) and not paddings["rt_zeros"].compiled
    assert all(interps[n].compiled for n in INTERPS) and not interps["rt_cubic"].compiled
    assert interps["cubic"].support == 4 and interps["rt_nearest"].support == 1


# ---- genuinely new plugins, against independent float64 computations -------------------------

def edge_then_zeros(i, n):
    """Replicate the edge for one sample beyond the axis, zeros further out."""
    return torch.where((i >= -1) & (i <= n), i.clamp(0, n - 1), torch.full_like(i, -1))


def lanczos_weights(a):
    """Lanczos-a kernel on the 2a taps around p, normalised to sum to 1."""
    def weights(f):
        distances = torch.stack([f + (a - 1) - k for k in range(2 * a)], -1)  # tap k at floor(p)-(a-1)+k
        w = torch.sinc(distances) * torch.sinc(distances / a)
        return w / w.sum(-1, keepdim=True)
    return weights


def loop_shift_1d(x, s, pad, weights, support):
    """out[n, c, i] = sum_k w_k(f) x[n, c, pad(floor(i - s) - (K/2 - 1) + k)], by plain loops."""
    N, C, L = x.shape
    out = torch.zeros_like(x)
    for c in range(C):
        p0 = -float(s[c])
        base = math.floor(p0)
        w = weights(torch.tensor([p0 - base], dtype=F64))[0]
        for i in range(L):
            for k in range(support):
                j = int(pad(torch.tensor(i + base - (support // 2 - 1) + k), L))
                if j >= 0:
                    out[:, c, i] += w[k] * x[:, c, j]
    return out


@pytest.mark.parametrize("a", [2, 3, 4])  # 4, 6 and 8 taps
def test_lanczos_against_loops(cleanup, a):
    name = f"lanczos{a}"
    shiftzoo.register_interp(name, support=2 * a, weights=lanczos_weights(a))
    cleanup.append(("interp", name))
    x = torch.randn(2, 4, 9, dtype=F64, generator=gen(3))
    s = torch.tensor([[0.3], [-2.7], [5.5], [-11.2]], dtype=F64)
    for padding in ("zeros", "symmetric"):
        want = loop_shift_1d(x, s, plugin_registry.get_padding(padding).padding, lanczos_weights(a), 2 * a)
        torch.testing.assert_close(shift(x, s, padding, name), want, atol=1e-12, rtol=0)


def test_new_padding_against_loops_and_separability(cleanup):
    shiftzoo.register_padding("edge_then_zeros", edge_then_zeros, period=0)
    cleanup.append(("padding", "edge_then_zeros"))
    x = torch.randn(2, 3, 8, dtype=F64, generator=gen(4))
    s = torch.tensor([[1.5], [-0.25], [9.0]], dtype=F64)
    want = loop_shift_1d(x, s, edge_then_zeros, reference.INTERPS["linear"].weights, 2)
    torch.testing.assert_close(shift(x, s, "edge_then_zeros", "linear"), want, atol=1e-12, rtol=0)
    # 2D: the shift is separable, so it equals the 1D shift applied along each axis in turn
    x2 = torch.randn(1, 2, 5, 6, dtype=F64, generator=gen(5))
    s2 = torch.tensor([[1.5, -2.25], [-1.0, 0.75]], dtype=F64)
    rows = shift(x2.transpose(2, 3).reshape(1, 2 * 6, 5).reshape(1, 2, 6, 5).permute(0, 1, 3, 2).contiguous(),
                 s2, "edge_then_zeros", "linear")
    along_h = torch.stack([loop_shift_1d(x2[:, :, :, j], s2[:, :1], edge_then_zeros,
                                         reference.INTERPS["linear"].weights, 2) for j in range(6)], -1)
    both = torch.stack([loop_shift_1d(along_h[:, :, i, :], s2[:, 1:], edge_then_zeros,
                                      reference.INTERPS["linear"].weights, 2) for i in range(5)], 2)
    torch.testing.assert_close(rows, both, atol=1e-12, rtol=0)


def test_gradcheck_runtime_interp_autograd_and_explicit_derivative(cleanup):
    keys = reference.INTERPS["cubic"].weights
    shiftzoo.register_interp("lanczos2", support=4, weights=lanczos_weights(2))
    # the explicit derivative of Keys' weights, written out (checked by gradcheck below)
    def dkeys(f):
        A = -0.75
        dnear = lambda t: (3 * (A + 2) * t - 2 * (A + 3)) * t  # noqa: E731
        dfar = lambda t: (3 * A * t - 10 * A) * t + 8 * A  # noqa: E731
        return torch.stack((dfar(1 + f), dnear(f), -dnear(1 - f), -dfar(2 - f)), -1)
    shiftzoo.register_interp("keys_explicit", support=4, weights=keys, dweights=dkeys)
    cleanup += [("interp", "lanczos2"), ("interp", "keys_explicit")]
    x = torch.randn(1, 3, 5, 6, dtype=F64, generator=gen(6), requires_grad=True)
    s = (torch.tensor([[0.3, -1.6], [2.4, 0.7], [-3.25, 1.5]], dtype=F64)).requires_grad_()
    for name in ("lanczos2", "keys_explicit"):
        assert torch.autograd.gradcheck(lambda a, b: shift(a, b, "reflect", name), (x, s), eps=1e-6, atol=1e-7)


def test_runtime_plugins_under_compile_and_opcheck(runtime_twins):
    torch._dynamo.reset()
    s = torch.randn(4, 2, generator=gen(7), requires_grad=True)
    fn = torch.compile(lambda x: shift(x, s, "rt_symmetric", "rt_cubic").relu(), fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 4, 6, 5, generator=gen(8))
    torch.testing.assert_close(fn(x), shift(x, s, "symmetric", "cubic").relu())
    fn(x).sum().backward()
    want = torch.autograd.grad(shift(x, s, "symmetric", "cubic").relu().sum(), s)[0]
    torch.testing.assert_close(s.grad, want)

    from shiftzoo import _tabled
    from shiftzoo._sampling import Sampling
    for sampling in (Sampling.of(2), Sampling.of(2, stride=2, crop=((1, 0), (0, -1)))):
        plan = _tabled.plan(x.shape, s.detach(), plugin_registry.get_padding("rt_zeros"),
                            plugin_registry.get_interp("linear"), sampling)
        args = (x.requires_grad_(), plan.offsets, plan.tables, plan.weights, plan.offsets, plan.tables,
                plan.weights.clone().requires_grad_(), "rt_zeros", *sampling.op_args())
        # the weights' gradient is float64 (the weights' dtype) with float32 data's accuracy, and
        # eager mode (an expanded grad_output) and AOT (a dense one) take different kernels: float32's
        # tolerances
        torch.library.opcheck(torch.ops.shiftzoo.shift_tabled.default, args, atol=1e-5, rtol=1.3e-6)


# ---- every error ------------------------------------------------------------------------------

def test_duplicate_names_need_override(cleanup):
    with pytest.raises(ValueError, match=r"padding 'zeros' is already registered \(compiled\); pass override=True"):
        shiftzoo.register_padding("zeros", edge_then_zeros)
    shiftzoo.register_interp("mine", support=2, weights=reference.INTERPS["linear"].weights)
    cleanup.append(("interp", "mine"))
    with pytest.raises(ValueError, match=r"interp 'mine' is already registered \(runtime\)"):
        shiftzoo.register_interp("mine", support=2, weights=reference.INTERPS["linear"].weights)
    shiftzoo.register_interp("mine", support=1, weights=reference.INTERPS["nearest"].weights, override=True)
    assert plugin_registry.get_interp("mine").support == 1


def test_unknown_name_lists_valid_ones_and_the_closest():
    with pytest.raises(ValueError, match=r"unknown padding 'symetric' \(did you mean 'symmetric'\?\); expected one of: "
                                         r"border, periodic, reflect, symmetric, zeros"):
        plugin_registry.get_padding("symetric")


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(support=2, weights=lambda f: torch.stack((1 - f, 0.9 * f), -1)), ValueError,
     r"interp 'bad': the 2 tap weights must sum to 1 for every f, but they are off by up to 0\.0938"),
    (dict(support=2, weights=lambda f: torch.stack((1 - f, f, 0 * f), -1)), ValueError,
     r"weights\(f\) must return shape f.shape \+ \(2,\), got \(16, 3\)"),
    (dict(support=9, weights=lambda f: f), ValueError, r"support must be an int from 1 to 8, got 9"),
    (dict(support=2, weights="linear"), TypeError, r"weights and dweights must be functions"),
    (dict(support=2, weights=reference.INTERPS["linear"].weights, dweights=lambda f: f), ValueError,
     r"dweights\(f\) must return shape"),
])
def test_bad_interp_registrations(kwargs, error, match):
    with pytest.raises(error, match=match):
        shiftzoo.register_interp("bad", **kwargs)
    assert "bad" not in {p.name for p in shiftzoo.list_interps()}


def test_bad_names_and_unregistering_builtins():
    with pytest.raises(ValueError, match=r"a padding name must be an identifier, got 'my pad'"):
        shiftzoo.register_padding("my pad", edge_then_zeros)
    with pytest.raises(ValueError, match=r"padding 'zeros' is compiled in and cannot be unregistered"):
        plugin_registry.unregister("padding", "zeros")


@pytest.mark.host_checks
def test_out_of_range_padding_is_an_error_naming_the_plugin(cleanup):
    shiftzoo.register_padding("too_far", lambda i, n: torch.where(i < 0, i - n, i))  # e.g. -1 -> -1 - n
    shiftzoo.register_padding("moves_inside", lambda i, n: torch.remainder(i + 1, n))
    cleanup += [("padding", "too_far"), ("padding", "moves_inside")]
    x = torch.randn(1, 2, 6)
    s = torch.tensor([[2.0], [0.0]])
    with pytest.raises(ValueError, match=r"padding 'too_far' mapped index -2 on an axis of length 6 to -8; "
                                         r"a padding must return an index in \[0, 6\) or -1"):
        shift(x, s, "too_far", "nearest")
    with pytest.raises(ValueError, match=r"padding 'moves_inside' mapped index 0 inside the axis \(length 6\) to 1"):
        shift(x, s, "moves_inside", "nearest")


def test_huge_shift_without_period_is_refused(cleanup):
    shiftzoo.register_padding("no_period", edge_then_zeros)
    cleanup.append(("padding", "no_period"))
    x = torch.randn(1, 1, 6)
    torch.testing.assert_close(shift(x, torch.tensor([[1e6]]), "no_period", "linear"), torch.zeros_like(x))
    with pytest.raises(ValueError, match=r"padding 'no_period' declares no period.*register it with period="):
        shift(x, torch.tensor([[1e30]]), "no_period", "linear")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=str)
def test_runtime_plugins_in_every_layout_and_dtype(runtime_twins, dtype):
    base = torch.randn(2, 3, 9, 10, dtype=F64, generator=gen(30))
    s = torch.randn(3, 2, dtype=F64, generator=gen(31)) * 2
    layouts = [base, base.contiguous(memory_format=torch.channels_last), base.transpose(2, 3).contiguous().transpose(2, 3)]
    for x in layouts:
        x = x.to(dtype)
        got = output_and_grads(lambda a, b: shift(a, b, "rt_symmetric", "rt_cubic"), x, s, torch.ones_like(x))
        want = output_and_grads(lambda a, b: shift(a, b, "symmetric", "cubic"), x, s, torch.ones_like(x))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
        assert got[0].stride() == want[0].stride()
