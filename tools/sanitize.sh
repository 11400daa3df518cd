#!/usr/bin/env bash
# Builds shiftzoo._C (the CPU extension) with AddressSanitizer and UndefinedBehaviorSanitizer in a
# scratch copy of the repository and runs the edge-case tests under it. Exits non-zero on any
# sanitizer report or test failure; the last line is a one-line summary.
#
#   tools/sanitize.sh [extra pytest arguments]
#
# Environment: SHIFTZOO_SANITIZE_DIR  scratch folder (default ${TMPDIR:-/tmp}/shiftzoo-asan; its build/
#                                     is kept, so a second run recompiles only what changed)
#              PYTHON                 the interpreter with torch, ninja and pytest (default python3)
#              MAX_JOBS               parallel compile jobs (default 2)
# The checkout's own build (build/, shiftzoo/_C*.so) is never touched: the copy holds the working
# tree as it is (tracked and untracked files that git does not ignore), uncommitted edits included.
set -euo pipefail

started=$SECONDS
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$here/.." rev-parse --show-toplevel)
scratch=${SHIFTZOO_SANITIZE_DIR:-${TMPDIR:-/tmp}/shiftzoo-asan}
python=${PYTHON:-python3}
export MAX_JOBS=${MAX_JOBS:-2}
# Appended after setup.py's own flags, so that -O1 wins over its -O3.
flags=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g -O1)
tests=(tests/test_shift_values.py tests/test_shift_gradients.py tests/test_strided.py tests/test_errors.py
       tests/test_plugins.py tests/test_inference.py tests/test_fuzz.py tests/test_integer_data.py)

say() { echo "sanitize.sh: $*" >&2; }
fail() { say "FAILED: $*"; echo "sanitize: FAILED ($*) after $((SECONDS - started)) s"; exit 1; }

# 1. The scratch copy. Everything in it but build/ is replaced, so files deleted here go there too.
marker=.shiftzoo-sanitize
if [ -e "$scratch" ] && [ ! -e "$scratch/$marker" ]; then
  fail "$scratch exists and was not made by this script: not touching it (set SHIFTZOO_SANITIZE_DIR)"
fi
mkdir -p "$scratch"
touch "$scratch/$marker"
# The generated plugin list is kept too: setup.py rewrites it only when it changes, and a fresh one would
# recompile everything that includes it.
kept=$scratch/build/generated.kept
if [ -d "$scratch/backends/generated" ]; then rm -rf "$kept"; mkdir -p "$scratch/build"; mv "$scratch/backends/generated" "$kept"; fi
find "$scratch" -mindepth 1 -maxdepth 1 ! -name build ! -name "$marker" -exec rm -rf {} +
(cd "$root" && git ls-files -z --cached --others --exclude-standard \
   | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
   | tar --null --no-recursion -T - -cf -) | tar -xf - -C "$scratch"   # tar keeps mtimes: ninja reuses objects
if [ -d "$kept" ] && [ ! -e "$scratch/backends/generated" ]; then mv "$kept" "$scratch/backends/generated"; fi
say "copied $root to $scratch"

# 2. The instrumented build: setup.py as it is, with CppExtension wrapped so that every compile and the
# link get the sanitizer flags last. CUDA stays off (this checks the CPU extension).
cd "$scratch"
say "building with ${flags[*]} (MAX_JOBS=$MAX_JOBS)"
SHIFTZOO_CUDA=0 SHIFTZOO_SANITIZE_FLAGS="${flags[*]}" "$python" - build_ext --inplace <<'EOF' || fail "the instrumented build"
import os, runpy, sys
import torch.utils.cpp_extension as cpp_extension

flags = os.environ["SHIFTZOO_SANITIZE_FLAGS"].split()
plain = cpp_extension.CppExtension

def instrumented(*args, **kwargs):
    compile_args = kwargs.get("extra_compile_args") or {}
    if isinstance(compile_args, dict):
        compile_args = {**compile_args, "cxx": [*compile_args.get("cxx", []), *flags]}
    else:
        compile_args = [*compile_args, *flags]
    kwargs["extra_compile_args"] = compile_args
    kwargs["extra_link_args"] = [*(kwargs.get("extra_link_args") or []), *flags]
    return plain(*args, **kwargs)

cpp_extension.CppExtension = instrumented
sys.argv = ["setup.py", *sys.argv[1:]]
runpy.run_path("setup.py", run_name="__main__")
EOF

