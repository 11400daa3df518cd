// CPU backward of shiftzoo::shift, fused: one pass over grad_output per plane gives
//  - the input gradient, the exact adjoint of the forward, accumulated in a plane-sized buffer
//    (several outputs read the same input under border/reflect/symmetric), and
//  - the per-tap correlations sum_x grad_out[x] * input[tap(x)] of the gradient interpolation;
//    the weights are constant over a channel, so the shift gradient is a contraction of these
//    few numbers with the weight derivatives.
// Per-plane partial sums are combined in a fixed order: bit-identical results on any thread count.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include <optional>
#include <tuple>
#include <vector>

#include "cpu/plane_loop.h"
#include "cpu/row_kernels.h"

namespace shiftzoo::cpu {
namespace {

struct BackwardPlans {
  const ShiftPlan* input_grad;  // taps of `interp`, or null when the input gradient is not wanted
  const ShiftPlan* shift_grad;  // taps of `grad_interp`, or null when the shift gradient is not wanted
};

template <typename T, class Padding>
void shift_backward_kernel(const at::Tensor& grad_out, const at::Tensor& input,
                           const at::Tensor& grad_in, const BackwardPlans& plans,
                           double* correlations, const Padding& pad) {
  using A = at::opmath_type<T>;
  const Geometry gg(grad_out), gi(input);
  const int64_t D = gg.size[0], H = gg.size[1], W = gg.size[2];
  const T* g_data = grad_out.const_data_ptr<T>();
  const T* in_data = input.const_data_ptr<T>();
  const bool want_input_grad = plans.input_grad != nullptr;
  const int64_t taps_per_plane = plans.shift_grad ? plans.shift_grad->taps_per_channel() : 0;

  const std::vector<ChannelTaps<A>> input_grad_taps = build_channel_taps<A>(plans.input_grad, gg, pad);
  const std::vector<ChannelTaps<A>> shift_grad_taps = build_channel_taps<A>(plans.shift_grad, gg, pad);
  for_each_plane(gg, [&](int64_t n, int64_t c) {
    thread_local std::vector<T> g_scratch, in_scratch;
    thread_local std::vector<A> plane_grad;
    g_scratch.resize(W);
    in_scratch.resize(W);
    const T* g_plane = plane_ptr(g_data, gg, n, c);
    const T* in_plane = plane_ptr(in_data, gi, n, c);
    if (want_input_grad) plane_grad.assign(gg.plane_numel(), A(0));
    double* plane_corr = correlations + (n * gg.channels + c) * taps_per_plane;

    for (int64_t z = 0; z < D; ++z) {
      for (int64_t y = 0; y < H; ++y) {
        const T* g_row = contiguous_row(g_plane + z * gg.stride[0] + y * gg.stride[1],
                                        gg.stride[2], W, g_scratch.data());
        if (want_input_grad) {
          const ChannelTaps<A>& in_taps = input_grad_taps[c];
          in_taps.for_each_source_row(z, y, H, [&](int64_t src, int lead) {
            const A* w = in_taps.weight.data() + lead * in_taps.kw;
            SHIFTZOO_WITH_SUPPORT(in_taps.kw, adjoint_row, g_row, plane_grad.data() + src * W, w, in_taps)
          });
        }
        if (taps_per_plane > 0) {
          const ChannelTaps<A>& s_taps = shift_grad_taps[c];
          s_taps.for_each_source_row(z, y, H, [&](int64_t src, int lead) {
            const T* in_row = contiguous_row(
                in_plane + (src / H) * gi.stride[0] + (src % H) * gi.stride[1], gi.stride[2], W,
                in_scratch.data());
            SHIFTZOO_WITH_SUPPORT(s_taps.kw, correlate_row, g_row, in_row, s_taps,
                                  plane_corr + lead * s_taps.kw)
          });
        }
      }
    }
    if (want_input_grad) {
      const Geometry gd(grad_in);
      T* dst = plane_ptr(grad_in.mutable_data_ptr<T>(), gd, n, c);
      const A* src = plane_grad.data();
      for (int64_t z = 0; z < D; ++z) {
        for (int64_t y = 0; y < H; ++y, src += W) {
          T* row = dst + z * gd.stride[0] + y * gd.stride[1];
          for (int64_t x = 0; x < W; ++x) row[x * gd.stride[2]] = static_cast<T>(src[x]);
        }
      }
    }
  });
}

// d output / d shift[c, axis] contracted with grad_output: the tap correlations summed over the
// batch in a fixed order, weighted by the tap weights on the other axes and the weight
// derivatives on `axis`.
at::Tensor contract_shift_grad(const double* correlations, const ShiftPlan& plan,
                               const Geometry& g, const at::Tensor& shifts) {
  const int64_t taps = plan.taps_per_channel();
  const int d = g.spatial_dims;
  at::Tensor grad = at::empty({g.channels, d}, shifts.options().dtype(at::kDouble));
  double* out = grad.mutable_data_ptr<double>();
  std::vector<double> summed(taps);
  for (int64_t c = 0; c < g.channels; ++c) {
    std::fill(summed.begin(), summed.end(), 0.0);
    for (int64_t n = 0; n < g.batch; ++n) {
      const double* corr = correlations + (n * g.channels + c) * taps;
      for (int64_t i = 0; i < taps; ++i) summed[i] += corr[i];
    }
    for (int k = 0; k < d; ++k) {
      const int axis = g.first_real_axis() + k;
      double total = 0.0;
      int64_t i = 0;
      for (int a = 0; a < plan.support[0]; ++a) {
        for (int b = 0; b < plan.support[1]; ++b) {
          for (int t = 0; t < plan.support[2]; ++t, ++i) {
            const int tap[kAxes] = {a, b, t};
            double coef = 1.0;
            for (int ax = 0; ax < kAxes; ++ax) {
              const AxisTaps& at_ax = plan.at(c, ax);
              coef *= ax == axis ? at_ax.dw[tap[ax]] : at_ax.w[tap[ax]];
            }
            total += coef * summed[i];
          }
        }
      }
      out[c * d + k] = total;
    }
  }
  return grad.to(shifts.scalar_type());
}

std::tuple<at::Tensor, at::Tensor> shift_backward_cpu(
    const at::Tensor& grad_out, const std::optional<at::Tensor>& input, const at::Tensor& shifts,
    c10::string_view padding, c10::string_view interp, c10::string_view grad_interp,
    bool input_grad, bool shifts_grad) {
  check_shift_args(grad_out, shifts);
  const Geometry g(grad_out);
  // A single-tap gradient interpolation (nearest) has derivative zero: no work at all.
  const bool correlate = shifts_grad && interp_support(grad_interp) > 1 && grad_out.numel() > 0;
  if (correlate) {
    TORCH_CHECK_VALUE(input.has_value() && input->sizes() == grad_out.sizes() &&
                          input->scalar_type() == grad_out.scalar_type(),
                      "shiftzoo.shift_backward: the shift gradient needs the input, of the shape ",
                      "and dtype of grad_output ", grad_out.sizes(), " ", grad_out.scalar_type());
  }
  at::Tensor grad_in = input_grad ? at::empty_like(input.has_value() ? *input : grad_out)
                                  : at::empty({0}, grad_out.options());
  at::Tensor grad_shifts = shifts_grad ? at::zeros_like(shifts) : at::empty({0}, shifts.options());

  with_padding(padding, [&](auto pad) {
    std::optional<ShiftPlan> in_plan, s_plan;
    if (input_grad) in_plan = make_plan(shifts, g, interp, pad);
    if (correlate) s_plan = make_plan(shifts, g, grad_interp, pad);
    if (grad_out.numel() == 0 || (!in_plan && !s_plan)) {
      if (input_grad) grad_in.zero_();
      return;
    }
    const int64_t taps = s_plan ? s_plan->taps_per_channel() : 0;
    std::vector<double> correlations(g.batch * g.channels * taps, 0.0);
    const BackwardPlans plans{in_plan ? &*in_plan : nullptr, s_plan ? &*s_plan : nullptr};
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_out.scalar_type(),
                                    "shiftzoo.shift_backward", [&] {
      shift_backward_kernel<scalar_t>(grad_out, correlate ? *input : grad_out,
                                                     grad_in, plans, correlations.data(), pad);
    });
    if (s_plan) grad_shifts = contract_shift_grad(correlations.data(), *s_plan, g, shifts);
  });
  return {grad_in, grad_shifts};
}

}  // namespace

TORCH_LIBRARY_IMPL(shiftzoo, CPU, m) {
  m.impl("shift_backward", &shift_backward_cpu);
}

}  // namespace shiftzoo::cpu
