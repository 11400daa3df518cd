// Host-side set-up shared by the backends: argument checks, the geometry of a tensor seen as
// (N, C, D, H, W), and the per-channel tap plan built from the shifts.
#pragma once
#include <ATen/Dispatch.h>
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

  ShiftPlan() = default;
  // Every axis of every channel unshifted: one tap of weight 1 at offset 0. (Entries beyond an
  // axis's support are left unset: nothing reads them.)
  explicit ShiftPlan(int64_t channels) : taps(channels * kAxes) {
    for (AxisTaps& t : taps) {
      t.offset = 0;
      t.w[0] = 1.0;
      t.dw[0] = 0.0;
    }
  }

  int64_t channels() const { return static_cast<int64_t>(taps.size()) / kAxes; }
  const AxisTaps& at(int64_t channel, int axis) const { return taps[channel * kAxes + axis]; }
  int64_t taps_per_channel() const { return int64_t{support[0]} * support[1] * support[2]; }
  bool single_tap() const { return taps_per_channel() == 1; }
};

// The values of `shifts` (C, d) on the CPU, any floating dtype and strides, as doubles in (c, k)
// order: read in place (no conversion op per call), dispatched on the dtype here alone so that
// the plan below is instantiated once per interpolation and padding, not per dtype too.
inline std::vector<double> shift_values(const at::Tensor& shifts) {
  // the rarer floating types (float8) converted first
  const at::ScalarType type = shifts.scalar_type();
  const bool direct = type == at::kDouble || type == at::kFloat || type == at::kHalf || type == at::kBFloat16;
  const at::Tensor s = direct ? shifts : shifts.to(at::kDouble);
  const int64_t rows = s.size(0), cols = s.size(1), row_stride = s.stride(0), col_stride = s.stride(1);
  std::vector<double> values(rows * cols);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, s.scalar_type(), "shiftzoo.make_plan", [&] {
    const scalar_t* sp = s.const_data_ptr<scalar_t>();
    for (int64_t c = 0; c < rows; ++c)
      for (int64_t k = 0; k < cols; ++k) values[c * cols + k] = static_cast<double>(sp[c * row_stride + k * col_stride]);
  });
  return values;
}

// The plan of `shifts` (C, d) on the CPU; rejects non-finite values before any kernel runs.
template <class Padding>
ShiftPlan make_plan(const at::Tensor& shifts, const Geometry& g, std::string_view interp,
                    const Padding& pad) {
  ShiftPlan plan(g.channels);
  const int K = interp_support(interp);
  const int first = g.first_real_axis();
  for (int axis = first; axis < kAxes; ++axis) plan.support[axis] = K;
  const std::vector<double> values = shift_values(shifts);
  with_interp(interp, [&](auto policy) {
    using Interp = decltype(policy);
    for (int64_t c = 0; c < g.channels; ++c) {
      for (int k = 0; k < g.spatial_dims; ++k) {
        const double value = values[c * g.spatial_dims + k];
        TORCH_CHECK_VALUE(std::isfinite(value), "shiftzoo.shift: shifts must be finite, got ", value,
                          " for channel ", c, ", spatial axis ", k);
        const int axis = first + k;
        set_axis_taps<Interp>(plan.taps[c * kAxes + axis], value, g.size[axis], pad);
      }
    }
  });
  return plan;
}

}  // namespace shiftzoo

