"""The blocks: shapes and gradient flow, built from config, their options and errors (their shift
patterns against the papers' own code: test_paper_fidelity.py)."""
from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import shiftzoo
from helpers import gen
from shiftzoo.blocks import AxialShiftBlock, CSCBlock, FEBlock, ShiftViTBlock, SpatialShiftBlock, TemporalShift


def test_fixed_shifts_are_buffers_built_once():
    block = ShiftViTBlock(24)
    assert "shift.weight" in dict(block.named_buffers())
    assert not any("shift" in name for name, _ in block.named_parameters())


# ------------------------------------------------------------------------------------------------
# TSM's online mode, step by step
# ------------------------------------------------------------------------------------------------

def test_online_tsm_streams_frame_by_frame():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 8, 1)
    tsm = TemporalShift(module=conv, n_segment=5, fold_div=4, bidirectional=False)  # channels from conv
    x = torch.randn(2 * 5, 16, 3, 3, generator=gen(5))
    offline = tsm(x).view(2, 5, 8, 3, 3)
    frames = x.view(2, 5, 16, 3, 3)
    state = None
    for t in range(5):
        frame = frames[:, t].clone()
        out, state = tsm.step(frame, state)
        torch.testing.assert_close(out, offline[:, t])
        frame.zero_()  # the state is a copy: changing the caller's frame later cannot corrupt it
        assert state.abs().sum() > 0
    assert state.shape == (2, 4, 3, 3)


def test_tsm_errors():
    with pytest.raises(ValueError, match="give channels"):
        TemporalShift(module=nn.ReLU())
    with pytest.raises(ValueError, match="not a whole number of clips of n_segment=4"):
        TemporalShift(16, n_segment=4)(torch.randn(6, 16, 2, 2))
    with pytest.raises(ValueError, match=r"expected frames \(N\*T, C, H, W\), got shape \(4, 16, 2\)"):
        TemporalShift(16, n_segment=4)(torch.randn(4, 16, 2))
    with pytest.raises(RuntimeError, match="needs bidirectional=False"):
        TemporalShift(16).step(torch.randn(1, 16, 2, 2))
    with pytest.raises(ValueError, match="fewer than fold_div=8"):
        TemporalShift(7)


# ------------------------------------------------------------------------------------------------
# Every block from config: shapes and gradient flow
# ------------------------------------------------------------------------------------------------

BLOCK_CONFIGS = [
    ({"type": "csc", "in_channels": 16, "out_channels": 16, "expansion": 2}, (2, 16, 8, 8), (2, 16, 8, 8)),
    ({"type": "csc", "in_channels": 16, "out_channels": 24, "stride": 2,
      "shift": {"type": "sparse_shift2d", "padding": "reflect"}}, (2, 16, 9, 8), (2, 24, 5, 4)),
    ({"type": "fe_block", "in_channels": 16, "out_channels": 16}, (2, 16, 8, 8), (2, 16, 8, 8)),
    ({"type": "fe_block", "in_channels": 16, "out_channels": 32, "split": 0.25, "stride": 2,
      "shift": "active_shift2d"}, (2, 16, 7, 7), (2, 32, 4, 4)),
    ({"type": "temporal_shift", "n_segment": 4, "module": {"type": "conv2d", "in_channels": 16, "out_channels": 8,
                                                           "kernel_size": 3, "padding": 1}}, (8, 16, 5, 5), (8, 8, 5, 5)),
    ({"type": "shiftvit_block", "channels": 24, "mlp_ratio": 2.0}, (2, 24, 6, 6), (2, 24, 6, 6)),
    ({"type": "axial_shift", "channels": 10, "shift_size": 5, "dilation": 2}, (2, 10, 7, 6), (2, 10, 7, 6)),
    ({"type": "spatial_shift", "channels": 12, "padding": "border", "norm": "batch"}, (2, 12, 5, 5), (2, 12, 5, 5)),
]


@pytest.mark.parametrize("config, in_shape, out_shape", BLOCK_CONFIGS, ids=[c[0]["type"] for c in BLOCK_CONFIGS])
def test_block_from_config_shapes_and_gradients(config, in_shape, out_shape):
    torch.manual_seed(0)
    block = shiftzoo.build_shift(config)
    x = torch.randn(*in_shape, generator=gen(6), requires_grad=True)
    out = block(x)
    assert out.shape == out_shape
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, param in block.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_csc_shortcut_residual_order_and_default_shift():
    same, projected = CSCBlock(16, 16), CSCBlock(16, 16, stride=2)
    assert isinstance(same.shortcut, nn.Identity) and isinstance(projected.shortcut, nn.Sequential)
    assert isinstance(same.body.shift, shiftzoo.GroupedShift2d) and same.body.shift.pattern == "shiftnet"
    x = torch.randn(2, 16, 5, 5, generator=gen(6))
    branch = same.body(x)
    assert (branch >= 0).all() and (branch > 0).any()  # ShiftResNet's order: ReLU in the branch ...
    torch.testing.assert_close(same(x), branch + x)  # ... and none after the sum
    resnet = CSCBlock(16, 16, residual="resnet")
    resnet.load_state_dict(same.state_dict())
    torch.testing.assert_close(resnet(x), torch.relu(resnet.body(x) + x))  # ResNet's order
    assert (resnet.body(x) < 0).any()
    assert CSCBlock(8, 19, expansion=2.5).body.expand.out_channels == 47  # int(), as the authors' code


