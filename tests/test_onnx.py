"""ONNX export (shiftzoo/onnx_export.py): the translated graphs hold standard ONNX operators only,
pass onnx.checker, and onnxruntime computes what PyTorch computes, for every compiled padding and
interpolation in 1D/2D/3D, with stride and crop, huge shifts and a dynamic batch axis.

Exports are slow (seconds each), so each module exports once and returns every combination as a
tuple; the shifts are a graph input, so one export is run with many shift sets (and the index
arithmetic runs in onnxruntime instead of being folded away by the exporter's optimizer).
"""
import copy
import math

import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

import shiftzoo  # noqa: E402
from shiftzoo import functional, plugin_registry  # noqa: E402
from shiftzoo.inference import InferenceShift  # noqa: E402
from shiftzoo.onnx_export import (ONNX_INTERPS, ONNX_PADDINGS, ShiftExportError, export_onnx,  # noqa: E402
                                  onnx_translations)

ATOL = 1e-5
CHANNELS = 6
SIZES = {1: (9,), 2: (5, 7), 3: (5, 6, 4)}
# (stride, crop) per axis, cycled over the axes of a dim; negative crops reach into the padding
SAMPLINGS = [(2, (1, -2)), (3, (-3, 1)), (1, (2, 1)), (2, (0, 0)), (4, (-1, -4))]


def _sampling(index: int, dims: int):
    cases = [SAMPLINGS[(index + k) % len(SAMPLINGS)] for k in range(dims)]
    return tuple(s for s, _ in cases), tuple(c for _, c in cases)


def _combos(dims: int):
    """Every padding x interp with every position kept, then every padding again, strided and
    cropped, with the interps in turn."""
    combos = [(p, i, 1, 0) for p in ONNX_PADDINGS for i in ONNX_INTERPS]
    for j, p in enumerate(ONNX_PADDINGS):
        combos += [(p, ONNX_INTERPS[(j + 1) % len(ONNX_INTERPS)], *_sampling(j, dims))]
    return combos


class AllShifts(nn.Module):
    def __init__(self, dims: int):
        super().__init__()
        self.combos = _combos(dims)

    def forward(self, x, shifts):
        return tuple(functional.shift(x, shifts, p, i, stride=s, crop=c) for p, i, s, c in self.combos)


def _session(program):
    return ort.InferenceSession(program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _run(session, *inputs):
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {name: value.numpy() for name, value in zip(names, inputs)})


def _export(module, args, dynamic_shapes):
    return torch.onnx.export(module, args, dynamo=True, custom_translation_table=onnx_translations(),
                             dynamic_shapes=dynamic_shapes, verbose=False)


def _check_graph(program):
    """Standard ONNX only, and onnx.checker accepts it."""
    model = program.model_proto
    domains = {node.domain for node in model.graph.node}
    assert domains <= {"", "ai.onnx"}, domains
    assert not model.functions, [f.name for f in model.functions]
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}
    onnx.checker.check_model(model, full_check=True)


@pytest.fixture(scope="module", params=[1, 2, 3], ids=lambda d: f"{d}d")
def exported(request):
    dims = request.param
    module = AllShifts(dims).eval()
    x = torch.randn((2, CHANNELS) + SIZES[dims])
    shifts = torch.randn(CHANNELS, dims)
    batch = torch.export.Dim("batch")
    program = _export(module, (x, shifts), ({0: batch}, None))
    return dims, module, program, _session(program)


KINDS = ["fractional", "integer", "ties", "huge"]


def _shift_set(kind: str, dims: int, generator: torch.Generator) -> torch.Tensor:
    sizes = torch.tensor(SIZES[dims], dtype=torch.float32)
    # (mostly inside the axis, so that zero padding still leaves something to compare)
    if kind == "fractional":
        return (torch.rand(CHANNELS, dims, generator=generator) * 2 - 1) * (sizes * 0.6 + 0.5)
    if kind == "integer":
        return torch.round((torch.rand(CHANNELS, dims, generator=generator) * 2 - 1) * (sizes * 0.7 + 1))
    if kind == "ties":  # halves: nearest and quadratic round the shift half to even
        whole = torch.randint(-4, 4, (CHANNELS, dims), generator=generator).float()
        return whole + 0.5
    # huge: beyond the axis by far (the op saturates or reduces by the period), and around it
    table = torch.tensor([1e30, -1e30, 3.5, -3.5, 2.25, -7.75, 3e6 + 0.25, -1e9])
    pick = torch.randint(0, len(table), (CHANNELS, dims), generator=generator)
    scale = torch.where(table[pick].abs() < 100, sizes.expand(CHANNELS, dims), torch.ones(CHANNELS, dims))
    return table[pick] * scale  # +-3.5 n, 2.25 n, -7.75 n, and the huge ones as they are


