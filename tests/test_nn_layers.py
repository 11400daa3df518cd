"""The shift layers of shiftzoo.nn: forward against independent shifts, gradients, frozen grouped
shifts, initialisation rules, integer export, sparsity penalty, quantized input, errors."""
from __future__ import annotations

import pickle
import re

import pytest
import torch

import shiftzoo
from helpers import F64, gen, grid_sample_shift, pad_slice_per_channel, roll_per_channel
from shiftzoo import plugin_registry
from shiftzoo.nn.layers import FAMILIES
from shiftzoo.nn import (ActiveShift, ActiveShift1d, ActiveShift2d, ActiveShift3d, FixedShift, GroupedShift2d,
                         GroupedShift1d, GroupedShift3d, ShiftLayer, SparseShift, SparseShift1d, SparseShift2d,
                         SparseShift3d, grouped_pattern)

ALL = [SparseShift1d, SparseShift2d, SparseShift3d, ActiveShift1d, ActiveShift2d, ActiveShift3d,
       GroupedShift1d, GroupedShift2d, GroupedShift3d]
SIZES = {1: (11,), 2: (6, 7), 3: (4, 5, 6)}


def make(cls, channels=18, **kwargs):
    torch.manual_seed(0)
    return cls(channels, **kwargs)


def set_shifts(layer, values):
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(values, dtype=layer.weight.dtype))


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_shapes_dtypes_and_gradients(cls):
    layer = make(cls, channels=27)
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        x = torch.randn(2, 27, *SIZES[cls.dims], generator=gen(1)).to(dtype).requires_grad_()
        out = layer(x)
        assert out.shape == x.shape and out.dtype == dtype
        out.float().square().sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
    assert layer.weight.shape == (27, cls.dims)
    if issubclass(cls, shiftzoo.nn.GroupedShift):
        assert layer.weight.grad is None and not layer.weight.requires_grad
    else:
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_sparse_forward_is_the_rounded_shift(dims):
    layer = make(FAMILIES["sparse"][dims], channels=6)
    shifts = torch.tensor([[0.4, -1.6, 2.5], [-0.5, 1.5, 0.0], [3.2, -2.7, 1.1],
                           [0.0, 0.0, 0.0], [-1.2, 0.7, -3.5], [1.49, -0.51, 2.0]])[:, :dims]
    set_shifts(layer, shifts)
    x = torch.randn(2, 6, *SIZES[dims], generator=gen(2), dtype=F64)
    rounded = torch.round(shifts).long().tolist()  # half to even: 2.5 -> 2, -0.5 -> 0, 1.5 -> 2
    torch.testing.assert_close(layer(x), pad_slice_per_channel(x, rounded))
    periodic = make(type(layer), channels=6, padding="periodic")
    set_shifts(periodic, shifts)
    torch.testing.assert_close(periodic(x), roll_per_channel(x, rounded))


def test_sparse_shift_gradient_is_the_linear_one():
    """SSL: forward rounds, but the shift gradient is linear interpolation's, at the real shifts;
    the input gradient is the adjoint of the rounded shift (not of the interpolated one)."""
    sparse, active = make(SparseShift2d, 5), make(ActiveShift2d, 5)
    shifts = torch.randn(5, 2, generator=gen(3)) * 2
    set_shifts(sparse, shifts)
    set_shifts(active, shifts)
    x = torch.randn(2, 5, 7, 8, generator=gen(4), requires_grad=True)
    g = torch.randn(2, 5, 7, 8, generator=gen(5))
    (sparse(x) * g).sum().backward()
    torch.testing.assert_close(x.grad, pad_slice_per_channel(g, (-torch.round(shifts)).long().tolist()))
    (active(x.detach()) * g).sum().backward()
    torch.testing.assert_close(sparse.weight.grad, active.weight.grad)
    assert not torch.allclose(sparse(x), active(x))  # yet the forwards differ


def test_active_forward_matches_grid_sample():
    layer = make(ActiveShift2d, 4, padding="border")
    x = torch.randn(2, 4, 6, 7, generator=gen(6), dtype=F64)
    expected = grid_sample_shift(x, layer.weight.detach().double(), "bilinear", "border", True)
    torch.testing.assert_close(layer(x), expected)


