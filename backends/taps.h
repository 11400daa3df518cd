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
  int64_t offset;          // tap 0 of output x reads index x + offset
  double w[kMaxSupport];   // tap weights (they sum to 1); only the first `support` are set
  double dw[kMaxSupport];  // d w[t] / d shift
  // Left uninitialised: a plan sets what its support uses (ShiftPlan), nothing zeroes 136 bytes
  // per channel and axis on every call.
  SHIFTZOO_HD AxisTaps() {}
};

// Brings an integer part `whole` (floor(-s), or -round(s)) into a small range without changing
// what any tap reads, so that shifts of any size (1e30 included) never overflow an index:
// periodic paddings repeat every `period` indices, saturating ones (period 0) read the same
// beyond n + K on either side. Reduced before the tap offsets are added: -1e30 - 1 == -1e30.
SHIFTZOO_HD int64_t reduce_whole(double whole, int64_t n, int support, int64_t period) {
  if (period > 0) {
    whole = fmod(whole, static_cast<double>(period));  // exact in floating point
  } else {
    const double reach = static_cast<double>(n + support);
    whole = whole < -reach ? -reach : whole > reach ? reach : whole;  // (finite: no fmin call)
  }
  return static_cast<int64_t>(whole);
}

// Sets `taps` (zeroed) to the taps of `Interp` for a shift `s` on an axis of length n. Output x
// samples p = x - s, so floor(p) = x + floor(-s) and the fraction f = -s - floor(-s) is the same
// for every x; df/ds = -1, hence dw = -dweights(f). A single-tap interpolation reads round(s)
// (half to even).
template <class Interp, class Padding>
SHIFTZOO_HD void set_axis_taps(AxisTaps& taps, double s, int64_t n, const Padding& pad) {
  constexpr int K = Interp::support;
  double whole = 0.0;
  double f = 0.0;
  if (K == 1) {
    whole = -rint(s);  // rint rounds half to even in the default rounding mode
  } else {
    whole = floor(-s);
    f = -s - whole;
  }
  double dwdf[kMaxSupport];
  Interp::weights(f, taps.w);
  Interp::dweights(f, dwdf);
  for (int t = 0; t < K; ++t) taps.dw[t] = -dwdf[t];
  taps.offset = reduce_whole(whole, n, K, pad.period(n)) - (K == 1 ? 0 : K / 2 - 1);
}

}  // namespace shiftzoo
