// CPU forward: planes (n, c) in parallel, each through forward_plane.inc, or rows of all channels
// for channels-inner layouts (channels_inner.inc), in the best instruction set this machine has.
#include <ATen/Dispatch.h>

#include "cpu/isa.h"
#include "cpu/shift_kernels.h"

namespace shiftzoo::cpu {
#define SHIFTZOO_PLANE_KERNELS "cpu/forward_plane.inc"
#include "cpu/per_isa.inc"

namespace {

template <typename T>
void forward(const at::Tensor& input, const at::Tensor& output, const ChannelTapsList& taps) {
  const Geometry gi(input), go(output);
  const T* in_data = input.const_data_ptr<T>();
  T* out_data = output.mutable_data_ptr<T>();
  if (channels_inner(gi) && channels_inner(go)) {
    const int64_t rows = gi.batch * gi.size[0] * gi.size[1];
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / (gi.size[2] * gi.channels));
    // Channels in runs that read alike (equal_tap_runs), contiguous over at least one 32-byte
    // vector: built a vector at a time.
    const bool vector_pixels = gi.stride_c == 1 && go.stride_c == 1 && gi.channels * input.element_size() >= 32;
    const std::vector<Span> runs = vector_pixels ? equal_tap_runs(taps) : std::vector<Span>();
    if (!runs.empty()) {
      const auto runs_fn = SHIFTZOO_PER_ISA(copy_rows_channel_runs<T>);
      at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
        Scratch scratch;
        runs_fn(in_data, out_data, gi, go, taps, runs, begin, end, scratch);
      });
      return;
    }
    const auto weights = taps.weights_as<at::opmath_type<T>>();
    const auto rows_fn = SHIFTZOO_PER_ISA(forward_rows_channels_inner<T>);
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      rows_fn(in_data, out_data, gi, go, taps, weights.data(), begin, end);
    });
    return;
  }
  // Single-slice planes stacked densely, channels in runs that read alike (equal_tap_runs): one
  // block copy per run of an item.
  const int64_t plane = gi.plane_numel();
  const bool stacked = gi.size[0] == 1 && dense_rows(gi) && dense_rows(go) && gi.stride_c == plane &&
                       go.stride_c == plane;
  const std::vector<Span> runs = stacked ? equal_tap_runs(taps) : std::vector<Span>();
  if (!runs.empty()) {
    const int64_t R = static_cast<int64_t>(runs.size());
    const auto runs_fn = SHIFTZOO_PER_ISA(copy_dense_planes<T>);
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) * R / std::max<int64_t>(1, gi.channels * plane));
    at::parallel_for(0, gi.batch * R, grain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const Span run = runs[i % R];
        runs_fn(plane_ptr(in_data, gi, i / R, run.begin), plane_ptr(out_data, go, i / R, run.begin), gi, go,
                taps[run.begin], run.end - run.begin);
      }
    });
    return;
  }
  const auto plane_fn = SHIFTZOO_PER_ISA(forward_plane<T>);
  for_each_plane(gi, [&](int64_t n, int64_t c, Scratch& scratch) {
    plane_fn(plane_ptr(in_data, gi, n, c), plane_ptr(out_data, go, n, c), gi, go, taps[c], scratch);
  });
}

}  // namespace

template <typename T>
PlaneForward<T> plane_forward_kernel() {
  return SHIFTZOO_PER_ISA(forward_plane<T>);
}
template PlaneForward<float> plane_forward_kernel<float>();
template PlaneForward<double> plane_forward_kernel<double>();
template PlaneForward<c10::Half> plane_forward_kernel<c10::Half>();
template PlaneForward<c10::BFloat16> plane_forward_kernel<c10::BFloat16>();

void shift_forward_kernel(const at::Tensor& input, const at::Tensor& output,
                          const ChannelTapsList& taps) {
  if (input.numel() == 0) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "shiftzoo.shift", [&] {
    forward<scalar_t>(input, output, taps);
  });
}

}  // namespace shiftzoo::cpu
