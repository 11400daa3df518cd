// The tap tables of the inference form's shifts (op shift_affine), kept between calls. Its shifts
// are frozen (optimize_for_inference made them buffers), so every call of a layer on inputs of
// one size would rebuild the same plan and tables: tens of microseconds per call for hundreds of
// channels, more than a late-stage layer's data movement. A small process-wide LRU cache keeps
// them, keyed by everything they derive from, the shift values included and compared in full: a
// hit is exact, never a guess from a tensor's identity.
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <typeinfo>
#include <utility>
#include <vector>

#include "backends/core/geometry.h"
#include "backends/core/host_plan.h"
#include "backends/core/plugin_dispatch.h"
#include "backends/core/sampling.h"
#include "backends/cpu/tap_sources.h"
#include "backends/cpu/tap_tables.h"

namespace shiftzoo::cpu {

// What a nearest shift's tables derive from.
struct FrozenKey {
  size_t padding = 0;  // the policy's type
  int spatial_dims = 0;
  int64_t channels = 0;
  std::array<int64_t, kAxes> in_size{}, out_size{}, stride{}, crop_begin{}, crop_end{};
  std::vector<double> shifts;  // (C, d) values
  uint64_t hash = 0;

  bool operator==(const FrozenKey& o) const {
    return hash == o.hash && padding == o.padding && spatial_dims == o.spatial_dims && channels == o.channels &&
           in_size == o.in_size && out_size == o.out_size && stride == o.stride && crop_begin == o.crop_begin &&
           crop_end == o.crop_end && shifts.size() == o.shifts.size() &&
           std::memcmp(shifts.data(), o.shifts.data(), shifts.size() * sizeof(double)) == 0;
  }
};

class FrozenTablesCache {
 public:
  static constexpr size_t kCapacity = 64;  // a network's layers and a few input sizes

  static FrozenTablesCache& instance() {
    static FrozenTablesCache cache;
    return cache;
  }

  std::shared_ptr<const TapTables> find(const FrozenKey& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (!(it->first == key)) continue;
      entries_.splice(entries_.begin(), entries_, it);  // most recently used first
      return entries_.front().second;
    }
    return nullptr;
  }

  void insert(FrozenKey key, std::shared_ptr<const TapTables> tables) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.emplace_front(std::move(key), std::move(tables));
    if (entries_.size() > kCapacity) entries_.pop_back();
  }

 private:
  std::mutex mutex_;
  std::list<std::pair<FrozenKey, std::shared_ptr<const TapTables>>> entries_;
};

// The tables of a nearest shift by `shifts` (C, d) in host memory, from the cache or built (and
// kept): the plan rejects non-finite shifts, so a cached key holds finite values only.
template <class Padding>
std::shared_ptr<const TapTables> frozen_tables(const at::Tensor& shifts, const Geometry& in_geom, const Geometry& out_geom,
                                               const Sampling& sampling, const std::array<int64_t, kAxes>& periods,
                                               const Padding& pad) {
  FrozenKey key;
  key.padding = typeid(Padding).hash_code();
  key.spatial_dims = in_geom.spatial_dims;
  key.channels = in_geom.channels;
  key.in_size = in_geom.size;
  key.out_size = out_geom.size;
  key.stride = sampling.stride;
  key.crop_begin = sampling.crop_begin;
  key.crop_end = sampling.crop_end;
  key.shifts = host_values(shifts);
  uint64_t h = 0x9E3779B97F4A7C15ull ^ key.padding;
  for (const double v : key.shifts) {  // (a cheap mix: equality is checked in full anyway)
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    h = (h ^ bits) * 0x100000001B3ull;
  }
  for (const auto* axes : {&key.in_size, &key.out_size, &key.stride, &key.crop_begin, &key.crop_end})
    for (const int64_t n : *axes) h = (h ^ static_cast<uint64_t>(n)) * 0x100000001B3ull;
  key.hash = h;
  FrozenTablesCache& cache = FrozenTablesCache::instance();
  if (std::shared_ptr<const TapTables> found = cache.find(key)) return found;
  const ShiftPlan plan = host_plan<interp::nearest>(shifts, in_geom, sampling, periods);
  auto tables = std::make_shared<const TapTables>(plan, in_geom, out_geom, tap_source(pad, plan, in_geom));
  cache.insert(std::move(key), tables);
  return tables;
}

}  // namespace shiftzoo::cpu
