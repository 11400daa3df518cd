// The shiftzoo operators, written once for every backend: argument checks, the plans each call
// needs (a gradient nobody asked for costs nothing, a single-tap gradient interpolation has
// derivative zero), and the contraction of tap correlations into parameter gradients. A backend
// (backends/cpu/backend.h) supplies where plans live, its kernels and their launch:
//
//   struct Backend {
//     using Plan = ...;  // what its kernels read (the CPU: a ShiftPlan in host memory)
//     template <class Interp> static Plan plan(shifts, input geometry, sampling, periods);  // rejects non-finite shifts
//     static Plan tabled_plan(offsets, weights, input geometry, sampling);                   // runtime plugins
//     template <class Padding> static void forward(input, output, plan, padding);
//     using InferencePlan = ...;  // what forward_affine reads (the CPU: cached tap tables)
//     template <class Padding> static InferencePlan inference_plan(shifts, input geometry, output geometry,
//         sampling, periods, padding);  // shift_affine's frozen nearest shifts; may be kept between calls
//     template <class Padding> static void forward_affine(input, output, inference plan, pre, post,
//         fill (C,) or none, padding);  // integer and bool data too (core/element_types.h)
//     template <class Padding> static at::Tensor backward(grad_out, input, grad_in,
//         value_plan or null, value_padding, grad_plan or null, grad_padding);  // (C, taps) correlations
//     static at::Tensor contract(plan, input geometry, correlations, Derivative);   // double
//   };
//
// `Padding` is a compiled policy (plugins/padding) or a runtime plugin's TabledPadding.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "backends/core/channel_affine.h"
#include "backends/core/checks.h"
#include "backends/core/contraction.h"
#include "backends/core/geometry.h"
#include "backends/core/plugin_dispatch.h"
#include "backends/core/sampling.h"
#include "backends/core/shift_plan.h"

namespace shiftzoo {

template <class Backend>
class ShiftOps {
  using Plan = typename Backend::Plan;

 public:
  // out[n, c, y] = sum over taps of input[n, c, pad(p - shifts[c])] at the positions p that
  // (stride, crop_begin, crop_end) keep (docs/semantics.md).
  static at::Tensor shift(const at::Tensor& input, const at::Tensor& shifts, c10::string_view padding,
                          c10::string_view interp, c10::string_view grad_interp, at::IntArrayRef stride,
                          at::IntArrayRef crop_begin, at::IntArrayRef crop_end) {
    check_shift_args(input, shifts);
    interp_support(grad_interp);  // checks the name
    const Sampling sampling(stride, crop_begin, crop_end, input.dim() - 2);
    at::Tensor output = sampled_like(input, sampling);
    const Geometry g(input);
    with_padding(padding, [&](auto pad) {
      const Plan plan = compiled_plan(shifts, g, sampling, interp, pad);  // rejects non-finite shifts, even with no data
      if (output.numel() == 0) return;
      if (reads_nothing(input.sizes())) return void(output.zero_());
      Backend::forward(input, output, plan, pad);
    });
    return output;
  }

  // The inference form: a whole-pixel shift (interp nearest) with the per-channel maps pre and
  // post folded in (core/channel_affine.h): out = post(shift(pre(input))), where a tap that reads
  // nothing reads fill[c] (zero without fill). Integer and bool data move as they are (no maps).
  static at::Tensor shift_affine(const at::Tensor& input, const at::Tensor& shifts, c10::string_view padding,
                                 at::IntArrayRef stride, at::IntArrayRef crop_begin, at::IntArrayRef crop_end,
                                 const std::optional<at::Tensor>& pre_scale, const std::optional<at::Tensor>& pre_bias,
                                 double pre_min, double pre_max, const std::optional<at::Tensor>& post_scale,
                                 const std::optional<at::Tensor>& post_bias, double post_min, double post_max,
                                 const std::optional<at::Tensor>& fill) {
    check_shift_args(input, shifts, /*integer_data=*/true);
    const AffineSpec pre = affine_spec(pre_scale, pre_bias, pre_min, pre_max, input, "pre");
    const AffineSpec post = affine_spec(post_scale, post_bias, post_min, post_max, input, "post");
    const std::optional<at::Tensor> fill_values = fill_spec(fill, input);
    const Sampling sampling(stride, crop_begin, crop_end, input.dim() - 2);
    at::Tensor output = sampled_like(input, sampling);
    const Geometry g(input);
    with_padding(padding, [&](auto pad) {
      if (output.numel() == 0 || reads_nothing(input.sizes())) {
        compiled_plan(shifts, g, sampling, "nearest", pad);  // rejects non-finite shifts, even with no data
        if (output.numel() > 0) output.copy_(post_of_fill(post, fill_values, output));
        return;
      }
      // the inference form's shifts are frozen: the backend may keep what it derives from them
      const auto plan = Backend::inference_plan(shifts, g, Geometry(output), sampling, periods_of(pad, g), pad);
      Backend::forward_affine(input, output, plan, pre, post, fill_values, pad);
    });
    return output;
  }

