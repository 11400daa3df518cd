// The tap rule (docs/semantics.md): which input taps one channel reads along one axis, and with
// what weights. Plain host/device code (no ATen), so every backend plans with this same code:
// the CPU on the host, a GPU in a kernel.
//
// Output x samples the real position p = x - s. A K-tap interpolation anchors its taps at
// a = floor(p) for even K and at a = round(p) (half to even) for odd K, reads a - (K-1)/2 ...
// a + K/2, and weighs them by w(f), f = p - a. Since s is constant over a channel, so are f and
// the weights: tap t of output x reads x + offset + t with offset = (a - x) - (K-1)/2, the same
// for every x. (An op that keeps only some positions, core/sampling.h, reads at the position it
// keeps: stride * y + crop_begin in place of x.) The Python reference (shiftzoo/reference.py: tap_start) follows the same rule.
#pragma once
#include <cmath>

#include "plugins/common.h"

namespace shiftzoo {

// The first tap relative to the anchor: -(K/2 - 1) for even K, -(K-1)/2 for odd K.
SHIFTZOO_HD constexpr int first_tap(int K) { return -((K - 1) / 2); }

// a - x, the anchor relative to the output position, for a shift s: floor(-s) or rint(-s)
// (rint rounds half to even in the default rounding mode).
SHIFTZOO_HD double anchor_offset(double s, int K) { return K % 2 == 0 ? floor(-s) : rint(-s); }

// What one channel reads along one axis.
struct AxisTaps {
  int64_t offset;          // tap 0 of output x reads index x + offset
  double w[kMaxSupport];   // tap weights (they sum to 1); only the first `support` are set
  double dw[kMaxSupport];  // d w[t] / d shift
  // Left uninitialised: a plan sets what its support uses, nothing zeroes 136 bytes per channel
  // and axis on every call.
  SHIFTZOO_HD AxisTaps() {}
};

// Brings an anchor offset `whole` into a small range without changing what any tap reads, so
// that shifts of any size (1e30 included) never overflow an index: periodic paddings repeat every
// `period` indices; saturating ones (period 0) read the same once every tap of every sampled
// position lies beyond the axis on one side, which |whole| >= `reach` ensures (saturation_reach).
// Reduced before the tap offsets are added: -1e30 - 1 == -1e30.
SHIFTZOO_HD int64_t reduce_whole(double whole, int64_t period, int64_t reach) {
  if (period > 0) {
    whole = fmod(whole, static_cast<double>(period));  // exact in floating point
  } else {
    const double r = static_cast<double>(reach);
    whole = whole < -r ? -r : whole > r ? r : whole;  // (finite: no fmin call)
  }
  return static_cast<int64_t>(whole);
}

// The `reach` of reduce_whole on an axis of length n sampled at positions first ... last.
SHIFTZOO_HD int64_t saturation_reach(int64_t n, int support, int64_t first, int64_t last) {
  return (last > n - first ? last : n - first) + support;
}

// The taps of `Interp` for a finite shift s at the positions origin + stride * y of an axis whose
// padding has period `period` (Padding::period(n)) and saturates beyond `reach`: tap t of output y
// reads stride * y + offset + t. df/ds = -1, hence dw = -dweights(f).
template <class Interp>
SHIFTZOO_HD void set_axis_taps(AxisTaps& taps, double s, int64_t origin, int64_t period, int64_t reach) {
  constexpr int K = Interp::support;
  const double whole = anchor_offset(s, K);
  const double f = -s - whole;
  double dwdf[kMaxSupport];
  Interp::weights(f, taps.w);
  Interp::dweights(f, dwdf);
  for (int t = 0; t < K; ++t) taps.dw[t] = -dwdf[t];
  taps.offset = origin + reduce_whole(whole, period, reach) + first_tap(K);
}

}  // namespace shiftzoo
