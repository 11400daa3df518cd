// CPU backward, in the best instruction set this machine has (backward_plane.inc). The input
// gradient is the forward kernel run on grad_output with the reversed taps, plus what the padding
// owes; it runs together with the tap correlations, plane by plane on planes, row by row for
// channels-inner layouts (channels_inner.inc). Each plane writes its own partial sums, combined
// later in a fixed order, so results are bit-identical on any thread count.
#include <ATen/Dispatch.h>

#include <optional>
#include <type_traits>
#include <vector>

#include "cpu/isa.h"
#include "cpu/shift_kernels.h"

namespace shiftzoo::cpu {
#define SHIFTZOO_PLANE_KERNELS "cpu/backward_plane.inc"
#include "cpu/per_isa.inc"

namespace {

// What the padding owes plane (n, c) of the input gradient (see owe_padding_plane).
template <typename T>
void owe_padding(const T* g_plane, T* gin_plane, const Geometry& gg, const Geometry& gd, const ChannelTaps& taps,
                 const at::opmath_type<T>* weights, Scratch& scratch) {
  if constexpr (std::is_same_v<T, at::opmath_type<T>>) {
    SHIFTZOO_PER_ISA(owe_padding_plane<T>)(g_plane, gin_plane, gg, gd, taps, weights);
  } else {  // half types: added in float
    SHIFTZOO_PER_ISA(owe_padding_plane_in_float<T>)(g_plane, gin_plane, gg, gd, taps, weights, scratch);
  }
}

template <typename T>
void backward(const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& grad_in,
              const InputGradTaps* input_grad, const ChannelTapsList* correlate_taps, double* correlations) {
  const Geometry gg(grad_out), gi(input);
  const Geometry gd(input_grad ? grad_in : grad_out);
  const T* g_data = grad_out.const_data_ptr<T>();
  const T* in_data = input.const_data_ptr<T>();
  T* gin_data = input_grad ? grad_in.mutable_data_ptr<T>() : nullptr;
  const int64_t corr_per_plane = correlate_taps ? correlate_taps->front().taps() : 0;
  using A = at::opmath_type<T>;
  const bool inner = channels_inner(gg) && (!input_grad || channels_inner(gd)) &&
                     (!correlate_taps || channels_inner(gi));
  // The input gradient: the forward of grad_out with the reversed taps (zeros padding), plus
  // what the padding owes, added per plane (in float for half types).
  const ChannelTapsList* reversed = input_grad ? &input_grad->reversed() : nullptr;
  const ChannelTapsList* owing = input_grad ? input_grad->owing() : nullptr;
  const std::vector<A> owed_weights = owing ? owing->weights_as<A>() : std::vector<A>();
  auto finish_input_grad = [&](int64_t n, int64_t c, Scratch& scratch) {
    if (!owing) return;
    owe_padding(plane_ptr(g_data, gg, n, c), plane_ptr(gin_data, gd, n, c), gg, gd, (*owing)[c],
                owed_weights.data() + c * owing->front().taps(), scratch);
  };
  if (reversed && !correlate_taps) {  // the input gradient on its own
    shift_forward_kernel(grad_out, grad_in, *reversed);
    if (owing) for_each_plane(gg, finish_input_grad);
  }
  if (!correlate_taps) return;
  if (inner) {  // channels_last and kin: row by row, in parallel over batch items
    // The input gradient goes with the correlations where there are items for every thread;
    // with fewer, on its own first, in parallel over rows.
    const bool fused = reversed && gg.batch >= at::get_num_threads();
    if (reversed && !fused) shift_forward_kernel(grad_out, grad_in, *reversed);
    const auto items_fn = SHIFTZOO_PER_ISA(backward_items_channels_inner<T>);
    const std::vector<A> reversed_weights = fused ? reversed->weights_as<A>() : std::vector<A>();
    at::parallel_for(0, gg.batch, 1, [&](int64_t begin, int64_t end) {
      items_fn(g_data, in_data, gin_data, gg, gi, gd, fused ? &*reversed : nullptr, reversed_weights.data(),
               *correlate_taps, correlations, begin, end);
    });
    if (owing) for_each_plane(gg, finish_input_grad);
    return;
  }
  // Planes: plane by plane, the input gradient (if asked for) and then the correlations, which
  // find grad_out's plane in cache. Half types correlate in float (correlate_plane_in_float).
  const auto correlate_fn = [] {
    if constexpr (std::is_same_v<T, A>) return SHIFTZOO_PER_ISA(correlate_plane<T>);
    else return SHIFTZOO_PER_ISA(correlate_plane_in_float<T>);
  }();
  const PlaneForward<T> plane_forward = plane_forward_kernel<T>();
  for_each_plane(gg, [&](int64_t n, int64_t c, Scratch& scratch) {
    const T* g_plane = plane_ptr(g_data, gg, n, c);
    if (reversed) {
      plane_forward(g_plane, plane_ptr(gin_data, gd, n, c), gg, gd, (*reversed)[c], scratch);
      finish_input_grad(n, c, scratch);
    }
    correlate_fn(g_plane, plane_ptr(in_data, gi, n, c), gg, gi, (*correlate_taps)[c],
                 correlations + (n * gg.channels + c) * corr_per_plane, scratch);
  });
}

}  // namespace

void shift_backward_kernel(const at::Tensor& grad_output, const at::Tensor& input,
                           const at::Tensor& grad_input, const InputGradTaps* input_grad,
                           const ChannelTapsList* correlate_taps, double* correlations) {
  if (grad_output.numel() == 0) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_output.scalar_type(),
                                  "shiftzoo.shift_backward", [&] {
    backward<scalar_t>(grad_output, input, grad_input, input_grad, correlate_taps, correlations);
  });
}

}  // namespace shiftzoo::cpu
