"""``shiftzoo convert``: a config's depthwise convolutions as shift layers (the config rewritten), or a
torchvision model's (the model converted in memory)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

from torch import nn

from ..block_registry import _snake
from ..builder import ConfigError, build_shift
from ..convert import ReplaceReport, _count, replace_depthwise
from ..nn.layers import FAMILIES, ShiftLayer

__all__ = ["ConfigConversion", "convert_config", "convert_torchvision"]

_CONVS = {"conv1d": 1, "conv2d": 2, "conv3d": 3}


@dataclass
class ConfigConversion:
    """The rewritten model config, and for each replaced convolution its config path and new layer type."""

    config: Dict[str, Any]
    replaced: List[Tuple[str, str]] = field(default_factory=list)
    params_before: int = 0
    params_after: int = 0

    def __str__(self) -> str:
        lines = [f"  {path}: depthwise convolution -> {layer}" for path, layer in self.replaced]
        return "\n".join([f"replaced {len(self.replaced)} depthwise convolution(s); parameters "
                          f"{self.params_before:,} -> {self.params_after:,} (saved {self.params_before - self.params_after:,})",
                          *lines])


def _plain(value: Any) -> Any:
    """Tuples as lists, so the rewritten config reads back from YAML as written."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _layer_config(layer: ShiftLayer) -> Dict[str, Any]:
    """The config that builds ``layer`` again (its constructor's arguments)."""
    config = {key: _plain(value) for key, value in layer._config().items()}
    config.pop("dims", None)
    return {"type": _snake(type(layer).__name__), **config}


def convert_config(model_config: Dict[str, Any], layer: str = "sparse", **layer_kwargs: Any) -> ConfigConversion:
    """Every depthwise ``conv1d/2d/3d`` node of ``model_config`` (``groups == in_channels ==
    out_channels``) becomes the shift layer ``replace_depthwise`` would put in its place (same output
    shape); everything else is kept as written. The input config is not modified."""
    if layer not in FAMILIES:
        raise ValueError(f"unknown layer family {layer!r}; valid choices: {', '.join(FAMILIES)}")
    result = ConfigConversion(copy.deepcopy(model_config))

    def visit(node: Any, path: str) -> Any:
        if isinstance(node, list):
            return [visit(item, f"{path}[{i}]") for i, item in enumerate(node)]
        if not isinstance(node, dict):
            return node
        if node.get("type") in _CONVS and node.get("groups", 1) == node.get("in_channels") == node.get("out_channels"):
            conv = build_shift(node)
            try:
                replacement = FAMILIES[layer][_CONVS[node["type"]]].from_depthwise(conv, **layer_kwargs)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{path or '<config>'}: cannot replace this depthwise convolution by a {layer} "
                                  f"shift: {exc}") from exc
            new = _layer_config(replacement)
            result.replaced.append((path or "<config>", new["type"]))
            return new
        return {key: visit(value, f"{path}.{key}" if path else key) for key, value in node.items()}

    result.config = visit(result.config, "")
    result.params_before = _count(build_shift(model_config))
    result.params_after = _count(build_shift(result.config))
    return result


def convert_torchvision(name: str, layer: str = "sparse", **layer_kwargs: Any) -> Tuple[nn.Module, ReplaceReport]:
    """torchvision's model ``name`` (random weights) with its depthwise convolutions replaced."""
    try:
        import torchvision
    except ImportError:
        raise ValueError(f"{name!r} is not a config file, and converting a torchvision model needs torchvision "
                         "(pip install torchvision)") from None
    names = torchvision.models.list_models(module=torchvision.models)
    if name not in names:
        raise ValueError(f"{name!r} is neither a config file nor a torchvision classification model "
                         f"(e.g. mobilenet_v2, mnasnet1_0, efficientnet_b0)")
    model = torchvision.models.get_model(name)
    return model, replace_depthwise(model, layer=layer, **layer_kwargs)
