// The CPU implementations of the shiftzoo operators: check the arguments, turn the plugins into
// per-channel tap tables, run the kernels, contract the correlations into parameter gradients.
//   shift / shift_backward:               compiled plugins, named
//   shift_tabled / shift_tabled_backward: runtime plugins, as offsets, weights and index tables
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include <optional>
#include <tuple>
#include <type_traits>
#include <vector>

#include "cpu/shift_kernels.h"
#include "gradient_contraction.h"

namespace shiftzoo::cpu {
namespace {

// The tap tables of a compiled padding policy.
template <class Padding>
auto policy_source(const Geometry& g, const Padding& pad) {
  auto map = [&g, pad](int axis, int64_t i) { return pad.map(i, g.size[axis]); };
  return UniformSource<decltype(map)>{map};
}

// The gradient outputs of a backward op: empty tensors for what was not asked for.
at::Tensor input_gradient_like(bool wanted, const std::optional<at::Tensor>& input,
                               const at::Tensor& grad_out) {
  return wanted ? at::empty_like(input.has_value() ? *input : grad_out) : at::empty({0}, grad_out.options());
}

void check_input_for_correlation(const std::optional<at::Tensor>& input, const at::Tensor& grad_out) {
  TORCH_CHECK_VALUE(input.has_value() && input->sizes() == grad_out.sizes() &&
                        input->scalar_type() == grad_out.scalar_type(),
                    "shiftzoo: the shift gradient needs the input, of the shape and dtype of ",
                    "grad_output ", grad_out.sizes(), " ", grad_out.scalar_type());
}

// Runs the fused backward kernel; returns the correlations summed over the batch per channel.
std::vector<double> run_backward(const at::Tensor& grad_out, const std::optional<at::Tensor>& input,
                                 at::Tensor& grad_in, const InputGradTaps* input_grad,
                                 const ChannelTapsList* correlate_taps, const Geometry& g) {
  const int64_t taps = correlate_taps ? correlate_taps->front().taps() : 0;
  std::vector<double> corr(g.batch * g.channels * taps, 0.0);
  if (!input_grad && !correlate_taps) return corr;
  shift_backward_kernel(grad_out, correlate_taps ? *input : grad_out, grad_in, input_grad, correlate_taps,
                        corr.data());
  return sum_over_batch(corr, g.batch, g.channels, taps);
}

// ---- compiled plugins ------------------------------------------------------------------------

at::Tensor shift_cpu(const at::Tensor& input, const at::Tensor& shifts, c10::string_view padding,
                     c10::string_view interp, c10::string_view grad_interp) {
  check_shift_args(input, shifts);
  interp_support(grad_interp);  // validates the name
  at::Tensor output = at::empty_like(input);
  const Geometry g(input);
  with_padding(padding, [&](auto pad) {
    const ShiftPlan plan = make_plan(shifts, g, interp, pad);  // rejects non-finite shifts
    if (input.numel() > 0) shift_forward_kernel(input, output, ChannelTapsList(plan, g, policy_source(g, pad)));
  });
  return output;
}

std::tuple<at::Tensor, at::Tensor> shift_backward_cpu(
    const at::Tensor& grad_out, const std::optional<at::Tensor>& input, const at::Tensor& shifts,
    c10::string_view padding, c10::string_view interp, c10::string_view grad_interp,
    bool input_grad, bool shifts_grad) {
  check_shift_args(grad_out, shifts);
  const Geometry g(grad_out);
  // A single-tap gradient interpolation (nearest) has derivative zero: no work at all.
  const bool correlate = shifts_grad && interp_support(grad_interp) > 1 && grad_out.numel() > 0;
  if (correlate) check_input_for_correlation(input, grad_out);
  at::Tensor grad_in = input_gradient_like(input_grad, input, grad_out);
  at::Tensor grad_shifts = shifts_grad ? at::zeros_like(shifts) : at::empty({0}, shifts.options());

  with_padding(padding, [&](auto pad) {
    // The zeros padding maps every tap that leaves the plane to nothing: it owes no input.
    constexpr bool may_owe = !std::is_same_v<decltype(pad), padding::zeros>;
    std::optional<ShiftPlan> in_plan, s_plan;
    std::optional<InputGradTaps> in_taps;
    std::optional<ChannelTapsList> s_taps;
    if (input_grad && grad_out.numel() > 0) {
      in_plan = make_plan(shifts, g, interp, pad);
      in_taps.emplace(*in_plan, g, policy_source(g, pad), may_owe);
    }
    const ShiftPlan* corr_plan = nullptr;  // the plan the shift gradient is contracted with
    if (correlate) {
      // the same interpolation (ActiveShift) plans the same taps: plan once
      corr_plan = in_plan && grad_interp == interp ? &*in_plan
                                                    : &s_plan.emplace(make_plan(shifts, g, grad_interp, pad));
      s_taps.emplace(*corr_plan, g, policy_source(g, pad));
    }
    const std::vector<double> summed = run_backward(grad_out, input, grad_in, in_taps ? &*in_taps : nullptr,
                                                    s_taps ? &*s_taps : nullptr, g);
    if (!correlate) return;
    const ShiftPlan& plan = *corr_plan;
    at::Tensor grad = at::empty({g.channels, g.spatial_dims}, shifts.options().dtype(at::kDouble));
    double* out = grad.mutable_data_ptr<double>();
    const int64_t taps = plan.taps_per_channel();
    for (int64_t c = 0; c < g.channels; ++c)
      for (int k = 0; k < g.spatial_dims; ++k)
        out[c * g.spatial_dims + k] = shift_gradient(plan, c, g.first_real_axis() + k, &summed[c * taps]);
    grad_shifts = grad.to(shifts.scalar_type());
  });
  return {grad_in, grad_shifts};
}

// ---- runtime plugins -------------------------------------------------------------------------

void check_tabled_input(const at::Tensor& input) {
  TORCH_CHECK_VALUE(input.dim() >= 3 && input.dim() <= 5 && at::isFloatingType(input.scalar_type()),
                    "shiftzoo.shift_tabled: expected a floating-point input of 3 to 5 dimensions, got ",
                    input.scalar_type(), " ", input.sizes());
}

at::Tensor shift_tabled_cpu(const at::Tensor& input, const at::Tensor& offsets, at::TensorList tables,
                            const at::Tensor& weights, const at::Tensor& grad_offsets,
                            at::TensorList grad_tables, const at::Tensor& grad_weights,
                            c10::string_view padding) {
  check_tabled_input(input);
  const Geometry g(input);
  make_tabled_plan(grad_offsets, grad_weights, grad_tables, g);  // validates what backward will use
  const ShiftPlan plan = make_tabled_plan(offsets, weights, tables, g);
  at::Tensor output = at::empty_like(input);
  if (input.numel() > 0) {
    shift_forward_kernel(input, output, ChannelTapsList(plan, g, TableSource(tables, plan, g, padding)));
  }
  return output;
}

std::tuple<at::Tensor, at::Tensor> shift_tabled_backward_cpu(
    const at::Tensor& grad_out, const std::optional<at::Tensor>& input, const at::Tensor& offsets,
    at::TensorList tables, const at::Tensor& weights, const at::Tensor& grad_offsets,
    at::TensorList grad_tables, const at::Tensor& grad_weights, c10::string_view padding,
    bool input_grad, bool weights_grad) {
  check_tabled_input(grad_out);
  const Geometry g(grad_out);
  const bool correlate = weights_grad && grad_out.numel() > 0;
  if (correlate) check_input_for_correlation(input, grad_out);
  at::Tensor grad_in = input_gradient_like(input_grad, input, grad_out);
  at::Tensor grad_w = weights_grad ? at::zeros_like(grad_weights) : at::empty({0}, grad_weights.options());

  std::optional<ShiftPlan> in_plan, w_plan;
  std::optional<InputGradTaps> in_taps;
  std::optional<ChannelTapsList> w_taps;
  if (input_grad && grad_out.numel() > 0) {
    in_plan = make_tabled_plan(offsets, weights, tables, g);
    in_taps.emplace(*in_plan, g, TableSource(tables, *in_plan, g, padding), /*may_owe=*/true);
  }
  if (correlate) {
    w_plan = make_tabled_plan(grad_offsets, grad_weights, grad_tables, g);
    w_taps.emplace(*w_plan, g, TableSource(grad_tables, *w_plan, g, padding));
  }
  const std::vector<double> summed = run_backward(grad_out, input, grad_in, in_taps ? &*in_taps : nullptr,
                                                  w_taps ? &*w_taps : nullptr, g);
  if (correlate) {
    const int K = static_cast<int>(grad_weights.size(2));
    at::Tensor grad = at::empty(grad_weights.sizes(), grad_weights.options().dtype(at::kDouble));
    double* out = grad.mutable_data_ptr<double>();
    const int64_t taps = w_plan->taps_per_channel();
    for (int64_t c = 0; c < g.channels; ++c)
      for (int k = 0; k < g.spatial_dims; ++k)
        weight_gradient(*w_plan, c, g.first_real_axis() + k, &summed[c * taps], out + (c * g.spatial_dims + k) * K);
    grad_w = grad.to(grad_weights.scalar_type());
  }
  return {grad_in, grad_w};
}

}  // namespace

TORCH_LIBRARY_IMPL(shiftzoo, CPU, m) {
  m.impl("shift", &shift_cpu);
  m.impl("shift_backward", &shift_backward_cpu);
  m.impl("shift_tabled", &shift_tabled_cpu);
  m.impl("shift_tabled_backward", &shift_tabled_backward_cpu);
}

}  // namespace shiftzoo::cpu
