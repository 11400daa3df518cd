// How the CPU kernels walk a tensor: the tap tables of every channel, then planes (n, c) in parallel.
#pragma once
#include <ATen/Parallel.h>

#include <vector>

#include "cpu/channel_taps.h"

namespace shiftzoo::cpu {

using ChannelTapsList = std::vector<ChannelTaps>;

// The tap tables of every channel, built once per call (tiny next to the planes).
template <class Source>
ChannelTapsList build_channel_taps(const ShiftPlan& plan, const Geometry& g, const Source& source) {
  ChannelTapsList taps(g.channels);
  for (int64_t c = 0; c < g.channels; ++c) taps[c].build(plan, c, g, source);
  return taps;
}

// Calls body(n, c) for every plane, planes in parallel in memory order (n-major). Each task
// gets at least ~32K elements so that tiny planes do not drown in scheduling.
template <class Body>
void for_each_plane(const Geometry& g, Body&& body) {
  const int64_t planes = g.batch * g.channels;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, g.plane_numel()));
  at::parallel_for(0, planes, grain, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) body(p / g.channels, p % g.channels);
  });
}

// The start of plane (n, c) of a tensor.
template <typename T>
T* plane_ptr(T* data, const Geometry& g, int64_t n, int64_t c) {
  return data + n * g.stride_n + c * g.stride_c;
}

}  // namespace shiftzoo::cpu
