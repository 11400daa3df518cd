// Host-side set-up shared by the backends: argument checks, the geometry of a tensor seen as
// (N, C, D, H, W), and the per-channel tap plan built from the shifts.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <array>
#include <cmath>
#include <string_view>
#include <vector>

#include "plugin_dispatch.h"

namespace shiftzoo {

// Every input is handled as (N, C, D, H, W): 1D and 2D inputs get leading spatial axes of
// length 1 that are never shifted (one tap, offset 0).
constexpr int kAxes = 3;

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

inline void check_shift_args(const at::Tensor& input, const at::Tensor& shifts) {
  TORCH_CHECK_VALUE(input.dim() >= 3 && input.dim() <= 5,
                    "shiftzoo.shift: expected input of shape (N, C, L), (N, C, H, W) or "
                    "(N, C, D, H, W), got ", input.dim(), " dimensions ", input.sizes());
  const int64_t d = input.dim() - 2;
  TORCH_CHECK_VALUE(shifts.dim() == 2 && shifts.size(0) == input.size(1) && shifts.size(1) == d,
                    "shiftzoo.shift: expected shifts of shape (C, d) = (", input.size(1), ", ", d,
                    ") for input ", input.sizes(), ", got ", shifts.sizes());
  TORCH_CHECK_VALUE(input.device() == shifts.device(), "shiftzoo.shift: input is on ",
                    input.device(), " but shifts are on ", shifts.device());
  TORCH_CHECK_VALUE(at::isFloatingType(input.scalar_type()),
                    "shiftzoo.shift: expected a floating-point input, got ", input.scalar_type());
  TORCH_CHECK_VALUE(at::isFloatingType(shifts.scalar_type()),
                    "shiftzoo.shift: expected floating-point shifts, got ", shifts.scalar_type());
}

// What every channel reads along every axis, for one interpolation and padding.
struct ShiftPlan {
  std::array<int, kAxes> support{1, 1, 1};  // taps per axis
  std::vector<AxisTaps> taps;               // [channel][axis]

  const AxisTaps& at(int64_t channel, int axis) const { return taps[channel * kAxes + axis]; }
  int64_t taps_per_channel() const { return int64_t{support[0]} * support[1] * support[2]; }
  bool single_tap() const { return taps_per_channel() == 1; }
};

// `shifts` (C, d) on the CPU; rejects non-finite values before any kernel runs.
template <class Padding>
ShiftPlan make_plan(const at::Tensor& shifts, const Geometry& g, std::string_view interp,
                    const Padding& pad) {
  ShiftPlan plan;
  const int K = interp_support(interp);
  const int first = g.first_real_axis();
  for (int axis = first; axis < kAxes; ++axis) plan.support[axis] = K;
  const at::Tensor s = shifts.to(at::kDouble).contiguous();
  const double* sp = s.const_data_ptr<double>();
  plan.taps.resize(g.channels * kAxes);
  for (int64_t c = 0; c < g.channels; ++c) {
    for (int k = 0; k < g.spatial_dims; ++k) {
      const double value = sp[c * g.spatial_dims + k];
      TORCH_CHECK_VALUE(std::isfinite(value), "shiftzoo.shift: shifts must be finite, got ",
                        value, " for channel ", c, ", spatial axis ", k);
      const int axis = first + k;
      plan.taps[c * kAxes + axis] = make_axis_taps(interp, value, g.size[axis], pad);
    }
  }
  return plan;
}

}  // namespace shiftzoo
