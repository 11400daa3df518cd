"""``shiftzoo plot``: pictures of the shifts a ``shiftzoo train`` checkpoint learned (matplotlib, PNG)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import torch

from ..builder import build_shift
from ..nn.layers import ShiftLayer

__all__ = ["plot_checkpoint"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("shiftzoo plot needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")  # files only: no screen needed
    import matplotlib.pyplot as plt
    return plt


def _layer_figure(plt, name: str, layer: ShiftLayer, path: Path) -> None:
    """Left: each channel's shift, (dx, dy) in 2D (the rounded shift SSL applies as a ring); right:
    a histogram of the shift values per axis."""
    shifts = layer.weight.detach().double()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    title = f"{name}: {type(layer).__name__}, {layer.channels} channels"
    if shifts.shape[1] >= 2:
        dy, dx = shifts[:, -2], shifts[:, -1]  # the last two axes: H, W
        left.scatter(dx, dy, s=14, alpha=0.6, label="learned shift")
        if layer.interp == "nearest":
            rounded = torch.round(shifts)
            left.scatter(rounded[:, -1], rounded[:, -2], s=60, facecolors="none", edgecolors="C1",
                         label="applied (rounded)")
        left.axhline(0, color="0.8", lw=0.8)
        left.axvline(0, color="0.8", lw=0.8)
        left.set_xlabel("dx (W)")
        left.set_ylabel("dy (H)")
        left.invert_yaxis()  # image rows grow downwards
        left.set_aspect("equal", adjustable="datalim")
        left.legend(loc="upper right", fontsize=8)
    else:
        left.plot(shifts[:, 0], "o", ms=3)
        left.set_xlabel("channel")
        left.set_ylabel("shift")
    left.set_title("per channel")
    axes = ["D", "H", "W"][3 - shifts.shape[1]:]
    for i, axis in enumerate(axes):
        right.hist(shifts[:, i].numpy(), bins=40, alpha=0.6, label=axis)
    right.set_xlabel("shift (pixels)")
    right.set_ylabel("channels")
    right.set_title("histogram")
    right.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _history_figure(plt, history: List[Dict[str, float]], path: Path) -> None:
    epochs = [r["epoch"] for r in history]
    fig, (zeros, acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    zeros.plot(epochs, [100 * r["zero_fraction"] for r in history], "o-")
    zeros.set_xlabel("epoch")
    zeros.set_ylabel("zero shifts (%)")
    zeros.set_title("SSL shifts that round to 0")
    acc.plot(epochs, [100 * r["test_acc"] for r in history], "o-")
    acc.set_xlabel("epoch")
    acc.set_ylabel("test accuracy (%)")
    acc.set_title("shift network")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_checkpoint(state: Dict[str, Any], out_dir: Path) -> List[Path]:
    """PNG files in ``out_dir``: one per shift layer of the checkpoint's shift network (layers whose
    shifts are fixed patterns included), and ``zero_shifts.png`` when the history holds SSL's zero
    fraction. Returns the paths written."""
    plt = _pyplot()
    model = build_shift(state["config"]["model"])
    model.load_state_dict(state["networks"]["shift"]["model"])
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, layer in model.named_modules():
        if isinstance(layer, ShiftLayer):
            path = out_dir / f"shifts_{name.replace('.', '_') or 'model'}.png"
            _layer_figure(plt, name, layer, path)
            written.append(path)
    history = state["networks"]["shift"]["history"]
    if history and all("zero_fraction" in r for r in history):
        path = out_dir / "zero_shifts.png"
        _history_figure(plt, history, path)
        written.append(path)
    return written
