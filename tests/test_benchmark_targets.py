"""The benchmark's bookkeeping of issue 5's targets (benchmarks/bench_shift.py), on made-up
timings: which rows are held to which target, and how the summary marks a miss. Nothing is
timed here."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_shift as bench  # noqa: E402  (a plain import: a broken benchmark must fail here, not skip)

CL = bench.CL


def row(shape, name, op_ms, clone_ms=1.0, dwconv_ms=None):
    group = "fwd+bwd" if "bwd" in name else "fwd"
    return bench.RowResult(shape, group, name, op_ms=op_ms, clone_ms=clone_ms, dwconv_ms=dwconv_ms)


def assessed(rows, dtype="float32"):
    bench.assess_targets(rows, dtype)
    return {(r.shape, r.row): {t.what: (t.limit, t.value, t.met) for t in r.targets} for r in rows}


def test_clone_limits_follow_the_issue():
    rows = [row("32x64x56x56", "ssl fwd", 1.2, dwconv_ms=3.0), row("32x64x56x56", "grouped fwd", 1.4),
            row("4x32x16x56x56", "grouped fwd", 1.4), row("32x256x1024", "active linear fwd", 2.6),
            row("4x32x16x56x56", "active linear fwd", 2.6), row("8x256x28x28", "ssl fwd+bwd", 3.9, dwconv_ms=19.0),
            row("8x256x28x28", "grouped fwd+bwd", 2.6), row("32x64x56x56", "active linear fwd+bwd", 5.9),
            row("4x32x16x56x56", "active linear fwd+bwd", 9.0), row("32x64x56x56", "active cubic fwd", 9.0)]
    t = assessed(rows)
    assert t[("32x64x56x56", "ssl fwd")] == {"×clone": (1.3, 1.2, True),
                                             "×dwconv": (1 / 3, pytest.approx(0.4), False)}
    assert t[("32x64x56x56", "grouped fwd")]["×clone"][2] is False  # 1.4 > 1.3
    assert t[("4x32x16x56x56", "grouped fwd")]["×clone"] == (1.5, 1.4, True)  # 3D: 1.5
    assert t[("32x256x1024", "active linear fwd")]["×clone"][2] is False  # 2.6 > 2.5
    assert t[("4x32x16x56x56", "active linear fwd")]["×clone"] == (4.0, 2.6, True)
    assert t[("8x256x28x28", "ssl fwd+bwd")]["×clone"] == (4.0, 3.9, True)
    assert t[("8x256x28x28", "ssl fwd+bwd")]["×dwconv"][2] is False  # 3.9 / 19 > 1 / 5
    assert t[("8x256x28x28", "grouped fwd+bwd")]["×clone"][2] is False
    assert t[("32x64x56x56", "active linear fwd+bwd")]["×clone"] == (6.0, 5.9, True)
    assert t[("4x32x16x56x56", "active linear fwd+bwd")] == {}  # 2D only
    assert t[("32x64x56x56", "active cubic fwd")] == {}  # no target


def test_bfloat16_nearest_forward_is_held_to_1_5():
    t = assessed([row("32x64x56x56", "ssl fwd", 1.45)], dtype="bfloat16")
    assert t[("32x64x56x56", "ssl fwd")]["×clone"] == (1.5, 1.45, True)


def test_channels_last_rows_are_held_to_their_contiguous_figure():
    rows = [row("32x64x56x56", "grouped fwd", 1.1), row("32x64x56x56", "grouped fwd" + CL, 1.5),
            row("8x256x28x28", "ssl fwd+bwd", 4.0), row("8x256x28x28", "ssl fwd+bwd" + CL, 5.0)]
    t = assessed(rows)
    limit, value, met = t[("32x64x56x56", "grouped fwd" + CL)]["×contiguous"]
    assert (limit, met) == (1.3, False) and value == pytest.approx(1.5 / 1.1)
    limit, value, met = t[("8x256x28x28", "ssl fwd+bwd" + CL)]["×contiguous"]
    assert (limit, met) == (1.3, True) and value == pytest.approx(5.0 / 4.0)
    assert set(t[("32x64x56x56", "grouped fwd" + CL)]) == {"×contiguous"}  # no ×clone or ×dwconv


def test_reference_rows_and_the_late_stage_shape_carry_no_target():
    rows = [row("32x64x56x56", bench.REF + "neg fwd+bwd", 2.0),
            row("32x64x56x56", bench.REF + "neg fwd+bwd" + CL, 9.0),
            row("32x64x56x56", bench.REF + "channel scale fwd+bwd", 4.0),
            row("32x1024x7x7", "ssl fwd", 9.0, dwconv_ms=1.0)]
    assert all(not targets for targets in assessed(rows).values())


def test_summary_marks_misses_and_shows_dwconv_for_ssl_rows():
    rows = [row("8x256x28x28", "ssl fwd", 1.2, dwconv_ms=3.0), row("8x256x28x28", "grouped fwd", 1.4),
            row("8x256x28x28", bench.REF + "neg fwd+bwd", 2.5),
            row("8x256x28x28", "ssl fwd" + CL, 1.5, dwconv_ms=1.2)]
    bench.assess_targets(rows, "float32")
    lines = {line.split(" | ")[0].lstrip("| "): line for line in bench.summary_table(rows).splitlines()}
    assert lines["ssl fwd"].endswith("| 1.20 (0.40 dw) ✗ |")  # the ×dwconv target misses
    assert lines["grouped fwd"].endswith("| 1.40 ✗ |")
    assert lines[bench.REF + "neg fwd+bwd"].endswith("| 2.50 |")
    # a channels-last row: its own layout's conv (slower than it here), its ×contiguous target
    assert lines["ssl fwd" + CL].endswith("| 1.50 (1.25 dw) |")