  static std::tuple<at::Tensor, at::Tensor> shift_backward(const at::Tensor& grad_out,
                                                           const std::optional<at::Tensor>& input,
                                                           const at::Tensor& shifts, c10::string_view padding,
                                                           c10::string_view interp, c10::string_view grad_interp,
                                                           at::IntArrayRef stride, at::IntArrayRef crop_begin,
                                                           at::IntArrayRef crop_end, at::IntArrayRef input_size,
                                                           bool input_grad, bool shifts_grad) {
    check_shift_args(grad_out, shifts);
    const Sampling sampling(stride, crop_begin, crop_end, grad_out.dim() - 2);
    check_backward_sizes(grad_out, input, input_size, sampling);
    // A single-tap gradient interpolation (nearest) has derivative zero: no work at all.
    const bool correlate = shifts_grad && interp_support(grad_interp) > 1;
    std::pair<at::Tensor, at::Tensor> grads;
    with_padding(padding, [&](auto pad) {
      auto plan_of = [&](std::string_view name) {
        return [&, name](const Geometry& g) { return compiled_plan(shifts, g, sampling, name, pad); };
      };
      grads = backward(grad_out, input, input_size, sampling, input_grad, correlate, pad, pad, plan_of(interp),
                       plan_of(grad_interp), /*same_plans=*/grad_interp == interp, Derivative::shifts);
    });
    auto& [grad_in, grad_shifts] = grads;
    return {grad_in, finish_parameter_gradient(grad_shifts, shifts_grad, shifts)};
  }

  // The same shift for runtime plugins, planned in Python: tap 0 of output y reads
  // stride * y + offsets[c][k] along axis k with weights[c][k][t], through the plugin's index
  // tables; the gradient plan (grad_*) may differ (straight-through estimators). `padding` names
  // the plugin in errors.
  static at::Tensor shift_tabled(const at::Tensor& input, const at::Tensor& offsets, at::TensorList tables,
                                 const at::Tensor& weights, const at::Tensor& grad_offsets, at::TensorList grad_tables,
                                 const at::Tensor& grad_weights, c10::string_view padding, at::IntArrayRef stride,
                                 at::IntArrayRef crop_begin, at::IntArrayRef crop_end) {
    check_tabled_input(input);
    const Sampling sampling(stride, crop_begin, crop_end, input.dim() - 2);
    const Geometry g(input);
    check_tabled_plan(grad_offsets, grad_weights, grad_tables, g, sampling);  // what the backward will read
    check_tabled_plan(offsets, weights, tables, g, sampling);
    const Plan plan = Backend::tabled_plan(offsets, weights, g, sampling);
    at::Tensor output = sampled_like(input, sampling);
    if (output.numel() == 0) return output;
    if (reads_nothing(input.sizes())) return output.zero_();
    Backend::forward(input, output, plan, TabledPadding{tables, padding});
    return output;
  }

  static std::tuple<at::Tensor, at::Tensor> shift_tabled_backward(
      const at::Tensor& grad_out, const std::optional<at::Tensor>& input, const at::Tensor& offsets,
      at::TensorList tables, const at::Tensor& weights, const at::Tensor& grad_offsets, at::TensorList grad_tables,
      const at::Tensor& grad_weights, c10::string_view padding, at::IntArrayRef stride, at::IntArrayRef crop_begin,
      at::IntArrayRef crop_end, at::IntArrayRef input_size, bool input_grad, bool weights_grad) {
    check_tabled_input(grad_out);
    const Sampling sampling(stride, crop_begin, crop_end, grad_out.dim() - 2);
    check_backward_sizes(grad_out, input, input_size, sampling);
    auto plan_of = [&](const at::Tensor& offs, const at::Tensor& w, at::TensorList t) {
      return [&offs, &w, t, &sampling](const Geometry& g) {
        check_tabled_plan(offs, w, t, g, sampling);
        return Backend::tabled_plan(offs, w, g, sampling);
      };
    };
    auto [grad_in, grad_w] = backward(grad_out, input, input_size, sampling, input_grad, weights_grad,
                                      TabledPadding{tables, padding}, TabledPadding{grad_tables, padding},
                                      plan_of(offsets, weights, tables), plan_of(grad_offsets, grad_weights, grad_tables),
                                      /*same_plans=*/false, Derivative::weights);
    return {grad_in, finish_parameter_gradient(grad_w, weights_grad, grad_weights)};
  }

