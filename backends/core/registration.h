// A backend's kernels for every shiftzoo operator, registered into a TORCH_LIBRARY_IMPL block: the
// drivers of core/ops.h on that backend (backends/cpu/register.cpp, backends/cuda/register.cu and
// the test-only host emulation of the CUDA kernels, backends/cuda/host_emulation.cpp).
#pragma once
#include <torch/library.h>

#include "backends/core/ops.h"

namespace shiftzoo {

template <class Backend>
void register_kernels(torch::Library& m) {
  using Ops = ShiftOps<Backend>;
  m.impl("shift", &Ops::shift);
  m.impl("shift_affine", &Ops::shift_affine);
  m.impl("shift_backward", &Ops::shift_backward);
  m.impl("shift_tabled", &Ops::shift_tabled);
  m.impl("shift_tabled_backward", &Ops::shift_tabled_backward);
}

}  // namespace shiftzoo
