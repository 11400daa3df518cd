"""What the benchmarks share: interleaved timing, the machine's description, and the two allocator
conditions every figure is reported under; on CUDA, interleaved timing with CUDA events.

Every op allocates its output. glibc serves large blocks with fresh ``mmap`` pages and gives
them back when they are freed, so each call pays the kernel's page faults as it first writes its
output; at these tensor sizes that can dominate a copy and flatter the ratios to ``clone``.
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000`` keeps freed memory in the process: no
page fault after warm-up. The benchmarks report both conditions, re-running themselves in a child
process for the one their own environment is not in.
"""
from __future__ import annotations

import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

NO_PAGE_FAULTS = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
CONDITIONS = ("default", "no-page-faults")


def current_condition() -> str:
    """The allocator condition this process runs under."""
    return "no-page-faults" if all(os.environ.get(k) == v for k, v in NO_PAGE_FAULTS.items()) else "default"


def condition_env(condition: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in NO_PAGE_FAULTS}
    return {**env, **NO_PAGE_FAULTS} if condition == "no-page-faults" else env


def run_under_conditions(argv: Sequence[str], conditions: Sequence[str], run: Callable[[], dict]) -> list[dict]:
    """Runs the benchmark once per allocator condition: ``run()`` in this process for the condition
    it is in, the script itself (``argv`` plus ``--malloc C --json FILE``) in a child process for
    the other. Returns the JSON parts, each with its ``"malloc"`` condition."""
    results = []
    for condition in conditions:
        if condition == current_condition():
            part = run()
        else:
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "part.json")
                subprocess.run([sys.executable, sys.argv[0], *argv, "--malloc", condition, "--json", out],
                               env=condition_env(condition), check=True)
                with open(out) as f:
                    part = json.load(f)
        results.append({"malloc": condition, **part} if "malloc" not in part else part)
    return results


def run_suite(args, argv: Sequence[str], run: Callable[[], dict]) -> list[dict]:
    """``run()`` under each allocator condition of ``args`` (run_under_conditions), the results
    written to ``args.json`` when asked: one condition's part as it is, several as ``{"runs": [...]}``
    (so a child process's file is the part its parent reads)."""
    parts = run_under_conditions(strip_options(argv, ("--malloc", "--json")), args.conditions, run)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(parts[0] if len(parts) == 1 else {"runs": parts}, f, indent=2)
        print(f"wrote {args.json}")
    return parts


def add_run_options(ap, rounds: int, quick: str) -> None:
    """The options every suite takes: rounds, warm-up, quick, allocator condition, JSON, seed."""
    ap.add_argument("--rounds", type=int, default=None, help=f"timed rounds (default {rounds}; 3 quick)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up rounds (default 3; 1 quick)")
    ap.add_argument("--quick", action="store_true", help=quick)
    ap.add_argument("--malloc", choices=(*CONDITIONS, "both"), default="both",
                    help="allocator condition (see benchmarks/timing.py; default both, one after the other)")
    ap.add_argument("--json", metavar="PATH", help="write all results as JSON")
    ap.add_argument("--seed", type=int, default=0)
    ap.set_defaults(default_rounds=rounds)


def parse_run_options(ap, argv: Sequence[str]):
    """ap's arguments, with rounds and warm-up resolved (--quick: 3 and 1) and the conditions to run."""
    args = ap.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else args.default_rounds)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    args.conditions = CONDITIONS if args.malloc == "both" else (args.malloc,)
    return args


def strip_options(argv: Sequence[str], options: Sequence[str]) -> list[str]:
    """``argv`` without the given options and their values (``--opt v`` or ``--opt=v``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in options:
            skip = True
        elif not any(arg.startswith(o + "=") for o in options):
            out.append(arg)
    return out


def machine_info(threads: int) -> dict:
    """Processor (``platform`` and ``lscpu``'s model name), versions, thread count and allocator condition."""
    model = None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                     None)
    except (OSError, subprocess.SubprocessError):
        pass
    return {"processor": platform.processor(), "cpu_model": model, "machine": platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__, "threads": threads,
            "malloc": current_condition()}


@dataclass
class Candidate:
    run: Callable[[], object]
    reset: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Timing:
    median_ms: float
    q1_ms: float  # quartiles: the spread over rounds, to judge the noise
    q3_ms: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Timing:
        q1, _, q3 = statistics.quantiles(samples, n=4) if len(samples) > 1 else list(samples) * 3
        return cls(statistics.median(samples), q1, q3)


