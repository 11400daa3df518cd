// linear: taps floor(p), floor(p) + 1 with weights (1 - f, f).
#pragma once
#include "../common.h"

namespace shiftzoo::interp {
struct linear {
  static constexpr int support = 2;
  SHIFTZOO_HD static void weights(double f, double* w) {
    w[0] = 1.0 - f;
    w[1] = f;
  }
  SHIFTZOO_HD static void dweights(double, double* dw) {
    dw[0] = -1.0;
    dw[1] = 1.0;
  }
};
}  // namespace shiftzoo::interp
