"""Integer, bool and quantized data: whole-pixel shifts move them exactly, taps outside reading
``fill`` (zeros padding), through the functional API, the nearest layers and quantized tensors.
Checked against the reference's integer path and, independently, against torch.roll and slicing."""
import math

import pytest
import torch

import shiftzoo
from shiftzoo import functional, reference
from shiftzoo._sampling import Sampling

from helpers import PADDINGS, make_input, pad_slice_per_channel, roll_per_channel

INTEGER_DTYPES = [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool]
SHAPES = {1: (2, 5, 9), 2: (2, 5, 6, 7), 3: (2, 5, 3, 4, 5)}


def integer_input(shape, dtype, layout, seed=0):
    """Values spread over the dtype's whole range (int64 beyond 2**53, where a float64 detour
    would round), in the given layout."""
    info = torch.iinfo(dtype) if dtype != torch.bool else None
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        values = torch.rand(shape, generator=g) > 0.5
    elif dtype == torch.int64:
        values = torch.randint(-2**62, 2**62, shape, generator=g, dtype=torch.int64) * 2 + 1
    else:
        values = torch.randint(info.min, info.max + 1, shape, generator=g, dtype=torch.int64).to(dtype)
    template = make_input(shape, torch.float32, layout, seed)  # its strides (a strided view's too)
    return torch.empty_strided(template.shape, template.stride(), dtype=dtype).copy_(values)


def shifts_for(channels, dims, seed=1):
    g = torch.Generator().manual_seed(seed)
    s = (torch.rand(channels, dims, generator=g) - 0.5) * 12
    s[0] = 0.5  # a tie: rounds half to even
    s[1, 0] = 1e30  # far outside every axis
    return s


