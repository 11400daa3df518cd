// How the CPU kernels walk the planes (n, c) of a tensor whose channels are not inner: in
// parallel, in memory order.
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

#include "backends/core/geometry.h"
#include "backends/cpu/scratch.h"

namespace shiftzoo::cpu {

// Calls body(begin, end) for ranges of the planes (n, c) (index n * C + c), in parallel in memory
// order (n-major). Each task gets at least ~32K elements so that tiny planes do not drown in
// scheduling.
template <class Body>
void parallel_for_planes(const Geometry& g, Body&& body) {
  const int64_t planes = g.batch * g.channels;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, g.plane_numel()));
  at::parallel_for(0, planes, grain, body);
}

// Calls body(n, c, scratch) for every plane, planes in parallel in memory order, one Scratch per
// task.
template <class Body>
void for_each_plane(const Geometry& g, Body&& body) {
  parallel_for_planes(g, [&](int64_t begin, int64_t end) {
    Scratch scratch;
    for_planes(begin, end, g.channels, [&](int64_t n, int64_t c) { body(n, c, scratch); });
  });
}

// The start of plane (n, c) of a tensor.
template <typename T>
T* plane_ptr(T* data, const Geometry& g, int64_t n, int64_t c) {
  return data + n * g.stride_n + c * g.stride_c;
}

}  // namespace shiftzoo::cpu
