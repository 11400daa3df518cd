// CPU backward, fused: one pass over grad_output per plane gives
//  - the input gradient, the exact adjoint of the forward, accumulated in a plane-sized buffer
//    (several outputs read the same input under border/reflect/symmetric), and
//  - the per-tap correlations sum_x grad_out[x] * input[tap(x)]; the weights are constant over a
//    channel, so the shift gradient is a contraction of these few numbers (gradient_contraction.h).
// Each plane writes its own partial sums; they are combined later in a fixed order, so results
// are bit-identical on any thread count.
#include <ATen/Dispatch.h>

#include <vector>

#include "cpu/row_kernels.h"
#include "cpu/shift_kernels.h"

namespace shiftzoo::cpu {
namespace {

template <typename T>
void backward(const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& grad_in,
              const ChannelTapsList* input_grad_taps, const ChannelTapsList* correlate_taps,
              double* correlations) {
  using A = at::opmath_type<T>;
  const Geometry gg(grad_out), gi(input);
  const int64_t D = gg.size[0], H = gg.size[1], W = gg.size[2];
  const T* g_data = grad_out.const_data_ptr<T>();
  const T* in_data = input.const_data_ptr<T>();
  const int64_t corr_per_plane = correlate_taps ? correlate_taps->front().taps() : 0;

  for_each_plane(gg, [&](int64_t n, int64_t c) {
    thread_local std::vector<T> g_scratch, in_scratch;
    thread_local std::vector<A> plane_grad;
    g_scratch.resize(W);
    in_scratch.resize(W);
    A w[kMaxSupport];
    const T* g_plane = plane_ptr(g_data, gg, n, c);
    const T* in_plane = plane_ptr(in_data, gi, n, c);
    if (input_grad_taps) plane_grad.assign(gg.plane_numel(), A(0));
    double* plane_corr = correlations + (n * gg.channels + c) * corr_per_plane;

    for (int64_t z = 0; z < D; ++z) {
      for (int64_t y = 0; y < H; ++y) {
        const T* g_row = contiguous_row(g_plane + z * gg.stride[0] + y * gg.stride[1],
                                        gg.stride[2], W, g_scratch.data());
        if (input_grad_taps) {
          const ChannelTaps& taps = (*input_grad_taps)[c];
          taps.for_each_source_row(z, y, H, [&](int64_t src, int lead) {
            taps.row_weights(lead, w);
            SHIFTZOO_WITH_SUPPORT(taps.kw, adjoint_row, g_row, plane_grad.data() + src * W, w, taps)
          });
        }
        if (correlate_taps) {
          const ChannelTaps& taps = (*correlate_taps)[c];
          taps.for_each_source_row(z, y, H, [&](int64_t src, int lead) {
            const T* in_row = contiguous_row(
                in_plane + (src / H) * gi.stride[0] + (src % H) * gi.stride[1], gi.stride[2], W,
                in_scratch.data());
            SHIFTZOO_WITH_SUPPORT(taps.kw, correlate_row, g_row, in_row, taps, plane_corr + lead * taps.kw)
          });
        }
      }
    }
    if (input_grad_taps) {
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
