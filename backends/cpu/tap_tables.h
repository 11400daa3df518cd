// The CPU kernels' view of a plan: per channel, small index tables of where every tap reads,
// padding included, built once per call (TapTables). The kernels read these tables and nothing
// else: the padding (a compiled policy or a runtime plugin's tables, tap_sources.h) is consulted
// here and never in an inner loop.
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <optional>
#include <vector>

#include "backends/core/geometry.h"
#include "backends/core/plugin_dispatch.h"
#include "backends/core/shift_plan.h"
#include "backends/cpu/tap_sources.h"

namespace shiftzoo::cpu {

// One channel's taps: the leading axes (D, H) as [n][k] tables of source indices, the last axis
// (W) as an interior range of plain offsets plus a table for the few edge positions. The tables
// live in TapTables' storage (shared by channels with equal offsets where the source allows).
struct ChannelTaps {
  // Leading axes (D, H): which input rows an output row reads.
  int kd = 1, kh = 1;
  const int64_t* src_z = nullptr;  // [D_out][kd]: input index or kZeroTap
  const int64_t* src_y = nullptr;  // [H_out][kh]
  int64_t offset_z = 0;            // src_z[z * kd + a] == step_z * z + offset_z + a for z in inner_z
  Span inner_z{0, 0};
  int64_t offset_y = 0;            // src_y[y * kh + b] == step_y * y + offset_y + b for y in inner_y
  Span inner_y{0, 0};
  // Last axis (W): tap t of output x reads step_x * x + offset + t inside `inner`; the few
  // positions outside it read edge_src[e * kw + t] (an index or kZeroTap) for x = edge_x[e].
  int kw = 1;
  int64_t offset = 0;
  Span inner{0, 0};
  // The sampling steps (core/sampling.h: the op's stride); 1 where every position is kept.
  int64_t step_z = 1, step_y = 1, step_x = 1;
  int64_t edges = 0;
  const int64_t* edge_x = nullptr;
  const int64_t* edge_src = nullptr;

  int taps() const { return kd * kh * kw; }
  // The index e of edge position x (x outside `inner`): edge_x[e] == x.
  int64_t edge_index(int64_t x) const { return x < inner.begin ? x : inner.begin + (x - inner.end); }
  // The input x that tap t of output x reads along W, or kZeroTap.
  int64_t source_x(int64_t x, int t = 0) const {
    return x >= inner.begin && x < inner.end ? step_x * x + offset + t : edge_src[edge_index(x) * kw + t];
  }
  // What raw index j + offset_a reads along a leading axis whose table (src_z or src_y,
  // [n_out][k], sampling step `step`) has offset offset_a: tap j - step * p of position
  // p = min(j / step, n_out - 1), or kZeroTap where no tap of any position has that raw index.
  // (Tables are functions of the raw index: fill_axis.)
  static int64_t lead_source(const int64_t* table, int k, int64_t n_out, int64_t step, int64_t j) {
    const int64_t p = std::min(j / step, n_out - 1);
    const int64_t t = j - step * p;
    return t < k ? table[p * k + t] : kZeroTap;
  }

  // Index slots of one axis's table for tap offset `offset`, k taps and sampling step `step`: D
  // and H, [n_out][k] sources; W, the edge positions (outside the interior) then their [edges][k]
  // sources.
  static int64_t axis_slots(const Geometry& in_geom, const Geometry& out_geom, int axis, int64_t offset, int k,
                            int64_t step) {
    const int64_t n_out = out_geom.size[axis];
    if (axis < 2) return n_out * k;
    const Span in = interior(in_geom.size[2], n_out, offset, k, step);
    return (n_out - (in.end - in.begin)) * (1 + k);
  }

