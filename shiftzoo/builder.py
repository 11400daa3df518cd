"""``build_shift(cfg)``: layers, blocks and whole networks from a config.

A config is a mapping with ``type`` (a name in :mod:`shiftzoo.block_registry`, see
:func:`shiftzoo.list_blocks`) and the constructor's arguments; a bare type name stands for
``{"type": name}``. How each argument is read comes from the constructor's annotations (the kinds are
defined in :mod:`shiftzoo.config_types`): ``nn.Module`` (or ``Optional``/``Sequence`` of it) takes
child configs, ``ShiftSpec`` a shift-layer config whose ``channels`` the block supplies,
``PaddingName``/``InterpName`` a plugin name checked through :mod:`shiftzoo.plugin_registry`,
``Literal[...]`` one of its values, and ``int``/``float``/``bool``/``str`` a value of that type.

The whole tree is checked before anything is constructed. Every problem raises :class:`ConfigError`
naming the config path (``layers[2].shift.padding``), the bad value, the valid choices and the closest
match. Types are looked up by name only, so a config cannot import or run arbitrary code.
"""
from __future__ import annotations

import collections.abc
import difflib
import inspect
import json
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

from torch import nn

from . import plugin_registry
from .block_registry import get_block, list_blocks
from .config_types import InterpName, PaddingName, ShiftSpec

__all__ = ["ConfigError", "build_shift", "load_config"]

Config = Union[Mapping[str, Any], str, "os.PathLike[str]"]


class ConfigError(ValueError):
    """A config that cannot be built; the message starts with the config path of the problem."""


@dataclass
class _Node:
    """A checked config node: everything needed to construct it, children already checked."""

    path: str
    type: str
    factory: Callable[..., nn.Module]
    args: Dict[str, Any] = field(default_factory=dict)  # plain values
    children: Dict[str, Any] = field(default_factory=dict)  # _Node, list of _Node, or _ShiftNode


@dataclass
class _ShiftNode:
    """A block's shift-layer config: constructed by the block, which supplies ``channels``."""

    node: _Node

    def __call__(self, channels: int) -> nn.Module:
        return _instantiate(self.node, {"channels": channels})


def build_shift(cfg: Config) -> nn.Module:
    """Builds the module ``cfg`` describes: a dict, a JSON/YAML string, or a path to a ``.json``,
    ``.yaml`` or ``.yml`` file.

    Example::

        build_shift({"type": "sequential", "layers": [
            {"type": "conv2d", "in_channels": 3, "out_channels": 16, "kernel_size": 1},
            {"type": "sparse_shift2d", "channels": 16, "padding": "reflect"},
        ]})
    """
    return _instantiate(_parse(_load(cfg), "", frozenset()))


def load_config(cfg: Config) -> Any:
    """The config ``cfg`` stands for, read as :func:`build_shift` reads it (a dict as is, a JSON/YAML
    string or file parsed), without checking or building anything."""
    return _load(cfg)


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

def _load(cfg: Config) -> Any:
    if isinstance(cfg, Mapping):
        return cfg
    if isinstance(cfg, os.PathLike):
        return _read_file(Path(cfg))
    if isinstance(cfg, str):
        one_line = cfg.strip()
        if "\n" not in one_line and one_line.lower().endswith((".json", ".yaml", ".yml")):
            return _read_file(Path(one_line))
        return _parse_text(cfg, "config string", "auto")
    raise ConfigError(f"<config>: expected a dict, a JSON/YAML string or a file path, got {type(cfg).__name__}")


def _read_file(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"<config>: cannot read config file {str(path)!r}: {exc.strerror or exc}") from exc
    return _parse_text(text, f"config file {str(path)!r}", "json" if path.suffix.lower() == ".json" else "yaml")


