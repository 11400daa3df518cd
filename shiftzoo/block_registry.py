"""The registry of everything a config's ``type`` can name: shift layers, blocks, containers and a
short list of plain ``torch.nn`` modules. Names are snake case; there are no dotted import paths, so a
config can only build what was registered here (it cannot import or run arbitrary code).

Blocks (the library's and the user's) register with the :func:`register_block` decorator; the shift
layers and the ``torch.nn`` modules are registered when this module is imported.
"""
from __future__ import annotations

import re
from typing import Callable, Dict, List, TypeVar

from torch import nn

from .nn.layers import FAMILIES, FixedShift

__all__ = ["register_block", "get_block", "list_blocks"]

F = TypeVar("F", bound=Callable[..., nn.Module])

_BLOCKS: Dict[str, Callable[..., nn.Module]] = {}
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"block names are snake case ([a-z][a-z0-9_]*), got {name!r}")


def _add(name: str, factory: Callable[..., nn.Module], force: bool) -> None:
    """Puts ``factory`` under ``name``; a taken name (by another factory) needs ``force``."""
    if not callable(factory):
        raise TypeError(f"register_block({name!r}) needs a class or function, got {factory!r}")
    if name in _BLOCKS and not force and _BLOCKS[name] is not factory:
        raise ValueError(f"a block named {name!r} is already registered ({_BLOCKS[name]!r}); "
                         "pass force=True to replace it")
    _BLOCKS[name] = factory


def register_block(name: str, *, force: bool = False) -> Callable[[F], F]:
    """Decorator registering an ``nn.Module`` class, or a function returning one, under ``name``
    (snake case) so that ``build_shift({"type": name, ...})`` can build it.

    The builder reads the constructor's signature: arguments annotated ``nn.Module`` (or
    ``Optional``/``Sequence`` of it) take nested configs, arguments annotated
    :data:`shiftzoo.blocks.ShiftSpec` take a shift-layer config whose ``channels`` the block
    supplies, arguments annotated ``PaddingName``/``InterpName`` are checked against the
    plugin registry (these kinds are defined in :mod:`shiftzoo.config_types`), and ``Literal[...]``,
    ``int``, ``float``, ``bool`` and ``str`` arguments are checked too (all before anything is
    constructed). Registering a taken name raises unless ``force=True``.
    """
    _check_name(name)

    def decorator(factory: F) -> F:
        _add(name, factory, force)
        return factory

    return decorator


def get_block(name: str) -> Callable[..., nn.Module]:
    """The constructor registered as ``name`` (``KeyError`` if none)."""
    return _BLOCKS[name]


def list_blocks() -> List[str]:
    """Every registered name, sorted: layers, blocks, containers and torch modules."""
    return sorted(_BLOCKS)


def _snake(name: str) -> str:
    """``SparseShift2d`` -> ``sparse_shift2d``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


# The plain modules a small network needs around the shift blocks (stem, heads, norms).
_TORCH_MODULES: Dict[str, Callable[..., nn.Module]] = {
    "conv1d": nn.Conv1d, "conv2d": nn.Conv2d, "conv3d": nn.Conv3d, "linear": nn.Linear,
    "batch_norm1d": nn.BatchNorm1d, "batch_norm2d": nn.BatchNorm2d, "batch_norm3d": nn.BatchNorm3d,
    "layer_norm": nn.LayerNorm, "group_norm": nn.GroupNorm,
    "relu": nn.ReLU, "relu6": nn.ReLU6, "gelu": nn.GELU, "silu": nn.SiLU, "identity": nn.Identity,
    "dropout": nn.Dropout, "flatten": nn.Flatten,
    "max_pool2d": nn.MaxPool2d, "avg_pool2d": nn.AvgPool2d,
    "adaptive_avg_pool1d": nn.AdaptiveAvgPool1d, "adaptive_avg_pool2d": nn.AdaptiveAvgPool2d,
    "adaptive_avg_pool3d": nn.AdaptiveAvgPool3d,
}


def _register_builtin_modules() -> None:
    """Registers what is not a block: the shift layers (``sparse_shift2d``, ..., ``fixed_shift``) and
    the plain ``torch.nn`` modules of :data:`_TORCH_MODULES`, with the checks of :func:`register_block`."""
    layers = [(_snake(cls.__name__), cls) for variants in FAMILIES.values() for cls in variants.values()]
    for name, factory in [*layers, ("fixed_shift", FixedShift), *_TORCH_MODULES.items()]:
        _check_name(name)
        _add(name, factory, force=False)


_register_builtin_modules()
