"""How the C++ sources are put together, checked as text (no compiler): the CPU kernels are compiled
once per instruction set, and only the kernels may be compiled with the wider instructions.

backends/cpu/kernels/*.h have internal linkage and are included by the per-instruction-set units
isa_*.cpp only. isa_avx2.cpp switches the compiler to AVX2 around them; anything else it compiled
there (a standard-library or ATen inline function seen first inside the switch) would be an AVX2
copy of a function other units share, which the linker may pick for a machine without AVX2. So
every header the kernels use comes in through kernels/dependencies.h, included before the switch.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU = ROOT / "backends" / "cpu"
KERNELS = CPU / "kernels"
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)


def includes(path: Path) -> list[str]:
    return INCLUDE.findall(path.read_text())


def test_kernel_headers_include_only_kernels_and_their_dependencies():
    headers = sorted(KERNELS.glob("*.h"))
    assert headers, "no kernel headers found"
    for header in headers:
        if header.name == "dependencies.h":
            continue
        for name in includes(header):
            assert name.startswith("backends/cpu/kernels/"), (
                f"{header.relative_to(ROOT)} includes {name}: kernel headers include only kernels/*.h; "
                "add what they need to kernels/dependencies.h")


def test_only_the_instruction_set_units_include_kernels():
    sources = [p for p in (ROOT / "backends").rglob("*") if p.suffix in (".h", ".cpp", ".cu")]
    for source in sources:
        if source.parent == KERNELS or source.name.startswith("isa_"):
            continue
        for name in includes(source):
            assert not name.startswith("backends/cpu/kernels/"), (
                f"{source.relative_to(ROOT)} includes {name}: only isa_*.cpp compile the kernels "
                "(use the table of kernel_table.h)")


def test_avx2_unit_switches_the_instruction_set_around_the_kernels_only():
    text = (CPU / "isa_avx2.cpp").read_text()
    push = [m.start() for m in re.finditer(r"#pragma (GCC push_options|clang attribute push)", text)]
    pop = [m.start() for m in re.finditer(r"#pragma (GCC pop_options|clang attribute pop)", text)]
    assert len(push) == 2 and len(pop) == 2, "expected one GCC and one clang target region"
    start, end = min(push), max(pop)
    before = INCLUDE.findall(text[:start])
    inside = INCLUDE.findall(text[start:end])
    assert "backends/cpu/kernels/dependencies.h" in before
    assert inside and all(name.startswith("backends/cpu/kernels/") for name in inside), inside
    assert "backends/cpu/kernels/dependencies.h" in includes(CPU / "isa_baseline.cpp")
