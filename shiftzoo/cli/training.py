"""``shiftzoo train``: a shift network and its depthwise twin trained side by side on scikit-learn's
handwritten digits (1,797 8x8 images that ship inside scikit-learn: nothing to download).

Both networks start from the same seed and see the same batches; the twin is the shift network with
every SparseShift/ActiveShift/GroupedShift layer replaced by the depthwise convolution it stands for
(:func:`shiftzoo.replace_shifts`). A checkpoint holds both, their optimizers and per-epoch history,
so ``--resume`` continues exactly where a run stopped.
"""
from __future__ import annotations

import math
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..builder import build_shift
from ..convert import _count, replace_shifts
from ..nn.layers import ShiftLayer, SparseShift, sparsity_loss
from .run_config import RunConfig, TrainSettings

__all__ = ["CheckpointError", "Digits", "load_digits", "NetworkRun", "TrainResult", "train", "load_checkpoint",
           "build_networks", "comparison_table", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"
_FORMAT = "shiftzoo.train/1"
NETWORKS = ("shift", "depthwise")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or is not a ``shiftzoo train`` checkpoint."""


@dataclass
class Digits:
    """The digits as ``(N, 1, 8, 8)`` floats in [0, 1] and int64 labels, split 80/20 (stratified, fixed)."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def load_digits() -> Digits:
    """scikit-learn's bundled digits, split the same way every time (the split does not follow ``--seed``)."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        raise RuntimeError("shiftzoo train needs scikit-learn for its dataset: pip install scikit-learn") from exc
    data = sklearn_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(data.target, dtype=torch.int64)
    train_idx, test_idx = train_test_split(range(len(labels)), test_size=0.2, random_state=0, stratify=data.target)
    train_idx, test_idx = torch.tensor(train_idx), torch.tensor(test_idx)
    return Digits(images[train_idx], labels[train_idx], images[test_idx], labels[test_idx])


@dataclass
class NetworkRun:
    """One network in training: the model, its optimizer and what each epoch gave."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: List[Dict[str, float]] = field(default_factory=list)

    def state(self) -> Dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "history": self.history}

    def load(self, state: Dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = list(state["history"])


def _optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """AdamW; no weight decay on the shifts (SSL's own L1 penalty acts on them) or on 1-d parameters."""
    shifts = {id(m.weight) for m in model.modules() if isinstance(m, ShiftLayer)}
    decay = [p for p in model.parameters() if p.requires_grad and id(p) not in shifts and p.dim() > 1]
    rest = [p for p in model.parameters() if p.requires_grad and (id(p) in shifts or p.dim() <= 1)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=settings.lr)


def build_networks(config: RunConfig, seed: int) -> Dict[str, NetworkRun]:
    """The shift network and its depthwise twin, both initialised from ``seed``."""
    runs = {}
    for name in NETWORKS:
        torch.manual_seed(seed)
        model = build_shift(config.model)
        if name == "depthwise":
            replace_shifts(model)
        runs[name] = NetworkRun(model, _optimizer(model, config.train))
    return runs


def zero_fraction(model: nn.Module) -> Optional[float]:
    """The fraction of SSL shifts that round to 0 (what FE-Net's sparsity saves); None without SSL layers."""
    layers = [m for m in model.modules() if isinstance(m, SparseShift)]
    if not layers:
        return None
    zeros = sum(m.integer_shifts().zero_fraction * m.weight.numel() for m in layers)
    return zeros / sum(m.weight.numel() for m in layers)


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    return (model(x).argmax(1) == y).double().mean().item()


def _train_epoch(run: NetworkRun, data: Digits, settings: TrainSettings, epoch: int, total_epochs: int, seed: int,
                 progress: Callable[..., Any]) -> Dict[str, float]:
    """One epoch: the batches in the order ``seed`` and ``epoch`` fix, the learning rate on a cosine
    over all steps of all epochs (so a resumed run continues the same schedule)."""
    model, optimizer = run.model, run.optimizer
    model.train()
    order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    batches = [order[i:i + settings.batch_size] for i in range(0, len(order), settings.batch_size)]
    total_steps = total_epochs * len(batches)
    start = time.perf_counter()
    loss_sum, correct = 0.0, 0
    for step, index in enumerate(progress(batches), start=epoch * len(batches)):
        for group in optimizer.param_groups:
            group["lr"] = settings.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
        x, y = data.x_train[index], data.y_train[index]
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        (loss + sparsity_loss(model)).backward()
        optimizer.step()
        loss_sum += loss.item() * len(index)
        correct += (logits.argmax(1) == y).sum().item()
    seconds = time.perf_counter() - start
    record = {"epoch": epoch + 1, "loss": loss_sum / len(order), "train_acc": correct / len(order),
              "test_acc": evaluate(model, data.x_test, data.y_test), "seconds": seconds}
    zeros = zero_fraction(model)
    if zeros is not None:
        record["zero_fraction"] = zeros
    return record


@dataclass
class TrainResult:
    runs: Dict[str, NetworkRun]
    checkpoint: Path
    config: RunConfig


def load_checkpoint(path: Path) -> Dict[str, Any]:
    """A ``shiftzoo train`` checkpoint's contents, or a :class:`CheckpointError` that says what is wrong."""
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {str(path)!r}")
    if path.is_dir():
        path = path / CHECKPOINT_NAME
        if not path.exists():
            raise CheckpointError(f"no {CHECKPOINT_NAME} in {str(path.parent)!r}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: not a PyTorch file (corrupt or truncated?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged archive or foreign objects: zip, pickle and torch errors alike
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: {str(exc).splitlines()[0]}") from None
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a checkpoint written by shiftzoo train")
    return state


def no_progress(items: List[Any], desc: str = "") -> List[Any]:
    """The default ``progress``: no bar."""
    return items


def _save(path: Path, state: Dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # a run killed while saving leaves the previous checkpoint whole


def train(config: RunConfig, out_dir: Path, *, seed: int = 0, epochs: Optional[int] = None,
          resume: Optional[Dict[str, Any]] = None, progress: Callable[..., Any] = no_progress,
          echo: Callable[[str], None] = print, data: Optional[Digits] = None) -> TrainResult:
    """Trains the shift network of ``config`` and its depthwise twin for ``epochs`` (default: the
    config's) and saves ``out_dir/checkpoint.pt`` (and ``out_dir/config.yaml``) after every epoch.
    ``resume``: a checkpoint's contents (:func:`load_checkpoint`); training goes on from its last
    epoch with its seed, to ``epochs`` in all: with the checkpoint's own total, exactly as if the run
    had not stopped (with another, the learning rate's cosine stretches to the new total).
    ``progress`` wraps each epoch's batches (a progress bar)."""
    import yaml

    data = data or load_digits()
    total = epochs or config.train.epochs
    start_epoch = 0
    if resume is not None:
        seed, start_epoch = resume["seed"], resume["epoch"]
    runs = build_networks(config, seed)
    if resume is not None:
        for name, run in runs.items():
            run.load(resume["networks"][name])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    checkpoint = out_dir / CHECKPOINT_NAME
    if start_epoch >= total:
        echo(f"checkpoint already has {start_epoch} epoch(s) of {total}: nothing to train")
    for epoch in range(start_epoch, total):
        line = [f"epoch {epoch + 1}/{total}"]
        for name, run in runs.items():
            record = _train_epoch(run, data, config.train, epoch, total, seed,
                                  lambda batches: progress(batches, desc=f"{name:>9} {epoch + 1}/{total}"))
            run.history.append(record)
            line.append(f"{name}: loss {record['loss']:.3f} test {100 * record['test_acc']:.1f}%")
        _save(checkpoint, {"format": _FORMAT, "config": config.to_dict(), "seed": seed, "epoch": epoch + 1,
                           "epochs": total, "networks": {name: run.state() for name, run in runs.items()}})
        echo("  ".join(line))
    return TrainResult(runs, checkpoint, config)


def comparison_table(runs: Dict[str, NetworkRun]) -> str:
    """Test accuracy, parameters, time per epoch and SSL's zero shifts of each network."""
    rows: List[Tuple[str, ...]] = [("network", "test acc", "parameters", "s/epoch", "zero shifts")]
    for name, run in runs.items():
        last = run.history[-1] if run.history else {}
        seconds = [r["seconds"] for r in run.history]
        zeros = last.get("zero_fraction")
        rows.append((name, f"{100 * last['test_acc']:.1f}%" if last else "—", f"{_count(run.model):,}",
                     f"{sum(seconds) / len(seconds):.2f}" if seconds else "—",
                     f"{100 * zeros:.1f}%" if zeros is not None else "—"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])
