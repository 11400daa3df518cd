"""Where a network's time goes: the operators of one bench_models.py variant, by self CPU time,
next to its depthwise original's, in one process. The profile behind the README's account of what
bounds each network figure.

    python benchmarks/profile_model.py mobilenet_v2 sparse+inference --format channels_last
    python benchmarks/profile_model.py mobilenet_v2 sparse --mode train --rows 8

Variants are bench_models.py's (``sparse``, ``grouped``, ``shift``, each optionally ``+inference``
or ``+inference+permuted``). Times are per forward (inference) or per train step, averaged over
``--steps`` profiled steps after a warm-up; run it under ``MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_=100000000000`` to leave page faults out, as the benchmarks' second condition.
The two networks are profiled one after the other, not interleaved: on a shared machine an
operator both run (BatchNorm, ReLU6) can read 5-10 % apart from drift alone, so compare the
operators only one of them runs, and take the ratios from bench_models.py.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from torch.profiler import ProfilerActivity, profile

import shiftzoo
from bench_models import FORMATS, MODELS, inference_candidates, ours_variants, torchvision_variants, \
    train_candidates


def operator_times(run, steps: int) -> dict[str, float]:
    """Self CPU milliseconds per step of every operator run() calls."""
    for _ in range(3):
        run()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            run()
    return {e.key: e.self_cpu_time_total / 1e3 / steps for e in prof.key_averages()}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", choices=MODELS)
    ap.add_argument("variant")
    ap.add_argument("--format", choices=tuple(FORMATS), default="contiguous")
    ap.add_argument("--mode", choices=("inference", "train"), default="inference")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rows", type=int, default=12, help="operators shown (by the variant's time)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    makers = torchvision_variants(args.model, 10) if args.model in ("mobilenet_v2", "mnasnet1_0") \
        else ours_variants(args.model, 10)
    if makers is None:
        raise SystemExit(f"{args.model} needs torchvision (pip install torch==2.14.1 torchvision==0.29.1)")
    base_variant = args.variant.split("+")[0]
    if base_variant not in makers or base_variant == "depthwise" or (args.mode == "train" and "+" in args.variant):
        raise SystemExit(f"unknown variant {args.variant!r} for {args.model} in {args.mode}")
    fmt = FORMATS[args.format]
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size).contiguous(memory_format=fmt)
    variants = {v: makers[v]().to(memory_format=fmt) for v in ("depthwise", base_variant)}
    if args.mode == "inference":
        candidates = inference_candidates(variants, x, {})
    else:
        candidates = train_candidates(variants, x, torch.randint(0, 10, (args.batch,)))
    ours = operator_times(candidates[args.variant].run, args.steps)
    theirs = operator_times(candidates["depthwise"].run, args.steps)
    total_ours, total_theirs = sum(ours.values()), sum(theirs.values())
    print(f"{args.model} {args.mode} {args.format}, batch {args.batch}, {args.size}x{args.size}, {args.threads} threads "
          f"(torch {torch.__version__}, shiftzoo {shiftzoo.__version__}): self CPU ms per step")
    print(f"| operator | {args.variant} | depthwise |\n|---|--:|--:|")
    for key in sorted(ours, key=ours.get, reverse=True)[:args.rows]:
        print(f"| {key} | {ours[key]:.2f} | {theirs.get(key, 0.0):.2f} |")
    for key in sorted(set(theirs) - set(ours), key=theirs.get, reverse=True)[:3]:
        print(f"| {key} | — | {theirs[key]:.2f} |")
    print(f"| **total** | {total_ours:.2f} | {total_theirs:.2f} |")


if __name__ == "__main__":
    main()
