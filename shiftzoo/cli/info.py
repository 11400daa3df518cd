"""``shiftzoo info``: what this installation has: versions, compiled backends, registered plugins and blocks."""
from __future__ import annotations

import platform
from typing import List

import torch

from .. import __version__, _extension, block_registry, plugin_registry

__all__ = ["info_text"]


def _has_kernel(op: str, key: str) -> bool:
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key(op, key)
    except RuntimeError:  # the op is not registered at all (no extension)
        return False


def info_text() -> str:
    lines: List[str] = [f"shiftzoo {__version__}", f"torch {torch.__version__}",
                        f"python {platform.python_version()} ({platform.machine()}, {platform.system()})"]
    if _extension.available():
        isas = _extension.cpu_isa()
        lines.append(f"CPU backend: compiled (instruction sets {', '.join(isas['compiled'])}; running {isas['active']})")
        if _has_kernel("shiftzoo::shift", "CUDA"):
            arches = " ".join(torch.cuda.get_arch_list()) or "none listed"
            lines.append(f"CUDA backend: compiled (torch's architectures: {arches}; "
                         f"{'a GPU is' if torch.cuda.is_available() else 'no GPU is'} visible)")
        else:
            lines.append("CUDA backend: not compiled in this build")
    else:
        lines.append(f"compiled extension: not loaded ({_extension.LOAD_ERROR}); the pure-PyTorch reference runs")
    paddings = [p.name + ("" if p.compiled else " (runtime)") for p in plugin_registry.list_paddings()]
    interps = [p.name + ("" if p.compiled else " (runtime)") for p in plugin_registry.list_interps()]
    lines.append(f"paddings: {', '.join(paddings)}")
    lines.append(f"interpolations: {', '.join(interps)}")
    lines.append(f"block types: {', '.join(block_registry.list_blocks())}")
    return "\n".join(lines)
