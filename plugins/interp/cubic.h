// cubic: Keys cubic convolution with A = -0.75 (the F.grid_sample(mode="bicubic") convention);
// taps floor(p) - 1 ... floor(p) + 2 at distances 1 + f, f, 1 - f, 2 - f.
#pragma once
#include "../common.h"

namespace shiftzoo::interp {
struct cubic {
  static constexpr int support = 4;
  static constexpr double A = -0.75;

  // The Keys kernel on |x| <= 1 and on 1 < |x| < 2, and their derivatives.
  SHIFTZOO_HD static double near(double x) { return ((A + 2) * x - (A + 3)) * x * x + 1; }
  SHIFTZOO_HD static double far(double x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }
  SHIFTZOO_HD static double dnear(double x) { return (3 * (A + 2) * x - 2 * (A + 3)) * x; }
  SHIFTZOO_HD static double dfar(double x) { return (3 * A * x - 10 * A) * x + 8 * A; }

  SHIFTZOO_HD static void weights(double f, double* w) {
    w[0] = far(1 + f);
    w[1] = near(f);
    w[2] = near(1 - f);
    w[3] = far(2 - f);
  }
  SHIFTZOO_HD static void dweights(double f, double* dw) {
    dw[0] = dfar(1 + f);
    dw[1] = dnear(f);
    dw[2] = -dnear(1 - f);
    dw[3] = -dfar(2 - f);
  }
};
}  // namespace shiftzoo::interp
