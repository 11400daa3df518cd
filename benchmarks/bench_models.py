"""Speed of whole networks with shift layers against their depthwise originals: what a user who
converts a real network gets, inference and train step, in both memory formats.

    python benchmarks/bench_models.py                   # the suite: ~3 min on 2 cores (both conditions)
    python benchmarks/bench_models.py --quick           # a smoke test
    python benchmarks/bench_models.py --models mobilenet_v2 --formats channels_last --json out.json

Models (every one in float32, batch 8, 3 x 160 x 160 inputs, 10 classes by default):

* ``mobilenet_v2``, ``mnasnet1_0``: torchvision's networks (``pip install torch==2.14.1
  torchvision==0.29.1``; skipped without torchvision), their depthwise convolutions replaced by
  ``shiftzoo.replace_depthwise(model, layer=...)``: variants ``sparse`` and ``grouped``;
* ``shiftnet``, ``fenet``: a ShiftNet-style network of CSC blocks (GroupedShift) and an FE-Net-style
  network of FE blocks (SparseShift), built by ``shiftzoo.build_shift``, against their depthwise
  twins (the same configs with a 3x3 depthwise convolution where the shift is): variant ``shift``.

Each variant is timed against the depthwise network (``depthwise``) in one process, on the same
input, interleaved (each round runs every candidate once in a fresh seeded order), and reported as
the ratio of medians (below 1: faster than the depthwise network). Inference runs in eval mode
under ``torch.inference_mode``, also after ``shiftzoo.optimize_for_inference`` (``+inference``,
whose outputs are checked to equal the unoptimized model's; for sparse layers also with
``permute_channels=True``, ``+inference+permuted``, marked (≠): equal up to rounding), and the floor
of those forms, ``floor: shift = copy`` (every InferenceShift replaced by a copy of the positions
its outputs sit on: what the network would cost with a shift as cheap as a copy); the train step
is forward, cross entropy, backward and an SGD step, with, for networks of SSL layers, its floor ``floor: shift =
channel scale`` (every SparseShift replaced by a learned per-channel scale of the positions it
keeps: PyTorch's cheapest op with an SSL layer's work). Both allocator conditions are reported
(see timing.py).
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

import shiftzoo
from timing import Candidate, add_run_options, interleaved_timings, machine_info, parse_run_options, run_suite

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
MODES = ("inference", "train")
# The targets (2 threads, float32, batch 8, 160x160) for the converted MobileNetV2: the
# ratio to the unconverted model, per (mode, format); inference after optimize_for_inference.
TARGETS = {("inference", "contiguous"): 0.85, ("inference", "channels_last"): 0.85,
           ("train", "contiguous"): 0.9, ("train", "channels_last"): 1.0}
TARGETED = {("mobilenet_v2", "sparse+inference"), ("mobilenet_v2", "sparse+inference+permuted"),
            ("mobilenet_v2", "grouped+inference"),
            ("mobilenet_v2", "sparse"), ("mobilenet_v2", "grouped")}


def depthwise_twin(channels: int) -> nn.Module:
    """What a shift layer replaces: a 3x3 depthwise convolution keeping the size."""
    return nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)


def stem(out: int) -> list:
    return [{"type": "conv2d", "in_channels": 3, "out_channels": out, "kernel_size": 3, "stride": 2, "padding": 1,
             "bias": False}, {"type": "batch_norm2d", "num_features": out}, "relu"]


def head(channels: int, classes: int) -> list:
    return [{"type": "adaptive_avg_pool2d", "output_size": 1}, "flatten",
            {"type": "linear", "in_features": channels, "out_features": classes}]


def shiftnet_config(shift, classes: int) -> dict:
    """A ShiftResNet-style network trained from scratch: CSC blocks (ResNet's residual order),
    channels doubling at each stride."""
    widths = [(32, 32, 1), (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2),
              (256, 256, 1)]
    blocks = [{"type": "csc", "in_channels": i, "out_channels": o, "stride": s, "expansion": 3, "shift": shift,
               "residual": "resnet"} for i, o, s in widths]
    return {"type": "sequential", "layers": stem(32) + blocks + head(256, classes)}


def fenet_config(shift, classes: int) -> dict:
    """An FE-Net-style network: FE blocks, half the channels through a shift bottleneck."""
    widths = [(32, 48, 2), (48, 48, 1), (48, 96, 2), (96, 96, 1), (96, 192, 2), (192, 192, 1)]
    blocks = [{"type": "fe_block", "in_channels": i, "out_channels": o, "stride": s, "expansion": 2, "split": 0.5,
               "shift": shift} for i, o, s in widths]
    return {"type": "sequential", "layers": stem(32) + blocks + head(192, classes)}


def torchvision_variants(name: str, classes: int) -> dict[str, Callable[[], nn.Module]] | None:
    try:
        import torchvision
    except ImportError:
        return None
    factory = getattr(torchvision.models, name)

    def converted(layer: str) -> nn.Module:
        model = factory(num_classes=classes)
        shiftzoo.replace_depthwise(model, layer=layer)
        return model

    return {"depthwise": lambda: factory(num_classes=classes), "sparse": lambda: converted("sparse"),
            "grouped": lambda: converted("grouped")}


def ours_variants(name: str, classes: int) -> dict[str, Callable[[], nn.Module]]:
    # A network trained anew takes the grouped shift's faster channel order (docs/layers.md).
    grouped = {"type": "grouped_shift2d", "pattern": "blocks"}
    config, shift = {"shiftnet": (shiftnet_config, grouped), "fenet": (fenet_config, "sparse_shift2d")}[name]
    return {"depthwise": lambda: shiftzoo.build_shift(config(depthwise_twin, classes)),
            "shift": lambda: shiftzoo.build_shift(config(shift, classes))}


MODELS = ("mobilenet_v2", "mnasnet1_0", "shiftnet", "fenet")


@dataclass
class GroupResult:
    model: str
    mode: str
    format: str
    base_ms: float  # the depthwise network's median
    ratios: dict[str, float] = field(default_factory=dict)  # variant -> median / base
    exact: dict[str, bool] = field(default_factory=dict)  # +inference variant -> outputs equal


def kept_positions(x: torch.Tensor, sampling) -> torch.Tensor:
    """The view of x at the positions a layer with this sampling writes its outputs at (strided
    slices), possibly shorter than its output where a crop is negative."""
    for axis, (n, stride, (begin, _)) in enumerate(zip(x.shape[2:], sampling.stride, sampling.crop)):
        start = min(max(begin, 0), n)
        x = x.narrow(axis + 2, start, n - start)[(slice(None),) * (axis + 2) + (slice(None, None, stride),)]
    return x


def fit(y: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """y cut or zero-padded at the end of each spatial axis to `shape`."""
    pads = [p for n, m in zip(reversed(y.shape[2:]), reversed(shape[2:])) for p in (0, m - n)]
    return y if y.shape == shape else nn.functional.pad(y, pads)


class CopyFloor(nn.Module):
    """Stands in for an InferenceShift: copies the input positions its outputs sit on into a new
    tensor of the output's shape, and nothing else. A network with these in place of its shifts is
    the floor of its inference form: what it would cost with a shift as cheap as a copy."""

    def __init__(self, shift: shiftzoo.InferenceShift):
        super().__init__()
        self.sampling = shift.sampling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fit(kept_positions(x, self.sampling).clone(), x.shape[:2] + self.sampling.output_size(x.shape[2:]))


class ChannelScaleFloor(nn.Module):
    """Stands in for a SparseShift layer in training: a learned per-channel scale of the positions
    its outputs sit on, PyTorch's cheapest op with an SSL layer's work (an output, an input gradient,
    a per-channel reduction for the parameter's gradient). A network with these in place of its
    shifts is the floor of its train step."""

    def __init__(self, layer: shiftzoo.ShiftLayer):
        super().__init__()
        self.sampling = layer.sampling
        self.scale = nn.Parameter(torch.ones(layer.channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = kept_positions(x, self.sampling) * self.scale.view((1, -1) + (1,) * (x.dim() - 2))
        return fit(scaled, x.shape[:2] + self.sampling.output_size(x.shape[2:]))


def with_floors(model: nn.Module, kind: type, floor: type) -> nn.Module:
    """A copy of model with every `kind` module replaced by floor(module)."""
    model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, kind):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, floor(module))
    return model


def inference_candidates(variants: dict[str, nn.Module], x: torch.Tensor, exact: dict[str, bool]
                         ) -> dict[str, Candidate]:
    """Eval-mode forwards, plus each shift variant's optimize_for_inference form (whether its outputs
    equal the original's is recorded: permuted channels agree up to rounding only)."""
    models = {}
    for name, model in variants.items():
        models[name] = model.eval()
        if name == "depthwise":
            continue
        forms = {"+inference": {}}
        if name == "sparse":  # channels in any order: also sorted into runs (grouped ones are already)
            forms["+inference+permuted"] = {"permute_channels": True}
        for suffix, options in forms.items():
            optimized = copy.deepcopy(model)
            shiftzoo.optimize_for_inference(optimized, **options)
            with torch.inference_mode():
                exact[name + suffix] = torch.equal(model(x), optimized(x))
            models[name + suffix] = optimized
        if "floor: shift = copy" not in models:  # once per network: the floor of every inference form
            models["floor: shift = copy"] = with_floors(models[f"{name}+inference"], shiftzoo.InferenceShift,
                                                        CopyFloor)

    def forward(model: nn.Module) -> Callable[[], object]:
        def run():
            with torch.inference_mode():
                return model(x)
        return run

    return {name: Candidate(forward(model)) for name, model in models.items()}


def train_candidates(variants: dict[str, nn.Module], x: torch.Tensor, labels: torch.Tensor) -> dict[str, Candidate]:
    def step(model: nn.Module) -> Callable[[], object]:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

        def run():
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x), labels) + shiftzoo.sparsity_loss(model)
            loss.backward()
            opt.step()
            return loss
        return run

    models = dict(variants)
    for name in ("sparse", "shift"):  # SSL layers (fenet's "shift" is SSL; shiftnet's is grouped)
        if name in variants and any(isinstance(m, shiftzoo.nn.SparseShift) for m in variants[name].modules()):
            models["floor: shift = channel scale"] = with_floors(variants[name], shiftzoo.nn.SparseShift,
                                                                 ChannelScaleFloor)
    return {name: Candidate(step(model)) for name, model in models.items()}


