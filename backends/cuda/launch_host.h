// The GPU kernels run on the host, over the same grid as on the GPU: blocks in parallel, each
// block's phases one after another, and within a phase its threads in order. Used by the test-only
// library shiftzoo_gpu_emulation (host_emulation.cpp), so that the CPU build runs, and the test
// suite checks, the very kernel bodies of backends/cuda/kernels.h.
#pragma once
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <vector>

#include "backends/cuda/grid.h"

namespace shiftzoo::gpu {

struct HostGrid {
  template <class Kernel>
  static void launch(const at::Tensor&, const Grid& grid, const Kernel& kernel) {
    at::parallel_for(0, grid.blocks, 1, [&](int64_t begin, int64_t end) {
      std::vector<double> shared(grid.threads * grid.shared_per_thread);
      for (int64_t block = begin; block < end; ++block)
        for (int phase = 0; phase < Kernel::phases; ++phase)
          for (int thread = 0; thread < grid.threads; ++thread)
            kernel(phase, block, thread, grid.threads, shared.data());
    });
  }
};

}  // namespace shiftzoo::gpu
