// How the CPU kernels walk a tensor: the tap tables of every channel, then planes (n, c) in parallel.
#pragma once
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>

#include <array>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "cpu/channel_taps.h"

namespace shiftzoo::cpu {

// The tap tables of every channel, built once per call. A uniform source (compiled paddings)
// gives one table per axis and distinct offset, shared by the channels: a few tables instead of
// C, which matters for many channels of small planes. Other sources (runtime plugins' tables)
// give each channel its own, built in parallel.
class ChannelTapsList {
 public:
  template <class Source>
  ChannelTapsList(const ShiftPlan& plan, const Geometry& g, const Source& source)
      : weight_slots_(plan.taps_per_channel()),
        factor_slots_(plan.support[0] + plan.support[1] + plan.support[2]),
        weights_(g.channels * weight_slots_),
        factors_(g.channels * factor_slots_),
        channels_(g.channels) {
    if constexpr (is_uniform_source<Source>::value) {
      build_shared(plan, g, source);
    } else {
      build_per_channel(plan, g, source);
    }
  }
  ChannelTapsList(const ChannelTapsList&) = delete;
  ChannelTapsList& operator=(const ChannelTapsList&) = delete;

  const ChannelTaps& operator[](int64_t c) const { return channels_[c]; }
  int64_t size() const { return static_cast<int64_t>(channels_.size()); }
  const ChannelTaps& front() const { return channels_.front(); }
  // Every channel's weights in the kernels' precision, channel c's at c * front().taps().
  template <typename A>
  std::vector<A> weights_as() const { return std::vector<A>(weights_.begin(), weights_.end()); }

 private:
  template <class Source>
  void build_per_channel(const ShiftPlan& plan, const Geometry& g, const Source& source) {
    std::vector<int64_t> start(g.channels * kAxes + 1, 0);  // table (c, axis) at start[c * kAxes + axis]
    for (int64_t c = 0; c < g.channels; ++c)
      for (int axis = 0; axis < kAxes; ++axis) {
        const int64_t i = c * kAxes + axis;
        start[i + 1] = start[i] + ChannelTaps::axis_slots(g, axis, plan.at(c, axis).offset, plan.support[axis]);
      }
    indices_.resize(start.back());
    const int64_t grain = std::max<int64_t>(1, 4096 * g.channels / std::max<int64_t>(1, start.back()));
    at::parallel_for(0, g.channels, grain, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        std::array<const int64_t*, kAxes> tables{};
        for (int axis = 0; axis < kAxes; ++axis) {
          int64_t* table = indices_.data() + start[c * kAxes + axis];
          ChannelTaps::fill_axis(source, c, axis, plan.at(c, axis).offset, plan.support[axis], g, table);
          tables[axis] = table;
        }
        channels_[c].set(plan, c, g, tables, weights_.data() + c * weight_slots_, factors_.data() + c * factor_slots_);
      }
    });
  }

  // Per axis: the distinct offsets (over the range the channels use), one table each.
  template <class Source>
  void build_shared(const ShiftPlan& plan, const Geometry& g, const Source& source) {
    if (g.channels == 0) return;
    std::array<int64_t, kAxes> low{};
    std::array<std::vector<int64_t>, kAxes> table_of;  // offset - low -> start in indices_, or -1
    int64_t total = 0;
    for (int axis = 0; axis < kAxes; ++axis) {
      int64_t lo = plan.at(0, axis).offset, hi = lo;
      for (int64_t c = 1; c < g.channels; ++c) {
        lo = std::min(lo, plan.at(c, axis).offset);
        hi = std::max(hi, plan.at(c, axis).offset);
      }
      low[axis] = lo;
      // compiled paddings keep offsets within a few axis lengths (reduce_whole), so this is small
      table_of[axis].assign(hi - lo + 1, -1);
      for (int64_t c = 0; c < g.channels; ++c) {
        const int64_t offset = plan.at(c, axis).offset;
        int64_t& at = table_of[axis][offset - lo];
        if (at < 0) {
          at = total;
          total += ChannelTaps::axis_slots(g, axis, offset, plan.support[axis]);
        }
      }
    }
    indices_.resize(total);
    for (int axis = 0; axis < kAxes; ++axis)
      for (int64_t i = 0; i < static_cast<int64_t>(table_of[axis].size()); ++i)
        if (table_of[axis][i] >= 0)
          ChannelTaps::fill_axis(source, 0, axis, low[axis] + i, plan.support[axis], g,
                                 indices_.data() + table_of[axis][i]);
    for (int64_t c = 0; c < g.channels; ++c) {
      std::array<const int64_t*, kAxes> tables{};
      for (int axis = 0; axis < kAxes; ++axis)
        tables[axis] = indices_.data() + table_of[axis][plan.at(c, axis).offset - low[axis]];
      channels_[c].set(plan, c, g, tables, weights_.data() + c * weight_slots_, factors_.data() + c * factor_slots_);
    }
  }

  int64_t weight_slots_, factor_slots_;
  std::vector<int64_t> indices_;
  std::vector<double> weights_, factors_;
  std::vector<ChannelTaps> channels_;
};

