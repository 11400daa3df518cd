// How the backends see a tensor: as (N, C, D, H, W) sizes and strides, whatever its rank and
// memory format, and the few facts about a layout that pick a kernel path.
#pragma once
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <array>
#include <cstdint>

namespace shiftzoo {

// Every input is handled as (N, C, D, H, W): 1D and 2D inputs get leading spatial axes of
// length 1 that are never shifted (one tap, offset 0).
constexpr int kAxes = 3;

struct Span {
  int64_t begin, end;
};

struct Geometry {
  int64_t batch = 0, channels = 0;
  std::array<int64_t, kAxes> size{1, 1, 1};    // D, H, W
  int64_t stride_n = 0, stride_c = 0;
  std::array<int64_t, kAxes> stride{0, 0, 0};  // in elements
  int spatial_dims = 0;

  explicit Geometry(const at::Tensor& t) {
    spatial_dims = static_cast<int>(t.dim()) - 2;
    batch = t.size(0);
    channels = t.size(1);
    stride_n = t.stride(0);
    stride_c = t.stride(1);
    for (int k = 0; k < spatial_dims; ++k) {
      size[kAxes - spatial_dims + k] = t.size(2 + k);
      stride[kAxes - spatial_dims + k] = t.stride(2 + k);
    }
  }
  int64_t plane_numel() const { return size[0] * size[1] * size[2]; }
  // First axis of (D, H, W) that the tensor really has.
  int first_real_axis() const { return kAxes - spatial_dims; }
};

// Calls body(n, c) for planes [begin, end) of a tensor of C channels (plane n * C + c), in order,
// with one division per range, not per plane.
template <class Body>
void for_planes(int64_t begin, int64_t end, int64_t C, Body&& body) {
  int64_t n = begin / C, c = begin % C;
  for (int64_t p = begin; p < end; ++p) {
    body(n, c);
    if (++c == C) {
      c = 0;
      ++n;
    }
  }
}

// a / b rounded down and up, for b > 0 and any sign of a.
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// Output positions x < n_out whose taps step * x + offset + t (0 <= t < K) all lie in [0, n_in).
inline Span interior(int64_t n_in, int64_t n_out, int64_t offset, int K, int64_t step = 1) {
  const int64_t begin = std::clamp<int64_t>(ceil_div(-offset, step), 0, n_out);
  const int64_t end = std::clamp<int64_t>(floor_div(n_in - K - offset, step) + 1, begin, n_out);
  return {begin, end};
}

// Whether raw tap index i lies outside an axis of length n (the padding decides what it reads).
inline bool outside_axis(int64_t i, int64_t n) { return i < 0 || i >= n; }

// Whether a tensor's channels are closer in memory than its pixels (channels_last and kin): the
// kernels then walk rows of all channels instead of planes.
inline bool channels_inner(const Geometry& g) {
  return g.channels > 1 && g.size[2] > 1 && g.stride_c < g.stride[2];
}

// Whether a channels-inner pair has every pixel's channels contiguous and at least one 32-byte
// vector of them (element_size bytes each): channel runs then move a vector at a time.
inline bool channel_vectors(const Geometry& in, const Geometry& out, int64_t element_size) {
  return in.stride_c == 1 && out.stride_c == 1 && in.channels * element_size >= 32;
}

// Whether the rows of g's planes are contiguous and densely stacked (the flat block passes).
inline bool dense_rows(const Geometry& g) { return g.stride[2] == 1 && g.stride[1] == g.size[2]; }

}  // namespace shiftzoo