 private:
  // The plan of the compiled interpolation named `interp` with padding `pad`.
  template <class Padding>
  static Plan compiled_plan(const at::Tensor& shifts, const Geometry& g, const Sampling& sampling,
                            std::string_view interp, const Padding& pad) {
    Plan plan;
    with_interp(interp, [&](auto policy) {
      plan = Backend::template plan<decltype(policy)>(shifts, g, sampling, periods_of(pad, g));
    });
    return plan;
  }

  // Per axis, the period of `pad` on the input's length (0: saturates).
  template <class Padding>
  static std::array<int64_t, kAxes> periods_of(const Padding& pad, const Geometry& g) {
    std::array<int64_t, kAxes> periods{};
    for (int axis = 0; axis < kAxes; ++axis) periods[axis] = pad.period(g.size[axis]);
    return periods;
  }

  // One of shift_affine's maps, checked: scale and bias (C,) floating, on the input's device,
  // both or neither; bounds lo <= hi; none for integer data.
  static AffineSpec affine_spec(const std::optional<at::Tensor>& scale, const std::optional<at::Tensor>& bias,
                                double lo, double hi, const at::Tensor& input, const char* which) {
    TORCH_CHECK_VALUE(!is_integer_data(input.scalar_type()) ||
                          (!scale.has_value() && !bias.has_value() && std::isinf(lo) && lo < 0 && std::isinf(hi) && hi > 0),
                      "shiftzoo.shift_affine: ", input.scalar_type(), " data moves as it is: the ", which,
                      " map (scale, bias, bounds) needs a floating-point input");
    TORCH_CHECK_VALUE(scale.has_value() == bias.has_value(), "shiftzoo.shift_affine: ", which,
                      "_scale and ", which, "_bias must be given together");
    for (const auto* t : {&scale, &bias}) {
      if (!t->has_value()) continue;
      TORCH_CHECK_VALUE((*t)->dim() == 1 && (*t)->size(0) == input.size(1) && at::isFloatingType((*t)->scalar_type()) &&
                            (*t)->device() == input.device(),
                        "shiftzoo.shift_affine: expected ", which, " scale and bias of shape (", input.size(1),
                        ",), floating, on ", input.device(), ", got ", (*t)->scalar_type(), " ", (*t)->sizes(), " on ",
                        (*t)->device());
    }
    TORCH_CHECK_VALUE(!(lo > hi), "shiftzoo.shift_affine: ", which, "_min ", lo, " exceeds ", which, "_max ", hi);
    return {scale, bias, lo, hi};
  }

  // shift_affine's fill, checked: (C,) of the input's dtype, on its device; contiguous for the kernels.
  static std::optional<at::Tensor> fill_spec(const std::optional<at::Tensor>& fill, const at::Tensor& input) {
    if (!fill.has_value()) return std::nullopt;
    TORCH_CHECK_VALUE(fill->dim() == 1 && fill->size(0) == input.size(1) && fill->scalar_type() == input.scalar_type() &&
                          fill->device() == input.device(),
                      "shiftzoo.shift_affine: expected fill of shape (", input.size(1), ",), ", input.scalar_type(),
                      ", on ", input.device(), ", got ", fill->scalar_type(), " ", fill->sizes(), " on ", fill->device());
    return fill->contiguous();
  }

  // Whether the input has an empty spatial axis: then every tap of every output reads nothing
  // (the padding has no index to give), whatever the padding.
  static bool reads_nothing(at::IntArrayRef input_sizes) {
    for (size_t k = 2; k < input_sizes.size(); ++k)
      if (input_sizes[k] == 0) return true;
    return false;
  }

  // post(fill) of every channel (fill: zero where absent), broadcast to `output`'s shape: what
  // shift_affine gives where every tap reads nothing. (In double: the kernels' fma rounds once.)
  static at::Tensor post_of_fill(const AffineSpec& post, const std::optional<at::Tensor>& fill,
                                 const at::Tensor& output) {
    at::Tensor value = fill ? *fill : at::zeros({output.size(1)}, output.options());
    if (!is_integer_data(output.scalar_type())) {
      value = value.to(at::kDouble);
      if (post.scale) value = value.mul(post.scale->to(at::kDouble)).add(post.bias->to(at::kDouble));
      value = value.clamp(post.lo, post.hi).to(output.scalar_type());
    }
    std::vector<int64_t> shape(output.dim(), 1);
    shape[1] = output.size(1);
    return value.view(shape).expand(output.sizes());
  }

  // A new tensor for the sampled positions of `input`: its very strides where every position is
  // kept, its axes' order in memory otherwise (empty_in_order_of).
  static at::Tensor sampled_like(const at::Tensor& input, const Sampling& sampling) {
    if (sampling.unit()) return at::empty_like(input);
    return empty_in_order_of(sampling.output_sizes(input.sizes()), input);
  }