// The maximal ranges of consecutive channels of a single-tap list that read alike (the same
// tables and offsets: with a uniform source, the same offsets), e.g. GroupedShift's channel
// groups, when they average 2 channels or more: then each range moves as one block (per pixel in
// a channels-inner layout, per item across its planes in a stacked one). Empty otherwise, and for
// several-tap lists.
inline std::vector<Span> equal_tap_runs(const ChannelTapsList& taps) {
  std::vector<Span> runs;
  if (taps.size() == 0 || taps.front().taps() != 1) return runs;
  for (int64_t c = 0; c < taps.size(); ++c) {
    const ChannelTaps &a = taps[c], &b = taps[c > 0 ? c - 1 : 0];
    const bool same = c > 0 && a.src_z == b.src_z && a.src_y == b.src_y && a.edge_src == b.edge_src &&
                      a.offset == b.offset && a.offset_y == b.offset_y && a.offset_z == b.offset_z;
    if (same) {
      runs.back().end = c + 1;
    } else {
      runs.push_back({c, c + 1});
    }
  }
  if (static_cast<int64_t>(runs.size()) * 2 > taps.size()) runs.clear();
  return runs;
}

// Tap sources of the zeros padding: in-range indices read themselves, the others nothing.
inline auto zeros_source(const Geometry& g) {
  auto map = [&g](int axis, int64_t i) { return i >= 0 && i < g.size[axis] ? i : int64_t{kZeroTap}; };
  return UniformSource<decltype(map)>{map};
}

// The plan of the in-range part of the adjoint of `forward`: along every axis, output x read
// input x + offset + t with weight w[t], so input p receives sum_t w[t] * grad[p - offset - t], a
// shift with offset -offset - (K - 1) and the weights reversed, read with zeros padding. (Taps
// that left the plane and were mapped back by the padding are owed separately.)
inline ShiftPlan reversed_plan(const ShiftPlan& forward) {
  ShiftPlan plan(forward.channels());
  plan.support = forward.support;
  for (int64_t c = 0; c < forward.channels(); ++c) {
    for (int axis = 0; axis < kAxes; ++axis) {
      const AxisTaps& f = forward.at(c, axis);
      AxisTaps& r = plan.taps[c * kAxes + axis];
      const int k = plan.support[axis];
      r.offset = -f.offset - (k - 1);
      for (int i = 0; i < k; ++i) r.w[i] = f.w[k - 1 - i];
    }
  }
  return plan;
}

// The taps of an input gradient, from the forward's plan: the forward of grad_output with
// `reversed` (the adjoint of the in-range taps), plus, where the padding maps taps that left the
// plane back to inputs (every padding but zeros), what those taps owe, read from the forward's
// own taps (`owing`, null when no channel has such a tap). `may_owe` false skips building them.
class InputGradTaps {
 public:
  template <class Source>
  InputGradTaps(const ShiftPlan& forward, const Geometry& g, const Source& source, bool may_owe)
      : reversed_(reversed_plan(forward), g, zeros_source(g)) {
    if (!may_owe) return;
    forward_.emplace(forward, g, source);
    for (int64_t c = 0; c < g.channels; ++c) {
      if ((*forward_)[c].reads_padding(g)) {
        owing_ = &*forward_;
        break;
      }
    }
  }
  const ChannelTapsList& reversed() const { return reversed_; }
  const ChannelTapsList* owing() const { return owing_; }

 private:
  ChannelTapsList reversed_;
  std::optional<ChannelTapsList> forward_;
  const ChannelTapsList* owing_ = nullptr;
};

// Working memory of one parallel task: a few buffers that grow to the largest size asked for and
// are reused by all the task's planes (no allocation, zeroing or thread_local lookup per plane).
class Scratch {
 public:
  // Room for n values of T in buffer `slot` (contents unspecified), 64-byte aligned.
  template <typename T>
  T* get(int slot, int64_t n) {
    static_assert(alignof(T) <= alignof(Block));
    std::vector<Block>& b = slots_[slot];
    const size_t blocks = (n * sizeof(T) + sizeof(Block) - 1) / sizeof(Block);
    if (b.size() < blocks) b.resize(blocks);
    return reinterpret_cast<T*>(b.data());
  }

 private:
  struct alignas(64) Block {
    unsigned char bytes[64];
  };
  std::array<std::vector<Block>, 8> slots_;
};

// Calls body(n, c, scratch) for every plane, planes in parallel in memory order (n-major), one
// Scratch per task. Each task gets at least ~32K elements so that tiny planes do not drown in
// scheduling.
template <class Body>
void for_each_plane(const Geometry& g, Body&& body) {
  const int64_t planes = g.batch * g.channels;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, g.plane_numel()));
  at::parallel_for(0, planes, grain, [&](int64_t begin, int64_t end) {
    Scratch scratch;
    for (int64_t p = begin; p < end; ++p) body(p / g.channels, p % g.channels, scratch);
  });
}

// Whether a tensor's channels are closer in memory than its pixels (channels_last and kin): the
// kernels then walk rows of all channels instead of planes.
inline bool channels_inner(const Geometry& g) {
  return g.channels > 1 && g.size[2] > 1 && g.stride_c < g.stride[2];
}

// Whether the rows of g's planes are contiguous and densely stacked (the flat block passes).
inline bool dense_rows(const Geometry& g) { return g.stride[2] == 1 && g.stride[1] == g.size[2]; }

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
template <typename T, typename U>
void dense_to_plane(const U* src, const Geometry& g, T* dst) {
  for (int64_t z = 0; z < g.size[0]; ++z)
    for (int64_t y = 0; y < g.size[1]; ++y) {
      T* row = dst + z * g.stride[0] + y * g.stride[1];
      const U* in = src + (z * g.size[1] + y) * g.size[2];
      for (int64_t x = 0; x < g.size[2]; ++x) row[x * g.stride[2]] = static_cast<T>(in[x]);
    }
}

// The start of plane (n, c) of a tensor.
template <typename T>
T* plane_ptr(T* data, const Geometry& g, int64_t n, int64_t c) {
  return data + n * g.stride_n + c * g.stride_c;
}

}  // namespace shiftzoo::cpu
