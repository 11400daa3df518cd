#!/usr/bin/env bash
# The CUDA backend on a GPU machine, in one run: build for sm_90, check the dispatcher, run the CUDA
# tests, time the op, and leave everything in OUTDIR.
#
#   tools/gpu_check.sh OUTDIR
#
# Expects PyTorch with CUDA, nvcc and the Python dependencies already installed (it installs nothing
# and needs no network). Steps, each with its own time cap so that the whole stays under about
# 7.5 minutes (GPU_CHECK_BUDGET seconds, default 440), none stopping the ones after it:
#
#   build      SHIFTZOO_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 python setup.py build_ext --inplace
#   kernels    every op (shift, shift_backward, shift_affine, shift_tabled, shift_tabled_backward) has
#              a CUDA kernel in the dispatcher; `python -m shiftzoo info`
#   test_cuda  python -m pytest tests/test_cuda.py and the CUDA autocast test (junit XML too)
#   bench      benchmarks/bench_shift.py --device cuda --json OUTDIR/bench.json (table: OUTDIR/bench.txt)
#   emulation  tests/test_gpu_emulation.py, if present, in the time left (CPU-only tests: run last, so
#              that they never eat the GPU steps' time)
#
# OUTDIR gets log.txt (machine, versions, CUDA_HOME, each step's start, end and exit code),
# <step>.log for each step, test_cuda.xml, bench.txt, bench.json and summary.json (per step: name,
# exit code, seconds, time cap, log file; 124 means the cap was hit, "skipped" that no time was
# left). The script's own exit code is 0 when every step exited 0.
#
# Environment: PYTHON (default: python, else python3), CUDA_HOME (respected if set; otherwise the
# toolkit of the nvcc on PATH, asked from nvcc itself, since that nvcc may be a wrapper script),
# MAX_JOBS (default 16), TORCH_CUDA_ARCH_LIST (default 9.0), GPU_CHECK_BUDGET (default 440).
set -uo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
mkdir -p "$1" || exit 2
OUT=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

START=$SECONDS
BUDGET=${GPU_CHECK_BUDGET:-440}
LOG=$OUT/log.txt
STEPS=$OUT/.steps.tsv
: > "$LOG"
: > "$STEPS"

PYTHON=${PYTHON:-$(command -v python || command -v python3)}
export MAX_JOBS=${MAX_JOBS:-16}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}  # this checkout's shiftzoo, built in place
export PYTHONUNBUFFERED=1

log() { echo "[$(date +%H:%M:%S) +$((SECONDS - START))s] $*" | tee -a "$LOG"; }

section() {  # section TITLE CMD...: a command's output into log.txt (never fatal, 60 s at most)
  local title=$1
  shift
  {
    echo
    echo "=== $title: $*"
    timeout -k 5 60 "$@" 2>&1
    echo "(exit $?)"
  } >> "$LOG"
}

# run_step NAME CAP RESERVE LOGFILE CMD...: runs CMD with its output in LOGFILE under a time cap of
# CAP seconds, shortened so that RESERVE seconds of the budget stay for the steps after it; records
# the exit code and the duration. A step with under 10 s left is skipped (recorded as such).
run_step() {
  local name=$1 cap=$2 reserve=$3 logfile=$4
  shift 4
  local left=$((BUDGET - (SECONDS - START) - reserve))
  local limit=$cap
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 10 ]; then
    log "step $name: skipped (${left}s left of the budget)"
    echo "skipped: no time left in the budget" > "$logfile"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" skipped 0 0 "$(basename "$logfile")" >> "$STEPS"
    return 0
  fi
  local cmd="$*"
  cmd=${cmd//$'\n'/ }
  log "step $name: start (cap ${limit}s): ${cmd:0:160}"
  local t0=$SECONDS rc
  timeout -k 5 "$limit" "$@" > "$logfile" 2>&1
  rc=$?
  local took=$((SECONDS - t0))
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    log "step $name: TIMED OUT after ${took}s (cap ${limit}s), exit $rc; log: $(basename "$logfile")"
  else
    log "step $name: exit $rc after ${took}s; log: $(basename "$logfile")"
  fi
  tail -n 5 "$logfile" | sed 's/^/    | /' >> "$LOG"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$took" "$limit" "$(basename "$logfile")" >> "$STEPS"
  return 0
}

# --- the machine ---------------------------------------------------------------------------------
log "gpu_check.sh in $ROOT, output in $OUT, budget ${BUDGET}s"
section "git" git -C "$ROOT" log -1 --format='%H %cd %s'
section "git status" git -C "$ROOT" status --short
section "nvidia-smi" nvidia-smi
# (the single-quoted $ are the inner bash's)
# shellcheck disable=SC2016
section "nvcc on PATH" bash -c 'command -v nvcc && head -c 300 "$(command -v nvcc)" | grep -a "^exec" || true'
section "nvcc --version" nvcc --version
section "CPU cores" nproc
section "python" "$PYTHON" --version
section "torch" "$PYTHON" -c '
import torch
print("torch", torch.__version__, "| CUDA", torch.version.cuda, "| cuDNN", torch.backends.cudnn.version())
print("cuda available:", torch.cuda.is_available(), "| devices:", torch.cuda.device_count())
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"  cuda:{i} {p.name}, sm_{p.major}{p.minor}, {p.total_memory / 2**30:.1f} GiB")
for name in ("triton", "ninja", "pytest", "numpy", "hypothesis"):
    try:
        module = __import__(name)
        print(name, getattr(module, "__version__", "?"))
    except Exception as e:
        print(name, "not importable:", type(e).__name__, e)
'

