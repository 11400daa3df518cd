// CPU forward: planes (n, c) in parallel, each through its plane kernel, or rows of all channels
// for channels-inner layouts, in the best instruction set this machine has (kernel_table.h).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "backends/core/element_types.h"
#include "backends/core/host_plan.h"
#include "backends/cpu/kernel_table.h"
#include "backends/cpu/launch.h"
#include "backends/cpu/plane_loop.h"

namespace shiftzoo::cpu {
namespace {

template <typename T>
void forward_typed(const at::Tensor& input, const at::Tensor& output, const TapTables& taps) {
  const Kernels<T>& k = kernels<T>();
  const Geometry in_geom(input), out_geom(output);
  const T* in_data = input.const_data_ptr<T>();
  T* out_data = output.mutable_data_ptr<T>();
  const std::vector<Span>& runs = taps.equal_runs();
  if (channels_inner(in_geom) && channels_inner(out_geom)) {
    const int64_t rows = out_geom.batch * out_geom.size[0] * out_geom.size[1];
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / (out_geom.size[2] * out_geom.channels));
    // Channels in runs that read alike, contiguous over at least one 32-byte vector: built a
    // vector at a time.
    if (channel_vectors(in_geom, out_geom, input.element_size()) && !runs.empty()) {
      at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
        k.copy_rows_channel_runs(in_data, out_data, in_geom, out_geom, taps, runs, begin, end);
      });
      return;
    }
    const auto weights = taps.weights_as<at::opmath_type<T>>();
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      k.forward_rows_channels_inner(in_data, out_data, in_geom, out_geom, taps, weights.data(), begin, end);
    });
    return;
  }
  // Single-slice planes stacked densely, every position kept, channels in runs that read alike:
  // one block copy per run of an item.
  const int64_t plane = in_geom.plane_numel();
  const bool stacked = taps.unit_sampling() && in_geom.size[0] == 1 && dense_rows(in_geom) && dense_rows(out_geom) &&
                       in_geom.stride_c == plane && out_geom.stride_c == plane;
  if (stacked && !runs.empty()) {
    const int64_t R = static_cast<int64_t>(runs.size());
    const int64_t grain =
        std::max<int64_t>(1, (int64_t{1} << 15) * R / std::max<int64_t>(1, in_geom.channels * plane));
    at::parallel_for(0, in_geom.batch * R, grain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const Span run = runs[i % R];
        k.copy_plane_run(plane_ptr(in_data, in_geom, i / R, run.begin), plane_ptr(out_data, out_geom, i / R, run.begin),
                         in_geom, out_geom, taps[run.begin], run.end - run.begin);
      }
    });
    return;
  }
  // Small planes by their classes' translations: always for one tap; for several, on the tiniest
  // planes only and where each class's tables serve several planes (measured: 7x7 planes gain a
  // third, 14x14 ones and few planes per class lose to the tables' cost).
  const int count = static_cast<int>(taps.front().taps());
  if (count == 1 || (out_geom.plane_numel() <= kSmallFilterPlane &&
                     out_geom.batch * out_geom.channels >= 4 * taps.classes() * count)) {
    const SmallPlaneTables<T> small(taps, in_geom, out_geom);
    if (!small.empty()) {
      const std::vector<int32_t>& class_of = taps.reading_class();
      if (count == 1) {
        parallel_for_planes(out_geom, [&](int64_t begin, int64_t end) {
          k.translate_planes(in_data, out_data, in_geom, out_geom, small, class_of.data(), begin, end);
        });
        return;
      }
      for_each_plane(out_geom, [&](int64_t n, int64_t c, Scratch&) {
        k.filter_translated_plane(plane_ptr(in_data, in_geom, n, c), plane_ptr(out_data, out_geom, n, c),
                                  small[class_of[c]], count, taps.weights(c));
      });
      return;
    }
  }
  for_each_plane(in_geom, [&](int64_t n, int64_t c, Scratch& scratch) {
    k.forward_plane(plane_ptr(in_data, in_geom, n, c), plane_ptr(out_data, out_geom, n, c), in_geom, out_geom, taps[c],
                    taps.weights(c), scratch);
  });
}

