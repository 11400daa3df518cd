// The GPU kernels on the GPU: one __global__ wrapper runs any functor of kernels.h, its phases
// separated by __syncthreads(), on the current stream of the tensor's device, with no host
// synchronisation (launch errors are checked with cudaGetLastError).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

#include "backends/cuda/grid.h"

namespace shiftzoo::gpu {

template <class Kernel>
__global__ void run_kernel(Kernel kernel, int64_t first_block) {
  extern __shared__ double shared[];
  const int64_t block = first_block + blockIdx.x;
  for (int phase = 0; phase < Kernel::phases; ++phase) {
    if (phase > 0) __syncthreads();
    kernel(phase, block, static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x), shared);
  }
}

struct CudaGrid {
  template <class Kernel>
  static void launch(const at::Tensor& on, const Grid& grid, const Kernel& kernel) {
    if (grid.blocks == 0) return;
    const c10::cuda::CUDAGuard guard(on.device());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(on.device().index()).stream();
    const size_t shared = sizeof(double) * grid.threads * grid.shared_per_thread;
    constexpr int64_t kMaxBlocks = 2147483647;  // gridDim.x
    for (int64_t first = 0; first < grid.blocks; first += kMaxBlocks) {
      const unsigned blocks = static_cast<unsigned>(std::min(kMaxBlocks, grid.blocks - first));
      run_kernel<<<blocks, grid.threads, shared, stream>>>(kernel, first);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  }
};

}  // namespace shiftzoo::gpu
