// The shiftzoo operators, written once for every backend: argument checks, the plans each call
// needs (a gradient nobody asked for costs nothing, a single-tap gradient interpolation has
// derivative zero), and the contraction of tap correlations into parameter gradients. A backend
// (backends/cpu/backend.h) supplies where plans live, its kernels and their launch:
//
//   struct Backend {
//     using Plan = ...;  // what its kernels read (the CPU: a ShiftPlan in host memory)
//     template <class Interp> static Plan plan(shifts, geometry, periods);  // rejects non-finite shifts
//     static Plan tabled_plan(offsets, weights, geometry);                  // runtime plugins
//     template <class Padding> static void forward(input, output, plan, padding);
//     template <class Padding> static at::Tensor backward(grad_out, input, grad_in,
//         value_plan or null, value_padding, grad_plan or null, grad_padding);  // (C, taps) correlations
//     static at::Tensor contract(plan, geometry, correlations, Derivative);   // double
//   };
//
// `Padding` is a compiled policy (plugins/padding) or a runtime plugin's TabledPadding.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>

#include <array>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>

#include "backends/core/checks.h"
#include "backends/core/contraction.h"
#include "backends/core/geometry.h"
#include "backends/core/plugin_dispatch.h"
#include "backends/core/shift_plan.h"

namespace shiftzoo {

template <class Backend>
class ShiftOps {
  using Plan = typename Backend::Plan;

 public:
  // out[n, c, x] = sum over taps of input[n, c, pad(x - shifts[c])] (docs/semantics.md).
  static at::Tensor shift(const at::Tensor& input, const at::Tensor& shifts, c10::string_view padding,
                          c10::string_view interp, c10::string_view grad_interp) {
    check_shift_args(input, shifts);
    interp_support(grad_interp);  // checks the name
    at::Tensor output = at::empty_like(input);
    const Geometry g(input);
    with_padding(padding, [&](auto pad) {
      const Plan plan = compiled_plan(shifts, g, interp, pad);  // rejects non-finite shifts, even with no data
      if (input.numel() > 0) Backend::forward(input, output, plan, pad);
    });
    return output;
  }

  static std::tuple<at::Tensor, at::Tensor> shift_backward(const at::Tensor& grad_out,
                                                           const std::optional<at::Tensor>& input,
                                                           const at::Tensor& shifts, c10::string_view padding,
                                                           c10::string_view interp, c10::string_view grad_interp,
                                                           bool input_grad, bool shifts_grad) {
    check_shift_args(grad_out, shifts);
    const Geometry g(grad_out);
    // A single-tap gradient interpolation (nearest) has derivative zero: no work at all.
    const bool correlate = shifts_grad && interp_support(grad_interp) > 1;
    std::pair<at::Tensor, at::Tensor> grads;
    with_padding(padding, [&](auto pad) {
      grads = backward(
          grad_out, input, input_grad, correlate, pad, pad, [&] { return compiled_plan(shifts, g, interp, pad); },
          [&] { return compiled_plan(shifts, g, grad_interp, pad); }, /*same_plans=*/grad_interp == interp,
          Derivative::shifts);
    });
    auto& [grad_in, grad_shifts] = grads;
    return {grad_in, finish_parameter_gradient(grad_shifts, shifts_grad, shifts)};
  }

  // The same shift for runtime plugins, planned in Python: tap 0 of output x reads x + offsets[c][k]
  // along axis k with weights[c][k][t], through the plugin's index tables; the gradient plan
  // (grad_*) may differ (straight-through estimators). `padding` names the plugin in errors.
  static at::Tensor shift_tabled(const at::Tensor& input, const at::Tensor& offsets, at::TensorList tables,
                                 const at::Tensor& weights, const at::Tensor& grad_offsets, at::TensorList grad_tables,
                                 const at::Tensor& grad_weights, c10::string_view padding) {
    check_tabled_input(input);
    const Geometry g(input);
    check_tabled_plan(grad_offsets, grad_weights, grad_tables, g);  // what the backward will read
    check_tabled_plan(offsets, weights, tables, g);
    const Plan plan = Backend::tabled_plan(offsets, weights, g);
    at::Tensor output = at::empty_like(input);
    if (input.numel() > 0) Backend::forward(input, output, plan, TabledPadding{tables, padding});
    return output;
  }

