// Autograd of the compiled-plugin ops, in C++ (the Autograd dispatch key, as torchvision does for
// its ops): the engine calls the backward op directly, without a Python frame and pytree pass per
// call, which costs a forward+backward ~80 us less. The backward is itself an op (shift_backward),
// so torch.compile and torch.export still see one node per call; fake kernels stay in Python
// (shiftzoo/_ops.py). The runtime-plugin ops keep their Python autograd (shiftzoo/_ops.py).
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <tuple>

namespace shiftzoo {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor call_shift(const at::Tensor& input, const at::Tensor& shifts, c10::string_view padding,
                      c10::string_view interp, c10::string_view grad_interp, at::IntArrayRef stride,
                      at::IntArrayRef crop_begin, at::IntArrayRef crop_end) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("shiftzoo::shift", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&, c10::string_view,
                                               c10::string_view, c10::string_view, at::IntArrayRef, at::IntArrayRef,
                                               at::IntArrayRef)>();
  return op.call(input, shifts, padding, interp, grad_interp, stride, crop_begin, crop_end);
}

std::tuple<at::Tensor, at::Tensor> call_shift_backward(const at::Tensor& grad_out, const std::optional<at::Tensor>& input,
                                                       const at::Tensor& shifts, c10::string_view padding,
                                                       c10::string_view interp, c10::string_view grad_interp,
                                                       at::IntArrayRef stride, at::IntArrayRef crop_begin,
                                                       at::IntArrayRef crop_end, c10::SymIntArrayRef input_size,
                                                       bool input_grad, bool shifts_grad) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("shiftzoo::shift_backward", "")
          .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const std::optional<at::Tensor>&,
                                                    const at::Tensor&, c10::string_view, c10::string_view,
                                                    c10::string_view, at::IntArrayRef, at::IntArrayRef,
                                                    at::IntArrayRef, c10::SymIntArrayRef, bool, bool)>();
  return op.call(grad_out, input, shifts, padding, interp, grad_interp, stride, crop_begin, crop_end, input_size,
                 input_grad, shifts_grad);
}

class Shift : public torch::autograd::Function<Shift> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& shifts,
                            c10::string_view padding, c10::string_view interp, c10::string_view grad_interp,
                            at::IntArrayRef stride, at::IntArrayRef crop_begin, at::IntArrayRef crop_end) {
    ctx->saved_data["padding"] = std::string(padding);
    ctx->saved_data["interp"] = std::string(interp);
    ctx->saved_data["grad_interp"] = std::string(grad_interp);
    ctx->saved_data["stride"] = stride.vec();
    ctx->saved_data["crop_begin"] = crop_begin.vec();
    ctx->saved_data["crop_end"] = crop_end.vec();
    ctx->saved_data["input_size"] = input.sym_sizes();  // symbolic under torch.compile
    // The input is kept only when the shift gradient will need it (GroupedShift keeps nothing).
    ctx->save_for_backward({shifts.requires_grad() ? input : at::Tensor(), shifts});
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_shift(input, shifts, padding, interp, grad_interp, stride, crop_begin, crop_end);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const bool input_grad = ctx->needs_input_grad(0), shifts_grad = ctx->needs_input_grad(1);
    const std::optional<at::Tensor> input = saved[0].defined() ? std::optional<at::Tensor>(saved[0]) : std::nullopt;
    auto& data = ctx->saved_data;
    auto [grad_input, grad_shifts] = call_shift_backward(
        grads[0], input, saved[1], data["padding"].toStringRef(), data["interp"].toStringRef(),
        data["grad_interp"].toStringRef(), data["stride"].toIntVector(), data["crop_begin"].toIntVector(),
        data["crop_end"].toIntVector(), data["input_size"].toSymIntVector(), input_grad, shifts_grad);
    return {input_grad ? grad_input : at::Tensor(), shifts_grad ? grad_shifts : at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// shift_backward is differentiable only in name: differentiating it again raises.
class ShiftBackward : public torch::autograd::Function<ShiftBackward> {
 public:
  static variable_list forward(AutogradContext*, const at::Tensor& grad_out, const std::optional<at::Tensor>& input,
                               const at::Tensor& shifts, c10::string_view padding, c10::string_view interp,
                               c10::string_view grad_interp, at::IntArrayRef stride, at::IntArrayRef crop_begin,
                               at::IntArrayRef crop_end, c10::SymIntArrayRef input_size, bool input_grad,
                               bool shifts_grad) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [grad_input, grad_shifts] = call_shift_backward(grad_out, input, shifts, padding, interp, grad_interp, stride,
                                                         crop_begin, crop_end, input_size, input_grad, shifts_grad);
    return {grad_input, grad_shifts};
  }

  static variable_list backward(AutogradContext*, variable_list) {
    TORCH_CHECK(false,
                "shiftzoo.shift: double backward (differentiating the gradient again, e.g. "
                "create_graph=True followed by another backward) is not supported");
  }
};

at::Tensor shift_autograd(const at::Tensor& input, const at::Tensor& shifts, c10::string_view padding,
                          c10::string_view interp, c10::string_view grad_interp, at::IntArrayRef stride,
                          at::IntArrayRef crop_begin, at::IntArrayRef crop_end) {
  return Shift::apply(input, shifts, padding, interp, grad_interp, stride, crop_begin, crop_end);
}

std::tuple<at::Tensor, at::Tensor> shift_backward_autograd(const at::Tensor& grad_out,
                                                           const std::optional<at::Tensor>& input,
                                                           const at::Tensor& shifts, c10::string_view padding,
                                                           c10::string_view interp, c10::string_view grad_interp,
                                                           at::IntArrayRef stride, at::IntArrayRef crop_begin,
                                                           at::IntArrayRef crop_end, c10::SymIntArrayRef input_size,
                                                           bool input_grad, bool shifts_grad) {
  const variable_list out = ShiftBackward::apply(grad_out, input, shifts, padding, interp, grad_interp, stride,
                                                 crop_begin, crop_end, input_size, input_grad, shifts_grad);
  return {out[0], out[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(shiftzoo, Autograd, m) {
  m.impl("shift", &shift_autograd);
  m.impl("shift_backward", &shift_backward_autograd);
}

}  // namespace shiftzoo