# The build really was instrumented: the flags are in the ninja file and the module needs the runtimes.
ninja_file=$(ls -t build/temp-*/build.ninja 2>/dev/null | head -n 1)
[ -n "$ninja_file" ] && grep -q -- "-fsanitize=address,undefined" "$ninja_file" \
  || fail "no build.ninja with -fsanitize=address,undefined under $scratch/build"
module=$(ls shiftzoo/_C*.so 2>/dev/null | head -n 1)
[ -n "$module" ] || fail "no shiftzoo/_C*.so was built"
libasan=$(ldd "$module" | awk '/libasan\.so/ {print $3}')
libubsan=$(ldd "$module" | awk '/libubsan\.so/ {print $3}')
[ -f "$libasan" ] && [ -f "$libubsan" ] || fail "$module does not link libasan and libubsan"
symbols=$(nm -D "$module")   # (not nm | grep -q: grep's early exit fails the pipe under pipefail)
grep -q __asan_report_load <<<"$symbols" && grep -q __ubsan_handle <<<"$symbols" \
  || fail "$module has no ASan or no UBSan checks in it"

# 3. The tests. Neither Python nor torch is instrumented, so the ASan runtime is preloaded (it must
# come first). ASan's reports go to files, one per process, so that one in a test's subprocess counts
# too; UBSan (GCC's libubsan ignores log_path) writes to stderr, which pytest leaves alone
# (--capture=sys: an fd-level capture would swallow the report when the process aborts).
present=()
for t in "${tests[@]}"; do [ -e "$t" ] && present+=("$t"); done
logs=$scratch/sanitizer-logs
rm -rf "$logs" && mkdir -p "$logs"
export LD_PRELOAD="$libasan:$libubsan${LD_PRELOAD:+:$LD_PRELOAD}"
# Leaks are not checked: Python and torch keep their allocations at exit by design, and a suppression
# for them would also hide every leak of shiftzoo's (its stacks pass through Python's frames).
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:log_path=$logs/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
for kind in asan ubsan lsan; do   # suppression files, where there are any
  [ -f "$scratch/tools/$kind.supp" ] || continue
  var=${kind^^}_OPTIONS; export "$var=${!var}:suppressions=$scratch/tools/$kind.supp"
done
export PYTHONMALLOC=malloc                # Python's own allocations go through ASan too
export PYTHONPATH="$scratch${PYTHONPATH:+:$PYTHONPATH}"
export SHIFTZOO_ALLOW_FALLBACK=0          # conftest.py refuses to run without the extension

# The instrumented module is the one that loads (not an installed shiftzoo).
"$python" -c "
import sys, shiftzoo, shiftzoo._C as C
assert shiftzoo.has_extension(), 'shiftzoo._C did not load'
assert C.__file__.startswith(sys.argv[1] + '/'), C.__file__
print('sanitize.sh: testing', C.__file__, file=sys.stderr)" "$scratch" || fail "the instrumented shiftzoo._C does not load"

say "running ${present[*]} under ASan+UBSan"
set +e
"$python" -m pytest -q -p no:cacheprovider --capture=sys "${present[@]}" "$@" 2>&1 | tee "$scratch/pytest.log"
status=${PIPESTATUS[0]}
set -e

reports=$(find "$logs" -type f | wc -l)
printed=$(grep -c -E ': runtime error: |==[0-9]+==ERROR: |^SUMMARY: [A-Za-z]*Sanitizer' "$scratch/pytest.log" || true)
summary=$(grep -E '(passed|failed|errors?|skipped|no tests ran).* in [0-9.]+s' "$scratch/pytest.log" \
          | tail -n 1 | sed -E 's/^=+ //; s/ =+$//' || true)
elapsed=$((SECONDS - started))
if [ "$reports" -gt 0 ]; then
  find "$logs" -type f | sort | while IFS= read -r r; do say "report $r:"; cat "$r" >&2; done
  fail "$reports sanitizer report(s) in $logs; pytest: ${summary:-no summary, exit $status}"
fi
[ "$printed" -eq 0 ] || fail "$printed sanitizer report line(s) in $scratch/pytest.log; pytest: ${summary:-exit $status}"
[ "$status" -eq 0 ] || fail "pytest exit $status: ${summary:-no summary (killed by a sanitizer?)}"
echo "sanitize: OK, zero ASan/UBSan reports; ${summary} (${#present[@]} test files, ${elapsed} s in all)"
