// nearest: one tap at x - round(shift), round half to even (as torch.round).
// Its exact derivative is zero; SparseShift takes its shift gradient from "linear" instead.
#pragma once
#include "../common.h"

namespace shiftzoo::interp {
struct nearest {
  static constexpr int support = 1;
  SHIFTZOO_HD static void weights(double, double* w) { w[0] = 1.0; }
  SHIFTZOO_HD static void dweights(double, double* dw) { dw[0] = 0.0; }
};
}  // namespace shiftzoo::interp