def test_fe_block_passes_the_rest_through():
    block = FEBlock(16, 20, split=0.25)
    x = torch.randn(2, 16, 6, 6, generator=gen(7))
    out = block(x)
    assert out.shape == (2, 20, 6, 6) and isinstance(block.body[0].shift, shiftzoo.SparseShift2d)
    assert torch.equal(out[:, 8:], x[:, 4:])  # 12 channels untouched, after the 8 new ones
    strided = FEBlock(16, 20, split=0.25, stride=2)
    torch.testing.assert_close(strided(x)[:, 8:], F.avg_pool2d(x[:, 4:], 2, 2, ceil_mode=True))
    assert FEBlock(8, 8, split=1.0)(torch.randn(1, 8, 4, 4)).shape == (1, 8, 4, 4)


@pytest.mark.parametrize("shift", [
    "active_shift2d", {"type": "grouped_shift2d", "dilation": 2}, shiftzoo.SparseShift2d,
    functools.partial(shiftzoo.ActiveShift2d, interp="cubic")])
def test_every_form_of_shift_spec(shift):
    block = CSCBlock(9, 9, shift=shift)
    assert block.body.shift.channels == 9
    assert block(torch.randn(1, 9, 5, 5)).shape == (1, 9, 5, 5)


@pytest.mark.parametrize("make_block, match", [
    (lambda: CSCBlock(16, 16, shift={"type": "sparse_shift2d", "channels": 3}), "must not set channels"),
    (lambda: CSCBlock(16, 16, shift=3), "shift must be a type name, a config mapping or a callable"),
    (lambda: CSCBlock(0, 16), "in_channels must be a positive int"),
    (lambda: CSCBlock(16, 16, residual="pre"), "residual must be 'shiftresnet' or 'resnet', got 'pre'"),
    (lambda: FEBlock(16, 8, split=0.25), "leaves no room for new channels"),
    (lambda: FEBlock(16, 32, split=0.01), "selects 0 of 16 channels"),
    (lambda: ShiftViTBlock(8), "fewer than n_div=12"),
    (lambda: ShiftViTBlock(24, n_div=3), r"n_div must be an int >= 4 \(four groups"),  # the 4th group would be empty
    (lambda: ShiftViTBlock(24, n_div=0), r"n_div must be an int >= 4"),
    (lambda: TemporalShift(16, fold_div=1), r"bidirectional shift needs fold_div >= 2"),
    (lambda: ShiftViTBlock(24, norm="instance"), r"norm must be one of \['batch', 'group', 'layer'\]"),
    (lambda: SpatialShiftBlock(3), "at least 4 channels"),
    (lambda: AxialShiftBlock(8, shift_size=0), "shift_size and dilation must be >= 1"),
    (lambda: TemporalShift(16, n_segment=0), r"^n_segment must be a positive int, got 0$"),
    (lambda: CSCBlock(16, 16, expansion=-1), r"^expansion must be a finite number > 0, got -1$"),
    (lambda: CSCBlock(16, 16, expansion=float("inf")), r"^expansion must be a finite number > 0, got inf$"),
    (lambda: CSCBlock(16, 16, expansion="2"), r"^expansion must be a finite number > 0, got '2'$"),
    (lambda: CSCBlock(16, 16, expansion=0.01),  # int() truncates to no channel: refused, not widened to 1
     r"^expansion=0.01 gives int\(16 \* 0.01\) = 0 middle channels; it must give at least 1$"),
    (lambda: FEBlock(16, 16, expansion=0), r"^expansion must be a finite number > 0, got 0$"),
    (lambda: FEBlock(16, 16, split=0.25, expansion=0.1),
     r"^expansion=0.1 gives round\(4 \* 0.1\) = 0 middle channels; it must give at least 1$"),
    (lambda: FEBlock(16, 16, split=0), r"^split must be a finite number in \(0, 1\], got 0$"),
    (lambda: FEBlock(16, 16, split=1.5), r"^split must be a finite number in \(0, 1\], got 1.5$"),
    (lambda: ShiftViTBlock(24, mlp_ratio=0), r"^mlp_ratio must be a finite number > 0, got 0$"),
    (lambda: SpatialShiftBlock(8, mlp_ratio=0.1),
     r"^mlp_ratio=0.1 gives int\(8 \* 0.1\) = 0 hidden channels; it must give at least 1$"),
    (lambda: AxialShiftBlock(8, drop=1.0), r"^drop must be a finite number in \[0, 1\), got 1.0$"),
    (lambda: ShiftViTBlock(24, drop=-0.1), r"^drop must be a finite number in \[0, 1\), got -0.1$"),
])
def test_block_errors(make_block, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make_block()


@pytest.mark.parametrize("config, match", [
    ({"type": "csc", "in_channels": 16, "out_channels": 16, "expansion": -1},
     r"^<config>: cannot build 'csc': expansion must be a finite number > 0, got -1$"),
    ({"type": "sequential", "layers": [{"type": "fe_block", "in_channels": 16, "out_channels": 16, "split": 2}]},
     r"^layers\[0\]: cannot build 'fe_block': split must be a finite number in \(0, 1\], got 2$"),
])
def test_builder_names_the_bad_block_argument(config, match):
    with pytest.raises(shiftzoo.ConfigError, match=match):
        shiftzoo.build_shift(config)
