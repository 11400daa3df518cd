// The CPU kernels of every shiftzoo operator: the drivers of core/ops.h on the CPU backend.
#include <torch/library.h>

#include "backends/core/ops.h"
#include "backends/cpu/backend.h"

namespace shiftzoo::cpu {

TORCH_LIBRARY_IMPL(shiftzoo, CPU, m) {
  using Ops = ShiftOps<CpuBackend>;
  m.impl("shift", &Ops::shift);
  m.impl("shift_affine", &Ops::shift_affine);
  m.impl("shift_backward", &Ops::shift_backward);
  m.impl("shift_tabled", &Ops::shift_tabled);
  m.impl("shift_tabled_backward", &Ops::shift_tabled_backward);
}

}  // namespace shiftzoo::cpu