  // Fills the table of `axis` for tap offset `offset`, k taps and sampling step `step` (channel
  // c's sources) into out. Every entry is source(c, axis, raw index): what a tap reads depends on
  // its raw index alone (the channels-inner kernels gather by raw index and share the gathered
  // rows between taps).
  template <class Source>
  static void fill_axis(const Source& source, int64_t c, int axis, int64_t offset, int k, int64_t step,
                        const Geometry& in_geom, const Geometry& out_geom, int64_t* out) {
    const int64_t n_out = out_geom.size[axis];
    if (axis < 2) {
      for (int64_t i = 0; i < n_out; ++i)
        for (int t = 0; t < k; ++t) *out++ = source(c, axis, step * i + offset + t);
      return;
    }
    const Span in = interior(in_geom.size[2], n_out, offset, k, step);
    int64_t* ex = out;
    int64_t* es = out + (n_out - (in.end - in.begin));
    for (int64_t x = 0; x < n_out; ++x) {
      if (x == in.begin) x = in.end;
      if (x >= n_out) break;
      *ex++ = x;
      for (int t = 0; t < k; ++t) *es++ = source(c, 2, step * x + offset + t);
    }
  }

  // One axis's table (as fill_axis wrote it) and the output positions whose taps all lie inside the
  // axis (interior), computed once per table.
  struct AxisTable {
    const int64_t* indices;
    Span inner;
  };
  static AxisTable axis_table(const int64_t* indices, const Geometry& in_geom, const Geometry& out_geom, int axis,
                              int64_t offset, int k, int64_t step) {
    return {indices, interior(in_geom.size[axis], out_geom.size[axis], offset, k, step)};
  }

  // Where channel c of `plan` reads, from its three axis tables (channels that read alike share
  // one ChannelTaps; their weights live apart: ChannelWeights).
  void set(const ShiftPlan& plan, int64_t c, const Geometry& out_geom, const std::array<AxisTable, kAxes>& axes) {
    kd = plan.support[0];
    kh = plan.support[1];
    kw = plan.support[2];
    step_z = plan.step[0];
    step_y = plan.step[1];
    step_x = plan.step[2];
    src_z = axes[0].indices;
    offset_z = plan.offset(c, 0);
    inner_z = axes[0].inner;
    src_y = axes[1].indices;
    offset_y = plan.offset(c, 1);
    inner_y = axes[1].inner;
    offset = plan.offset(c, 2);
    inner = axes[2].inner;
    edges = out_geom.size[2] - (inner.end - inner.begin);
    edge_x = axes[2].indices;
    edge_src = axes[2].indices + edges;
  }

  // Whether some tap outside the plane reads an input (every padding but zeros does): the adjoint
  // then has a padding term for this channel. (Unit sampling: the plane's input and output have
  // the geometry g.)
  bool reads_padding(const Geometry& g) const {
    for (int64_t z = 0; z < g.size[0]; ++z)
      for (int a = 0; a < kd; ++a)
        if (outside_axis(z + offset_z + a, g.size[0]) && src_z[z * kd + a] != kZeroTap) return true;
    for (int64_t y = 0; y < g.size[1]; ++y)
      for (int b = 0; b < kh; ++b)
        if (outside_axis(y + offset_y + b, g.size[1]) && src_y[y * kh + b] != kZeroTap) return true;
    for (int64_t e = 0; e < edges; ++e)
      for (int t = 0; t < kw; ++t)
        if (outside_axis(edge_x[e] + offset + t, g.size[2]) && edge_src[e * kw + t] != kZeroTap) return true;
    return false;
  }

  // Calls fn(t, j) for each tap t of output x that reads input j along W (not a zero tap).
  template <class Fn>
  void for_each_source_x(int64_t x, Fn&& fn) const {
    for (int t = 0; t < kw; ++t) {
      const int64_t j = source_x(x, t);
      if (j != kZeroTap) fn(t, j);
    }
  }

