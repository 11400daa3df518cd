// quadratic: Dodgson's interpolating quadratic (N. A. Dodgson, "Quadratic interpolation for
// image resampling", IEEE TIP 1997). Three taps centred on round(p), at distances 1 + f, f, 1 - f
// for f = p - round(p) in [-1/2, 1/2]: weights (f^2 - f/2, 1 - 2 f^2, f^2 + f/2). It reproduces
// the input at whole shifts (f = 0: 0, 1, 0) and is continuous where round(p) jumps.
#pragma once
#include "../common.h"

namespace shiftzoo::interp {
struct quadratic {
  static constexpr int support = 3;
  SHIFTZOO_HD static void weights(double f, double* w) {
    w[0] = f * f - 0.5 * f;
    w[1] = 1.0 - 2.0 * f * f;
    w[2] = f * f + 0.5 * f;
  }
  SHIFTZOO_HD static void dweights(double f, double* dw) {
    dw[0] = 2.0 * f - 0.5;
    dw[1] = -4.0 * f;
    dw[2] = 2.0 * f + 0.5;
  }
};
}  // namespace shiftzoo::interp
