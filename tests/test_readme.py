"""The README's Python snippets run as written (in a fresh interpreter: they register plugins)."""
import pathlib
import re
import subprocess
import sys

import pytest

README = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
SNIPPETS = re.findall(r"```python\n(.*?)```", README, re.S)
# names the snippets use without defining them (they continue the quick start)
PRELUDE = "import torch, shiftzoo\nfrom shiftzoo.functional import shift\nx = torch.randn(2, 4, 8, 8)\ns = torch.zeros(4, 2)\n"


def test_readme_has_snippets():
    assert len(SNIPPETS) >= 2


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(index):
    done = subprocess.run([sys.executable, "-c", PRELUDE + SNIPPETS[index]], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