  // Calls fn(src_z, src_y, lead_index) for each input row (not a zero tap) that output row
  // (z, y) reads; lead_index = a * kh + b picks the weights.
  template <class Fn>
  void for_each_source_row(int64_t z, int64_t y, Fn&& fn) const {
    for (int a = 0; a < kd; ++a) {
      const int64_t sz = src_z[z * kd + a];
      if (sz == kZeroTap) continue;
      for (int b = 0; b < kh; ++b) {
        const int64_t sy = src_y[y * kh + b];
        if (sy != kZeroTap) fn(sz, sy, a * kh + b);
      }
    }
  }
};

// Whether a channel's taps keep every position of a plane of geometry in_geom as out_geom.
inline bool unit_sampling(const ChannelTaps& taps, const Geometry& in_geom, const Geometry& out_geom) {
  return taps.step_z == 1 && taps.step_y == 1 && taps.step_x == 1 && in_geom.size == out_geom.size;
}

// One channel's tap weights: weight[(a * kh + b) * kw + t], the product of the three axes' tap
// weights, and those factors per axis (d[a], h[b], w[t]).
struct ChannelWeights {
  const double* weight;
  const double *d, *h, *w;
};

// The tap tables of every channel of a plan, built once per call, for an input of geometry
// `in_geom` and an output of geometry `out_geom` (their sizes differ where the plan samples). A
// source that reads alike for every channel (a compiled padding) gives one table per axis and
// distinct offset, and one ChannelTaps per reading class (channels with equal offsets), shared by
// its channels: a few of each instead of C, which matters for many channels of small planes (the
// per-channel work of a call is then its weights and a class); the runs of channels with equal
// offsets also move as blocks (equal_runs). Other sources (runtime plugins' tables) give each
// channel its own, built in parallel.
class TapTables {
 public:
  template <class Source>
  TapTables(const ShiftPlan& plan, const Geometry& in_geom, const Geometry& out_geom, const Source& source)
      : support_(plan.support),
        weight_slots_(plan.taps_per_channel()),
        factor_slots_(plan.support[0] + plan.support[1] + plan.support[2]),
        channels_(in_geom.channels),
        unit_sampling_(plan.step == std::array<int64_t, kAxes>{1, 1, 1} && in_geom.size == out_geom.size) {
    fill_weights(plan);
    if constexpr (Source::same_for_every_channel) {
      build_shared(plan, in_geom, out_geom, source);
      runs_ = equal_tap_runs(plan);
    } else {
      build_per_channel(plan, in_geom, out_geom, source);
    }
  }
  TapTables(const TapTables&) = delete;
  TapTables& operator=(const TapTables&) = delete;

  // Where channel c reads (its reading class's tables).
  const ChannelTaps& operator[](int64_t c) const { return class_taps_[reading_class_[c]]; }
  // Channel c's tap weights.
  ChannelWeights weights(int64_t c) const {
    const double* f = factors_.data() + c * factor_slots_;
    return {weights_.data() + c * weight_slots_, f, f + support_[0], f + support_[0] + support_[1]};
  }
  int64_t size() const { return channels_; }
  const ChannelTaps& front() const { return class_taps_.front(); }
  // Every channel's weights in the kernels' precision, channel c's at c * front().taps().
  template <typename A>
  std::vector<A> weights_as() const { return std::vector<A>(weights_.begin(), weights_.end()); }
  // Ranges of consecutive single-tap channels that read alike (equal_tap_runs; empty if none).
  const std::vector<Span>& equal_runs() const { return runs_; }
  // Whether every position is kept: output and input have one geometry, every step is 1 (the
  // kernels' dense block paths need it).
  bool unit_sampling() const { return unit_sampling_; }
  // Channels that read alike (the same tables) share a class: reading_class()[c] in
  // [0, classes()). Channels of a runtime plugin's tables each have their own.
  const std::vector<int32_t>& reading_class() const { return reading_class_; }
  int64_t classes() const { return static_cast<int64_t>(class_taps_.size()); }
  // The taps of reading class k.
  const ChannelTaps& of_class(int64_t k) const { return class_taps_[k]; }

 private:
  // Per channel: its tap weights (the products of the axes' weights) and their factors.
  void fill_weights(const ShiftPlan& plan) {
    weights_.resize(channels_ * weight_slots_);
    factors_.resize(channels_ * factor_slots_);
    const int kd = plan.support[0], kh = plan.support[1], kw = plan.support[2];
    if (weight_slots_ == 1) {  // single-tap plans (nearest): the common case, without the loops
      for (int64_t c = 0; c < channels_; ++c) {
        const double d = plan.at(c, 0).w[0], h = plan.at(c, 1).w[0], w = plan.at(c, 2).w[0];
        weights_[c] = d * h * w;
        double* factor = factors_.data() + c * factor_slots_;  // (3: one per axis)
        factor[0] = d;
        factor[1] = h;
        factor[2] = w;
      }
      return;
    }
    for (int64_t c = 0; c < channels_; ++c) {
      const AxisView td = plan.at(c, 0), th = plan.at(c, 1), tw = plan.at(c, 2);
      double* weight = weights_.data() + c * weight_slots_;
      for (int a = 0; a < kd; ++a)
        for (int b = 0; b < kh; ++b)
          for (int t = 0; t < kw; ++t) weight[(a * kh + b) * kw + t] = td.w[a] * th.w[b] * tw.w[t];
      double* factor = factors_.data() + c * factor_slots_;
      for (int a = 0; a < kd; ++a) *factor++ = td.w[a];
      for (int b = 0; b < kh; ++b) *factor++ = th.w[b];
      for (int t = 0; t < kw; ++t) *factor++ = tw.w[t];
    }
  }