def _parse_text(text: str, source: str, fmt: str) -> Any:
    if fmt in ("json", "auto"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            if fmt == "json":
                raise ConfigError(f"<config>: {source} is not valid JSON: {exc}") from exc
    try:
        import yaml
    except ImportError as exc:
        raise ConfigError(f"<config>: {source} is not JSON, and reading YAML needs PyYAML "
                          "(pip install pyyaml)") from exc
    try:
        return yaml.safe_load(text)  # safe_load: no Python object tags, so no code runs
    except yaml.YAMLError as exc:
        raise ConfigError(f"<config>: {source} is not valid YAML: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------------------------

def _where(path: str) -> str:
    return path or "<config>"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _choice_error(path: str, what: str, value: Any, choices: Sequence[str], note: str = "") -> ConfigError:
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    return ConfigError(f"{path}: {what} {value!r}{note}; valid choices: {', '.join(choices)}; "
                       f"closest match: {repr(close[0]) if close else 'none'}")


def _is_module_type(hint: Any) -> bool:
    return inspect.isclass(hint) and issubclass(hint, nn.Module)


def _unwrap_optional(hint: Any) -> Any:
    """``Optional[X]`` -> ``X`` (None itself is passed on as a plain value); other hints unchanged."""
    if typing.get_origin(hint) is Union:
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return hint


def _arg_kind(hint: Any) -> Optional[str]:
    """How the builder treats an argument annotated ``hint`` (None: a plain value)."""
    if hint == ShiftSpec:
        return "shift"
    hint = _unwrap_optional(hint)
    if hint is PaddingName:
        return "padding"
    if hint is InterpName:
        return "interp"
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (list, collections.abc.Sequence) and args and _is_module_type(args[0]):
        return "modules"
    return "module" if _is_module_type(hint) else None


def _arg_hints(factory: Callable[..., nn.Module]) -> Dict[str, Any]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable annotations (e.g. a user block's local types): plain values
        return {}


_SCALARS = {int: (int,), float: (int, float), bool: (bool,), str: (str,)}


def _check_value(value: Any, hint: Any, path: str) -> None:
    """Plain ``int``/``float``/``bool``/``str`` arguments (or Optional of them) get their type checked,
    ``Literal[...]`` arguments their value."""
    hint = _unwrap_optional(hint)
    if typing.get_origin(hint) is typing.Literal and value is not None:
        choices = typing.get_args(hint)
        if not any(type(value) is type(c) and value == c for c in choices):
            raise _choice_error(path, "invalid value", value, [str(c) for c in choices])
        return
    accepted = _SCALARS.get(hint)
    if value is None or not accepted:
        return
    if not isinstance(value, accepted) or (hint is not bool and isinstance(value, bool)):
        raise ConfigError(f"{path}: expected {hint.__name__}, got {type(value).__name__} {value!r}")


def _parse(raw: Any, path: str, supplied: frozenset) -> _Node:
    """Checks one config node (and its children) without constructing anything."""
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{_where(path)}: expected a mapping with a 'type' key (or a type name), "
                          f"got {type(raw).__name__} {raw!r}")
    names = list_blocks()
    if "type" not in raw:
        raise ConfigError(f"{_join(path, 'type')}: missing; valid choices: {', '.join(names)}")
    type_name = raw["type"]
    if not isinstance(type_name, str):
        raise ConfigError(f"{_join(path, 'type')}: expected a type name (string), got {type_name!r}")
    if type_name not in names:
        note = " (dotted import paths are not allowed: only registered names)" if "." in type_name else ""
        raise _choice_error(_join(path, "type"), "unknown type", type_name, names, note)
    factory = get_block(type_name)
    params = inspect.signature(factory).parameters
    named = {n: p for n, p in params.items()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key in sorted(supplied):
        if key not in named and not open_ended:
            raise ConfigError(f"{_join(path, 'type')}: {type_name!r} cannot be a block's shift layer: it takes "
                              f"no {key!r} argument")
    hints = _arg_hints(factory)
    node = _Node(path, type_name, factory)
    for key, value in raw.items():
        if key == "type":
            continue
        key_path = _join(path, str(key))
        if key in supplied:
            raise ConfigError(f"{key_path}: set by the enclosing block; remove it (got {value!r})")
        if key not in named and not open_ended:
            raise _choice_error(key_path, f"unknown argument of {type_name!r}:", key, sorted(named))
        kind = _arg_kind(hints[key]) if key in hints else None
        if kind in ("module", "modules", "shift") and value is not None and not isinstance(value, nn.Module):
            node.children[key] = _parse_child(value, kind, key_path)
        else:
            _check_value(value, hints.get(key), key_path)
            node.args[key] = _check_plugin(value, kind, key_path)
    missing = [n for n, p in named.items()
               if p.default is inspect.Parameter.empty and n not in raw and n not in supplied]
    if missing:
        raise ConfigError(f"{_join(path, missing[0])}: missing required argument of {type_name!r} "
                          f"(required: {', '.join(missing)})")
    return node


def _parse_child(value: Any, kind: str, path: str) -> Any:
    if kind == "module":
        return _parse(value, path, frozenset())
    if kind == "shift":
        return value if callable(value) and not isinstance(value, (str, Mapping)) else \
            _ShiftNode(_parse(value, path, frozenset({"channels"})))
    if isinstance(value, (str, Mapping)) or not isinstance(value, collections.abc.Sequence):
        raise ConfigError(f"{path}: expected a list of layer configs, got {type(value).__name__} {value!r}")
    return [item if isinstance(item, nn.Module) else _parse(item, f"{path}[{i}]", frozenset())
            for i, item in enumerate(value)]


def _check_plugin(value: Any, kind: Optional[str], path: str) -> Any:
    """Padding and interpolation names go through shiftzoo.plugin_registry (runtime plugins included)."""
    if kind not in ("padding", "interp") or value is None:
        return value
    lookup, listing = ((plugin_registry.get_padding, plugin_registry.list_paddings) if kind == "padding"
                       else (plugin_registry.get_interp, plugin_registry.list_interps))
    try:
        return lookup(value).name
    except ValueError:
        raise _choice_error(path, f"unknown {kind}", value, [p.name for p in listing()]) from None


# ---------------------------------------------------------------------------------------------
# Constructing
# ---------------------------------------------------------------------------------------------

def _instantiate(node: _Node, extra: Optional[Dict[str, Any]] = None) -> nn.Module:
    args = dict(node.args)
    for key, child in node.children.items():
        if isinstance(child, _Node):
            args[key] = _instantiate(child)
        elif isinstance(child, list):
            args[key] = [c if isinstance(c, nn.Module) else _instantiate(c) for c in child]
        else:  # a block's shift: the block calls it with its channel count
            args[key] = child
    try:
        module = node.factory(**args, **(extra or {}))
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{_where(node.path)}: cannot build {node.type!r}: {exc}") from exc
    if not isinstance(module, nn.Module):
        raise ConfigError(f"{_where(node.path)}: {node.type!r} returned {type(module).__name__}, not an nn.Module")
    return module