namespace shiftzoo {

// ---- runtime plugins: the plan arrives as tensors computed in Python -------------------------
//
// offsets (C, d) int64: tap 0 of output x reads x + offsets[c][k] along spatial axis k;
// weights (C, d, K): the tap weights; tables[k] (C, n_k + K - 1) int64: what raw tap index
// x + offsets[c][k] + t reads, stored at position x + t (an input index or -1 for zero).

inline ShiftPlan make_tabled_plan(const at::Tensor& offsets, const at::Tensor& weights,
                                  at::TensorList tables, const Geometry& g) {
  const int d = g.spatial_dims;
  TORCH_CHECK_VALUE(offsets.scalar_type() == at::kLong && offsets.dim() == 2 &&
                        offsets.size(0) == g.channels && offsets.size(1) == d,
                    "shiftzoo.shift_tabled: expected int64 offsets of shape (", g.channels, ", ", d,
                    "), got ", offsets.scalar_type(), " ", offsets.sizes());
  TORCH_CHECK_VALUE(weights.dim() == 3 && weights.size(0) == g.channels && weights.size(1) == d &&
                        weights.size(2) >= 1 && weights.size(2) <= kMaxSupport,
                    "shiftzoo.shift_tabled: expected weights of shape (", g.channels, ", ", d,
                    ", K) with 1 <= K <= ", kMaxSupport, ", got ", weights.sizes());
  const int K = static_cast<int>(weights.size(2));
  TORCH_CHECK_VALUE(static_cast<int>(tables.size()) == d, "shiftzoo.shift_tabled: expected ", d,
                    " index tables, got ", tables.size());
  for (int k = 0; k < d; ++k) {
    const int64_t length = g.size[g.first_real_axis() + k] + K - 1;
    TORCH_CHECK_VALUE(tables[k].scalar_type() == at::kLong && tables[k].dim() == 2 &&
                          tables[k].size(0) == g.channels && tables[k].size(1) == length,
                      "shiftzoo.shift_tabled: expected table ", k, " of shape (", g.channels, ", ",
                      length, ") int64, got ", tables[k].scalar_type(), " ", tables[k].sizes());
  }
  ShiftPlan plan(g.channels);
  const at::Tensor o = offsets.contiguous();
  const at::Tensor w = weights.to(at::kDouble).contiguous();
  const int64_t* op = o.const_data_ptr<int64_t>();
  const double* wp = w.const_data_ptr<double>();
  for (int k = 0; k < d; ++k) plan.support[g.first_real_axis() + k] = K;
  for (int64_t c = 0; c < g.channels; ++c) {
    for (int k = 0; k < d; ++k) {
      AxisTaps& taps = plan.taps[c * kAxes + g.first_real_axis() + k];
      taps.offset = op[c * d + k];
      // far beyond any axis (the planner reduces real shifts to within a few axis lengths)
      TORCH_CHECK_VALUE(taps.offset > -(int64_t{1} << 62) && taps.offset < (int64_t{1} << 62),
                        "shiftzoo.shift_tabled: offset ", taps.offset, " of channel ", c, " is out of range");
      for (int t = 0; t < K; ++t) taps.w[t] = wp[(c * d + k) * K + t];
    }
  }
  return plan;
}

// Where a tap reads, looked up in a runtime padding's tables; checks the plugin's contract so
// that a misbehaving plugin gets a clear error instead of an out-of-bounds read.
class TableSource {
 public:
  // Checks every entry against the padding contract once, so the kernels can trust the tables.
  TableSource(at::TensorList tables, const ShiftPlan& plan, const Geometry& g, std::string_view name)
      : plan_(plan), g_(g) {
    for (const at::Tensor& t : tables) tables_.push_back(t.contiguous());
    for (int k = 0; k < g.spatial_dims; ++k) {
      const int axis = g.first_real_axis() + k;
      const int64_t n = g.size[axis], length = tables_[k].size(1);
      const int64_t* table = tables_[k].const_data_ptr<int64_t>();
      for (int64_t c = 0; c < g.channels; ++c) {
        for (int64_t position = 0; position < length; ++position) {
          const int64_t i = position + plan.at(c, axis).offset, j = table[c * length + position];
          TORCH_CHECK_VALUE(j >= -1 && j < n, "shiftzoo: padding '", name, "' mapped index ", i,
                            " on an axis of length ", n, " to ", j,
                            "; a padding must return an index in [0, ", n, ") or -1 (zero)");
          TORCH_CHECK_VALUE(i < 0 || i >= n || j == i, "shiftzoo: padding '", name, "' mapped index ",
                            i, " inside the axis (length ", n, ") to ", j,
                            "; a padding must leave indices inside the axis unchanged");
        }
      }
    }
  }

  int64_t operator()(int64_t c, int axis, int64_t i) const {
    const int k = axis - g_.first_real_axis();
    if (k < 0) return i;  // an axis the input lacks: length 1, never shifted
    const at::Tensor& table = tables_[k];
    // raw index i = x + offset + t sits at position x + t, inside the table by construction
    return table.const_data_ptr<int64_t>()[c * table.size(1) + i - plan_.at(c, axis).offset];
  }

 private:
  const ShiftPlan& plan_;
  const Geometry& g_;
  std::vector<at::Tensor> tables_;
};

}  // namespace shiftzoo
