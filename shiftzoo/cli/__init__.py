"""The ``shiftzoo`` command (also ``python -m shiftzoo``): ``info``, ``train``, ``convert``, ``bench``
and ``plot``; ``shiftzoo COMMAND --help`` says what each takes.

Errors a user can fix (a missing config, a bad key, a corrupt checkpoint, an unwritable folder, an
unknown command) print one line on stderr and exit with status 1 (2 for usage errors); ``--debug``
shows the traceback instead.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

import click

from ..builder import ConfigError
from .run_config import DEFAULT_CONFIG, bundled_configs, load_run_config

__all__ = ["main", "cli"]

_REPO = Path(__file__).resolve().parents[2]


class UserError(click.ClickException):
    """An error the user can fix: one line, no traceback."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """shiftzoo: per-channel shift layers for PyTorch, the zero-FLOP replacement for depthwise convolution."""
    ctx.obj = {"debug": debug}


@cli.command()
def info() -> None:
    """Versions, compiled backends, registered paddings, interpolations and block types."""
    from .info import info_text

    click.echo(info_text())


def _writable_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".shiftzoo-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to output folder {str(path)!r}: {exc.strerror or exc}") from None
    return path


@cli.command()
@click.option("--config", "config_name", default=None, metavar="FILE",
              help=f"Run config (YAML/JSON path, or a bundled name: {', '.join(bundled_configs()) or 'none found'}; "
                   f"default {DEFAULT_CONFIG}).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs in all (default: the config's).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Where the checkpoint and config go (default runs/<config name>).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of initialisation and batch order.")
@click.option("--resume", type=click.Path(path_type=Path), default=None, metavar="CHECKPOINT",
              help="Continue a run from its checkpoint (file or folder); its config and seed are kept.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads (default: torch's).")
def train(config_name: Optional[str], epochs: Optional[int], out_dir: Optional[Path], seed: int,
          resume: Optional[Path], threads: Optional[int]) -> None:
    """Train a shift network and its depthwise twin on the bundled digits; compare them."""
    import torch
    from tqdm import tqdm

    from .run_config import RunConfig, TrainSettings
    from .training import comparison_table, load_checkpoint
    from .training import train as run_training

    if threads:
        torch.set_num_threads(threads)
    state = None
    if resume is not None:
        if config_name is not None:
            raise UserError("--resume continues the checkpoint's own config: drop --config")
        state = load_checkpoint(resume)
        saved = state["config"]
        config = RunConfig(saved["model"], TrainSettings.from_mapping(saved["train"]), str(resume))
        out_dir = out_dir or (resume if resume.is_dir() else resume.parent)
        epochs = epochs or state["epochs"]
    else:
        config = load_run_config(config_name or DEFAULT_CONFIG)
        out_dir = out_dir or Path("runs") / Path(config.source).stem
    _writable_dir(out_dir)
    click.echo(f"training {config.source} (shift network and its depthwise twin) -> {out_dir}")

    def progress(batches, desc=""):
        return tqdm(batches, desc=desc, leave=False, disable=None, dynamic_ncols=True)

    result = run_training(config, out_dir, seed=seed, epochs=epochs, resume=state, progress=progress, echo=click.echo)
    click.echo("")
    click.echo(comparison_table(result.runs))
    click.echo(f"\ncheckpoint: {result.checkpoint} (plot it: shiftzoo plot {result.checkpoint})")


@cli.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Where the PNG files go (default: the checkpoint's folder).")
def plot(checkpoint: Path, out_dir: Optional[Path]) -> None:
    """Pictures of the shifts a checkpoint learned: per layer each channel's shift and a histogram,
    and the fraction of zero shifts over training."""
    from .plotting import plot_checkpoint
    from .training import load_checkpoint

    state = load_checkpoint(checkpoint)
    target = _writable_dir(out_dir or (checkpoint if checkpoint.is_dir() else checkpoint.parent))
    for path in plot_checkpoint(state, target):
        click.echo(f"wrote {path}")


@cli.command()
@click.option("--config", "source", default=None, metavar="FILE",
              help="A model config (or run config) whose depthwise convolutions to replace.")
@click.option("--model", "model_name", default=None, metavar="NAME",
              help="A torchvision model instead (needs torchvision), e.g. mobilenet_v2.")
@click.option("--layer", type=click.Choice(["sparse", "grouped", "active"]), default="sparse", show_default=True,
              help="The shift family to put in.")
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, metavar="PATH",
              help="Write the converted config (YAML) or, for --model, the converted model (torch.save).")
def convert(source: Optional[str], model_name: Optional[str], layer: str, out_path: Optional[Path]) -> None:
    """Replace depthwise convolutions with shift layers; print what changed and the parameters saved."""
    if (source is None) == (model_name is None):
        raise click.UsageError("give exactly one of --config FILE and --model NAME")
    if model_name is not None:
        import torch

        from .converting import convert_torchvision

        model, report = convert_torchvision(model_name, layer)
        click.echo(f"{model_name}: {report}")
        for name in report.replaced:
            click.echo(f"  {name}: depthwise convolution -> {type(dict(model.named_modules())[name]).__name__}")
        if out_path is not None:
            _writable_dir(out_path.parent)
            torch.save(model, out_path)
            click.echo(f"wrote {out_path} (load it with torch.load(path, weights_only=False))")
        return
    import yaml

    from .converting import convert_config

    config = load_run_config(source)
    result = convert_config(config.model, layer)
    click.echo(f"{config.source}: {result}")
    if out_path is not None:
        _writable_dir(out_path.parent)
        out_path.write_text(yaml.safe_dump({"model": result.config, "train": config.to_dict()["train"]},
                                           sort_keys=False))
        click.echo(f"wrote {out_path}")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--quick", is_flag=True, help="A short run (few rounds, few shapes): a smoke test.")
@click.option("--models", is_flag=True, help="Time whole networks (benchmarks/bench_models.py) instead of the op.")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
def bench(quick: bool, models: bool, extra: Sequence[str]) -> None:
    """The speed tables: the op against a copy, the depthwise conv and pure PyTorch (or whole networks
    with --models). Further options go to the script (see its --help)."""
    script = _REPO / "benchmarks" / ("bench_models.py" if models else "bench_shift.py")
    if not script.exists():
        raise UserError(f"the benchmarks live in a source checkout of shiftzoo; {script} is missing")
    args = [sys.executable, str(script), *(["--quick"] if quick else []), *extra]
    code = subprocess.run(args).returncode
    if code:
        raise UserError(f"{script.name} exited with status {code}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        cli.main(args=argv, prog_name="shiftzoo", standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("shiftzoo: interrupted (a training run continues with shiftzoo train --resume DIR)", err=True)
        return 130
    except click.UsageError as exc:
        if debug:
            raise
        where = exc.ctx.command_path if exc.ctx is not None else "shiftzoo"
        click.echo(f"{where}: error: {exc.format_message()} (see {where} --help)", err=True)
        return 2
    except (click.ClickException, ConfigError, ValueError, RuntimeError, OSError) as exc:
        if debug:
            raise
        message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc).splitlines()[0]
        click.echo(f"shiftzoo: error: {message}", err=True)
        return 1
    return 0
