// CPU backward, in the best instruction set this machine has (backward_plane.inc). The input
// gradient is the forward kernel run on grad_output with the reversed taps, plus what the padding
// owes (nearest on planes: a direct copy in the plane kernel). The tap correlations go plane by
// plane (channels-inner layouts: row by row per batch item); each plane writes its own partial
// sums, combined later in a fixed order, so results are bit-identical on any thread count.
#include <ATen/Dispatch.h>

#include <type_traits>
#include <vector>

#include "cpu/isa.h"
#include "cpu/shift_kernels.h"

namespace shiftzoo::cpu {
#define SHIFTZOO_PLANE_KERNELS "cpu/backward_plane.inc"
#include "cpu/per_isa.inc"

namespace {

template <typename T>
void backward(const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& grad_in,
              const ChannelTapsList* input_grad_taps, const ChannelTapsList* correlate_taps,
              double* correlations) {
  const Geometry gg(grad_out), gi(input);
  const Geometry gd(input_grad_taps ? grad_in : grad_out);
  const T* g_data = grad_out.const_data_ptr<T>();
  const T* in_data = input.const_data_ptr<T>();
  T* gin_data = input_grad_taps ? grad_in.mutable_data_ptr<T>() : nullptr;
  const int64_t corr_per_plane = correlate_taps ? correlate_taps->front().taps() : 0;
  // Nearest on planes: a direct adjoint in the plane kernel (half types: on float copies of the
  // planes, so dense). Every other input gradient: the forward of grad_out with the reversed
  // taps (zeros padding), plus what the padding owes, added per plane (in float for half types):
  // channels-inner layouts and several taps then run at the forward's speed.
  using A = at::opmath_type<T>;
  const bool inner = channels_inner(gg) && (!input_grad_taps || channels_inner(gd)) &&
                     (!correlate_taps || channels_inner(gi));
  const bool direct = input_grad_taps && input_grad_taps->front().taps() == 1 && !inner &&
                      (!std::is_same_v<T, A> || (dense_rows(gg) && dense_rows(gd)));
  if (input_grad_taps && !direct) {
    shift_forward_kernel(grad_out, grad_in, ChannelTapsList(reversed_plan(*input_grad_taps), gg, zeros_source(gg)));
    bool padding_owes = false;
    for (int64_t c = 0; c < gg.channels && !padding_owes; ++c) padding_owes = (*input_grad_taps)[c].reads_padding(gg);
    if (padding_owes) {
      const auto weights = input_grad_taps->weights_as<A>();
      const int64_t taps = input_grad_taps->front().taps();
      for_each_plane(gg, [&](int64_t n, int64_t c, Scratch& scratch) {
        const T* g = plane_ptr(g_data, gg, n, c);
        T* gin = plane_ptr(gin_data, gd, n, c);
        if constexpr (std::is_same_v<T, A>) {
          SHIFTZOO_PER_ISA(owe_padding_plane<T>)(g, gin, gg, gd, (*input_grad_taps)[c], weights.data() + c * taps);
        } else {
          SHIFTZOO_PER_ISA(owe_padding_plane_in_float<T>)(g, gin, gg, gd, (*input_grad_taps)[c],
                                                          weights.data() + c * taps, scratch);
        }
      });
    }
    input_grad_taps = nullptr;  // done
  }
  if (inner) {  // channels_last and kin (their input gradient is done above): the correlations
    if (correlate_taps) {
      const auto corr_fn = SHIFTZOO_PER_ISA(correlate_item_channels_inner<T>);
      at::parallel_for(0, gg.batch, 1, [&](int64_t begin, int64_t end) {
        for (int64_t n = begin; n < end; ++n)
          corr_fn(g_data, in_data, gg, gi, *correlate_taps, correlations + n * gg.channels * corr_per_plane, n);
      });
    }
    return;
  }
  if (!input_grad_taps && !correlate_taps) return;
  // (half types: each plane in float, see backward_plane_in_float)
  const auto plane_fn = [] {
    if constexpr (std::is_same_v<T, at::opmath_type<T>>) return SHIFTZOO_PER_ISA(backward_plane<T>);
    else return SHIFTZOO_PER_ISA(backward_plane_in_float<T>);
  }();
  for_each_plane(gg, [&](int64_t n, int64_t c, Scratch& scratch) {
    plane_fn(plane_ptr(g_data, gg, n, c), plane_ptr(in_data, gi, n, c),
             gin_data ? plane_ptr(gin_data, gd, n, c) : nullptr, gg, gi, gd,
             input_grad_taps ? &(*input_grad_taps)[c] : nullptr,
             correlate_taps ? &(*correlate_taps)[c] : nullptr,
             correlations + (n * gg.channels + c) * corr_per_plane, scratch);
  });
}

}  // namespace

void shift_backward_kernel(const at::Tensor& grad_output, const at::Tensor& input,
                           const at::Tensor& grad_input, const ChannelTapsList* input_grad_taps,
                           const ChannelTapsList* correlate_taps, double* correlations) {
  if (grad_output.numel() == 0) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_output.scalar_type(),
                                  "shiftzoo.shift_backward", [&] {
    backward<scalar_t>(grad_output, input, grad_input, input_grad_taps, correlate_taps, correlations);
  });
}

}  // namespace shiftzoo::cpu
