#!/usr/bin/env bash
# CI, the CUDA backend: compiles and links it on a machine without a GPU. In its own environment
# (torch==2.14.1, the CUDA 13.0 build, which matches the machine's nvcc 13.0) and a scratch copy of
# the tracked files (the checkout's CPU build is left alone), it builds for sm_90 only, imports the
# package, and checks that every op has a kernel for the CUDA dispatch key. Running the kernels
# needs a GPU: tools/gpu_check.sh; on the CPU, tests/test_gpu_emulation.py runs their bodies.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ENV=${SHIFTZOO_CUDA_ENV:-$ROOT/.venv-cuda}
SCRATCH=$ROOT/build/cuda-ci
command -v nvcc >/dev/null || { echo "cuda_build: nvcc is not on PATH" >&2; exit 1; }
start=$(date +%s)
[ -x "$ENV/bin/python" ] || python3 -m venv "$ENV"
"$ENV/bin/python" -m pip install -q --upgrade setuptools wheel ninja torch==2.14.1 einops pyyaml click tqdm
mkdir -p "$SCRATCH"
git ls-files -z | tar --null -cf - -T - | tar -xf - -C "$SCRATCH"
cd "$SCRATCH"
echo "cuda_build: environment ready after $(( $(date +%s) - start )) s; compiling for sm_90"
SHIFTZOO_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=${MAX_JOBS:-2} "$ENV/bin/python" setup.py --quiet build_ext --inplace
"$ENV/bin/python" - <<'PY'
import torch
import shiftzoo  # noqa: F401  (loads shiftzoo._C and its registrations)

ops = ["shift", "shift_backward", "shift_affine", "shift_tabled", "shift_tabled_backward"]
missing = [op for op in ops if not torch._C._dispatch_has_kernel_for_dispatch_key(f"shiftzoo::{op}", "CUDA")]
assert torch.version.cuda, f"expected a CUDA build of torch, got {torch.__version__}"
assert not missing, f"no CUDA kernel registered for: {missing}"
print(f"cuda_build: torch {torch.__version__} (CUDA {torch.version.cuda}); CUDA kernels for {', '.join(ops)}")
PY
echo "cuda_build: done in $(( $(date +%s) - start )) s"
