// The plan of a shift: what every channel reads along every axis (AxisTaps, tap_rule.h), and the
// plans derived from it that do not depend on the device: the adjoint's in-range part and the
// runs of channels that move alike. Host memory: the CPU backend's plans (host_plan.h builds
// them); a GPU backend builds the same AxisTaps on the device (see docs/architecture.md).
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <vector>

#include "backends/core/geometry.h"
#include "backends/core/tap_rule.h"

namespace shiftzoo {

// One channel's taps along one axis as a plan holds them: tap t of output y reads
// step * y + offset + t with weight w[t] (d w[t] / d shift: dw[t]), t < the axis's support.
struct AxisView {
  int64_t offset;
  const double* w;
  const double* dw;
};

// Copies k <= kMaxSupport taps' values. A loop of runtime length compiles to a memmove call,
// which costs more than these 1-4 values (every channel and axis of every call: ~5 % of a
// 1x1024x7x7 forward+backward on one thread); each fixed length is a few moves.
inline void copy_taps(const double* from, double* to, int k) {
  auto fixed = [&](auto n) {
    for (int t = 0; t < decltype(n)::value; ++t) to[t] = from[t];
  };
  switch (k) {
    case 1: return fixed(std::integral_constant<int, 1>{});
    case 2: return fixed(std::integral_constant<int, 2>{});
    case 3: return fixed(std::integral_constant<int, 3>{});
    case 4: return fixed(std::integral_constant<int, 4>{});
    default:
      for (int t = 0; t < k; ++t) to[t] = from[t];
  }
}

// Stored compactly, per axis only as many weights as its support: a plan is rebuilt on every
// call, and 1024 channels of 136-byte AxisTaps each cost more to write than a small plane's shift.
// Two allocations (offsets, then every axis's weights and their derivatives), not one per axis
// and kind: a backward builds four plans.
class ShiftPlan {
 public:
  std::array<int, kAxes> support{1, 1, 1};   // taps per axis
  std::array<int64_t, kAxes> step{1, 1, 1};  // tap t of output y reads step * y + offset + t

  ShiftPlan() = default;
  // Every axis of every channel unshifted: tap 0 of weight 1 at offset 0 (the other taps weigh 0).
  ShiftPlan(int64_t channels, const std::array<int, kAxes>& support_per_axis)
      : support(support_per_axis), channels_(channels), offsets_(channels * kAxes, 0) {
    int64_t total = 0;
    for (int axis = 0; axis < kAxes; ++axis) {
      w_at_[axis] = total;  // [channel][tap] weights, then as many derivatives
      total += 2 * channels * support[axis];
    }
    values_.assign(total, 0.0);
    for (int axis = 0; axis < kAxes; ++axis)
      for (int64_t c = 0; c < channels; ++c) values_[w_at_[axis] + c * support[axis]] = 1.0;
  }

  int64_t channels() const { return channels_; }
  int64_t taps_per_channel() const { return int64_t{support[0]} * support[1] * support[2]; }
  int64_t offset(int64_t channel, int axis) const { return offsets_[channel * kAxes + axis]; }
  AxisView at(int64_t channel, int axis) const {
    const double* w = values_.data() + w_at_[axis] + channel * support[axis];
    return {offset(channel, axis), w, w + channels_ * support[axis]};
  }
  // Channel `channel` reads along `axis` what `taps` says (its first support[axis] taps).
  void set(int64_t channel, int axis, const AxisTaps& taps) {
    offsets_[channel * kAxes + axis] = taps.offset;
    const int k = support[axis];
    double* w = values_.data() + w_at_[axis] + channel * k;
    copy_taps(taps.w, w, k);
    copy_taps(taps.dw, w + channels_ * k, k);
  }

 private:
  int64_t channels_ = 0;
  std::vector<int64_t> offsets_;            // [channel][axis]
  std::array<int64_t, kAxes> w_at_{};       // where each axis's weights start in values_
  std::vector<double> values_;              // per axis: w [channel][tap], then dw [channel][tap]
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
  ShiftPlan plan(forward.channels(), forward.support);
  AxisTaps r;
  for (int i = 0; i < kMaxSupport; ++i) r.dw[i] = 0.0;  // the adjoint is never differentiated
  for (int axis = 0; axis < kAxes; ++axis) {
    const int k = plan.support[axis];
    for (int64_t c = 0; c < forward.channels(); ++c) {
      const AxisView f = forward.at(c, axis);
      r.offset = -f.offset - (k - 1);
      for (int i = 0; i < k; ++i) r.w[i] = f.w[k - 1 - i];
      plan.set(c, axis, r);
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
  auto same_as_previous = [&](int64_t c) {
    for (int axis = 0; axis < kAxes; ++axis)
      if (plan.offset(c, axis) != plan.offset(c - 1, axis)) return false;
    return true;
  };
  // counted first: channels that each move their own way (SSL's) build no list
  int64_t count = 1;
  for (int64_t c = 1; c < plan.channels(); ++c) count += !same_as_previous(c);
  if (count * 2 > plan.channels()) return runs;
  runs.reserve(count);
  for (int64_t c = 0; c < plan.channels(); ++c) {
    if (c > 0 && same_as_previous(c)) {
      runs.back().end = c + 1;
    } else {
      runs.push_back({c, c + 1});
    }
  }
  return runs;
}

}  // namespace shiftzoo
