// A kernel launch's shape, as the GPU backend (backend.h) asks a launcher (launch_cuda.cuh,
// launch_host.h) for it.
#pragma once
#include <cstdint>

namespace shiftzoo::gpu {

struct Grid {
  int64_t blocks = 0;
  int threads = 0;
  int shared_per_thread = 0;  // doubles of shared memory per thread
};

// Enough blocks of `threads` threads for `work` items, one per thread.
inline Grid grid_for(int64_t work, int threads) { return {(work + threads - 1) / threads, threads, 0}; }

}  // namespace shiftzoo::gpu