def interleaved_rounds(names: list[str], rounds: int, warmup: int) -> Iterator[tuple[bool, str]]:
    """(timed, name) for every candidate of every round, each round in a random order (seeded: the
    same orders every run), so that machine noise and allocator drift spread over all candidates
    alike and none always runs right after the same one; the first ``warmup`` rounds are not timed.
    The garbage collector stays off meanwhile."""
    rng = random.Random(0)
    gc.collect()
    gc.disable()
    try:
        for r in range(warmup + rounds):
            order = names[:]
            rng.shuffle(order)
            for name in order:
                yield r >= warmup, name
    finally:
        gc.enable()


def interleaved_timings(cands: dict[str, Candidate], rounds: int, warmup: int) -> dict[str, Timing]:
    """Per-candidate ms over interleaved rounds (interleaved_rounds): median and quartiles."""
    times: dict[str, list[float]] = {k: [] for k in cands}
    for timed, name in interleaved_rounds(list(cands), rounds, warmup):
        cand = cands[name]
        cand.reset()
        t0 = time.perf_counter()
        out = cand.run()
        t1 = time.perf_counter()
        del out
        if timed:
            times[name].append((t1 - t0) * 1e3)
    return {k: Timing.of(v) for k, v in times.items()}


def describe_error(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"


# ------------------------------------------------------------------------------------------------
# CUDA: CUDA events on the current stream
# ------------------------------------------------------------------------------------------------

def cuda_sleep_cycles_per_ms() -> float:
    """How many ``torch.cuda._sleep`` cycles the current GPU spins per millisecond (measured)."""
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    cycles = 10_000_000
    torch.cuda._sleep(cycles // 10)  # wakes the clocks up
    start.record()
    torch.cuda._sleep(cycles)
    end.record()
    end.synchronize()
    return cycles / max(start.elapsed_time(end), 1e-3)


@dataclass(frozen=True)
class CudaTiming(Timing):
    host_bound: bool = False  # the host took longer to queue the iterations than the GPU to run them


def cuda_event_timings(cands: dict[str, Candidate], rounds: int, warmup: int, iters: int,
                       min_sleep_ms: float = 0.5) -> dict[str, CudaTiming]:
    """Per-candidate milliseconds per iteration on the GPU, measured with CUDA events on the current
    stream: each round runs every candidate ``iters`` times between two events, the candidates in a
    fresh (seeded) random order; the first ``warmup`` rounds are discarded; median and quartiles
    over the remaining rounds.

    Each measurement starts behind a GPU spin (``torch.cuda._sleep``) at least as long as the host
    took to queue the previous measurement of that candidate (1.5x that, and ``min_sleep_ms``), so
    that all ``iters`` iterations are queued before the first one starts: the events then time the
    GPU's work, not the host's launch rate (the autograd engine's, the Python's). ``host_bound`` says
    whether, in a timed round, queueing still took longer than the spin before it."""
    names = list(cands)
    times: dict[str, list[float]] = {k: [] for k in names}
    late: dict[str, int] = {k: 0 for k in names}
    host_ms: dict[str, float] = {k: 5.0 for k in names}  # generous until measured
    cycles_per_ms = cuda_sleep_cycles_per_ms()
    for timed, name in interleaved_rounds(names, rounds, warmup):
        cand = cands[name]
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        sleep_ms = max(min_sleep_ms, 1.5 * host_ms[name])
        torch.cuda.synchronize()
        torch.cuda._sleep(int(sleep_ms * cycles_per_ms))
        t0 = time.perf_counter()
        start.record()
        for _ in range(iters):
            cand.reset()
            out = cand.run()
            del out
        end.record()
        queued_ms = (time.perf_counter() - t0) * 1e3
        end.synchronize()
        host_ms[name] = queued_ms
        if timed:
            times[name].append(start.elapsed_time(end) / iters)
            late[name] += queued_ms > sleep_ms
    result: dict[str, CudaTiming] = {}
    for name in names:
        base = Timing.of(times[name])
        result[name] = CudaTiming(base.median_ms, base.q1_ms, base.q3_ms, host_bound=late[name] > rounds // 2)
    return result


def cuda_info() -> dict:
    """The GPU, the CUDA and cuDNN versions, and the settings that change the convolution's speed."""
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return {"gpu": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}", "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32, "python": platform.python_version()}
