"""Every ```python snippet of the user docs (README.md, docs/*.md) runs as written, on its own, in a
fresh interpreter: no prelude, so each snippet carries its own imports and inputs (some register
plugins, which is why each gets its own process)."""
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _snippets():
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for index, snippet in enumerate(re.findall(r"^```python\n(.*?)^```", text, re.S | re.M), start=1):
            found.append(pytest.param(snippet, id=f"{path.relative_to(ROOT).as_posix()}:{index}"))
    return found


SNIPPETS = _snippets()


def test_docs_have_snippets():
    ids = {param.id.split(":")[0] for param in SNIPPETS}
    assert "README.md" in ids and "docs/layers.md" in ids


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_snippet_runs_on_its_own(snippet):
    done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