def bench_model(name: str, args) -> list[GroupResult]:
    makers = torchvision_variants(name, args.classes) if name in ("mobilenet_v2", "mnasnet1_0") \
        else ours_variants(name, args.classes)
    if makers is None:
        print(f"- {name}: skipped (needs torchvision: pip install torch==2.14.1 torchvision==0.29.1)")
        return []
    results = []
    for fmt_name in args.formats:
        fmt = FORMATS[fmt_name]
        torch.manual_seed(args.seed)
        x = torch.randn(args.batch, 3, args.size, args.size).contiguous(memory_format=fmt)
        labels = torch.randint(0, args.classes, (args.batch,))
        for mode in args.modes:
            torch.manual_seed(args.seed)
            variants = {v: make().to(memory_format=fmt) for v, make in makers.items()}
            exact: dict[str, bool] = {}
            cands = inference_candidates(variants, x, exact) if mode == "inference" else \
                train_candidates(variants, x, labels)
            timings = interleaved_timings(cands, args.rounds, args.warmup)
            base = timings["depthwise"].median_ms
            group = GroupResult(name, mode, fmt_name, base, exact=exact)
            group.ratios = {v: t.median_ms / base for v, t in timings.items() if v != "depthwise"}
            results.append(group)
            print(f"  {name} {mode} {fmt_name}: depthwise {base:.1f} ms; " +
                  ", ".join(f"{v} {r:.3f}x" for v, r in group.ratios.items()), flush=True)
    return results