  static std::tuple<at::Tensor, at::Tensor> shift_tabled_backward(
      const at::Tensor& grad_out, const std::optional<at::Tensor>& input, const at::Tensor& offsets,
      at::TensorList tables, const at::Tensor& weights, const at::Tensor& grad_offsets, at::TensorList grad_tables,
      const at::Tensor& grad_weights, c10::string_view padding, bool input_grad, bool weights_grad) {
    check_tabled_input(grad_out);
    const Geometry g(grad_out);
    check_tabled_plan(offsets, weights, tables, g);
    check_tabled_plan(grad_offsets, grad_weights, grad_tables, g);
    auto [grad_in, grad_w] = backward(
        grad_out, input, input_grad, weights_grad, TabledPadding{tables, padding},
        TabledPadding{grad_tables, padding}, [&] { return Backend::tabled_plan(offsets, weights, g); },
        [&] { return Backend::tabled_plan(grad_offsets, grad_weights, g); }, /*same_plans=*/false,
        Derivative::weights);
    return {grad_in, finish_parameter_gradient(grad_w, weights_grad, grad_weights)};
  }

 private:
  // The plan of the compiled interpolation named `interp` with padding `pad`.
  template <class Padding>
  static Plan compiled_plan(const at::Tensor& shifts, const Geometry& g, std::string_view interp,
                            const Padding& pad) {
    std::array<int64_t, kAxes> periods{};
    for (int axis = 0; axis < kAxes; ++axis) periods[axis] = pad.period(g.size[axis]);
    Plan plan;
    with_interp(interp, [&](auto policy) { plan = Backend::template plan<decltype(policy)>(shifts, g, periods); });
    return plan;
  }

  // Both gradients of a shift in one backend call: the input gradient (the adjoint of the forward
  // of the value plan, if `input_grad`) and, if `correlate`, the correlations that the gradient
  // plan's parameter gradient contracts. Plans are made only when needed, once when the two are
  // the same. Returns grad_input (an empty tensor when not asked for) and the parameter gradient
  // in double (undefined when not computed).
  template <class Padding, class MakeValuePlan, class MakeGradPlan>
  static std::pair<at::Tensor, at::Tensor> backward(const at::Tensor& grad_out, const std::optional<at::Tensor>& input,
                                                    bool input_grad, bool correlate, const Padding& value_pad,
                                                    const Padding& grad_pad, MakeValuePlan make_value_plan,
                                                    MakeGradPlan make_grad_plan, bool same_plans, Derivative of) {
    const bool work = grad_out.numel() > 0;
    correlate = correlate && work;
    if (correlate) check_input_for_correlation(input, grad_out);
    at::Tensor grad_in = input_grad ? at::empty_like(input.has_value() ? *input : grad_out)
                                    : at::empty({0}, grad_out.options());
    std::optional<Plan> value_plan, own_grad_plan;
    if (input_grad && work) value_plan.emplace(make_value_plan());
    const Plan* grad_plan = nullptr;
    if (correlate) grad_plan = same_plans && value_plan ? &*value_plan : &own_grad_plan.emplace(make_grad_plan());
    if (!value_plan && !grad_plan) return {grad_in, at::Tensor()};
    const at::Tensor correlations = Backend::backward(grad_out, correlate ? *input : grad_out, grad_in,
                                                      value_plan ? &*value_plan : nullptr, value_pad, grad_plan,
                                                      grad_pad);
    if (!correlate) return {grad_in, at::Tensor()};
    return {grad_in, Backend::contract(*grad_plan, Geometry(grad_out), correlations, of)};
  }

  // The gradient of `parameter` as the op returns it: computed (in its dtype), zeros when asked
  // for but zero (a single tap, or no data), an empty tensor when not asked for.
  static at::Tensor finish_parameter_gradient(const at::Tensor& computed, bool wanted, const at::Tensor& parameter) {
    if (!wanted) return at::empty({0}, parameter.options());
    return computed.defined() ? computed.to(parameter.scalar_type()) : at::zeros_like(parameter);
  }
};

}  // namespace shiftzoo