  template <class Source>
  void build_per_channel(const ShiftPlan& plan, const Geometry& in_geom, const Geometry& out_geom,
                         const Source& source) {
    const int64_t C = in_geom.channels;
    reading_class_.resize(C);
    for (int64_t c = 0; c < C; ++c) reading_class_[c] = static_cast<int32_t>(c);
    class_taps_.resize(C);
    std::vector<int64_t> start(C * kAxes + 1, 0);  // table (c, axis) at start[c * kAxes + axis]
    for (int64_t c = 0; c < C; ++c)
      for (int axis = 0; axis < kAxes; ++axis) {
        const int64_t i = c * kAxes + axis;
        start[i + 1] = start[i] + ChannelTaps::axis_slots(in_geom, out_geom, axis, plan.offset(c, axis),
                                                          plan.support[axis], plan.step[axis]);
      }
    indices_.resize(start.back());
    const int64_t grain = std::max<int64_t>(1, 4096 * C / std::max<int64_t>(1, start.back()));
    at::parallel_for(0, C, grain, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        std::array<ChannelTaps::AxisTable, kAxes> axes{};
        for (int axis = 0; axis < kAxes; ++axis) {
          int64_t* table = indices_.data() + start[c * kAxes + axis];
          const int64_t offset = plan.offset(c, axis);
          ChannelTaps::fill_axis(source, c, axis, offset, plan.support[axis], plan.step[axis], in_geom, out_geom,
                                 table);
          axes[axis] = ChannelTaps::axis_table(table, in_geom, out_geom, axis, offset, plan.support[axis],
                                               plan.step[axis]);
        }
        class_taps_[c].set(plan, c, out_geom, axes);
      }
    });
  }

  // Per axis: the distinct offsets (over the range the channels use), one table each; per
  // distinct combination of offsets, one reading class.
  template <class Source>
  void build_shared(const ShiftPlan& plan, const Geometry& in_geom, const Geometry& out_geom, const Source& source) {
    const int64_t C = in_geom.channels;
    if (C == 0) return;
    // (one pass over the channels for every axis: this runs on every call)
    std::array<int64_t, kAxes> low{}, high{};
    for (int axis = 0; axis < kAxes; ++axis) low[axis] = high[axis] = plan.offset(0, axis);
    for (int64_t c = 1; c < C; ++c) {
      for (int axis = 0; axis < kAxes; ++axis) {
        low[axis] = std::min(low[axis], plan.offset(c, axis));
        high[axis] = std::max(high[axis], plan.offset(c, axis));
      }
    }
    // compiled paddings keep offsets within a few axis lengths (reduce_whole), so these are small
    std::array<std::vector<int64_t>, kAxes> table_of;  // offset - low -> start in indices_, or -1
    for (int axis = 0; axis < kAxes; ++axis) table_of[axis].assign(high[axis] - low[axis] + 1, -1);
    int64_t total = 0;
    for (int64_t c = 0; c < C; ++c) {
      for (int axis = 0; axis < kAxes; ++axis) {
        int64_t& at = table_of[axis][plan.offset(c, axis) - low[axis]];
        if (at < 0) {
          at = total;
          total += ChannelTaps::axis_slots(in_geom, out_geom, axis, plan.offset(c, axis), plan.support[axis],
                                           plan.step[axis]);
        }
      }
    }
    indices_.resize(total);
    // each distinct (axis, offset): its table, filled once, and its interior, computed once
    std::array<std::vector<ChannelTaps::AxisTable>, kAxes> tables;
    for (int axis = 0; axis < kAxes; ++axis) {
      tables[axis].resize(table_of[axis].size());
      for (int64_t i = 0; i < static_cast<int64_t>(table_of[axis].size()); ++i) {
        if (table_of[axis][i] < 0) continue;
        int64_t* table = indices_.data() + table_of[axis][i];
        ChannelTaps::fill_axis(source, 0, axis, low[axis] + i, plan.support[axis], plan.step[axis], in_geom,
                               out_geom, table);
        tables[axis][i] = ChannelTaps::axis_table(table, in_geom, out_geom, axis, low[axis] + i, plan.support[axis],
                                                  plan.step[axis]);
      }
    }
    // reading classes: channels with the same offset on every axis read alike (found through a
    // dense index over the offsets' ranges where it is small; otherwise every channel its own)
    reading_class_.resize(C);
    const int64_t r1 = table_of[1].size(), r2 = table_of[2].size();
    const int64_t combos = static_cast<int64_t>(table_of[0].size()) * r1 * r2;
    std::vector<int32_t> class_of(combos <= (int64_t{1} << 16) ? combos : 0, -1);
    for (int64_t c = 0; c < C; ++c) {
      int32_t* known = nullptr;
      if (!class_of.empty()) {
        known = &class_of[((plan.offset(c, 0) - low[0]) * r1 + plan.offset(c, 1) - low[1]) * r2 + plan.offset(c, 2) -
                          low[2]];
        if (*known >= 0) {
          reading_class_[c] = *known;
          continue;
        }
      }
      std::array<ChannelTaps::AxisTable, kAxes> axes{};
      for (int axis = 0; axis < kAxes; ++axis) axes[axis] = tables[axis][plan.offset(c, axis) - low[axis]];
      reading_class_[c] = static_cast<int32_t>(class_taps_.size());
      if (known) *known = reading_class_[c];
      class_taps_.emplace_back().set(plan, c, out_geom, axes);
    }
  }

  std::array<int, kAxes> support_;
  int64_t weight_slots_, factor_slots_;
  int64_t channels_;
  std::vector<int64_t> indices_;
  std::vector<double> weights_, factors_;
  std::vector<ChannelTaps> class_taps_;  // per reading class
  std::vector<Span> runs_;
  std::vector<int32_t> reading_class_;
  bool unit_sampling_;
};

