"""The package's shape: no import cycle among its own modules (lazy imports inside functions
included), and ``import shiftzoo`` leaves PyTorch's deprecated quantization package alone."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

import shiftzoo

PACKAGE = Path(shiftzoo.__file__).resolve().parent


# ---- the static import graph -------------------------------------------------------------------

def package_modules(package: Path) -> Dict[str, Tuple[Path, bool]]:
    """Every ``.py`` module under ``package``: dotted name -> (file, is a package ``__init__``)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _base(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name a relative ``from`` import refers to (as importlib resolves it)."""
    parts = importer.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[:len(parts) - (level - 1)]
    return ".".join(parts + ([module] if module else []))


def _is_other_submodule(modules: Dict[str, Tuple[Path, bool]], base: str, name: str) -> bool:
    """Whether ``base.name`` is a module that is not Python source (the compiled ``_C``)."""
    if base not in modules or not modules[base][1]:
        return False
    directory = modules[base][0].parent
    return any(p.name.split(".")[0] == name for p in directory.iterdir() if p.suffix in (".so", ".pyd"))


def import_graph(package: Path) -> Dict[str, Set[str]]:
    """Module -> the package's modules it imports, anywhere in its source (inside functions and
    ``if`` blocks too). ``from X import name`` imports ``X.name`` when that is a module, else ``X``."""
    modules = package_modules(package)
    graph: Dict[str, Set[str]] = {}
    for name, (path, is_package) in modules.items():
        targets: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _base(name, is_package, node.level, node.module) if node.level else node.module
                for alias in node.names:
                    if f"{base}.{alias.name}" in modules:
                        targets.add(f"{base}.{alias.name}")
                    elif not _is_other_submodule(modules, base, alias.name):
                        targets.add(base)
        graph[name] = {t for t in targets if t in modules}
    return graph


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component that has one (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components: List[Set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)

    cycles = []
    for component in components:
        start = min(component)
        # breadth-first from start, inside the component, back to start: a shortest cycle
        parents: Dict[str, str] = {}
        frontier = [start]
        while frontier and start not in parents:
            following = []
            for v in frontier:
                for w in sorted(graph[v] & component):
                    if w not in parents:
                        parents[w] = v
                        following.append(w)
            frontier = following
        cycle = [start]
        while True:
            cycle.append(parents[cycle[-1]])
            if cycle[-1] == start:
                break
        cycles.append(cycle[::-1])
    return cycles


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """A package whose cycle hides in a function-level relative import, and one without a cycle."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from . import a\n")
    (package / "a.py").write_text("from .sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def late():\n    from ..a import thing\n    from .. import c\n")
    (package / "c.py").write_text("import os\n")
    graph = import_graph(package)
    assert graph["pkg"] == {"pkg.a"} and graph["pkg.sub.b"] == {"pkg.a", "pkg.c"}
    assert find_cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.a"]]
    (package / "sub" / "b.py").write_text("from .. import c\n")
    assert find_cycles(import_graph(package)) == []


def test_no_import_cycle_in_the_package():
    graph = import_graph(PACKAGE)
    assert len(graph) > 10 and graph["shiftzoo.builder"], "the import graph was not read"
    cycles = find_cycles(graph)
    assert not cycles, "import cycles among shiftzoo's modules (imports inside functions count):\n" + "\n".join(
        "  " + " -> ".join(cycle) for cycle in cycles)


# ---- what `import shiftzoo` imports ------------------------------------------------------------

def test_import_leaves_torch_ao_quantization_alone():
    """``import shiftzoo`` imports nothing of ``torch.ao`` (``torch.ao.quantization`` is deprecated);
    ``shiftzoo.compat.quant_mapping`` imports it on first use. torch itself may import ``torch.ao``
    (2.13 does, through its ``torch.quantization`` alias), so the child process forgets those
    modules after ``import torch``: whatever comes back was imported by shiftzoo."""
    code = (
        "import sys, torch\n"
        "for name in [m for m in sys.modules if m == 'torch.ao' or m.startswith('torch.ao.')]:\n"
        "    del sys.modules[name]\n"
        "import shiftzoo\n"
        "assert 'torch.ao.quantization' not in sys.modules, 'import shiftzoo imported torch.ao.quantization'\n"
        "back = sorted(m for m in sys.modules if m == 'torch.ao' or m.startswith('torch.ao.'))\n"
        "assert not back, f'import shiftzoo imported {back}'\n"
        "from shiftzoo.compat import QuantizedShift, Shift1d, Shift2d, Shift3d\n"
        "mapping = shiftzoo.compat.quant_mapping\n"
        "assert 'torch.ao.quantization' in sys.modules\n"
        "assert mapping[Shift2d] is QuantizedShift and mapping[Shift1d] is mapping[Shift3d] is QuantizedShift\n"
        "assert shiftzoo.compat.quant_mapping is mapping, 'computed again'\n"
        "from shiftzoo.compat import quant_mapping\n"
        "assert quant_mapping is mapping\n"
        "from torch.ao.quantization import get_default_static_quant_module_mappings\n"
        "assert torch.nn.Conv2d in mapping and set(get_default_static_quant_module_mappings()) < set(mapping)\n"
    )
    path = os.pathsep.join([str(PACKAGE.parent)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=path))
    assert result.returncode == 0, result.stderr[-3000:]