@pytest.mark.parametrize("kind", KINDS)
def test_onnxruntime_matches_pytorch(exported, kind):
    dims, module, program, session = exported
    g = torch.Generator().manual_seed(10 * dims + KINDS.index(kind))
    shifts = _shift_set(kind, dims, g)
    x = torch.randn((3, CHANNELS) + SIZES[dims], generator=g)  # batch 3: exported with 2
    got = _run(session, x, shifts)
    want = module(x, shifts)
    assert len(got) == len(want) == len(module.combos)
    for combo, g_out, w_out in zip(module.combos, got, want):
        assert tuple(g_out.shape) == tuple(w_out.shape), combo
        torch.testing.assert_close(torch.from_numpy(g_out), w_out, atol=ATOL, rtol=0, msg=lambda m: f"{combo}: {m}")


def test_graph_is_standard_onnx(exported):
    _check_graph(exported[2])


def test_a_wrong_translation_would_be_caught(exported):
    """The data and shifts are asymmetric enough that a wrong sign, swapped axes or a wrong
    rounding of ties would fail test_onnxruntime_matches_pytorch."""
    dims, module, _, session = exported
    g = torch.Generator().manual_seed(7)
    x = torch.randn((3, CHANNELS) + SIZES[dims], generator=g)
    shifts = _shift_set("fractional", dims, g)
    got = _run(session, x, shifts)
    wrong = module(x, -shifts)
    ties = _shift_set("ties", dims, g)
    got_ties = _run(session, x, ties)
    away = torch.trunc(ties) + torch.sign(ties)  # rounding half away from zero instead of to even
    wrong_ties = module(x, away)
    for k, combo in enumerate(module.combos):
        assert not torch.allclose(torch.from_numpy(got[k]), wrong[k], atol=ATOL), ("sign", combo)
        if combo[1] == "nearest":
            assert not torch.allclose(torch.from_numpy(got_ties[k]), wrong_ties[k], atol=ATOL), ("ties", combo)
    if dims > 1:
        swapped = module(x, shifts.flip(1))
        for k, combo in enumerate(module.combos):
            if combo[2:] == (1, 0):
                assert not torch.allclose(torch.from_numpy(got[k]), swapped[k], atol=ATOL), ("axes", combo)