// The tables of an input gradient, from the forward's plan (input of geometry in_geom, output,
// i.e. grad_output, of geometry out_geom). With unit sampling, a gather: the forward of
// grad_output with the reversed plan (reversed_plan: the adjoint of the in-range taps), plus the
// padding term where a padding maps taps that left the plane back to inputs (every padding but
// zeros): those taps give their input what they read from it, found in the forward's own tables
// (`padding_taps`, null when no channel has such a tap; never built when the padding reads zero
// outside). Where the forward samples, a scatter: every tap of every output, through the
// forward's own tables (`scatter_taps`), adds its term to the input it read.
class AdjointTables {
 public:
  template <class Padding>
  AdjointTables(const ShiftPlan& forward, const Geometry& in_geom, const Geometry& out_geom, const Padding& pad) {
    const bool unit = forward.step == std::array<int64_t, kAxes>{1, 1, 1} && in_geom.size == out_geom.size;
    if (!unit) {
      forward_.emplace(forward, in_geom, out_geom, tap_source(pad, forward, in_geom));
      scatter_taps_ = &*forward_;
      return;
    }
    reversed_.emplace(reversed_plan(forward), out_geom, in_geom, PolicySource<padding::zeros>{{}, out_geom});
    if constexpr (outside_is_zero<Padding>::value) return;
    forward_.emplace(forward, in_geom, out_geom, tap_source(pad, forward, in_geom));
    for (int64_t c = 0; c < in_geom.channels; ++c) {
      if ((*forward_)[c].reads_padding(in_geom)) {
        padding_taps_ = &*forward_;
        break;
      }
    }
  }
  const TapTables* reversed() const { return reversed_ ? &*reversed_ : nullptr; }
  const TapTables* padding_taps() const { return padding_taps_; }
  const TapTables* scatter_taps() const { return scatter_taps_; }

 private:
  std::optional<TapTables> reversed_, forward_;
  const TapTables* padding_taps_ = nullptr;
  const TapTables* scatter_taps_ = nullptr;
};

}  // namespace shiftzoo::cpu