// One map per channel, in A, from the op's spec (scale and bias read in host memory); identity
// maps for integer data, which has none (the op refuses them).
template <typename A>
std::vector<AffineClamp<A>> channel_maps(const AffineSpec& spec, int64_t channels) {
  std::vector<AffineClamp<A>> maps(channels);
  if constexpr (kMapsValues<A>) {
    // read in place, as the shifts are (no conversion op per call)
    const std::vector<double> scale = spec.scale ? host_values(*spec.scale) : std::vector<double>();
    const std::vector<double> bias = spec.bias ? host_values(*spec.bias) : std::vector<double>();
    const double* scales = spec.scale ? scale.data() : nullptr;
    const double* biases = spec.bias ? bias.data() : nullptr;
    for (int64_t c = 0; c < channels; ++c) {
      AffineClamp<A>& m = maps[c];
      m.lo = static_cast<A>(spec.lo);
      m.hi = static_cast<A>(spec.hi);
      if (!scales) continue;
      m.affine = true;
      m.scale = static_cast<A>(scales[c]);
      m.bias = static_cast<A>(biases[c]);
    }
  }
  return maps;
}

// T: a floating type, or the unsigned integer integer data moves as (its pointers cast to it).
template <typename T>
void forward_affine_typed(const at::Tensor& input, const at::Tensor& output, const TapTables& taps,
                          const AffineSpec& pre_spec, const AffineSpec& post_spec,
                          const std::optional<at::Tensor>& fill_values) {
  using A = at::opmath_type<T>;
  const AffineKernels<T>& k = affine_kernels<T>();
  const Geometry in_geom(input), out_geom(output);
  const std::vector<AffineClamp<A>> pre = channel_maps<A>(pre_spec, in_geom.channels);
  const std::vector<AffineClamp<A>> post = channel_maps<A>(post_spec, in_geom.channels);
  const T* in_data = static_cast<const T*>(input.const_data_ptr());
  T* out_data = static_cast<T*>(output.mutable_data_ptr());
  const T* fill = fill_values ? static_cast<const T*>(fill_values->const_data_ptr()) : nullptr;
  if (channels_inner(in_geom) && channels_inner(out_geom)) {
    const int64_t rows = out_geom.batch * out_geom.size[0] * out_geom.size[1];
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / (out_geom.size[2] * out_geom.channels));
    // channel runs that read alike move a vector at a time (ChannelRunRows) before the maps
    static const std::vector<Span> kNoRuns;
    const std::vector<Span>& runs =
        channel_vectors(in_geom, out_geom, input.element_size()) ? taps.equal_runs() : kNoRuns;
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      k.rows_channels_inner(in_data, out_data, in_geom, out_geom, taps, runs, pre.data(), post.data(), fill, begin,
                            end);
    });
    return;
  }
  // Small planes by their classes' translations (as the plain forward's single tap does).
  const SmallPlaneTables<T> small(taps, in_geom, out_geom);
  if (!small.empty()) {
    parallel_for_planes(out_geom, [&](int64_t begin, int64_t end) {
      k.small_planes(in_data, out_data, in_geom, out_geom, small, taps.reading_class().data(), pre.data(),
                     post.data(), fill, begin, end);
    });
    return;
  }
  for_each_plane(out_geom, [&](int64_t n, int64_t c, Scratch&) {
    k.plane(plane_ptr(in_data, in_geom, n, c), plane_ptr(out_data, out_geom, n, c), in_geom, out_geom, taps[c], pre[c],
            post[c], fill ? fill[c] : T(0));
  });
}

}  // namespace

void forward_affine(const at::Tensor& input, const at::Tensor& output, const TapTables& taps, const AffineSpec& pre,
                    const AffineSpec& post, const std::optional<at::Tensor>& fill) {
  if (output.numel() == 0) return;
  with_data_type(input.scalar_type(), [&](auto value) {
    forward_affine_typed<decltype(value)>(input, output, taps, pre, post, fill);
  });
}

void forward(const at::Tensor& input, const at::Tensor& output, const TapTables& taps) {
  if (input.numel() == 0) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "shiftzoo.shift", [&] {
    forward_typed<scalar_t>(input, output, taps);
  });
}

}  // namespace shiftzoo::cpu
