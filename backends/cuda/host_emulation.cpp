// Test-only: the GPU backend with its kernels run on the host over the same grid (launch_host.h),
// registered for CPU tensors as the library shiftzoo_gpu_emulation, with the schemas of shiftzoo.
// Compiled into every build, CUDA or not, so that the test suite checks the GPU kernels' bodies
// on any machine (tests/test_gpu_emulation.py). Not part of the public API.
#include "backends/core/registration.h"
#include "backends/cuda/backend.h"
#include "backends/cuda/launch_host.h"
#include "backends/library/schemas.h"

namespace shiftzoo::gpu {
namespace {

// Sets the size from which the kernels index with int64 (tests run the int64 kernels on small
// tensors with it); returns the previous one.
int64_t set_index32_limit(int64_t limit) {
  TORCH_CHECK_VALUE(limit >= 1 && limit <= std::numeric_limits<int32_t>::max(),
                    "set_index32_limit: expected 1 .. 2**31 - 1, got ", limit);
  const int64_t previous = index32_limit();
  index32_limit() = limit;
  return previous;
}

}  // namespace

TORCH_LIBRARY(shiftzoo_gpu_emulation, m) {
  define_schemas(m);
  m.def("set_index32_limit(int limit) -> int", &set_index32_limit);
}

TORCH_LIBRARY_IMPL(shiftzoo_gpu_emulation, CPU, m) { register_kernels<GpuBackend<HostGrid>>(m); }

}  // namespace shiftzoo::gpu
