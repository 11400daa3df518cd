"""Speed of a converted network's shift layers one by one, each against the depthwise convolution
it replaced, on that layer's own input: where a network figure of bench_models.py comes from.

    python benchmarks/bench_layers.py                          # MobileNetV2's SSL layers: under a minute (both conditions)
    python benchmarks/bench_layers.py --layer grouped --formats channels_last --json out.json

The network is torchvision's (``pip install torch==2.14.1 torchvision==0.29.1``), its depthwise
convolutions replaced by ``shiftzoo.replace_depthwise(model, layer=...)`` as in bench_models.py;
every layer's input shape is recorded by running the depthwise network once (batch 8, 3 x 160 x
160 by default). Per layer and memory format, four candidates are timed interleaved (each round
runs every one once in a fresh seeded order): the shift layer's forward, the convolution's
forward, and the forward with both gradients of each (the input's and the parameters', through
autograd, for the same upstream gradient). The table gives each layer's medians, the ratios
shift / convolution (below 1: the shift is faster) and the totals over the layers. Both allocator
conditions are reported (see timing.py).
"""
from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

import shiftzoo
from bench_models import FORMATS
from timing import Candidate, add_run_options, interleaved_timings, machine_info, parse_run_options, run_suite

MODELS = ("mobilenet_v2", "mnasnet1_0")


@dataclass
class LayerPair:
    name: str
    conv: nn.Conv2d
    shift: nn.Module
    input_shape: tuple[int, ...]


def layer_pairs(model_name: str, layer: str, batch: int, size: int) -> list[LayerPair]:
    """Every depthwise convolution of the torchvision network with the shift layer that
    replace_depthwise puts in its place, and the input shape it sees in the network."""
    import torchvision  # a benchmark extra: main() says so when it is missing

    depthwise = getattr(torchvision.models, model_name)(num_classes=10)
    converted = copy.deepcopy(depthwise)
    report = shiftzoo.replace_depthwise(converted, layer=layer)
    convs, shifts = dict(depthwise.named_modules()), dict(converted.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(module, inputs, output) -> None:
            shapes.setdefault(name, tuple(inputs[0].shape))
        return hook

    hooks = [convs[name].register_forward_hook(record(name)) for name in report.replaced]
    with torch.no_grad():
        depthwise.eval()(torch.randn(batch, 3, size, size))
    for h in hooks:
        h.remove()
    return [LayerPair(name, convs[name], shifts[name], shapes[name]) for name in report.replaced]


def candidates(pair: LayerPair, memory_format: torch.memory_format, seed: int) -> dict[str, Candidate]:
    torch.manual_seed(seed)
    x = torch.randn(pair.input_shape).contiguous(memory_format=memory_format).requires_grad_()
    conv = pair.conv.train().to(memory_format=memory_format)
    shift = pair.shift.train()
    with torch.no_grad():
        out_shape = conv(x).shape
    g = torch.randn(out_shape).contiguous(memory_format=memory_format)

    def with_gradients(module: nn.Module):
        leaves = [x] + [p for p in module.parameters() if p.requires_grad]
        return lambda: torch.autograd.grad(module(x), leaves, g)

    return {"shift fwd": Candidate(lambda: shift(x)), "dw fwd": Candidate(lambda: conv(x)),
            "shift fwd+bwd": Candidate(with_gradients(shift)), "dw fwd+bwd": Candidate(with_gradients(conv))}


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    pairs = layer_pairs(args.model, args.layer, args.batch, args.size)
    info = machine_info(args.threads)
    print(f"\n## {args.model} {args.layer} layers against their depthwise convolutions, {info['cpu_model']}, "
          f"torch {info['torch']}, {args.threads} threads, float32, allocator: {info['malloc']}; medians of "
          f"{args.rounds} interleaved rounds (+{args.warmup} warm-up)")
    rows = []
    for fmt in args.formats:
        print(f"\n{fmt}\n\n| layer | input | stride | shift fwd ms | ×dw | shift fwd+bwd ms | ×dw |\n|---|---|--:|--:|--:|--:|--:|")
        totals = dict.fromkeys(("shift fwd", "dw fwd", "shift fwd+bwd", "dw fwd+bwd"), 0.0)
        for k, pair in enumerate(pairs):
            timings = interleaved_timings(candidates(pair, FORMATS[fmt], args.seed + k), args.rounds, args.warmup)
            ms = {name: t.median_ms for name, t in timings.items()}
            for name in totals:
                totals[name] += ms[name]
            stride = pair.conv.stride[0]
            print(f"| {pair.name} | {'x'.join(map(str, pair.input_shape))} | {stride} | {ms['shift fwd']:.3f} | "
                  f"{ms['shift fwd'] / ms['dw fwd']:.2f} | {ms['shift fwd+bwd']:.3f} | "
                  f"{ms['shift fwd+bwd'] / ms['dw fwd+bwd']:.2f} |")
            rows.append({"format": fmt, "layer": pair.name, "input": list(pair.input_shape), "stride": stride,
                         **{f"{name} ms": value for name, value in ms.items()}})
        print(f"| **all {len(pairs)}** | | | {totals['shift fwd']:.2f} | {totals['shift fwd'] / totals['dw fwd']:.2f} | "
              f"{totals['shift fwd+bwd']:.2f} | {totals['shift fwd+bwd'] / totals['dw fwd+bwd']:.2f} |")
        print(f"(depthwise convolutions in all: forward {totals['dw fwd']:.2f} ms, forward+backward "
              f"{totals['dw fwd+bwd']:.2f} ms)")
    return {"info": info, "config": {k: getattr(args, k) for k in ("model", "layer", "formats", "threads", "batch",
                                                                    "size", "rounds", "warmup")}, "rows": rows}


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=MODELS, default="mobilenet_v2")
    ap.add_argument("--layer", choices=("sparse", "grouped", "active"), default="sparse")
    ap.add_argument("--formats", nargs="+", choices=tuple(FORMATS), default=list(FORMATS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=160)
    add_run_options(ap, rounds=30, quick="few rounds: a smoke test")
    args = parse_run_options(ap, argv)
    try:
        import torchvision  # noqa: F401
    except ImportError:
        raise SystemExit("bench_layers.py needs torchvision (pip install torch==2.14.1 torchvision==0.29.1)")
    run_suite(args, argv, lambda: run(args))


if __name__ == "__main__":
    main()
