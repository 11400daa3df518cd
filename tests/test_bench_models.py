"""The network benchmarks' stand-ins: the floors bench_models.py times in place of the shift layers
must produce what the layers produce in shape and layout (else the floor network would not run, or
would run another network), and the copy floor must read where the shift with no move reads;
bench_layers.py must give a layer and its convolution the same work. Nothing is timed here."""
import pathlib
import sys

import pytest
import torch

import shiftzoo

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_models as bench  # noqa: E402  (a plain import: a broken benchmark must fail here, not skip)

SAMPLINGS = [(1, 0), (2, 0), (2, (1, 0)), (3, 2), (2, -1)]


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["contiguous", "cl"])
@pytest.mark.parametrize("stride, crop", SAMPLINGS)
def test_floors_stand_in_for_the_layers(memory_format, stride, crop):
    x = torch.randn(2, 4, 9, 8).contiguous(memory_format=memory_format)
    unmoved = shiftzoo.InferenceShift(torch.zeros(4, 2), "zeros", stride, crop)
    want = unmoved(x)
    copied = bench.CopyFloor(unmoved)(x)
    assert copied.shape == want.shape and copied.is_contiguous(memory_format=memory_format)
    if crop != -1:  # inside the input, a shift that moves nothing is the copy of the kept positions
        assert torch.equal(copied, want)
    layer = shiftzoo.SparseShift2d(4, stride=stride, crop=crop)
    floor = bench.ChannelScaleFloor(layer)
    scaled = floor(x.requires_grad_())
    assert scaled.shape == layer(x).shape
    scaled.sum().backward()  # the work of an SSL layer: both gradients
    assert floor.scale.grad.shape == (4,) and x.grad.shape == x.shape


def test_with_floors_replaces_every_layer_of_the_kind():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), shiftzoo.SparseShift2d(4, stride=2),
                                torch.nn.Sequential(shiftzoo.SparseShift2d(4), torch.nn.Conv2d(4, 2, 1)))
    floor = bench.with_floors(model, shiftzoo.nn.SparseShift, bench.ChannelScaleFloor)
    assert [type(m).__name__ for m in floor.modules()].count("ChannelScaleFloor") == 2
    assert not any(isinstance(m, shiftzoo.nn.SparseShift) for m in floor.modules())
    assert any(isinstance(m, shiftzoo.nn.SparseShift) for m in model.modules())  # the original is untouched
    x = torch.randn(1, 3, 10, 10)
    assert floor(x).shape == model(x).shape


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["contiguous", "cl"])
@pytest.mark.parametrize("stride", [1, 2])
def test_layer_benchmark_times_the_same_work_on_both_sides(memory_format, stride):
    """bench_layers.py: the shift and the convolution it replaced run on one input and one upstream
    gradient, both producing their output and every gradient (the input's and the parameters')."""
    import bench_layers

    conv = torch.nn.Conv2d(6, 6, 3, stride=stride, padding=1, groups=6, bias=False)
    pair = bench_layers.LayerPair("conv", conv, shiftzoo.SparseShift2d.from_depthwise(conv), (2, 6, 9, 10))
    cands = bench_layers.candidates(pair, memory_format, seed=0)
    assert set(cands) == {"shift fwd", "dw fwd", "shift fwd+bwd", "dw fwd+bwd"}
    assert cands["shift fwd"].run().shape == cands["dw fwd"].run().shape
    for side, module in (("shift", pair.shift), ("dw", conv)):
        grads = cands[f"{side} fwd+bwd"].run()
        params = [p for p in module.parameters() if p.requires_grad]
        assert [g.shape for g in grads] == [torch.Size((2, 6, 9, 10))] + [p.shape for p in params]
        assert grads[0].is_contiguous(memory_format=memory_format)
