// The CUDA kernels of every shiftzoo operator: the drivers of core/ops.h on the GPU backend,
// launched on the GPU.
#include <torch/library.h>

#include "backends/core/ops.h"
#include "backends/cuda/backend.h"
#include "backends/cuda/launch_cuda.cuh"

namespace shiftzoo::gpu {

TORCH_LIBRARY_IMPL(shiftzoo, CUDA, m) {
  using Ops = ShiftOps<GpuBackend<CudaGrid>>;
  m.impl("shift", &Ops::shift);
  m.impl("shift_affine", &Ops::shift_affine);
  m.impl("shift_backward", &Ops::shift_backward);
  m.impl("shift_tabled", &Ops::shift_tabled);
  m.impl("shift_tabled_backward", &Ops::shift_tabled_backward);
}

}  // namespace shiftzoo::gpu