def test_active_accepts_any_registered_interp_and_cubic_differs():
    linear, cubic = make(ActiveShift1d, 3), make(ActiveShift1d, 3, interp="cubic")
    set_shifts(cubic, linear.weight.detach())
    x = torch.randn(1, 3, 12, generator=gen(7))
    assert cubic.interp == "cubic" and not torch.allclose(linear(x), cubic(x))
    cubic(x.requires_grad_()).sum().backward()
    assert cubic.weight.grad.abs().sum() > 0


def test_grouped_blocks_pattern_and_forward():
    """pattern="blocks": contiguous groups (ShiftNet's interleaved default: test_paper_fidelity.py)."""
    layer = GroupedShift2d(20, kernel_size=3, dilation=2, pattern="blocks")
    pattern = layer.weight.long().tolist()
    expected = [[dy * 2, dx * 2] for dy in (-1, 0, 1) for dx in (-1, 0, 1) for _ in range(2)] + [[0, 0]] * 2
    assert pattern == expected  # 9 groups of 20 // 9 = 2 channels, the 2 leftover channels unshifted
    x = torch.randn(2, 20, 7, 8, generator=gen(8), dtype=F64)
    torch.testing.assert_close(layer(x), pad_slice_per_channel(x, pattern))
    assert GroupedShift1d(7, kernel_size=5, pattern="blocks").weight.squeeze(1).tolist() == [-2, -1, 0, 1, 2, 0, 0]
    assert grouped_pattern(4, (1, 3), (1, 1), "blocks").tolist() == [[0, -1], [0, 0], [0, 1], [0, 0]]
    # even kernels: the centre rounds down like padding="same" (taps -ceil(e/2) .. floor(e/2), e = d(k-1))
    assert grouped_pattern(4, (4,), (1,), "blocks").squeeze(1).tolist() == [-2, -1, 0, 1]
    assert grouped_pattern(3, (2,), (3,), "blocks").squeeze(1).tolist() == [-2, 1, 0]
    # both patterns give every tap to the same number of channels
    for kernel in [(3, 3), (2, 3), (5,), (3, 1, 2)]:
        ones = (1,) * len(kernel)
        blocks, shiftnet = grouped_pattern(23, kernel, ones, "blocks"), grouped_pattern(23, kernel, ones)
        if all(k % 2 for k in kernel):
            assert sorted(blocks.tolist()) == sorted(shiftnet.tolist())
        assert shiftnet.unique(dim=0).shape[0] == blocks.unique(dim=0).shape[0]
    with pytest.raises(ValueError, match="pattern must be 'shiftnet' or 'blocks', got 'block'"):
        GroupedShift2d(9, pattern="block")


def test_grouped_shifts_are_frozen():
    layer = GroupedShift3d(27)
    assert "weight" in dict(layer.named_buffers()) and not list(layer.parameters())
    model = torch.nn.Sequential(torch.nn.Conv3d(27, 27, 1), layer)
    model.requires_grad_(True)  # unfreezing a model must not make the pattern trainable
    assert not layer.weight.requires_grad
    x = torch.randn(1, 27, 3, 4, 5, generator=gen(9), requires_grad=True)
    model(x).sum().backward()
    assert layer.weight.grad is None and x.grad is not None
    state = layer.state_dict()
    assert torch.equal(state["weight"], layer.weight)


def test_init_rule_one_and_two():
    torch.manual_seed(1)
    rule1 = SparseShift2d(400, init_shift=2.0)
    w = rule1.weight.detach()
    assert w.abs().max() <= 2.0 and (w < 0).any(0).all() and (w > 0).any(0).all()
    signs = set()
    for seed in range(8):
        torch.manual_seed(seed)
        w = ActiveShift2d(400, init_shift=(1.0, 3.0), init_thumb_rule=2).weight.detach()
        assert (w[:, 0].abs() <= 1.0).all() and (w[:, 1].abs() <= 3.0).all()
        assert w[:, 1].abs().max() > 2.0  # the range is really per axis
        per_axis_sign = torch.sign(w).unique(dim=0)
        assert len(per_axis_sign) == 1  # one random sign per axis, shared by every channel
        signs.update(map(tuple, per_axis_sign.tolist()))
    assert len(signs) > 1  # ... and the sign is drawn, not fixed
    zero_axis = SparseShift2d(10, init_shift=(0.0, 1.0)).weight.detach()
    assert (zero_axis[:, 0] == 0).all() and (zero_axis[:, 1] != 0).any()


