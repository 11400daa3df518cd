"""The ``shiftzoo`` command: every command with small settings (in-process through ``main``, and as the
installed console script), its determinism and resumption, and the one-line errors."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import shiftzoo
from shiftzoo.cli import main
from shiftzoo.cli.run_config import bundled_configs, load_run_config
from shiftzoo.cli.training import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["info", "train", "convert", "bench", "plot"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_console_script_and_module_run():
    script = shutil.which("shiftzoo", path=os.path.dirname(sys.executable))
    assert script is not None, "the console script is installed beside the interpreter"
    for command in ([script, "--help"], [sys.executable, "-m", "shiftzoo", "info"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert "CPU backend: compiled" in done.stdout


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_command_has_help(capsys, command):
    code, out, _ = run(capsys, *([command] if command else []), "--help")
    assert code == 0 and out.startswith(f"Usage: shiftzoo{' ' + command if command else ''}")


def test_info(capsys):
    code, out, _ = run(capsys, "info")
    assert code == 0
    assert f"shiftzoo {shiftzoo.__version__}" in out and f"torch {torch.__version__}" in out
    assert "instruction sets baseline" in out and "CUDA backend:" in out
    assert "paddings: border, periodic, reflect, symmetric, zeros" in out
    assert "csc" in out.split("block types:")[1]


def test_bundled_configs_are_the_documented_three():
    assert bundled_configs() == ["fenet", "mobilenet_ssl", "shiftresnet"]


@pytest.mark.parametrize("name", ["mobilenet_ssl", "shiftresnet", "fenet"])
def test_each_config_trains_an_epoch_and_plots(capsys, tmp_path, name):
    code, out, err = run(capsys, "train", "--config", name, "--epochs", "1", "--out", str(tmp_path))
    assert code == 0, err
    assert "epoch 1/1" in out and "shift " in out and "depthwise " in out and "test acc" in out
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["epoch"] == 1 and set(state["networks"]) == {"shift", "depthwise"}
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == load_run_config(name).to_dict()
    code, out, err = run(capsys, "plot", str(tmp_path / "checkpoint.pt"), "--out", str(tmp_path / "png"))
    assert code == 0, err
    pictures = sorted((tmp_path / "png").glob("*.png"))
    assert pictures and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pictures)
    assert (tmp_path / "png" / "zero_shifts.png").exists() == (name != "shiftresnet")  # SSL configs only


def test_twin_differs_only_in_the_shift_layers(tmp_path):
    from shiftzoo.cli.training import build_networks

    runs = build_networks(load_run_config("mobilenet_ssl"), seed=0)
    shift, twin = runs["shift"].model, runs["depthwise"].model
    kinds = {name: type(m) for name, m in shift.named_modules()}
    changed = {name for name, m in twin.named_modules() if type(m) is not kinds.get(name)}
    assert changed and all(isinstance(dict(shift.named_modules())[n], shiftzoo.SparseShift2d) for n in changed)
    assert all(isinstance(dict(twin.named_modules())[n], torch.nn.Conv2d) for n in changed)
    x = torch.randn(2, 1, 8, 8)
    assert shift(x).shape == twin(x).shape


def _states(path):
    state = load_checkpoint(path)
    return {name: (net["model"], [r["loss"] for r in net["history"]]) for name, net in state["networks"].items()}


def test_training_is_deterministic_and_resumes_exactly(capsys, tmp_path, monkeypatch):
    args = ["--config", "fenet", "--seed", "3", "--epochs", "2"]
    for folder in ("a", "b"):
        assert run(capsys, "train", *args, "--out", str(tmp_path / folder))[0] == 0

    def interrupt_after_the_first_epoch(line):  # echo comes after the epoch's checkpoint is saved
        if line.startswith("epoch 1/2"):
            raise KeyboardInterrupt

    monkeypatch.setattr("click.echo", lambda message="", **kw: interrupt_after_the_first_epoch(str(message)))
    assert main(["train", *args, "--out", str(tmp_path / "c")]) == 130
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "c")["epoch"] == 1
    code, out, err = run(capsys, "train", "--resume", str(tmp_path / "c"))
    assert code == 0, err
    assert "epoch 2/2" in out and "epoch 1/2" not in out
    a, b, c = (_states(tmp_path / f / "checkpoint.pt") for f in "abc")
    for name in ("shift", "depthwise"):
        assert a[name][1] == b[name][1] == c[name][1]  # the same losses, epoch by epoch
        for key, tensor in a[name][0].items():
            assert torch.equal(tensor, b[name][0][key]) and torch.equal(tensor, c[name][0][key]), key
    other = _states(tmp_path / "a" / "checkpoint.pt")
    assert run(capsys, "train", "--config", "fenet", "--seed", "4", "--epochs", "1", "--out", str(tmp_path / "d"))[0] == 0
    assert _states(tmp_path / "d" / "checkpoint.pt")["shift"][1][0] != other["shift"][1][0]


def test_default_config_reaches_95_percent(capsys, tmp_path):
    """The README's demo: the default run config, its default epochs and seed."""
    code, out, err = run(capsys, "train", "--out", str(tmp_path))
    assert code == 0, err
    history = load_checkpoint(tmp_path)["networks"]["shift"]["history"]
    assert len(history) == load_run_config("mobilenet_ssl").train.epochs
    assert history[-1]["test_acc"] >= 0.95 and history[-1]["zero_fraction"] > 0


