// The CPU kernels of every shiftzoo operator: the drivers of core/ops.h on the CPU backend.
#include "backends/core/registration.h"
#include "backends/cpu/backend.h"

namespace shiftzoo::cpu {

TORCH_LIBRARY_IMPL(shiftzoo, CPU, m) { register_kernels<CpuBackend>(m); }

}  // namespace shiftzoo::cpu
