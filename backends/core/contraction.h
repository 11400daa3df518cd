// From tap correlations to parameter gradients.
//
// A backward kernel leaves, per channel, corr[i] = sum over the batch and the plane of
// grad_output * (the input read by tap combination i), i = (a * Kh + b) * Kw + t. The output is
// linear in each axis's weights, so d loss / d w[c][axis][t] is the sum over the combinations
// whose tap on `axis` is t of corr[i] times the other two axes' weights; the gradient to a shift
// follows by the chain rule through d w / d shift. Per channel, plain code: the CPU runs it on
// the host (contract_on_host), a GPU backend would run it in a kernel over channels.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <array>

#include "backends/core/shift_plan.h"

namespace shiftzoo {

// What the parameter gradient is taken with respect to: the shifts of a compiled plugin, or a
// runtime plugin's tap weights (autograd carries those on to the shifts in Python).
enum class Derivative { shifts, weights };

// Calls term(t, coef) for every tap combination of channel c (`taps`, one view per axis, read
// once: this runs for every channel and axis of every call), t its tap on `axis` and coef its
// correlation times the other two axes' weights: d loss / d w[c][axis][t] is the sum of the coefs
// of t.
template <class Term>
void for_each_weight_term(const ShiftPlan& plan, const std::array<AxisView, kAxes>& taps, int axis, const double* corr,
                          Term&& term) {
  int64_t i = 0;
  for (int a = 0; a < plan.support[0]; ++a) {
    for (int b = 0; b < plan.support[1]; ++b) {
      for (int t = 0; t < plan.support[2]; ++t, ++i) {
        const std::array<int, kAxes> tap{a, b, t};
        double coef = corr[i];
        for (int ax = 0; ax < kAxes; ++ax)
          if (ax != axis) coef *= taps[ax].w[tap[ax]];
        term(tap[axis], coef);
      }
    }
  }
}

// d loss / d w[c][axis][t] for t < support[axis], written to out[t].
inline void weight_gradient(const ShiftPlan& plan, const std::array<AxisView, kAxes>& taps, int axis,
                            const double* corr, double* out) {
  for (int t = 0; t < plan.support[axis]; ++t) out[t] = 0.0;
  for_each_weight_term(plan, taps, axis, corr, [&](int t, double coef) { out[t] += coef; });
}

// d loss / d shift[c][axis]: each term times the derivative of its tap's weight, summed in a
// register (summing per tap in memory first, as weight_gradient does, stalled on its own stores:
// ~30 µs per 1024 channels, a seventh of a 1x1024x7x7 backward).
inline double shift_gradient(const ShiftPlan& plan, const std::array<AxisView, kAxes>& taps, int axis,
                             const double* corr) {
  double total = 0.0;
  for_each_weight_term(plan, taps, axis, corr, [&](int t, double coef) { total += coef * taps[axis].dw[t]; });
  return total;
}

// The parameter gradient from `corr` (host memory, (C, taps per channel) doubles), as a double
// tensor: (C, d) for Derivative::shifts (shift_gradient), (C, d, K) for Derivative::weights.
inline at::Tensor contract_on_host(const ShiftPlan& plan, const Geometry& g, const double* corr, Derivative of) {
  const int d = g.spatial_dims, first = g.first_real_axis();
  const int K = plan.support[kAxes - 1];
  const int64_t taps = plan.taps_per_channel();
  at::Tensor grad = of == Derivative::shifts ? at::empty({g.channels, d}, at::kDouble)
                                             : at::empty({g.channels, d, K}, at::kDouble);
  double* out = grad.mutable_data_ptr<double>();
  for (int64_t c = 0; c < g.channels; ++c) {
    const std::array<AxisView, kAxes> views{plan.at(c, 0), plan.at(c, 1), plan.at(c, 2)};
    for (int k = 0; k < d; ++k) {
      const int axis = first + k;
      if (of == Derivative::weights) {
        weight_gradient(plan, views, axis, corr + c * taps, out + (c * d + k) * K);
      } else {
        out[c * d + k] = shift_gradient(plan, views, axis, corr + c * taps);
      }
    }
  }
  return grad;
}

}  // namespace shiftzoo
