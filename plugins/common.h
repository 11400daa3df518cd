// Shared by every plugin policy and every backend. Plain C++ with no ATen types, so the
// same policies compile for the CPU kernels and (with nvcc) for the CUDA kernels.
#pragma once
#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define SHIFTZOO_HD __host__ __device__ __forceinline__
#else
#define SHIFTZOO_HD inline
#endif

namespace shiftzoo {

// A padding maps a tap index to this when the tap reads "zero".
constexpr int64_t kZeroTap = -1;

// Most taps any interpolation may have (the kernels' scratch arrays are this long).
constexpr int kMaxSupport = 8;

// a mod m in [0, m) for m > 0, for any sign of a.
SHIFTZOO_HD int64_t positive_mod(int64_t a, int64_t m) {
  const int64_t r = a % m;
  return r < 0 ? r + m : r;
}

// A list of policy types (the generated builtin_plugins.h lists the compiled plugins with it).
template <class... Policies>
struct PluginList {};

}  // namespace shiftzoo
