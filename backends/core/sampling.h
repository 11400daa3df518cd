// Which positions of the shifted map an op keeps (shiftzoo/_sampling.py has the definition): along
// each spatial axis, output y is the shifted map at position crop_begin + stride * y, for the
// positions of [crop_begin, n - crop_end). Unit sampling (stride 1, no crop) keeps every position.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <array>
#include <cstdint>
#include <vector>

#include "backends/core/geometry.h"
#include "backends/core/tap_rule.h"

namespace shiftzoo {

// The number of positions crop_begin + stride * y inside [crop_begin, n - crop_end).
inline int64_t output_length(int64_t n, int64_t stride, int64_t crop_begin, int64_t crop_end) {
  const int64_t span = n - crop_begin - crop_end;
  return span > 0 ? (span + stride - 1) / stride : 0;
}

struct Sampling {
  // per axis of (D, H, W); the axes an input lacks keep every position
  std::array<int64_t, kAxes> stride{1, 1, 1}, crop_begin{0, 0, 0}, crop_end{0, 0, 0};

  // From an op's arguments (one entry per spatial axis of the input), checked.
  Sampling(at::IntArrayRef strides, at::IntArrayRef begins, at::IntArrayRef ends, int64_t spatial_dims) {
    TORCH_CHECK_VALUE(static_cast<int64_t>(strides.size()) == spatial_dims &&
                          static_cast<int64_t>(begins.size()) == spatial_dims &&
                          static_cast<int64_t>(ends.size()) == spatial_dims,
                      "shiftzoo.shift: expected stride, crop_begin and crop_end of ", spatial_dims,
                      " entries (one per spatial axis), got ", strides.size(), ", ", begins.size(), " and ",
                      ends.size());
    const int64_t first = kAxes - spatial_dims;
    for (int64_t k = 0; k < spatial_dims; ++k) {
      TORCH_CHECK_VALUE(strides[k] >= 1, "shiftzoo.shift: stride must be >= 1, got ", strides);
      // far beyond any real axis; keeps every index computation well inside int64
      constexpr int64_t kLimit = int64_t{1} << 40;
      TORCH_CHECK_VALUE(strides[k] < kLimit && begins[k] > -kLimit && begins[k] < kLimit && ends[k] > -kLimit &&
                            ends[k] < kLimit,
                        "shiftzoo.shift: stride and crop must lie within +-2**40, got stride ", strides, ", crop ",
                        begins, ", ", ends);
      stride[first + k] = strides[k];
      crop_begin[first + k] = begins[k];
      crop_end[first + k] = ends[k];
    }
  }

  bool unit() const {
    for (int axis = 0; axis < kAxes; ++axis)
      if (stride[axis] != 1 || crop_begin[axis] != 0 || crop_end[axis] != 0) return false;
    return true;
  }

  // The output's sizes for an input of sizes (N, C, *S): its batch and channels, the sampled
  // spatial sizes.
  std::vector<int64_t> output_sizes(at::IntArrayRef input_sizes) const {
    std::vector<int64_t> sizes(input_sizes.begin(), input_sizes.end());
    const int64_t dims = static_cast<int64_t>(sizes.size());
    const int64_t first = kAxes - (dims - 2);
    for (int64_t k = 2; k < dims; ++k) {
      const int axis = static_cast<int>(first + k - 2);
      sizes[k] = output_length(sizes[k], stride[axis], crop_begin[axis], crop_end[axis]);
    }
    return sizes;
  }
};

// Per axis, the `reach` of reduce_whole (tap_rule.h) for a `support`-tap interpolation on g's
// input sampled as `sampling` says: beyond it, a saturating padding reads alike.
inline std::array<int64_t, kAxes> saturation_reaches(const Geometry& g, const Sampling& sampling, int support) {
  std::array<int64_t, kAxes> reach{};
  for (int axis = 0; axis < kAxes; ++axis) {
    const int64_t n = g.size[axis], begin = sampling.crop_begin[axis], step = sampling.stride[axis];
    const int64_t m = output_length(n, step, begin, sampling.crop_end[axis]);
    reach[axis] = saturation_reach(n, support, begin, begin + step * (m > 1 ? m - 1 : 0));
  }
  return reach;
}

}  // namespace shiftzoo