DEPTHWISE_NET = {
    "type": "sequential",
    "layers": [
        {"type": "conv2d", "in_channels": 1, "out_channels": 32, "kernel_size": 1},
        {"type": "conv2d", "in_channels": 32, "out_channels": 32, "kernel_size": 3, "padding": 1, "groups": 32},
        {"type": "relu"},
        {"type": "residual", "body": {"type": "conv2d", "in_channels": 32, "out_channels": 32, "kernel_size": 5,
                                      "stride": 1, "padding": 2, "groups": 32, "bias": False}},
        {"type": "conv2d", "in_channels": 32, "out_channels": 32, "kernel_size": 3, "stride": 2, "padding": 1,
         "groups": 32},
        {"type": "conv2d", "in_channels": 32, "out_channels": 8, "kernel_size": 3, "groups": 2},  # not depthwise
    ],
}


@pytest.mark.parametrize("layer", ["sparse", "grouped", "active"])
def test_convert_a_config(capsys, tmp_path, layer):
    source = tmp_path / "net.yaml"
    source.write_text(yaml.safe_dump(DEPTHWISE_NET))
    out_file = tmp_path / "converted.yaml"
    code, out, err = run(capsys, "convert", "--config", str(source), "--layer", layer, "--out", str(out_file))
    assert code == 0, err
    assert "replaced 3 depthwise convolution(s)" in out and "saved" in out
    assert "layers[1]: depthwise convolution ->" in out and "layers[3].body:" in out and "layers[4]:" in out
    converted = yaml.safe_load(out_file.read_text())
    model, original = shiftzoo.build_shift(converted["model"]), shiftzoo.build_shift(DEPTHWISE_NET)
    x = torch.randn(2, 1, 9, 9)
    assert model(x).shape == original(x).shape
    families = {"sparse": shiftzoo.SparseShift2d, "grouped": shiftzoo.GroupedShift2d, "active": shiftzoo.ActiveShift2d}
    assert sum(isinstance(m, families[layer]) for m in model.modules()) == 3
    assert converted["model"]["layers"][5] == DEPTHWISE_NET["layers"][5]  # the grouped conv stays


def test_convert_a_torchvision_model(capsys, tmp_path):
    pytest.importorskip("torchvision")
    code, out, err = run(capsys, "convert", "--model", "mobilenet_v2", "--out", str(tmp_path / "m.pt"))
    assert code == 0, err
    assert "replaced 17 depthwise convolution(s)" in out
    assert isinstance(torch.load(tmp_path / "m.pt", weights_only=False), torch.nn.Module)