def test_reset_parameters_is_reproducible():
    layer = make(SparseShift2d, 8)
    before = layer.weight.detach().clone()
    torch.manual_seed(0)
    layer.reset_parameters()
    assert torch.equal(layer.weight.detach(), before)


def test_integer_shifts():
    layer = make(SparseShift2d, 4)
    set_shifts(layer, [[0.5, -0.5], [1.5, 0.2], [-2.6, 0.0], [0.49, -0.49]])
    result = layer.integer_shifts()
    assert result.shifts.dtype == torch.int64
    assert result.shifts.tolist() == [[0, 0], [2, 0], [-3, 0], [0, 0]]
    assert result.zero_fraction == pytest.approx(6 / 8)
    assert result.unshifted_fraction == pytest.approx(2 / 4)
    grouped = GroupedShift2d(10).integer_shifts()
    assert grouped.unshifted_fraction == pytest.approx(2 / 10)  # the centre group and the leftover channel
    with pytest.raises(TypeError, match="interpolates"):
        make(ActiveShift2d, 4).integer_shifts()


def test_sparsity_loss():
    layer = make(SparseShift2d, 6, sparsity=0.1)
    set_shifts(layer, torch.arange(12.0).view(6, 2) - 6)
    torch.testing.assert_close(layer.sparsity_loss(), torch.tensor(0.1 * 36.0))
    layer.sparsity_loss().backward()
    torch.testing.assert_close(layer.weight.grad, 0.1 * torch.sign(layer.weight.detach()))
    assert make(ActiveShift2d, 6).sparsity_loss().item() == 0.0
    assert GroupedShift2d(9).sparsity_loss().item() == 0.0
    assert make(SparseShift2d, 6, sparsity=0.0).sparsity_loss().item() == 0.0
    second = make(SparseShift1d, 3)
    model = torch.nn.Sequential(torch.nn.Conv2d(6, 6, 1), layer, torch.nn.ModuleList([second, make(ActiveShift1d, 3)]))
    expected = 0.1 * layer.weight.abs().sum() + 5e-4 * second.weight.abs().sum()
    torch.testing.assert_close(shiftzoo.sparsity_loss(model), expected)
    assert shiftzoo.sparsity_loss(torch.nn.Linear(2, 2)).item() == 0.0


def test_extra_repr_and_pickle():
    text = repr(make(SparseShift2d, 4, padding="reflect", sparsity=1e-3))
    assert text.startswith("SparseShift2d(") and "channels=4" in text and "padding='reflect'" in text
    assert "sparsity=0.001" in text
    assert "interp='cubic'" in repr(make(ActiveShift3d, 2, interp="cubic"))
    assert "kernel_size=(5,)" in repr(GroupedShift1d(5, kernel_size=5))
    layer = make(SparseShift3d, 3)
    clone = pickle.loads(pickle.dumps(layer))
    assert type(clone) is SparseShift3d and torch.equal(clone.weight, layer.weight)
    assert issubclass(SparseShift2d, SparseShift) and issubclass(ActiveShift2d, ActiveShift)
    assert issubclass(GroupedShift2d, ShiftLayer)


def test_runtime_registered_padding_is_accepted():
    shiftzoo.register_padding("test_mirror_zero", lambda i, n: torch.where((i >= 0) & (i < n), i, -1), period=0)
    try:
        layer = make(SparseShift1d, 2, padding="test_mirror_zero")
        set_shifts(layer, [[1.0], [-2.0]])
        x = torch.arange(10.0).view(1, 2, 5)
        assert layer(x).tolist() == [[[0.0, 0.0, 1.0, 2.0, 3.0], [7.0, 8.0, 9.0, 0.0, 0.0]]]
    finally:
        plugin_registry.unregister("padding", "test_mirror_zero")