# --- CUDA_HOME: respected if set; else where the nvcc on PATH says its toolkit is -----------------
if [ -z "${CUDA_HOME:-}" ] && command -v nvcc > /dev/null; then
  top=$(nvcc --dryrun --version 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n 1)
  if [ -z "$top" ]; then  # some nvcc print their environment only for a compile
    top=$(nvcc --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n 1)
  fi
  if [ -z "$top" ]; then  # the folder above the real nvcc's bin/
    top=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  fi
  if [ -n "$top" ] && [ -f "$top/include/cuda_runtime.h" ]; then
    CUDA_HOME=$(cd "$top" && pwd -P)
    export CUDA_HOME
  fi
fi
log "CUDA_HOME=${CUDA_HOME:-<unset>}"
if [ -n "${CUDA_HOME:-}" ]; then
  section "\$CUDA_HOME/bin/nvcc --version" "$CUDA_HOME/bin/nvcc" --version
  export PATH=$CUDA_HOME/bin:$PATH
fi

# ninja: torch's build looks for the executable; the Python package's may be off PATH
ninja_bin=$("$PYTHON" -c 'import ninja, os; print(getattr(ninja, "BIN_DIR", ""))' 2>/dev/null || true)
if [ -n "$ninja_bin" ] && [ -x "$ninja_bin/ninja" ]; then
  export PATH=$PATH:$ninja_bin
fi
if command -v ninja > /dev/null; then
  log "ninja: $(command -v ninja) $(ninja --version 2>/dev/null)"
else
  log "ninja: not found; setup.py builds without it (one compile at a time)"
fi

# --- the steps -----------------------------------------------------------------------------------
run_step build 300 100 "$OUT/build.log" \
  env SHIFTZOO_CUDA=1 "$PYTHON" setup.py build_ext --inplace

run_step kernels 60 90 "$OUT/kernels.log" "$PYTHON" -c '
import subprocess
import sys
import torch
import shiftzoo
from shiftzoo import _extension

print("shiftzoo from", shiftzoo.__file__)
print("extension:", _extension._C.__file__ if _extension.available() else _extension.LOAD_ERROR)
ops = ["shift", "shift_backward", "shift_affine", "shift_tabled", "shift_tabled_backward"]
missing = [op for op in ops if not torch._C._dispatch_has_kernel_for_dispatch_key(f"shiftzoo::{op}", "CUDA")]
for op in ops:
    print(f"shiftzoo::{op}: CUDA kernel", "MISSING" if op in missing else "yes")
if torch.cuda.is_available() and not missing:  # one call, to see the first error plainly
    x = torch.randn(2, 3, 5, 6, device="cuda")
    s = torch.tensor([[0.5, -1.0], [2.0, 0.25], [-3.5, 1.5]], device="cuda")
    y = shiftzoo.functional.shift(x, s, "reflect", "linear")
    want = shiftzoo.functional.shift(x.cpu(), s.cpu(), "reflect", "linear")
    print("smoke: max |cuda - cpu| =", (y.cpu() - want).abs().max().item())
sys.stdout.flush()
subprocess.run([sys.executable, "-m", "shiftzoo", "info"], timeout=30, check=False)
sys.exit(1 if missing or not torch.cuda.is_available() else 0)
'

run_step test_cuda 200 75 "$OUT/test_cuda.log" \
  "$PYTHON" -m pytest -q tests/test_cuda.py "tests/test_autocast.py::test_cnn_under_cuda_float16_autocast" -rs \
  --tb=short --maxfail=200 --durations=15 -p no:cacheprovider --junitxml="$OUT/test_cuda.xml"

run_step bench 150 0 "$OUT/bench.txt" \
  "$PYTHON" benchmarks/bench_shift.py --device cuda --json "$OUT/bench.json"

if [ -f tests/test_gpu_emulation.py ]; then
  run_step emulation 120 0 "$OUT/test_gpu_emulation.log" \
    "$PYTHON" -m pytest -q tests/test_gpu_emulation.py -rs --tb=short --maxfail=50 -p no:cacheprovider
else
  log "step emulation: tests/test_gpu_emulation.py not present"
fi

# --- summary.json --------------------------------------------------------------------------------
total=$((SECONDS - START))
failed=0
{
  echo "{"
  echo "  \"root\": \"$ROOT\","
  echo "  \"cuda_home\": \"${CUDA_HOME:-}\","
  echo "  \"budget_s\": $BUDGET,"
  echo "  \"total_s\": $total,"
  echo "  \"steps\": ["
  sep=""
  while IFS=$'\t' read -r name rc took limit logfile; do
    if [ "$rc" = skipped ]; then
      rc_json='"skipped"'
      failed=1
    else
      rc_json=$rc
      [ "$rc" -ne 0 ] && failed=1
    fi
    # the pytest summary line ("12 passed, 3 skipped in 4.2s"), where the step ran pytest
    result=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|error|deselected)' "$OUT/$logfile" 2>/dev/null | tail -n 1 |
             sed -e 's/=//g' -e 's/^ *//' -e 's/ *$//' -e 's/"/'\''/g')
    printf '%s    {"name": "%s", "rc": %s, "duration_s": %s, "timeout_s": %s, "log": "%s", "result": "%s"}' \
      "$sep" "$name" "$rc_json" "$took" "$limit" "$logfile" "$result"
    sep=$',\n'
  done < "$STEPS"
  echo
  echo "  ],"
  if [ "$failed" -eq 0 ]; then ok=true; else ok=false; fi
  echo "  \"ok\": $ok"
  echo "}"
} > "$OUT/summary.json"
rm -f "$STEPS"
if [ "$failed" -eq 0 ]; then
  log "done in ${total}s: every step exited 0; see $OUT/summary.json"
else
  log "done in ${total}s: some steps failed or were skipped; see $OUT/summary.json"
fi
exit "$failed"
