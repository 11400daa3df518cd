// The CPU kernels compiled for the baseline instruction set the build targets (x86-64: SSE2).
#include "backends/cpu/kernels/dependencies.h"
#include "backends/cpu/kernels/table.h"

namespace shiftzoo::cpu {

const KernelSet& baseline_kernels() {
  static const KernelSet set = make_kernel_set();
  return set;
}

}  // namespace shiftzoo::cpu
