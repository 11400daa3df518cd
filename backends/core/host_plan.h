// Plans built on the host, from tensors in host memory: the CPU backend's. (A GPU backend builds
// its plans on the device with the same set_axis_taps, so that no shift crosses to the host:
// docs/architecture.md.)
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/core/sampling.h"
#include "backends/core/shift_plan.h"

namespace shiftzoo {

// The values of a (C, d) or (C,) tensor in host memory (shifts; shift_affine's per-channel scales
// and biases), any floating dtype and strides, as doubles in (c, k) order: read in place (no
// conversion op per call), dispatched on the dtype here alone so that the planning loop is
// instantiated once per interpolation, not per dtype too.
inline std::vector<double> host_values(const at::Tensor& tensor) {
  // the rarer floating types (float8) converted first
  const at::ScalarType type = tensor.scalar_type();
  const bool direct = type == at::kDouble || type == at::kFloat || type == at::kHalf || type == at::kBFloat16;
  const at::Tensor s = direct ? tensor : tensor.to(at::kDouble);
  const bool vector = s.dim() == 1;  // (C,): one column
  const int64_t rows = s.size(0), cols = vector ? 1 : s.size(1), row_stride = s.stride(0),
                col_stride = vector ? 1 : s.stride(1);
  std::vector<double> values(rows * cols);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, s.scalar_type(), "shiftzoo.plan", [&] {
    const scalar_t* sp = s.const_data_ptr<scalar_t>();
    for (int64_t c = 0; c < rows; ++c)
      for (int64_t k = 0; k < cols; ++k) values[c * cols + k] = static_cast<double>(sp[c * row_stride + k * col_stride]);
  });
  return values;
}

// The plan of `Interp` for shifts (C, d) in host memory, sampled as `sampling` says, on axes
// whose padding repeats every periods[axis] indices (0: saturates); rejects non-finite values
// before any kernel runs.
template <class Interp>
ShiftPlan host_plan(const at::Tensor& shifts, const Geometry& g, const Sampling& sampling,
                    const std::array<int64_t, kAxes>& periods) {
  const int first = g.first_real_axis();
  std::array<int, kAxes> support{1, 1, 1};
  for (int axis = first; axis < kAxes; ++axis) support[axis] = Interp::support;
  ShiftPlan plan(g.channels, support);
  plan.step = sampling.stride;
  const std::array<int64_t, kAxes> reach = saturation_reaches(g, sampling, Interp::support);
  const std::vector<double> values = host_values(shifts);
  AxisTaps taps;
  for (int t = 0; t < kMaxSupport; ++t) taps.w[t] = taps.dw[t] = 0.0;  // (beyond the support: never read)
  for (int64_t c = 0; c < g.channels; ++c) {
    for (int k = 0; k < g.spatial_dims; ++k) {
      const double value = values[c * g.spatial_dims + k];
      TORCH_CHECK_VALUE(std::isfinite(value), "shiftzoo.shift: shifts must be finite, got ", value, " for channel ", c,
                        ", spatial axis ", k);
      const int axis = first + k;
      set_axis_taps<Interp>(taps, value, sampling.crop_begin[axis], periods[axis], reach[axis]);
      plan.set(c, axis, taps);
    }
  }
  return plan;
}

// The plan of a runtime plugin, computed in Python (shiftzoo/_tabled.py) and handed over as
// tensors in host memory: offsets (C, d) int64, tap 0 of output y reads stride * y + offsets[c][k]
// along spatial axis k (the crop included); weights (C, d, K), the tap weights. (Where the taps
// read comes from the plugin's index tables: TabledPadding.)
inline ShiftPlan host_tabled_plan(const at::Tensor& offsets, const at::Tensor& weights, const Geometry& g,
                                  const Sampling& sampling) {
  const int d = g.spatial_dims;
  const int K = static_cast<int>(weights.size(2));
  std::array<int, kAxes> support{1, 1, 1};
  for (int k = 0; k < d; ++k) support[g.first_real_axis() + k] = K;
  ShiftPlan plan(g.channels, support);
  plan.step = sampling.stride;
  const at::Tensor o = offsets.contiguous();
  const at::Tensor w = weights.to(at::kDouble).contiguous();
  const int64_t* op = o.const_data_ptr<int64_t>();
  const double* wp = w.const_data_ptr<double>();
  AxisTaps taps;
  for (int t = 0; t < K; ++t) taps.dw[t] = 0.0;  // a runtime plugin's dweights are applied in Python
  for (int64_t c = 0; c < g.channels; ++c) {
    for (int k = 0; k < d; ++k) {
      taps.offset = op[c * d + k];
      // the planner's mark for a non-finite shift (under torch.compile it cannot raise itself)
      TORCH_CHECK_VALUE(taps.offset != std::numeric_limits<int64_t>::min(),
                        "shiftzoo.shift: shifts must be finite, got a non-finite value for channel ", c,
                        ", spatial axis ", k);
      // far beyond any axis (the planner reduces real shifts to within a few axis lengths)
      TORCH_CHECK_VALUE(taps.offset > -(int64_t{1} << 62) && taps.offset < (int64_t{1} << 62),
                        "shiftzoo.shift_tabled: offset ", taps.offset, " of channel ", c, " is out of range");
      for (int t = 0; t < K; ++t) taps.w[t] = wp[(c * d + k) * K + t];
      plan.set(c, g.first_real_axis() + k, taps);
    }
  }
  return plan;
}

}  // namespace shiftzoo
