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
#include <type_traits>

#include "backends/core/shift_plan.h"

namespace shiftzoo {

// What the parameter gradient is taken with respect to: the shifts of a compiled plugin, or a
// runtime plugin's tap weights (autograd carries those on to the shifts in Python).
enum class Derivative { shifts, weights };

// A plan's taps per axis (kd, kh, kw), as compile-time constants where they are the common ones
// (linear in 1D, 2D, 3D) so that the per-channel loops below unroll, as ints otherwise.
template <class Fn>
void with_supports(const std::array<int, kAxes>& support, Fn&& fn) {
  using One = std::integral_constant<int, 1>;
  using Two = std::integral_constant<int, 2>;
  if (support == std::array<int, kAxes>{1, 1, 2}) return fn(One{}, One{}, Two{});
  if (support == std::array<int, kAxes>{1, 2, 2}) return fn(One{}, Two{}, Two{});
  if (support == std::array<int, kAxes>{2, 2, 2}) return fn(Two{}, Two{}, Two{});
  fn(support[0], support[1], support[2]);
}

// Calls term(t, coef) for every tap combination of channel c (`taps`, one view per axis, read
// once: this runs for every channel and axis of every call; kd, kh, kw: the plan's supports), t
// its tap on `axis` and coef its correlation times the other two axes' weights: d loss /
// d w[c][axis][t] is the sum of the coefs of t.
template <class KD, class KH, class KW, class Term>
void for_each_weight_term(KD kd, KH kh, KW kw, const std::array<AxisView, kAxes>& taps, int axis, const double* corr,
                          Term&& term) {
  int64_t i = 0;
  for (int a = 0; a < kd; ++a) {
    for (int b = 0; b < kh; ++b) {
      for (int t = 0; t < kw; ++t, ++i) {
        const std::array<int, kAxes> tap{a, b, t};
        double coef = corr[i];
        for (int ax = 0; ax < kAxes; ++ax)
          if (ax != axis) coef *= taps[ax].w[tap[ax]];
        term(tap[axis], coef);
      }
    }
  }
}

// The parameter gradient from `corr` (host memory, (C, taps per channel) doubles), as a double
// tensor: (C, d) for Derivative::shifts, d loss / d shift[c][axis], each term times the
// derivative of its tap's weight, summed in a register (summing per tap in memory first stalled
// on its own stores: ~30 µs per 1024 channels, a seventh of a 1x1024x7x7 backward); (C, d, K)
// for Derivative::weights, d loss / d w[c][axis][t].
inline at::Tensor contract_on_host(const ShiftPlan& plan, const Geometry& g, const double* corr, Derivative of) {
  const int d = g.spatial_dims, first = g.first_real_axis();
  const int K = plan.support[kAxes - 1];
  const int64_t taps = plan.taps_per_channel();
  at::Tensor grad = of == Derivative::shifts ? at::empty({g.channels, d}, at::kDouble)
                                             : at::empty({g.channels, d, K}, at::kDouble);
  double* out = grad.mutable_data_ptr<double>();
  with_supports(plan.support, [&](auto kd, auto kh, auto kw) {
    for (int64_t c = 0; c < g.channels; ++c) {
      const std::array<AxisView, kAxes> views{plan.at(c, 0), plan.at(c, 1), plan.at(c, 2)};
      const double* channel_corr = corr + c * taps;
      for (int k = 0; k < d; ++k) {
        const int axis = first + k;
        if (of == Derivative::weights) {
          double* w_grad = out + (c * d + k) * K;
          for (int t = 0; t < plan.support[axis]; ++t) w_grad[t] = 0.0;
          for_each_weight_term(kd, kh, kw, views, axis, channel_corr, [&](int t, double coef) { w_grad[t] += coef; });
        } else {
          double total = 0.0;
          for_each_weight_term(kd, kh, kw, views, axis, channel_corr,
                               [&](int t, double coef) { total += coef * views[axis].dw[t]; });
          out[c * d + k] = total;
        }
      }
    }
  });
  return grad;
}

}  // namespace shiftzoo
