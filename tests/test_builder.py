"""build_shift(cfg): every registered type, the three config sources, nesting, user blocks, and every
error path (each names the config path, the bad value, the valid choices and the closest match)."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import shiftzoo
from shiftzoo import ConfigError, block_registry, build_shift, plugin_registry

DOCS = Path(__file__).resolve().parent.parent / "docs" / "layers.md"


@pytest.fixture
def user_blocks():
    """Names registered by a test, removed afterwards."""
    names = []
    yield names
    for name in names:
        block_registry._BLOCKS.pop(name, None)


@pytest.mark.parametrize("family", ["sparse", "active", "grouped"])
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_every_layer_by_snake_case_name(family, dims):
    layer = build_shift({"type": f"{family}_shift{dims}d", "channels": 27, "padding": "symmetric"})
    assert type(layer).__name__ == f"{family.capitalize()}Shift{dims}d" and layer.padding == "symmetric"
    x = torch.randn(1, 27, *[4] * dims)
    assert layer(x).shape == x.shape


def test_list_blocks():
    names = shiftzoo.list_blocks()
    assert names == sorted(names)
    for name in ["sparse_shift2d", "active_shift1d", "grouped_shift3d", "fixed_shift", "csc", "fe_block",
                 "temporal_shift", "shiftvit_block", "axial_shift", "spatial_shift", "sequential", "concat",
                 "residual", "conv2d", "batch_norm2d", "relu", "linear"]:
        assert name in names
    assert not any("." in name for name in names)


NESTED = {
    "type": "sequential",
    "layers": [
        {"type": "conv2d", "in_channels": 3, "out_channels": 12, "kernel_size": 1},
        {"type": "concat", "layers": [
            {"type": "residual", "body": {"type": "sequential", "layers": [
                {"type": "sparse_shift2d", "channels": 12},
                {"type": "residual", "body": "relu",
                 "shortcut": {"type": "grouped_shift2d", "channels": 12, "padding": "periodic"}},
            ]}},
            "identity",
        ]},
        {"type": "batch_norm2d", "num_features": 24},
        {"type": "fixed_shift", "shifts": [[1, 0]] * 12 + [[0, -1]] * 12},
    ],
}


def test_nesting_to_any_depth():
    model = build_shift(NESTED)
    inner = model[1].layers[0].body[1]
    assert isinstance(inner.shortcut, shiftzoo.GroupedShift2d) and inner.shortcut.padding == "periodic"
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 24, 5, 5)
    out.sum().backward()
    assert model[1].layers[0].body[0].weight.grad is not None


def test_json_yaml_strings_and_files(tmp_path):
    config = {"type": "sequential", "layers": [{"type": "active_shift1d", "channels": 4, "interp": "cubic"}, "relu"]}
    yaml_text = "type: sequential\nlayers:\n  - {type: active_shift1d, channels: 4, interp: cubic}\n  - relu\n"
    (tmp_path / "net.json").write_text(json.dumps(config))
    (tmp_path / "net.yaml").write_text(yaml_text)
    (tmp_path / "net.yml").write_text(yaml_text)
    sources = [config, json.dumps(config), yaml_text, str(tmp_path / "net.json"), tmp_path / "net.yaml",
               str(tmp_path / "net.yml")]
    for source in sources:
        model = build_shift(source)
        assert isinstance(model, nn.Sequential) and model[0].interp == "cubic" and isinstance(model[1], nn.ReLU)


def test_user_block_registration(user_blocks):
    @shiftzoo.register_block("test_double")
    class Double(nn.Module):
        def __init__(self, inner: nn.Module, scale: float = 2.0):
            super().__init__()
            self.inner, self.scale = inner, scale

        def forward(self, x):
            return self.inner(x) * self.scale

    user_blocks.append("test_double")
    model = build_shift({"type": "test_double", "inner": {"type": "sparse_shift1d", "channels": 2}, "scale": 3})
    assert isinstance(model.inner, shiftzoo.SparseShift1d) and model.scale == 3
    assert "test_double" in shiftzoo.list_blocks()
    with pytest.raises(ValueError, match="already registered"):
        shiftzoo.register_block("test_double")(nn.ReLU)
    shiftzoo.register_block("test_double", force=True)(nn.ReLU)
    assert isinstance(build_shift("test_double"), nn.ReLU)

    @shiftzoo.register_block("test_factory")
    def factory(channels: int, shift: shiftzoo.blocks.ShiftSpec = "sparse_shift1d") -> nn.Module:
        return nn.Sequential(shiftzoo.blocks.make_shift(shift, channels), nn.ReLU())

    user_blocks.append("test_factory")
    model = build_shift({"type": "test_factory", "channels": 3, "shift": {"type": "grouped_shift1d"}})
    assert isinstance(model[0], shiftzoo.GroupedShift1d) and model[0].channels == 3
    for bad in ("Bad-Name", "dotted.name", ""):
        with pytest.raises(ValueError, match="snake case"):
            shiftzoo.register_block(bad)


def test_runtime_padding_is_valid_in_configs():
    shiftzoo.register_padding("test_cfg_pad", lambda i, n: torch.clamp(i, 0, n - 1), period=0)
    try:
        assert build_shift({"type": "sparse_shift1d", "channels": 2, "padding": "test_cfg_pad"}).padding == "test_cfg_pad"
    finally:
        plugin_registry.unregister("padding", "test_cfg_pad")
    with pytest.raises(ConfigError, match="unknown padding 'test_cfg_pad'"):
        build_shift({"type": "sparse_shift1d", "channels": 2, "padding": "test_cfg_pad"})


def test_nothing_is_built_before_the_whole_tree_is_checked(user_blocks):
    built = []

    @shiftzoo.register_block("test_spy")
    def spy() -> nn.Module:
        built.append(1)
        return nn.Identity()

    user_blocks.append("test_spy")
    with pytest.raises(ConfigError, match=r"layers\[1\]\.padding"):
        build_shift({"type": "sequential", "layers": ["test_spy", {"type": "sparse_shift2d", "channels": 2,
                                                                   "padding": "nope"}]})
    with pytest.raises(ConfigError, match=r"layers\[1\]\.norm: invalid value 'instance'"):
        build_shift({"type": "sequential", "layers": ["test_spy", {"type": "spatial_shift", "channels": 8,
                                                                   "norm": "instance"}]})
    assert not built


def test_a_block_that_returns_no_module(user_blocks):
    shiftzoo.register_block("test_not_a_module")(lambda: 3)
    user_blocks.append("test_not_a_module")
    with pytest.raises(ConfigError, match=r"^layers\[0\]: 'test_not_a_module' returned int, not an nn.Module$"):
        build_shift({"type": "sequential", "layers": ["test_not_a_module"]})


SHIFT_TYPES = "active_shift1d, active_shift2d"  # the start of the valid type list


@pytest.mark.parametrize("config, match", [
    ({"type": "sequential", "layers": ["relu", "relu", {"type": "csc", "in_channels": 16, "out_channels": 16,
                                                        "shift": {"type": "grouped_shift2d", "padding": "zero"}}]},
     r"^layers\[2\]\.shift\.padding: unknown padding 'zero'; valid choices: border, periodic, reflect, symmetric, "
     r"zeros; closest match: 'zeros'$"),
    ({"type": "active_shift2d", "channels": 4, "interp": "bicubic"},
     r"^interp: unknown interp 'bicubic'; valid choices: cubic, linear, nearest, quadratic; closest match: 'cubic'$"),
    ({"type": "sparse_shift_2d", "channels": 4},
     rf"^type: unknown type 'sparse_shift_2d'; valid choices: {SHIFT_TYPES}.*; closest match: 'sparse_shift2d'$"),
    ({"type": "torch.nn.Conv2d", "in_channels": 1},
     r"^type: unknown type 'torch.nn.Conv2d' \(dotted import paths are not allowed: only registered names\); "
     r"valid choices: .*; closest match: none$"),
    ({"type": "residual", "body": {"type": "sparse_shift2d", "chanels": 4}},
     r"^body\.chanels: unknown argument of 'sparse_shift2d': 'chanels'; valid choices: channels, crop, "
     r"init_shift, init_thumb_rule, padding, sparsity, stride; closest match: 'channels'$"),
    ({"type": "concat", "layers": [{"type": "sparse_shift2d"}]},
     r"^layers\[0\]\.channels: missing required argument of 'sparse_shift2d' \(required: channels\)$"),
    ({"type": "fe_block", "out_channels": 8}, r"^in_channels: missing required argument of 'fe_block'"),
    ({"type": "sequential", "layers": [{"channels": 4}]}, rf"^layers\[0\]\.type: missing; valid choices: {SHIFT_TYPES}"),
    ({"type": 3}, r"^type: expected a type name \(string\), got 3$"),
    ({"type": "sequential", "layers": [7]},
     r"^layers\[0\]: expected a mapping with a 'type' key \(or a type name\), got int 7$"),
    ({"type": "sequential", "layers": {"type": "relu"}}, r"^layers: expected a list of layer configs, got dict"),
    ({"type": "sparse_shift2d", "channels": "16"}, r"^channels: expected int, got str '16'$"),
    ({"type": "sparse_shift2d", "channels": 4, "sparsity": "high"}, r"^sparsity: expected float, got str 'high'$"),
    ({"type": "csc", "in_channels": 9, "out_channels": 9, "shift": {"type": "sparse_shift2d", "channels": 9}},
     r"^shift\.channels: set by the enclosing block; remove it \(got 9\)$"),
    ({"type": "csc", "in_channels": 9, "out_channels": 9, "shift": "relu"},
     r"^shift\.type: 'relu' cannot be a block's shift layer: it takes no 'channels' argument$"),
    ({"type": "sequential", "layers": [{"type": "sparse_shift2d", "channels": -4}]},
     r"^layers\[0\]: cannot build 'sparse_shift2d': channels must be a positive int, got -4$"),
    ({"type": "csc", "in_channels": 8, "out_channels": 8, "shift": "grouped_shift2d"},
     r"^shift: cannot build 'grouped_shift2d': grouped shift: 8 channels cannot hold the 9 displacements"),
    ({"type": "residual", "body": {"type": "spatial_shift", "channels": 8, "norm": "lyer"}},
     r"^body\.norm: invalid value 'lyer'; valid choices: batch, layer, group; closest match: 'layer'$"),
    ({"type": "sparse_shift1d", "channels": 8, "init_thumb_rule": 3},
     r"^init_thumb_rule: invalid value 3; valid choices: 1, 2; closest match: none$"),
    ({"type": "active_shift1d", "channels": 8, "init_thumb_rule": True},
     r"^init_thumb_rule: invalid value True; valid choices: 1, 2"),
    ({"type": "temporal_shift", "channels": 16, "bidirectional": "no"}, r"^bidirectional: expected bool, got str 'no'$"),
    ({"type": "grouped_shift2d", "channels": 9, "pattern": "block"},
     r"^pattern: invalid value 'block'; valid choices: shiftnet, blocks; closest match: 'blocks'$"),
    ({"type": "csc", "in_channels": 9, "out_channels": 9, "residual": "post"},
     r"^residual: invalid value 'post'; valid choices: shiftresnet, resnet"),
    ({"type": "shiftvit_block", "channels": 24, "n_div": 2},
     r"^<config>: cannot build 'shiftvit_block': shiftvit: n_div must be an int >= 4"),
])
def test_config_errors(config, match):
    with pytest.raises(ConfigError, match=match):
        build_shift(config)


@pytest.mark.parametrize("source, match", [
    ("type: [unclosed", r"^<config>: config string is not valid YAML"),
    ("[1, 2]", r"^<config>: expected a mapping with a 'type' key \(or a type name\), got list \[1, 2\]$"),
    ("missing_file.yaml", r"^<config>: cannot read config file 'missing_file.yaml'"),
    ("!!python/object/apply:os.system ['echo pwned']", r"^<config>: config string is not valid YAML"),
    (42, r"^<config>: expected a dict, a JSON/YAML string or a file path, got int$"),
])
def test_source_errors(source, match):
    with pytest.raises(ConfigError, match=match):
        build_shift(source)


def test_bad_json_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{'type': 'relu'}")
    with pytest.raises(ConfigError, match=r"bad.json' is not valid JSON"):
        build_shift(path)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def _input_channels(config):
    while config["type"] in ("sequential", "residual"):
        config = config["layers"][0] if config["type"] == "sequential" else config["body"]
    return config.get("in_channels") or config["channels"]


def test_documented_configs_build():
    """Every YAML example of the docs (docs/layers.md, or README.md once merged there) builds and runs."""
    import yaml

    text = "".join(p.read_text() for p in (DOCS, DOCS.parent.parent / "README.md") if p.exists())
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    for block in blocks:
        model = build_shift(block).eval()
        x = torch.randn(2, _input_channels(yaml.safe_load(block)), 16, 16)
        assert torch.isfinite(model(x)).all()


def test_yaml_without_pyyaml_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now raises ImportError
    with pytest.raises(ConfigError, match=r"^<config>: config string is not JSON, and reading YAML needs PyYAML"):
        build_shift("type: relu")
