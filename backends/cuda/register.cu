// The CUDA kernels of every shiftzoo operator: the drivers of core/ops.h on the GPU backend,
// launched on the GPU.
#include "backends/core/registration.h"
#include "backends/cuda/backend.h"
#include "backends/cuda/launch_cuda.cuh"

namespace shiftzoo::gpu {

TORCH_LIBRARY_IMPL(shiftzoo, CUDA, m) { register_kernels<GpuBackend<CudaGrid>>(m); }

}  // namespace shiftzoo::gpu