def target_of(model: str, variant: str, mode: str, fmt: str) -> float | None:
    if (model, variant) not in TARGETED:
        return None
    optimized = "+inference" in variant
    if (mode == "inference") != optimized:
        return None
    return TARGETS[(mode, fmt)]


def summary(results: Sequence[GroupResult], formats: Sequence[str], modes: Sequence[str]) -> str:
    """Rows (model, variant) x columns (mode, format): ratio to the depthwise network; ✗ marks a
    missed target, (≠) an optimized model whose outputs differ from the original's."""
    columns = [(m, f) for f in formats for m in modes]
    by = {(r.model, r.mode, r.format): r for r in results}
    rows = []
    for r in results:
        for v in r.ratios:
            if (r.model, v) not in rows:
                rows.append((r.model, v))
    lines = ["| ×depthwise network | " + " | ".join(f"{m} {f}" for m, f in columns) + " |",
             "|---|" + "--:|" * len(columns)]
    for model, variant in rows:
        cells = []
        for mode, fmt in columns:
            group = by.get((model, mode, fmt))
            ratio = group.ratios.get(variant) if group else None
            if ratio is None:
                cells.append("—")
                continue
            target = target_of(model, variant, mode, fmt)
            mark = " ✗" if target is not None and ratio > target else ""
            mark += " (≠)" if group.exact.get(variant) is False else ""
            cells.append(f"{ratio:.2f}{mark}")
        lines.append(f"| {model} {variant} | " + " | ".join(cells) + " |")
    base = "; ".join(f"{r.model} {r.mode} {r.format} {r.base_ms:.1f} ms" for r in results)
    return "\n".join(lines) + f"\n\nDepthwise networks (medians): {base}."


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    info = machine_info(torch.get_num_threads())
    print(f"## Networks on {info['cpu_model'] or info['processor']}, torch {info['torch']}, {info['threads']} threads, "
          f"float32, batch {args.batch}, {args.size}x{args.size}, allocator: {info['malloc']}; medians of "
          f"{args.rounds} interleaved rounds (+{args.warmup} warm-up)", flush=True)
    t0 = time.perf_counter()
    results = [g for name in args.models for g in bench_model(name, args)]
    print(f"\n{summary(results, args.formats, args.modes)}\n({time.perf_counter() - t0:.0f} s)\n", flush=True)
    return {"machine": info, "config": {k: v for k, v in vars(args).items() if k != "json"},
            "groups": [vars(g) for g in results]}


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--formats", nargs="+", choices=tuple(FORMATS), default=list(FORMATS))
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--classes", type=int, default=10)
    add_run_options(ap, rounds=15, quick="few rounds: a smoke test")
    args = parse_run_options(ap, argv)
    run_suite(args, argv, lambda: run(args))


if __name__ == "__main__":
    main()
