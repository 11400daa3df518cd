"""The examples run as documented."""
import pathlib
import re
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path):
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # an example that prints a check ("compiled == eager: True") must print it passing
    checks = re.findall(r"^(.*==.*): (True|False)$", result.stdout, re.MULTILINE)
    assert all(value == "True" for _, value in checks), checks