@pytest.mark.parametrize("make_layer, match", [
    (lambda: SparseShift2d(4, padding="zero"), r"unknown padding 'zero' \(did you mean 'zeros'\?\)"),
    (lambda: ActiveShift2d(4, interp="bilinear"), r"unknown interp 'bilinear'.*linear"),
    (lambda: SparseShift2d(0), r"channels must be a positive int, got 0"),
    (lambda: SparseShift2d(4, init_thumb_rule=3), r"init_thumb_rule must be 1 .* or 2"),
    (lambda: SparseShift2d(4, init_shift=(1.0, 2.0, 3.0)), r"init_shift must be a number or 2 numbers"),
    (lambda: SparseShift2d(4, init_shift=-1), r"init_shift must be a finite number >= 0"),
    (lambda: SparseShift2d(4, sparsity=float("nan")), r"sparsity must be a finite number"),
    (lambda: GroupedShift2d(16, kernel_size=0), r"kernel_size must be an int >= 1"),
    (lambda: GroupedShift2d(8), r"8 channels cannot hold the 9 displacements of a 3x3 kernel"),
    (lambda: GroupedShift2d(9, kernel_size=(3, 3, 3)), r"kernel_size must be an int >= 1 or a sequence of 2"),
    (lambda: FixedShift(torch.zeros(3)), r"shifts must have shape \(C, d\)"),
])
def test_constructor_errors(make_layer, match):
    with pytest.raises(ValueError, match=match):
        make_layer()


def test_family_base_is_not_a_layer():
    with pytest.raises(TypeError, match="use its 1d, 2d or 3d variant"):
        SparseShift(4)


def test_input_errors():
    layer = make(SparseShift2d, 4)
    with pytest.raises(ValueError, match=r"SparseShift2d: expected input \(N, C, H, W\) with C=4, got shape \(2, 4, 5\)"):
        layer(torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match=r"with C=4, got shape \(2, 3, 5, 5\)"):
        layer(torch.randn(2, 3, 5, 5))


@pytest.mark.parametrize("cls", ALL + [FixedShift], ids=lambda c: c.__name__)
def test_unbatched_input_says_how_to_add_the_batch_axis(cls):
    layer = FixedShift(torch.zeros(27, 2)) if cls is FixedShift else make(cls, 27)
    shape = (27,) + SIZES[layer.dims]
    axes = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}[layer.dims]
    message = (f"{type(layer).__name__}: got an unbatched input of shape {shape}; expected {axes} with C=27: "
               "add the batch axis with x.unsqueeze(0)")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        layer(torch.randn(shape))
    assert layer(torch.randn(shape).unsqueeze(0)).shape == (1,) + shape
    with pytest.raises(ValueError, match=r"expected input .* with C=27, got shape \(26,"):  # not C: not unbatched
        layer(torch.randn((26,) + SIZES[layer.dims]))


def _quantized_reference(q, int_shifts):
    """Shifts the integer representation, filling with the zero point (the quantized zero)."""
    zp = q.q_zero_point()
    shifted = pad_slice_per_channel(q.int_repr().double() - zp, int_shifts) + zp
    return shifted.to(q.int_repr().dtype)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_quantized_input_is_shifted_exactly():
    layer = make(SparseShift2d, 3)
    set_shifts(layer, [[1.2, -0.7], [0.0, 2.0], [-1.6, 0.4]])
    x = torch.randn(2, 3, 5, 6, generator=gen(10))
    q = torch.quantize_per_tensor(x, 0.05, 70, torch.quint8)
    out = layer(q)
    assert out.is_quantized and out.q_scale() == 0.05 and out.q_zero_point() == 70
    assert torch.equal(out.int_repr(), _quantized_reference(q, [[1, -1], [0, 2], [-2, 0]]))
    per_channel = torch.quantize_per_channel(x, torch.tensor([0.1, 0.2, 0.05]), torch.tensor([0, 3, -2]), 1, torch.qint8)
    assert torch.equal(layer(per_channel).dequantize(), layer(per_channel.dequantize()))
    with pytest.raises(ValueError, match=r"quantized \(torch.quint8\) input needs whole-pixel shifts"):
        make(ActiveShift2d, 3)(q)


def test_compile_fullgraph():
    torch._dynamo.reset()
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 9, 1), make(SparseShift2d, 9), GroupedShift2d(9))
    x = torch.randn(2, 3, 6, 6, generator=gen(11))
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), model(x))
    compiled(x).sum().backward()
    assert model[1].weight.grad is not None
