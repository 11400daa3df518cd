// From tap correlations to parameter gradients, on the host (shared by the backends).
//
// A backward kernel leaves, per plane (n, c), corr[i] = sum over the plane of
// grad_output * input-read-by-tap-combination-i, i = (a * Kh + b) * Kw + t. The output is
// linear in each axis's weights, so d loss / d w[c][axis][t] is the sum over combinations whose
// tap on `axis` is t of corr[i] times the other two axes' weights; the gradient to a shift
// follows by the chain rule through d w / d shift.
#pragma once
#include <array>
#include <vector>

#include "shift_plan.h"

namespace shiftzoo {

// Per channel, the correlations summed over the batch in a fixed order (deterministic).
inline std::vector<double> sum_over_batch(const std::vector<double>& corr, int64_t batch,
                                          int64_t channels, int64_t taps) {
  std::vector<double> summed(channels * taps, 0.0);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t i = 0; i < channels * taps; ++i) summed[i] += corr[n * channels * taps + i];
  return summed;
}

// d loss / d w[c][axis][t] for t < support[axis], written to out[t].
inline void weight_gradient(const ShiftPlan& plan, int64_t c, int axis, const double* summed,
                            double* out) {
  for (int t = 0; t < plan.support[axis]; ++t) out[t] = 0.0;
  int64_t i = 0;
  for (int a = 0; a < plan.support[0]; ++a) {
    for (int b = 0; b < plan.support[1]; ++b) {
      for (int t = 0; t < plan.support[2]; ++t, ++i) {
        const std::array<int, kAxes> tap{a, b, t};
        double coef = summed[i];
        for (int ax = 0; ax < kAxes; ++ax)
          if (ax != axis) coef *= plan.at(c, ax).w[tap[ax]];
        out[tap[axis]] += coef;
      }
    }
  }
}

// d loss / d shift[c][axis] = sum_t d loss / d w[t] * d w[t] / d shift.
inline double shift_gradient(const ShiftPlan& plan, int64_t c, int axis, const double* summed) {
  double dw[kMaxSupport];
  weight_gradient(plan, c, axis, summed, dw);
  double total = 0.0;
  for (int t = 0; t < plan.support[axis]; ++t) total += dw[t] * plan.at(c, axis).dw[t];
  return total;
}

}  // namespace shiftzoo
