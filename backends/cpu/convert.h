// Rows and planes converted between element types (half types are computed in float), written
// so that they vectorise.
#pragma once
#include <c10/util/BFloat16.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "backends/core/geometry.h"
#include "backends/cpu/scratch.h"

namespace shiftzoo::cpu {

// The geometry of one plane of g copied densely (rows contiguous and stacked): what
// plane_to_dense writes.
inline Geometry dense_plane(const Geometry& g) {
  Geometry d = g;
  d.stride = {g.size[1] * g.size[2], g.size[2], 1};
  return d;
}

// dst[x] = src[x * stride] converted to U, x < n. bfloat16 to float is the bit shift it is,
// written so that it vectorises (c10's conversion, element by element, does not).
template <typename U, typename T>
void convert_row(const T* src, int64_t stride, int64_t n, U* dst) {
  if constexpr (std::is_same_v<T, c10::BFloat16> && std::is_same_v<U, float>) {
    if (stride == 1) {
      const uint16_t* bits = reinterpret_cast<const uint16_t*>(src);
      for (int64_t x = 0; x < n; ++x) {
        const uint32_t wide = static_cast<uint32_t>(bits[x]) << 16;
        std::memcpy(dst + x, &wide, sizeof(wide));
      }
      return;
    }
  }
  for (int64_t x = 0; x < n; ++x) dst[x] = static_cast<U>(src[x * stride]);
}

// Plane `src` of geometry g converted to U, densely into dst (and back with dense_to_plane).
template <typename U, typename T>
void plane_to_dense(const T* src, const Geometry& g, U* dst) {
  for (int64_t z = 0; z < g.size[0]; ++z)
    for (int64_t y = 0; y < g.size[1]; ++y)
      convert_row(src + z * g.stride[0] + y * g.stride[1], g.stride[2], g.size[2],
                  dst + (z * g.size[1] + y) * g.size[2]);
}
// Plane `src` of geometry g in float, densely in `buffer` (whose previous contents it replaces).
template <typename T>
float* plane_in_float(const T* src, const Geometry& g, ScratchBuffer& buffer) {
  float* dense = buffer.get<float>(g.plane_numel());
  plane_to_dense(src, g, dense);
  return dense;
}

template <typename T, typename U>
void dense_to_plane(const U* src, const Geometry& g, T* dst) {
  for (int64_t z = 0; z < g.size[0]; ++z)
    for (int64_t y = 0; y < g.size[1]; ++y) {
      T* row = dst + z * g.stride[0] + y * g.stride[1];
      const U* in = src + (z * g.size[1] + y) * g.size[2];
      for (int64_t x = 0; x < g.size[2]; ++x) row[x * g.stride[2]] = static_cast<T>(in[x]);
    }
}

}  // namespace shiftzoo::cpu
