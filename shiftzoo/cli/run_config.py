"""Run configs: a model config for :func:`shiftzoo.build_shift` plus training settings.

A run config file (YAML or JSON) has two sections::

    model: {type: sequential, layers: [...]}   # anything build_shift takes
    train: {epochs: 15, batch_size: 64, lr: 0.003, weight_decay: 0.0001}   # optional, these defaults

A file with a top-level ``type`` instead is a bare model config (training settings at their
defaults). The configs that ship with shiftzoo (``configs/`` in the repository) are named by their
stem: ``--config mobilenet_ssl``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, List, Mapping

from ..builder import ConfigError, load_config

__all__ = ["TrainSettings", "RunConfig", "bundled_configs", "load_run_config", "DEFAULT_CONFIG"]

DEFAULT_CONFIG = "mobilenet_ssl"
_CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"  # the repository's configs/


@dataclass(frozen=True)
class TrainSettings:
    """Training settings: AdamW with a cosine schedule over ``epochs``; the L1 penalty of SSL layers
    comes from each layer's own ``sparsity``."""

    epochs: int = 15
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4  # not applied to the shifts

    @classmethod
    def from_mapping(cls, raw: Any, path: str = "train") -> "TrainSettings":
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{path}: expected a mapping of training settings, got {type(raw).__name__} {raw!r}")
        known = {f.name: f for f in fields(cls)}
        values: Dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                raise ConfigError(f"{path}.{key}: unknown training setting; valid choices: {', '.join(known)}")
            kind = int if known[key].type in ("int", int) else float
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
            if not ok or (kind is int and (not isinstance(value, int) or value < 1)):
                need = "an int >= 1" if kind is int else "a finite number >= 0"
                raise ConfigError(f"{path}.{key}: expected {need}, got {value!r}")
            values[key] = kind(value)
        if values.get("lr", cls.lr) <= 0:
            raise ConfigError(f"{path}.lr: expected a number > 0, got {values['lr']!r}")
        return cls(**values)


@dataclass(frozen=True)
class RunConfig:
    """A model config and its training settings; ``source`` names where it came from."""

    model: Dict[str, Any]
    train: TrainSettings
    source: str

    def to_dict(self) -> Dict[str, Any]:
        return {"model": self.model, "train": asdict(self.train)}


def bundled_configs() -> List[str]:
    """The names of the configs that ship with shiftzoo (empty outside a source checkout)."""
    return sorted(p.stem for p in _CONFIG_DIR.glob("*.yaml")) if _CONFIG_DIR.is_dir() else []


def load_run_config(name_or_path: str) -> RunConfig:
    """Reads a run config from a file path, or a bundled config by name (``mobilenet_ssl``)."""
    path = Path(name_or_path)
    if not path.exists() and path.suffix == "" and (_CONFIG_DIR / f"{name_or_path}.yaml").exists():
        path = _CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        bundled = bundled_configs()
        hint = f" (bundled configs: {', '.join(bundled)})" if bundled else ""
        raise ConfigError(f"<config>: no config file {name_or_path!r}{hint}")
    raw = load_config(path)
    if isinstance(raw, Mapping) and "model" in raw:
        extra = sorted(set(raw) - {"model", "train"})
        if extra:
            raise ConfigError(f"{extra[0]}: unknown section of a run config; valid choices: model, train")
        return RunConfig(dict(raw["model"]), TrainSettings.from_mapping(raw.get("train")), str(path))
    if isinstance(raw, Mapping) and "type" in raw:
        return RunConfig(dict(raw), TrainSettings(), str(path))
    raise ConfigError(f"<config>: {str(path)!r} has neither a 'model' section nor a top-level 'type'")