  // A dense tensor of `sizes` (like's rank and options) in like's memory format where it has one
  // (channels_last, channels_last_3d), otherwise with its axes in memory in the order of like's,
  // outermost first (ties in axis order): channels-inner stays channels-inner in every rank, 1D
  // included, as empty_like keeps it where the sizes agree.
  static at::Tensor empty_in_order_of(at::IntArrayRef sizes, const at::Tensor& like) {
    const at::MemoryFormat format = like.suggest_memory_format();
    if (format != at::MemoryFormat::Contiguous) return at::empty(sizes, like.options().memory_format(format));
    const int64_t d = like.dim();
    std::vector<int64_t> order(d), permuted(d), back(d);
    std::iota(order.begin(), order.end(), int64_t{0});
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return like.stride(a) > like.stride(b); });
    for (int64_t i = 0; i < d; ++i) {
      permuted[i] = sizes[order[i]];
      back[order[i]] = i;
    }
    return at::empty(permuted, like.options()).permute(back);
  }

  // The backward's sizes agree: grad_output has the sampled sizes of input_size, as has the input.
  static void check_backward_sizes(const at::Tensor& grad_out, const std::optional<at::Tensor>& input,
                                   at::IntArrayRef input_size, const Sampling& sampling) {
    TORCH_CHECK_VALUE(static_cast<int64_t>(input_size.size()) == grad_out.dim() && input_size[0] == grad_out.size(0) &&
                          input_size[1] == grad_out.size(1),
                      "shiftzoo: input_size ", input_size, " does not fit grad_output ", grad_out.sizes());
    for (int64_t n : input_size) TORCH_CHECK_VALUE(n >= 0, "shiftzoo: input_size ", input_size, " is negative");
    TORCH_CHECK_VALUE(sampling.output_sizes(input_size) == grad_out.sizes(), "shiftzoo: grad_output ", grad_out.sizes(),
                      " is not the sampled size of input_size ", input_size);
    TORCH_CHECK_VALUE(!input.has_value() || input->sizes() == input_size, "shiftzoo: input ", input->sizes(),
                      " does not have input_size ", input_size);
  }

  // Both gradients of a shift in one backend call: the input gradient (the adjoint of the forward
  // of the value plan, if `input_grad`) and, if `correlate`, the correlations that the gradient
  // plan's parameter gradient contracts. Plans (make_*_plan(input geometry)) are made only when
  // needed, once when the two are the same. Returns grad_input (an empty tensor when not asked
  // for) and the parameter gradient in double (undefined when not computed).
  template <class Padding, class MakeValuePlan, class MakeGradPlan>
  static std::pair<at::Tensor, at::Tensor> backward(const at::Tensor& grad_out, const std::optional<at::Tensor>& input,
                                                    at::IntArrayRef input_size, const Sampling& sampling,
                                                    bool input_grad, bool correlate, const Padding& value_pad,
                                                    const Padding& grad_pad, MakeValuePlan make_value_plan,
                                                    MakeGradPlan make_grad_plan, bool same_plans, Derivative of) {
    // nothing flows where no output exists, or where the input has an empty axis (every tap reads
    // nothing: both gradients are zero)
    const bool work = grad_out.numel() > 0 && !reads_nothing(input_size);
    correlate = correlate && work;
    if (correlate) check_input_for_correlation(input, grad_out);
    at::Tensor grad_in = at::empty({0}, grad_out.options());
    if (input_grad) {
      const at::Tensor& like = input.has_value() ? *input : grad_out;
      grad_in = sampling.unit() ? at::empty_like(like) : empty_in_order_of(input_size, like);
      if (!work) grad_in.zero_();  // no output read any input
    }
    if (!(input_grad && work) && !correlate) return {grad_in, at::Tensor()};
    const Geometry g(input_grad ? grad_in : *input);
    std::optional<Plan> value_plan, own_grad_plan;
    if (input_grad) value_plan.emplace(make_value_plan(g));
    const Plan* grad_plan = nullptr;
    if (correlate) grad_plan = same_plans && value_plan ? &*value_plan : &own_grad_plan.emplace(make_grad_plan(g));
    const at::Tensor correlations = Backend::backward(grad_out, correlate ? *input : grad_in, grad_in,
                                                      value_plan ? &*value_plan : nullptr, value_pad, grad_plan,
                                                      grad_pad);
    if (!correlate) return {grad_in, at::Tensor()};
    return {grad_in, Backend::contract(*grad_plan, g, correlations, of)};
  }

  // The gradient of `parameter` as the op returns it: computed (in its dtype), zeros when asked
  // for but zero (a single tap, or no data), an empty tensor when not asked for.
  static at::Tensor finish_parameter_gradient(const at::Tensor& computed, bool wanted, const at::Tensor& parameter) {
    if (!wanted) return at::empty({0}, parameter.options());
    return computed.defined() ? computed.to(parameter.scalar_type()) : at::zeros_like(parameter);
  }
};

}  // namespace shiftzoo