def fill_for(dtype, channels, kind):
    if kind is None:
        return None
    if dtype == torch.bool:
        return True if kind == "number" else torch.arange(channels) % 2 == 0
    top = 100 if dtype in (torch.int8, torch.uint8) else 30000
    return 7 if kind == "number" else torch.arange(channels, dtype=dtype) * (top // channels)


def fill_tensor(fill, dtype, channels):
    return None if fill is None else torch.as_tensor(fill).to(dtype).expand(channels).contiguous()


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("dtype", INTEGER_DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_integer_data_moves_exactly(padding, dims, dtype, layout):
    x = integer_input(SHAPES[dims], dtype, layout)
    s = shifts_for(x.shape[1], dims)
    for sampling, fill_kind in [(Sampling.of(dims), None), (Sampling.of(dims), "number"),
                                (Sampling.of(dims, 2, [(1, -2)] * dims), "channels")]:
        fill = fill_for(dtype, x.shape[1], fill_kind)
        got = functional.shift(x, s, padding, "nearest", stride=sampling.stride, crop=sampling.crop, fill=fill)
        want = reference.shift(x, s, padding, "nearest", stride=sampling.stride, crop=sampling.crop,
                               fill=fill_tensor(fill, dtype, x.shape[1]))
        assert got.dtype == dtype and got.shape == want.shape
        assert torch.equal(got, want), (sampling, fill_kind)
        if layout == "channels_last" and sampling.is_identity:
            assert got.stride() == x.stride()


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_integer_shifts_equal_roll_and_slicing(dims):
    """Independently of the reference: periodic is torch.roll per channel, zeros is slicing into
    a tensor of the fill value."""
    x = integer_input(SHAPES[dims], torch.int64, "contiguous")
    whole = torch.randint(-4, 5, (x.shape[1], dims), generator=torch.Generator().manual_seed(3))
    s = whole.double()
    assert torch.equal(functional.shift(x, s, "periodic", "nearest"), roll_per_channel(x, whole.tolist()))
    got = functional.shift(x, s, "zeros", "nearest", fill=-5)
    ones = torch.ones_like(x)
    moved = pad_slice_per_channel(x, whole.tolist())
    inside = pad_slice_per_channel(ones, whole.tolist()).bool()
    assert torch.equal(got, torch.where(inside, moved, torch.full_like(x, -5)))


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")  # deprecated in torch 2.13, still served
def test_quantized_tensors_move_their_integers():
    """A quantized tensor's integers move as they are; taps outside read the zero point, i.e. 0.0."""
    x = torch.randn(2, 6, 5, 5)
    s = torch.tensor([[1.0, -2.0], [0.0, 3.0], [2.6, 0.0], [-1.0, -1.0], [4.0, 1.0], [0.0, 0.0]])
    layer = shiftzoo.FixedShift(s, "zeros")
    q = torch.quantize_per_tensor(x, 0.05, 17, torch.quint8)
    out = layer(q)
    assert out.is_quantized and out.q_scale() == 0.05 and out.q_zero_point() == 17
    assert torch.equal(out.int_repr(), functional.shift(q.int_repr(), s, "zeros", "nearest", fill=17))
    assert torch.equal(out.dequantize(), functional.shift(q.dequantize(), s, "zeros", "nearest"))
    zero_points = torch.arange(6) * 3 - 5
    qc = torch.quantize_per_channel(x, torch.rand(6) * 0.1 + 0.01, zero_points, 1, torch.qint8)
    outc = layer(qc)
    assert torch.equal(outc.q_per_channel_zero_points(), zero_points)
    assert torch.equal(outc.dequantize(), functional.shift(qc.dequantize(), s, "zeros", "nearest"))
    with pytest.raises(ValueError, match="per-tensor or per-channel along the channel axis"):
        layer(torch.quantize_per_channel(x, torch.ones(5), torch.zeros(5, dtype=torch.long), 2, torch.qint8))


LAYERS = {"sparse": lambda: shiftzoo.SparseShift2d(9, init_shift=3), "grouped": lambda: shiftzoo.GroupedShift2d(9),
          "fixed": lambda: shiftzoo.FixedShift(torch.arange(18.0).view(9, 2) - 8, "zeros")}


@pytest.mark.parametrize("kind", LAYERS)
def test_nearest_layers_take_integer_input(kind):
    layer = LAYERS[kind]()
    x = torch.randint(-100, 100, (2, 9, 6, 6), dtype=torch.int8)
    out = layer(x)
    assert out.dtype == torch.int8 and not out.requires_grad
    want = functional.shift(x.double(), layer.weight.detach().double(), layer.padding, "nearest")
    assert torch.equal(out, want.to(torch.int8))


def test_interpolating_modes_and_float_fill_are_refused():
    x = torch.zeros(1, 2, 4, 4, dtype=torch.int16)
    s = torch.zeros(2, 2)
    with pytest.raises(ValueError, match=r"int16 input moves by whole pixels only: use interp='nearest', got 'linear'"):
        functional.shift(x, s, "zeros", "linear")
    with pytest.raises(ValueError, match="needs whole-pixel shifts; 'linear' interpolation"):
        shiftzoo.ActiveShift2d(2)(x)
    with pytest.raises(ValueError, match="fill applies to integer and bool input"):
        functional.shift(x.float(), s, "zeros", "nearest", fill=1)
    with pytest.raises(ValueError, match=r"fill 300 is not representable in torch.int8"):
        functional.shift(x.to(torch.int8), s, "zeros", "nearest", fill=300)
    with pytest.raises(ValueError, match=r"fill 1.5 is not representable"):
        functional.shift(x, s, "zeros", "nearest", fill=1.5)
    with pytest.raises(ValueError, match=r"fill must be a number or 2 values"):
        functional.shift(x, s, "zeros", "nearest", fill=torch.zeros(3))
    with pytest.raises(ValueError, match=r"expected a floating-point input, got Int"):
        torch.ops.shiftzoo.shift(x.int(), s, "zeros", "nearest", "nearest", [1, 1], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="data moves as it is: the pre map"):
        torch.ops.shiftzoo.shift_affine(x, s, "zeros", [1, 1], [0, 0], [0, 0], None, None, 0.0, 6.0, None, None,
                                        -math.inf, math.inf)
    with pytest.raises(ValueError, match=r"expected fill of shape \(2,\), Short"):
        torch.ops.shiftzoo.shift_affine(x, s, "zeros", [1, 1], [0, 0], [0, 0], None, None, -math.inf, math.inf, None,
                                        None, -math.inf, math.inf, torch.zeros(2, dtype=torch.int32))


def test_runtime_paddings_refuse_integer_input():
    name = "test_integer_clamp"
    shiftzoo.register_padding(name, lambda i, n: i.clamp(0, n - 1), period=lambda n: 0)
    try:
        with pytest.raises(ValueError, match=f"the runtime padding '{name}' takes floating-point input only"):
            functional.shift(torch.zeros(1, 2, 4, dtype=torch.int32), torch.zeros(2, 1), name, "nearest")
    finally:
        shiftzoo.plugin_registry.unregister("padding", name)


@pytest.mark.parametrize("dtype", [torch.int8, torch.int64, torch.bool], ids=str)
def test_empty_inputs_and_axes(dtype):
    s = torch.zeros(3, 2)
    assert functional.shift(torch.zeros(0, 3, 4, 4, dtype=dtype), s, "zeros", "nearest").shape == (0, 3, 4, 4)
    # an empty axis extended through the padding by a negative crop: every tap reads the fill
    x = torch.zeros(2, 3, 0, 4, dtype=dtype)
    fill = torch.tensor([1, 0, 1]).to(dtype)
    out = functional.shift(x, s, "zeros", "nearest", crop=[(-2, 0), (0, 0)], fill=fill)
    assert out.shape == (2, 3, 2, 4) and torch.equal(out, fill.view(1, 3, 1, 1).expand(2, 3, 2, 4))


def test_compile_export_and_opcheck_take_integer_data():
    x = torch.randint(0, 255, (2, 4, 6, 6), dtype=torch.uint8)
    s = torch.tensor([[1.0, 0.0], [-2.0, 1.0], [0.0, 0.0], [3.0, -3.0]])
    fill = torch.full((4,), 9, dtype=torch.uint8)
    inf = math.inf
    args = (x, s, "zeros", [1, 1], [0, 0], [0, 0], None, None, -inf, inf, None, None, -inf, inf, fill)
    torch.library.opcheck(torch.ops.shiftzoo.shift_affine.default, args)

    def fn(x):
        return functional.shift(x, s, "zeros", "nearest", fill=9)

    want = fn(x)
    assert torch.equal(torch.compile(fn, backend="aot_eager", fullgraph=True)(x), want)
    layer = shiftzoo.FixedShift(s, "zeros")
    exported = torch.export.export(layer, (x,))
    assert torch.equal(exported.module()(x), layer(x))


@pytest.mark.host_checks
def test_non_finite_shifts_are_refused_for_integer_data():
    x = torch.zeros(1, 2, 4, 4, dtype=torch.int32)
    with pytest.raises(ValueError, match="shifts must be finite"):
        functional.shift(x, torch.tensor([[0.0, math.nan], [0.0, 0.0]]), "zeros", "nearest")


def test_the_fallback_moves_integers_too(monkeypatch):
    """Without the compiled extension, the pure-PyTorch reference moves integer data (exactly)."""
    x = integer_input((2, 4, 5, 6), torch.int64, "channels_last")
    s = shifts_for(4, 2)
    compiled = functional.shift(x, s, "reflect", "nearest", stride=2)
    with_fill = functional.shift(x, s, "zeros", "nearest", fill=-3)
    monkeypatch.setattr(shiftzoo._extension, "available", lambda: False)
    assert torch.equal(functional.shift(x, s, "reflect", "nearest", stride=2), compiled)
    assert torch.equal(functional.shift(x, s, "zeros", "nearest", fill=-3), with_fill)


@pytest.mark.parametrize("dtype", INTEGER_DTYPES, ids=str)
@pytest.mark.parametrize("dims", [2, 3])
def test_channel_runs_in_channels_last(dtype, dims):
    """Channels in runs of equal shifts, channels innermost, at least 32 bytes of them: moved a
    32-byte vector of channels at a time (as GroupedShift's groups), 1 to 8 bytes per element."""
    C = 70  # runs of 10, and a last vector overlapping the one before it
    shape = (2, C) + (5, 6, 7)[3 - dims:]
    x = integer_input(shape, dtype, "channels_last", seed=4)
    s = (torch.randint(-3, 4, (7, dims), generator=torch.Generator().manual_seed(5)).double()
         .repeat_interleave(10, dim=0))
    fill = fill_for(dtype, C, "channels")
    for sampling in (Sampling.of(dims), Sampling.of(dims, 2, [(1, -1)] * dims)):
        got = functional.shift(x, s, "zeros", "nearest", stride=sampling.stride, crop=sampling.crop, fill=fill)
        want = reference.shift(x, s, "zeros", "nearest", stride=sampling.stride, crop=sampling.crop,
                               fill=fill_tensor(fill, dtype, C))
        assert torch.equal(got, want), sampling
        border = functional.shift(x, s, "border", "nearest", stride=sampling.stride, crop=sampling.crop)
        assert torch.equal(border, reference.shift(x, s, "border", "nearest", stride=sampling.stride,
                                                   crop=sampling.crop))
