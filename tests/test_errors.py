"""Every rejection names what was expected and what came."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import shiftzoo
from shiftzoo.functional import shift
from shiftzoo.inference import InferenceShift

X = torch.randn(2, 3, 4, 5)
S = torch.zeros(3, 2)


@pytest.mark.parametrize("x, s, match", [
    (torch.randn(3, 4), torch.zeros(3, 1), r"^shiftzoo.shift: got an unbatched input of shape \(3, 4\); expected "
                                           r"\(N, C, L\) with C=3: add the batch axis with x.unsqueeze\(0\)$"),
    (torch.randn(3, 4, 5), S, r"^shiftzoo.shift: got an unbatched input of shape \(3, 4, 5\); expected "
                              r"\(N, C, H, W\) with C=3: add the batch axis with x.unsqueeze\(0\)$"),
    (torch.randn(3, 4), torch.zeros(4, 0), r"expected input of shape \(N, C, L\).*got 2 dimensions"),
    (torch.randn(1, 2, 3, 4, 5, 6), torch.zeros(2, 4), r"got 6 dimensions"),
    (X, torch.zeros(4, 2), r"channel mismatch: expected shifts of shape \(C, d\) = \(3, 2\).*got \(4, 2\)"),
    (X, torch.zeros(3, 3), r"expected shifts of shape \(C, d\) = \(3, 2\).*got \(3, 3\)"),
    (X, torch.zeros(6), r"expected shifts of shape \(C, d\) = \(3, 2\).*got \(6,\)"),
    (X.long(), S, r"torch.int64 input moves by whole pixels only: use interp='nearest', got 'linear'"),
    (X, S.long(), r"expected floating-point shifts, got torch.int64"),
    (X, S.to("meta"), r"input is on cpu but shifts are on meta"),
])
def test_bad_arguments(x, s, match):
    with pytest.raises(ValueError, match=match):
        shift(x, s)


UNBATCHED = ("{}: got an unbatched input of shape (16, 8, 8); expected (N, C, H, W) with C=16: "
             "add the batch axis with x.unsqueeze(0)")


@pytest.mark.parametrize("where, call", [
    ("shiftzoo.shift", lambda x: shift(x, torch.zeros(16, 2))),
    ("SparseShift2d", shiftzoo.SparseShift2d(16)),
    ("InferenceShift", InferenceShift(torch.zeros(16, 2), "zeros")),
    ("InferenceShift", InferenceShift(torch.zeros(16, 2), "zeros", pre=(None, 0.0, 6.0))),  # shift_affine's path
], ids=["functional", "layer", "inference", "inference_folded"])
def test_unbatched_input_says_how_to_add_the_batch_axis(where, call):
    with pytest.raises(ValueError, match=f"^{re.escape(UNBATCHED.format(where))}$"):
        call(torch.randn(16, 8, 8))


def test_not_a_tensor():
    with pytest.raises(TypeError, match="shifts must be a torch.Tensor, got list"):
        shift(X, [[0.0, 0.0]] * 3)


@pytest.mark.host_checks
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_shifts(bad):
    s = S.clone()
    s[1, 1] = bad
    with pytest.raises(ValueError, match=r"shifts must be finite, got .* for channel 1, spatial axis 1"):
        shift(X, s)


def test_unknown_padding_lists_valid_names_and_closest():
    with pytest.raises(ValueError, match=r"unknown padding 'reflection' \(did you mean 'reflect'\?\); "
                                         r"expected one of: border, periodic, reflect, symmetric, zeros"):
        shift(X, S, padding="reflection")


def test_unknown_interp_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown interp 'bilinear' \(did you mean 'linear'\?\); "
                                         r"expected one of: cubic, linear, nearest"):
        shift(X, S, interp="bilinear")
    with pytest.raises(ValueError, match=r"unknown interp 'lanczos'"):
        shift(X, S, grad_interp="lanczos")


UNIT_2D = ([1, 1], [0, 0], [0, 0])  # stride, crop_begin, crop_end keeping every position


def test_the_op_itself_checks_its_arguments():
    """torch.ops.shiftzoo.shift called directly (no Python checks) still refuses bad input."""
    with pytest.raises(ValueError, match=r"expected shifts of shape \(C, d\) = \(3, 2\)"):
        torch.ops.shiftzoo.shift(X, torch.zeros(2, 2), "zeros", "linear", "linear", *UNIT_2D)
    with pytest.raises(ValueError, match=r"unknown padding 'nope'; expected one of: border, "):
        torch.ops.shiftzoo.shift(X, S, "nope", "linear", "linear", *UNIT_2D)
    with pytest.raises(ValueError, match=r"unknown interp 'nope'"):
        torch.ops.shiftzoo.shift(X, S, "zeros", "nope", "linear", *UNIT_2D)
    with pytest.raises(ValueError, match=r"expected stride, crop_begin and crop_end of 2 entries"):
        torch.ops.shiftzoo.shift(X, S, "zeros", "linear", "linear", [1], [0], [0])
    with pytest.raises(ValueError, match=r"stride must be >= 1, got \[0, 1\]"):
        torch.ops.shiftzoo.shift(X, S, "zeros", "linear", "linear", [0, 1], [0, 0], [0, 0])


def test_the_backward_op_checks_its_sizes():
    """shift_backward called directly with sizes that do not fit each other is refused."""
    g = torch.randn(1, 3, 3, 4)
    with pytest.raises(ValueError, match=r"grad_output \[1, 3, 3, 4\] is not the sampled size of input_size"):
        torch.ops.shiftzoo.shift_backward(g, None, S, "zeros", "nearest", "linear", [2, 2], [0, 0], [0, 0],
                                          [1, 3, 7, 7], True, False)
    with pytest.raises(ValueError, match=r"input_size \[1, 3, 6\] does not fit grad_output"):
        torch.ops.shiftzoo.shift_backward(g, None, S, "zeros", "nearest", "linear", [2, 2], [0, 0], [0, 0],
                                          [1, 3, 6], True, False)
    gi, _ = torch.ops.shiftzoo.shift_backward(g, None, S, "zeros", "nearest", "linear", [2, 2], [0, 0], [0, 0],
                                              [1, 3, 6, 8], True, False)
    assert gi.shape == (1, 3, 6, 8)


@pytest.mark.host_checks
def test_tabled_op_checks_its_plan():
    """shift_tabled called directly with a plan that does not fit the input is refused."""
    x = torch.randn(1, 2, 5)
    offsets = torch.full((2, 1), -1, dtype=torch.int64)  # tap 0 of output x reads raw index x - 1
    table = torch.arange(-1, 5).expand(2, 6).contiguous()  # raw indices -1..4 (zeros), n + K - 1 = 6 entries
    weights = torch.full((2, 1, 2), 0.5, dtype=torch.float64)
    unit = ([1], [0], [0])
    args = (offsets, [table], weights, offsets, [table], weights, "mine", *unit)
    torch.ops.shiftzoo.shift_tabled(x, *args)  # a consistent plan runs
    with pytest.raises(ValueError, match=r"offset 4611686018427387904 of channel 0 is out of range"):
        big = offsets.clone()
        big[0, 0] = 2**62
        torch.ops.shiftzoo.shift_tabled(x, big, [table], weights, offsets, [table], weights, "mine", *unit)
    with pytest.raises(ValueError, match=r"expected table 0 of shape \(2, 6\) int64"):
        torch.ops.shiftzoo.shift_tabled(x, offsets, [table[:, :5]], weights, offsets, [table], weights, "mine", *unit)
    with pytest.raises(ValueError, match=r"expected table 0 of shape \(2, 5\) int64"):  # positions 0 and 3 kept
        torch.ops.shiftzoo.shift_tabled(x, offsets, [table], weights, offsets, [table], weights, "mine", [3], [0], [0])
    with pytest.raises(ValueError, match=r"padding 'mine' mapped index 4 on an axis of length 5 to 5"):
        bad = table.clone()
        bad[1, 5] = 5
        torch.ops.shiftzoo.shift_tabled(x, offsets, [bad], weights, offsets, [table], weights, "mine", *unit)


# A fresh interpreter whose import of shiftzoo._C raises `error` (the suite itself refuses to run on the
# fallback, see conftest.py); prints the warnings the import gave.
_IMPORT_WITHOUT_C = """
import sys, warnings
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name == "shiftzoo._C":
            raise {error}
