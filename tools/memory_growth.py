"""Memory over many calls: runs forward+backward of the shift ops N times (10,000 by default) and
reports the growth of the process's resident memory (RSS) after a warm-up; exits non-zero when it
grows by more than --limit-mib. Each call mixes the op's paths: a compiled SSL shift, a cubic
ActiveShift, a runtime plugin, a strided shift, channels_last, and the inference form with new
integer shifts every call (so its table cache must stay bounded).

    python tools/memory_growth.py                 # 10,000 calls
    python tools/memory_growth.py --calls 300     # a smoke run (the test suite does this)
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import torch

import shiftzoo
from shiftzoo.functional import shift
from shiftzoo.inference import InferenceShift


def rss_mib() -> float:
    """Resident memory of this process (Linux: /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def one_call(step: int, g: torch.Generator) -> None:
    x = torch.randn(4, 32, 15, 15, generator=g, requires_grad=True)
    s = (torch.rand(32, 2, generator=g) * 6 - 3).requires_grad_()
    outs = [shift(x, s, "reflect", "nearest", "linear"), shift(x, s, "zeros", "cubic"),
            shift(x, s, "memory_zeros", "linear"), shift(x, s, "border", "linear", stride=2, crop=1),
            shift(x.detach().to(memory_format=torch.channels_last).requires_grad_(), s, "zeros", "nearest", "linear")]
    torch.autograd.grad(sum(o.sum() for o in outs), [x, s])
    frozen = torch.randint(-3, 4, (32, 2), generator=g).double()  # new shifts: a new cache entry each call
    with torch.no_grad():
        scale = torch.full((32,), 1.0 + step % 7)
        InferenceShift(frozen, "zeros", pre=((scale, -scale), 0.0, 6.0))(x.detach())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--warmup", type=int, default=None, help="calls before the baseline (default: 10%%, >= 100)")
    ap.add_argument("--limit-mib", type=float, default=32.0, help="largest growth accepted (MiB)")
    args = ap.parse_args(argv)
    shiftzoo.register_padding("memory_zeros", lambda i, n: torch.where((i >= 0) & (i < n), i, torch.full_like(i, -1)),
                              period=0)
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    warmup = args.warmup if args.warmup is not None else max(100, args.calls // 10)
    for step in range(warmup):
        one_call(step, g)
    gc.collect()
    base = rss_mib()
    start = time.perf_counter()
    for step in range(args.calls):
        one_call(step, g)
    gc.collect()
    end = rss_mib()
    growth = end - base
    print(f"{args.calls} calls after {warmup} warm-up calls in {time.perf_counter() - start:.0f} s: "
          f"RSS {base:.1f} -> {end:.1f} MiB, RSS growth {growth:+.1f} MiB (limit {args.limit_mib:g} MiB)")
    return 0 if growth <= args.limit_mib else 1


if __name__ == "__main__":
    sys.exit(main())
