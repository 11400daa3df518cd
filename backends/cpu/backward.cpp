// CPU backward, in the best instruction set this machine has (kernel_table.h). The input gradient
// is the forward kernel run on grad_output with the reversed taps, plus the padding term: on its
// own before the tap correlations, or together with them (large planes plane by plane,
// channels-inner layouts row by row). Each plane writes its own partial sums, combined later in a
// fixed order, so results are bit-identical on any thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/zeros.h>

#include <optional>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/launch.h"
#include "backends/cpu/plane_loop.h"

namespace shiftzoo::cpu {
namespace {

// Planes larger than this take their input gradient and correlations plane by plane (backward_typed).
constexpr int64_t kInterleavedPlane = 2048;

template <typename T>
void backward_typed(const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& grad_in,
                    const AdjointTables* input_grad, const TapTables* correlate, double* correlations) {
  using A = at::opmath_type<T>;
  const Kernels<T>& k = kernels<T>();
  const Geometry grad_geom(grad_out), in_geom(input);
  const Geometry grad_in_geom(input_grad ? grad_in : grad_out);
  const T* g_data = grad_out.const_data_ptr<T>();
  const T* in_data = input.const_data_ptr<T>();
  T* gin_data = input_grad ? grad_in.mutable_data_ptr<T>() : nullptr;
  const int64_t corr_per_plane = correlate ? correlate->front().taps() : 0;
  // The input gradient where the shift samples: a scatter through the forward's taps, on its own.
  if (const TapTables* scatter = input_grad ? input_grad->scatter_taps() : nullptr) {
    const std::vector<A> weights = scatter->weights_as<A>();
    if (channels_inner(grad_geom) && channels_inner(grad_in_geom)) {
      at::parallel_for(0, grad_geom.batch, 1, [&](int64_t begin, int64_t end) {
        k.scatter_items_channels_inner(g_data, gin_data, grad_geom, grad_in_geom, *scatter, weights.data(), begin, end);
      });
    } else {
      const int64_t per_channel = scatter->front().taps();
      for_each_plane(grad_geom, [&](int64_t n, int64_t c, Scratch& scratch) {
        k.scatter_plane(plane_ptr(g_data, grad_geom, n, c), plane_ptr(gin_data, grad_in_geom, n, c), grad_geom,
                        grad_in_geom, (*scatter)[c], weights.data() + c * per_channel, scratch);
      });
    }
  }
  // Otherwise the input gradient is the forward of grad_out with the reversed taps (zeros
  // padding), plus the padding term, added per plane (in float for half types).
  const TapTables* reversed = input_grad ? input_grad->reversed() : nullptr;
  const TapTables* padding_taps = input_grad ? input_grad->padding_taps() : nullptr;
  const bool inner = channels_inner(grad_geom) && (!reversed || channels_inner(grad_in_geom)) &&
                     (!correlate || channels_inner(in_geom));
  const std::vector<A> padding_weights = padding_taps ? padding_taps->weights_as<A>() : std::vector<A>();
  auto add_padding_term = [&](int64_t n, int64_t c, Scratch& scratch) {
    if (!padding_taps) return;
    k.add_padding_term(plane_ptr(g_data, grad_geom, n, c), plane_ptr(gin_data, grad_in_geom, n, c), grad_geom,
                       grad_in_geom, (*padding_taps)[c], padding_weights.data() + c * padding_taps->front().taps(),
                       scratch);
  };
  // Small planes correlate by their classes' translations (small_planes.h), and so does a
  // single-tap input gradient (a nearest forward's) with them, plane by plane.
  std::optional<SmallPlaneTables<T>> small_correlate, small_input_grad;
  if (correlate && !inner && small_correlate.emplace(*correlate, in_geom, grad_geom).empty()) small_correlate.reset();
  if (small_correlate && reversed && reversed->front().taps() == 1 &&
      small_input_grad.emplace(*reversed, grad_geom, grad_in_geom).empty())
    small_input_grad.reset();
  // The input gradient on its own first (the forward kernels' pass with the reversed taps), or
  // together with the correlations: in channels-inner layouts row by row where there are items
  // for every thread; on large planes plane by plane, for grad_out's plane in cache (measured:
  // 80x80 planes gain ~10 %, while on 7x7 to 40x40 planes interleaving the plane kernels took
  // 1.1-1.4x the two separate passes); on small planes by the translations (a masked copy and
  // the correlations' masked dot products of each plane together: grad_out is read once).
  const bool fused = reversed && correlate &&
                     (inner ? grad_geom.batch >= at::get_num_threads()
                            : small_input_grad.has_value() || grad_geom.plane_numel() > kInterleavedPlane);
  if (reversed && !fused) {
    forward(grad_out, grad_in, *reversed);
    if (padding_taps) for_each_plane(grad_geom, add_padding_term);
  }
  if (!correlate) return;
  if (inner) {  // channels_last and kin: row by row, in parallel over batch items
    const std::vector<A> reversed_weights = fused ? reversed->weights_as<A>() : std::vector<A>();
    at::parallel_for(0, grad_geom.batch, 1, [&](int64_t begin, int64_t end) {
      k.backward_items_channels_inner(g_data, in_data, gin_data, grad_geom, in_geom, grad_in_geom,
                                      fused ? reversed : nullptr, reversed_weights.data(), *correlate, correlations,
                                      begin, end);
    });
    if (fused && padding_taps) for_each_plane(grad_geom, add_padding_term);
    return;
  }
  if (small_correlate) {  // small planes, by the translations (the input gradient's where fused)
    parallel_for_planes(grad_geom, [&](int64_t begin, int64_t end) {
      k.backward_translated_planes(g_data, in_data, gin_data, grad_geom, in_geom, grad_in_geom,
                                   small_input_grad ? &*small_input_grad : nullptr,
                                   small_input_grad ? reversed->reading_class().data() : nullptr, *small_correlate,
                                   correlate->reading_class().data(), static_cast<int>(corr_per_plane), correlations,
                                   begin, end);
    });
    if (fused && padding_taps) for_each_plane(grad_geom, add_padding_term);
    return;
  }
  // Planes: the correlations plane by plane (after the plane's input gradient where fused).
  for_each_plane(grad_geom, [&](int64_t n, int64_t c, Scratch& scratch) {
    const T* g_plane = plane_ptr(g_data, grad_geom, n, c);
    if (fused) {
      k.forward_plane(g_plane, plane_ptr(gin_data, grad_in_geom, n, c), grad_geom, grad_in_geom, (*reversed)[c],
                      reversed->weights(c), scratch);
      add_padding_term(n, c, scratch);
    }
    k.correlate_plane(g_plane, plane_ptr(in_data, in_geom, n, c), grad_geom, in_geom, (*correlate)[c],
                      correlations + (n * grad_geom.channels + c) * corr_per_plane, scratch);
  });
}

}  // namespace

at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& grad_input,
                    const AdjointTables* input_grad, const TapTables* correlate) {
  const Geometry g(grad_output);
  const int64_t taps = correlate ? correlate->front().taps() : 0;
  const int64_t per_batch = g.channels * taps;
  // [n][c][tap]; zeroed and summed over the batch in parallel (32x1024 planes of 4 taps are a
  // megabyte: one thread clearing and summing it kept the other waiting)
  const at::Tensor per_item = at::zeros({g.batch, per_batch}, at::kDouble);
  double* items = per_item.mutable_data_ptr<double>();
  if (grad_output.numel() > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_output.scalar_type(), "shiftzoo.shift_backward", [&] {
      backward_typed<scalar_t>(grad_output, input, grad_input, input_grad, correlate, items);
    });
  }
  // Summed over the batch in a fixed order (deterministic).
  at::Tensor summed = at::zeros({g.channels, taps}, at::kDouble);
  double* out = summed.mutable_data_ptr<double>();
  at::parallel_for(0, per_batch, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t n = 0; n < g.batch; ++n)
      for (int64_t i = begin; i < end; ++i) out[i] += items[n * per_batch + i];
  });
  return summed;
}

}  // namespace shiftzoo::cpu
