// Which input taps one channel reads along one axis, and with what weights. Plain host/device
// code (no ATen), shared by every backend.
//
// A shift is constant over a channel, so the interpolation is a per-channel, per-axis K-tap
// filter (DESIGN.md §2): output position x reads input indices x + offset + t, 0 <= t < K,
// each through the padding, weighted by w[t]. Only `offset` and the weights depend on the shift.
#pragma once
#include <cmath>

#include "common.h"

namespace shiftzoo {

struct AxisTaps {
  int64_t offset = 0;            // tap 0 of output x reads index x + offset
  double w[kMaxSupport] = {1.0};  // tap weights (they sum to 1)
  double dw[kMaxSupport] = {};    // d w[t] / d shift
};

// Brings the offset of tap 0 into a small range without changing what any tap reads, so that
// shifts of any size (1e30 included) never overflow an index: periodic paddings repeat every
// `period` indices, saturating ones (period 0) read the same beyond n + K on either side.
SHIFTZOO_HD int64_t reduce_offset(double first_tap, int64_t n, int support, int64_t period) {
  if (period > 0) {
    first_tap = fmod(first_tap, static_cast<double>(period));  // exact in floating point
  } else {
    first_tap = fmin(fmax(first_tap, -static_cast<double>(n + support)), static_cast<double>(n));
  }
  return static_cast<int64_t>(first_tap);
}

// The taps of `Interp` for a shift `s` on an axis of length n. Output x samples p = x - s, so
// floor(p) = x + floor(-s) and the fraction f = -s - floor(-s) is the same for every x;
// df/ds = -1, hence dw = -dweights(f). A single-tap interpolation reads round(s) (half to even).
template <class Interp, class Padding>
SHIFTZOO_HD AxisTaps make_axis_taps(double s, int64_t n, const Padding& pad) {
  constexpr int K = Interp::support;
  AxisTaps taps;
  double first_tap = 0.0;
  double f = 0.0;
  if (K == 1) {
    first_tap = -rint(s);  // rint rounds half to even in the default rounding mode
  } else {
    const double floor_p = floor(-s);
    f = -s - floor_p;
    first_tap = floor_p - (K / 2 - 1);
  }
  double dwdf[kMaxSupport];
  Interp::weights(f, taps.w);
  Interp::dweights(f, dwdf);
  for (int t = 0; t < K; ++t) taps.dw[t] = -dwdf[t];
  taps.offset = reduce_offset(first_tap, n, K, pad.period(n));
  return taps;
}

}  // namespace shiftzoo
