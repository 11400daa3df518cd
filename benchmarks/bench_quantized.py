"""Quantized and integer inference: what moving the 8-bit integers saves over the float detour.

Two parts, each a set of candidates timed in interleaved rounds in one process (medians, ratios;
nothing is asserted), under both allocator conditions (benchmarks/timing.py):

* **the op**, per shape and layout: a whole-pixel shift (SparseShift's rounded shifts, every channel
  its own) of uint8 data (``shiftzoo.functional.shift`` with the zero point as fill), against a
  uint8 copy (``clone``, the floor), the float32 shift, and ``dequantize -> float shift ->
  quantize``, the chain a PT2E-converted model runs around a shift before
  ``shiftzoo.quantization.fold_quantized_shifts`` (as tensor arithmetic: what torchao's
  decomposed quantize/dequantize ops compute);
* **a model**: a small CNN of 1x1 convolutions with SparseShift and GroupedShift layers between them,
  quantized with torchao's PT2E flow (``x86_inductor_quantizer``), run eagerly before and after
  ``fold_quantized_shifts`` (skipped without torchao).

    python benchmarks/bench_quantized.py [--quick] [--threads 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

import shiftzoo
from shiftzoo import functional
from timing import Candidate, add_run_options, interleaved_timings, machine_info, parse_run_options, run_suite

SHAPES = ((32, 64, 56, 56), (8, 256, 28, 28), (32, 1024, 7, 7))
SCALE, ZERO_POINT = 0.02, 128


def quantize(x: torch.Tensor) -> torch.Tensor:
    """uint8 per-tensor quantization, the arithmetic of torchao's quantize_per_tensor (decomposed)."""
    return torch.clamp(torch.round(x * (1.0 / SCALE)) + ZERO_POINT, 0, 255).to(torch.uint8)


def dequantize(q: torch.Tensor) -> torch.Tensor:
    return (q.to(torch.float32) - ZERO_POINT) * SCALE


def op_candidates(shape: Sequence[int], channels_last: bool) -> dict[str, Candidate]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    shifts = torch.randint(-1, 2, (shape[1], 2), generator=g).double()
    data = quantize(x)

    def detour():
        return quantize(functional.shift(dequantize(data), shifts, "zeros", "nearest"))

    return {
        "uint8 clone": Candidate(lambda: data.clone()),
        "uint8 shift": Candidate(lambda: functional.shift(data, shifts, "zeros", "nearest", fill=ZERO_POINT)),
        "float32 shift": Candidate(lambda: functional.shift(x, shifts, "zeros", "nearest")),
        "dequantize-shift-quantize": Candidate(detour),
    }


def model_candidates(batch: int) -> dict[str, Candidate]:
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        from shiftzoo.quantization import fold_quantized_shifts, x86_inductor_quantizer
    except ImportError as error:
        print(f"model part skipped: {error}")
        return {}
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 64, 1), nn.ReLU(), shiftzoo.SparseShift2d(64, init_shift=2),
                          nn.Conv2d(64, 96, 1), nn.ReLU(), shiftzoo.GroupedShift2d(96), nn.Conv2d(96, 10, 1)).eval()
    x = torch.randn(batch, 3, 56, 56)
    converted = []
    for _ in range(2):
        prepared = prepare_pt2e(torch.export.export(model, (x,)).module(), x86_inductor_quantizer())
        prepared(x)
        converted.append(convert_pt2e(prepared))
    unfolded, folded = converted
    fold_quantized_shifts(folded)
    assert torch.equal(unfolded(x), folded(x))
    with torch.inference_mode():
        return {"float model": Candidate(lambda: model(x)),
                "PT2E, shifts dequantize-shift-quantize": Candidate(lambda: unfolded(x)),
                "PT2E, shifts on uint8 (folded)": Candidate(lambda: folded(x))}


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    info = machine_info(args.threads)
    print(f"\n## {info['cpu_model'] or info['processor']}, torch {info['torch']}, {args.threads} threads, "
          f"allocator: {info['malloc']}; medians of {args.rounds} interleaved rounds")
    rows = []
    print("\n| shape | layout | uint8 shift ×clone | float32 shift ×uint8 shift | detour ×uint8 shift |")
    print("|---|---|--:|--:|--:|")
    for shape in SHAPES[:1] if args.quick else SHAPES:
        for channels_last in (False, True):
            with torch.inference_mode():
                t = interleaved_timings(op_candidates(shape, channels_last), args.rounds, args.warmup)
            ms = {k: v.median_ms for k, v in t.items()}
            shift = ms["uint8 shift"]
            layout = "channels_last" if channels_last else "contiguous"
            print(f"| {'x'.join(map(str, shape))} | {layout} | {shift / ms['uint8 clone']:.2f} | "
                  f"{ms['float32 shift'] / shift:.2f} | {ms['dequantize-shift-quantize'] / shift:.2f} |")
            rows.append({"shape": list(shape), "layout": layout, "ms": ms})
    model = {}
    cands = model_candidates(2 if args.quick else 8)
    if cands:
        t = interleaved_timings(cands, args.rounds, args.warmup)
        model = {k: v.median_ms for k, v in t.items()}
        base = model["PT2E, shifts dequantize-shift-quantize"]
        print("\n| model (batch 8, 56x56, eager) | ms | ×unfolded |\n|---|--:|--:|")
        for name, value in model.items():
            print(f"| {name} | {value:.2f} | {value / base:.2f} |")
    return {"machine": info, "op": rows, "model_ms": model}


def main(argv: Sequence[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    add_run_options(ap, rounds=15, quick="one shape, 3 rounds")
    args = parse_run_options(ap, argv)
    run_suite(args, argv, lambda: run(args))


if __name__ == "__main__":
    main(sys.argv[1:])