def test_bench_runs_the_op_benchmark(capsys):
    code = main(["bench", "--quick", "--shapes", "2x8x6x6", "--rounds", "1", "--warmup", "0", "--malloc", "default"])
    out, err = capsys.readouterr()
    assert code == 0, err


@pytest.mark.parametrize("argv, message, status", [
    (["nosuch"], "shiftzoo: error: No such command 'nosuch'. (see shiftzoo --help)", 2),
    (["train", "--epochs", "0"], "shiftzoo train: error: Invalid value for '--epochs'", 2),
    (["train", "--config", "missing.yaml"],
     "shiftzoo: error: <config>: no config file 'missing.yaml' (bundled configs: fenet, mobilenet_ssl, shiftresnet)", 1),
    (["plot", "nowhere/checkpoint.pt"], "shiftzoo: error: no checkpoint at 'nowhere/checkpoint.pt'", 1),
    (["convert"], "shiftzoo convert: error: give exactly one of --config FILE and --model NAME", 2),
])
def test_errors_are_one_line(capsys, argv, message, status):
    code, _, err = run(capsys, *argv)
    assert code == status and err.startswith(message) and err.count("\n") == 1, err


def test_convert_names_the_convolution_it_cannot_replace(capsys, tmp_path):
    source = tmp_path / "net.yaml"
    source.write_text(yaml.safe_dump({"type": "conv2d", "in_channels": 8, "out_channels": 8, "kernel_size": 3,
                                      "groups": 8}))
    assert ("<config>: cannot replace this depthwise convolution by a grouped shift: grouped shift: 8 channels "
            "cannot hold") in _one_line_error(capsys, "convert", "--config", str(source), "--layer", "grouped")


def _one_line_error(capsys, *argv):
    code, _, err = run(capsys, *argv)
    assert code == 1 and err.count("\n") == 1 and err.startswith("shiftzoo: error: "), err
    return err


def test_config_errors_name_the_path(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"model": {"type": "sequential", "layers": [{"type": "sparse_shift2d",
                                                                               "channels": 4, "paddin": "zeros"}]}}))
    assert "layers[0].paddin: unknown argument of 'sparse_shift2d'" in _one_line_error(capsys, "train", "--config", str(bad))
    bad.write_text(yaml.safe_dump({"model": DEPTHWISE_NET, "train": {"lr": -1}}))
    assert "train.lr: expected a finite number >= 0, got -1" in _one_line_error(capsys, "train", "--config", str(bad))
    bad.write_text(yaml.safe_dump({"model": DEPTHWISE_NET, "trian": {}}))
    assert "trian: unknown section of a run config" in _one_line_error(capsys, "train", "--config", str(bad))


def test_checkpoint_and_folder_errors(capsys, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    assert "not a PyTorch file (corrupt or truncated?)" in _one_line_error(capsys, "plot", str(corrupt))
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    assert "is not a checkpoint written by shiftzoo train" in _one_line_error(capsys, "train", "--resume", str(foreign))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert "cannot write to output folder" in _one_line_error(capsys, "train", "--config", "fenet", "--out",
                                                               str(blocker / "sub"))


def test_debug_shows_the_traceback():
    done = subprocess.run([sys.executable, "-m", "shiftzoo", "--debug", "plot", "missing.pt"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" in done.stderr and "no checkpoint at" in done.stderr
    done = subprocess.run([sys.executable, "-m", "shiftzoo", "plot", "missing.pt"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr


def test_readme_set_up_is_the_two_make_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set up", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in setup.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make demo", "make test"]
    for target, runs in (("demo", "-m shiftzoo train"), ("test", "-m pytest")):
        done = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and runs in done.stdout, done.stderr