def test_dynamic_spatial_sizes():
    """Spatial lengths are read at run time: an export with dynamic H and W runs on other sizes."""
    combos = [("zeros", "linear", 1, 0), ("reflect", "cubic", (2, 1), ((1, -2), (0, 1))),
              ("symmetric", "quadratic", (1, 3), ((-2, 0), (1, 1))), ("periodic", "nearest", 1, 0)]
    module = AllShifts(2).eval()
    module.combos = combos
    x, shifts = torch.randn(2, 3, 6, 7), torch.randn(3, 2) * 3
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("h", min=2, max=64),
            3: torch.export.Dim("w", min=2, max=64)}
    session = _session(_export(module, (x, shifts), (dims, None)))
    for size in [(4, 9), (11, 3), (2, 2)]:
        x = torch.randn((3, 3) + size)
        shifts = torch.tensor([[0.3, -2.7], [1e30, 5.5], [-9.25, -1e30]])
        for combo, got, want in zip(combos, _run(session, x, shifts), module(x, shifts)):
            torch.testing.assert_close(torch.from_numpy(got), want, atol=ATOL, rtol=0,
                                       msg=lambda m: f"{combo} {size}: {m}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_other_float_dtypes(dtype):
    """float64 is computed in float64; float16 in float32 and rounded back, as the op does."""
    module = AllShifts(2).eval()
    module.combos = [("zeros", "cubic", 1, 0), ("reflect", "linear", (2, 1), ((1, -2), (0, 1))),
                     ("periodic", "quadratic", 1, 0)]
    x, shifts = torch.randn(2, 3, 6, 7, dtype=dtype), (torch.randn(3, 2) * 3).to(dtype)
    session = _session(_export(module, (x, shifts), ({0: torch.export.Dim("batch")}, None)))
    x = torch.randn(3, 3, 6, 7, dtype=dtype)
    shifts = torch.tensor([[0.3, -2.7], [1e4, 5.5], [-9.25, -1e4]], dtype=dtype)
    atol = ATOL if dtype == torch.float64 else 4e-3
    for combo, got, want in zip(module.combos, _run(session, x, shifts), module(x, shifts)):
        assert got.dtype == want.numpy().dtype
        torch.testing.assert_close(torch.from_numpy(got), want, atol=atol, rtol=0, msg=lambda m: f"{combo}: {m}")


def test_weight_tables_are_the_interpolations():
    """The translation's polynomial coefficient tables give the reference's weights."""
    from shiftzoo import reference
    from shiftzoo.onnx_export import _INTERPS

    assert set(_INTERPS) == set(ONNX_INTERPS)
    for name, (support, table) in _INTERPS.items():
        interp = reference.INTERPS[name]
        assert support == interp.support
        if table is None:
            continue
        f = torch.linspace(0, 1, 41, dtype=torch.float64)[:-1] - (0.5 if support % 2 else 0.0)
        basis = f.unsqueeze(1) ** torch.arange(len(table), dtype=torch.float64)
        torch.testing.assert_close(basis @ torch.tensor(table, dtype=torch.float64), interp.weights(f),
                                   atol=1e-12, rtol=0)


def test_missing_onnxscript_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript now raises ImportError
    with pytest.raises(ImportError, match=r"pip install onnx onnxscript onnxruntime"):
        onnx_translations()


# ------------------------------------------------------------------------------------------------
# shift_affine: the inference op, with its per-channel maps
# ------------------------------------------------------------------------------------------------

HAS_FILL = "fill" in str(torch.ops.shiftzoo.shift_affine.default._schema)
INF = math.inf
# (pre affine?, pre bounds, post affine?, post bounds)
MAPS = [(True, (0.0, INF), True, (-1.0, 1.5)), (False, (-INF, INF), True, (-INF, INF)),
        (True, (-0.5, 6.0), False, (-INF, 0.25)), (False, (0.0, 6.0), False, (-INF, INF)),
        (True, (-INF, INF), True, (0.0, INF))]


class AllAffine(nn.Module):
    """shift_affine for every padding, with maps and sampling in turn (and fill where the op has it)."""

    def __init__(self, dims: int, use_fill: bool):
        super().__init__()
        self.dims, self.use_fill = dims, use_fill
        self.cases = []
        for j, padding in enumerate(ONNX_PADDINGS):
            for maps in (MAPS[j], MAPS[(j + 2) % len(MAPS)]):
                sampling = _sampling(j, dims) if maps is MAPS[j] else ((1,) * dims, ((0, 0),) * dims)
                self.cases.append((padding, sampling, maps))

    def forward(self, x, shifts, pre_scale, pre_bias, post_scale, post_bias, fill):
        outs = []
        for padding, (stride, crop), (pre_affine, pre_bounds, post_affine, post_bounds) in self.cases:
            extra = (fill,) if self.use_fill else ()
            outs.append(torch.ops.shiftzoo.shift_affine(
                x, shifts, padding, list(stride), [b for b, _ in crop], [e for _, e in crop],
                pre_scale if pre_affine else None, pre_bias if pre_affine else None, *pre_bounds,
                post_scale if post_affine else None, post_bias if post_affine else None, *post_bounds, *extra))
        return tuple(outs)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_shift_affine(dims):
    module = AllAffine(dims, HAS_FILL).eval()
    g = torch.Generator().manual_seed(dims)

    def inputs(batch, shifts):
        x = torch.randn((batch, CHANNELS) + SIZES[dims], generator=g) * 3
        maps = [torch.randn(CHANNELS, generator=g) for _ in range(4)]
        fill = torch.randn(CHANNELS, generator=g) * 2
        return (x, shifts, *maps, fill)

    whole = torch.randint(-6, 7, (CHANNELS, dims), generator=g).float()
    whole[0, 0], whole[1, -1], whole[2, 0] = 1e30, -1e30, -3 * SIZES[dims][0]
    batch = torch.export.Dim("batch")
    program = _export(module, inputs(2, whole), ({0: batch},) + (None,) * 6)
    _check_graph(program)
    session = _session(program)
    for shifts in (whole, -whole.flip(0)):
        args = inputs(3, shifts)
        for case, got, want in zip(module.cases, _run(session, *args), module(*args)):
            torch.testing.assert_close(torch.from_numpy(got), want, atol=ATOL, rtol=0, msg=lambda m: f"{case}: {m}")


@pytest.mark.skipif(not HAS_FILL, reason="shift_affine has no fill argument in this build")
def test_shift_affine_fill_is_used():
    """A nonzero fill changes the zero-padded output (so test_shift_affine checks it)."""
    x, shifts = torch.randn(1, 2, 5), torch.tensor([[2.0], [-3.0]])
    args = ("zeros", [1], [0], [0], None, None, -INF, INF, None, None, -INF, INF)
    plain = torch.ops.shiftzoo.shift_affine(x, shifts, *args)
    filled = torch.ops.shiftzoo.shift_affine(x, shifts, *args, torch.tensor([7.0, -7.0]))
    assert (filled != plain).any()


def _integer_affine_supported(dtype) -> bool:
    try:
        torch.ops.shiftzoo.shift_affine(torch.zeros(1, 2, 3, dtype=dtype), torch.zeros(2, 1), "zeros", [1], [0], [0],
                                        None, None, -INF, INF, None, None, -INF, INF)
    except Exception:
        return False
    return True


DATA_DTYPES = [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool]


@pytest.mark.skipif(not _integer_affine_supported(torch.int8), reason="shift_affine takes floating input only here")
def test_integer_and_bool_input():
    """Integer and bool data move exactly (functional.shift -> shift_affine, taps outside read fill)."""

    class Whole(nn.Module):
        def forward(self, shifts, xs, fills):
            outs = []
            for j, (x, fill) in enumerate(zip(xs, fills)):
                # zeros (taps outside read fill) and another padding in turn, one strided
                other = ONNX_PADDINGS[1 + j % (len(ONNX_PADDINGS) - 1)]
                stride, crop = _sampling(j, 2)
                outs.append(functional.shift(x, shifts, "zeros", "nearest", stride=stride, crop=crop,
                                             fill=fill if HAS_FILL else None))
                outs.append(functional.shift(x, shifts, other, "nearest"))
            return tuple(outs)

    g = torch.Generator().manual_seed(3)

    def data(batch):
        return [torch.randint(0, 2 if dtype == torch.bool else 100, (batch, CHANNELS, 5, 7), generator=g).to(dtype)
                for dtype in DATA_DTYPES]

    shifts = torch.randint(-8, 9, (CHANNELS, 2), generator=g).float()
    shifts[0, 1] = -1e30
    fills = [torch.randint(0, 2 if dtype == torch.bool else 100, (CHANNELS,), generator=g).to(dtype)
             for dtype in DATA_DTYPES]
    module = Whole().eval()
    batch = torch.export.Dim("batch")
    program = _export(module, (shifts, data(2), fills), (None, [{0: batch}] * len(DATA_DTYPES),
                                                          [None] * len(DATA_DTYPES)))
    _check_graph(program)
    xs = data(3)
    got = _run(_session(program), shifts, *xs, *fills)
    want = module(shifts, xs, fills)
    assert len(got) == len(want) == 2 * len(DATA_DTYPES)
    for k, (g_out, w_out) in enumerate(zip(got, want)):
        assert torch.equal(torch.from_numpy(g_out), w_out), (DATA_DTYPES[k // 2], k % 2)


# ------------------------------------------------------------------------------------------------
# End to end: a small CNN, as trained and after optimize_for_inference
# ------------------------------------------------------------------------------------------------

def _cnn() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 12, 1, bias=False), nn.BatchNorm2d(12), nn.ReLU(),
        shiftzoo.SparseShift2d(12, padding="zeros", init_shift=2.5),
        nn.BatchNorm2d(12), nn.ReLU6(),
        nn.Conv2d(12, 12, 1),
        shiftzoo.GroupedShift2d(12, kernel_size=3, padding="reflect"),
        nn.Conv2d(12, 12, 1, bias=False), nn.BatchNorm2d(12), nn.ReLU(),
        shiftzoo.ActiveShift2d(12, padding="symmetric", interp="cubic", init_shift=3.0),
        nn.Conv2d(12, 8, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        shiftzoo.SparseShift2d(8, padding="border", init_shift=3.0, stride=2, crop=(1, 0)),
        nn.Conv2d(8, 4, 1),
    )
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
        model[3].weight[0] = torch.tensor([1e30, -2.0])  # huge shifts survive export too
    return model.eval()


def test_cnn_end_to_end(tmp_path):
    model = _cnn()
    path = tmp_path / "cnn.onnx"
    program = export_onnx(model, torch.randn(2, 3, 10, 9), path)
    _check_graph(program)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 3, 10, 9)
    with torch.no_grad():
        want = model(x)
    torch.testing.assert_close(torch.from_numpy(_run(session, x)[0]), want, atol=ATOL, rtol=0)


def test_cnn_optimized_for_inference_end_to_end():
    model = copy.deepcopy(_cnn())
    report = shiftzoo.optimize_for_inference(model)
    folded = [m for m in model.modules() if isinstance(m, InferenceShift) and m.folds]
    assert report.folded and folded, str(report)  # shift_affine with BatchNorm/ReLU maps is exported
    program = export_onnx(model, torch.randn(1, 3, 10, 9), opset_version=18)  # batch 1: traced at 2, dynamic
    _check_graph(program)
    assert "shift_affine" in str(program.exported_program.graph)
    x = torch.randn(3, 3, 10, 9)
    with torch.no_grad():
        want = model(x)
    torch.testing.assert_close(torch.from_numpy(_run(_session(program), x)[0]), want, atol=ATOL, rtol=0)


# ------------------------------------------------------------------------------------------------
# Refusals
# ------------------------------------------------------------------------------------------------

@pytest.fixture
def runtime_plugins():
    def edge_then_zeros(i, n):
        return torch.where((i >= -1) & (i <= n), i.clamp(0, n - 1), torch.full_like(i, -1))

    shiftzoo.register_padding("onnx_test_pad", edge_then_zeros, period=0)
    shiftzoo.register_interp("onnx_test_interp", support=2, weights=lambda f: torch.stack((1 - f, f), -1))
    yield
    plugin_registry.unregister("padding", "onnx_test_pad")
    plugin_registry.unregister("interp", "onnx_test_interp")


def _chain(exc):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def test_runtime_padding_is_refused(runtime_plugins):
    layer = shiftzoo.ActiveShift1d(4, padding="onnx_test_pad").eval()
    x = torch.randn(2, 4, 8)
    # the translation itself refuses (plain torch.onnx.export) ...
    with pytest.raises(Exception) as info:
        _export(layer, (x,), ({0: torch.export.Dim("batch")},))
    ours = [e for e in _chain(info.value) if isinstance(e, ShiftExportError)]
    assert ours, repr(info.value)
    message = str(ours[0])
    assert "onnx_test_pad" in message and "only compiled paddings" in message
    # ... and export_onnx says so before tracing, naming the layer
    with pytest.raises(ShiftExportError, match=r"runtime padding plugin 'onnx_test_pad'.*only compiled"):
        export_onnx(layer, x)


def test_runtime_interp_is_refused(runtime_plugins):
    layer = shiftzoo.ActiveShift1d(4, interp="onnx_test_interp").eval()
    with pytest.raises(ShiftExportError, match=r"runtime interp plugin 'onnx_test_interp'.*only compiled"):
        export_onnx(layer, torch.randn(2, 4, 8))
    # the op itself only knows its padding: the translation's message says it is an interpolation
    from shiftzoo.onnx_export import shift_tabled_to_onnx
    with pytest.raises(ShiftExportError, match=r"runtime interpolation plugin.*'zeros' is compiled"):
        shift_tabled_to_onnx(None, None, [], None, None, [], None, "zeros", [1], [0], [0])