sys.meta_path.insert(0, Refuse())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import shiftzoo
assert not shiftzoo.has_extension()
print("\\n".join(f"{{w.category.__name__}}: {{w.message}}" for w in caught if "shiftzoo._C" in str(w.message)))
"""


def _fallback_warnings(error: str) -> str:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _IMPORT_WITHOUT_C.format(error=error)], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


BUILD = "`make install` (or `pip install --no-build-isolation -e .`)"


def test_fallback_warning_when_the_extension_is_not_built():
    assert _fallback_warnings('ModuleNotFoundError("No module named \'shiftzoo._C\'", name=name)') == (
        f"RuntimeWarning: shiftzoo._C is not built: using the slow pure-PyTorch reference. Build it with {BUILD}")


@pytest.mark.parametrize("error, first_line", [
    ('ImportError("/x/_C.so: undefined symbol: _ZN3c104impl8GPUTrace\\nmore detail")',
     "ImportError: /x/_C.so: undefined symbol: _ZN3c104impl8GPUTrace"),
    ('ModuleNotFoundError("No module named \'_C_helper\'", name="_C_helper")',  # _C is there; its import is not
     "ModuleNotFoundError: No module named '_C_helper'"),
], ids=["undefined_symbol", "missing_dependency"])
def test_fallback_warning_when_the_extension_fails_to_load(error, first_line):
    assert _fallback_warnings(error) == (
        f"RuntimeWarning: shiftzoo._C could not be loaded ({first_line}): using the slow pure-PyTorch reference. "
        f"Rebuild it against the installed torch {torch.__version__} with {BUILD}")
