// The plan of a shift: what every channel reads along every axis (AxisTaps, tap_rule.h), and the
// plans derived from it that do not depend on the device: the adjoint's in-range part and the
// runs of channels that move alike. Host memory: the CPU backend's plans (host_plan.h builds
// them); a GPU backend builds the same AxisTaps on the device (see docs/architecture.md).
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "backends/core/geometry.h"
#include "backends/core/tap_rule.h"

namespace shiftzoo {

struct ShiftPlan {
  std::array<int, kAxes> support{1, 1, 1};  // taps per axis
  std::array<int64_t, kAxes> step{1, 1, 1};  // tap t of output y reads step * y + offset + t
  std::vector<AxisTaps> taps;                // [channel][axis]

  ShiftPlan() = default;
  // Every axis of every channel unshifted: one tap of weight 1 at offset 0. (Entries beyond an
  // axis's support are left unset: nothing reads them.)
  explicit ShiftPlan(int64_t channels) : taps(channels * kAxes) {
    for (AxisTaps& t : taps) {
      t.offset = 0;
      t.w[0] = 1.0;
      t.dw[0] = 0.0;
    }
  }

  int64_t channels() const { return static_cast<int64_t>(taps.size()) / kAxes; }
  const AxisTaps& at(int64_t channel, int axis) const { return taps[channel * kAxes + axis]; }
  AxisTaps& at(int64_t channel, int axis) { return taps[channel * kAxes + axis]; }
  int64_t taps_per_channel() const { return int64_t{support[0]} * support[1] * support[2]; }
};

// The padding of a runtime plugin, as the index tables Python computed (shiftzoo/_tabled.py):
// tables[k] (C, step * (m_k - 1) + K) int64 holds what raw tap index step * y + offset + t of
// channel c reads along spatial axis k (an input index, or -1 for zero) at position
// step * y + t. `name` is the plugin's, for error messages.
struct TabledPadding {
  at::TensorList tables;
  std::string_view name;
};

// The plan of the in-range part of the adjoint of `forward`, a plan with unit sampling: along
// every axis, output x read input x + offset + t with weight w[t], so input p receives
// sum_t w[t] * grad[p - offset - t], a shift with offset -offset - (K - 1) and the weights
// reversed, read with zeros padding. (Taps that left the plane and were mapped back by the padding
// form the adjoint's padding term.)
inline ShiftPlan reversed_plan(const ShiftPlan& forward) {
  ShiftPlan plan(forward.channels());
  plan.support = forward.support;
  for (int64_t c = 0; c < forward.channels(); ++c) {
    for (int axis = 0; axis < kAxes; ++axis) {
      const AxisTaps& f = forward.at(c, axis);
      AxisTaps& r = plan.at(c, axis);
      const int k = plan.support[axis];
      r.offset = -f.offset - (k - 1);
      for (int i = 0; i < k; ++i) r.w[i] = f.w[k - 1 - i];
    }
  }
  return plan;
}

// The maximal ranges of consecutive channels of a single-tap plan that have the same offsets on
// every axis (GroupedShift's channel groups), when they average 2 channels or more: with a
// padding that reads alike for every channel, each range then moves as one block. Empty
// otherwise, and for several-tap plans.
inline std::vector<Span> equal_tap_runs(const ShiftPlan& plan) {
  std::vector<Span> runs;
  if (plan.channels() == 0 || plan.taps_per_channel() != 1) return runs;
  for (int64_t c = 0; c < plan.channels(); ++c) {
    bool same = c > 0;
    for (int axis = 0; same && axis < kAxes; ++axis) same = plan.at(c, axis).offset == plan.at(c - 1, axis).offset;
    if (same) {
      runs.back().end = c + 1;
    } else {
      runs.push_back({c, c + 1});
    }
  }
  if (static_cast<int64_t>(runs.size()) * 2 > plan.channels()) runs.clear();
  return runs;
}

}  // namespace shiftzoo
