// The argument checks of the operators, before any planning or kernel: every backend rejects
// bad input with the same message (the Python layer checks the public API's arguments first,
// shiftzoo/_validation.py; these guard the ops themselves, and memory).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>

#include "backends/core/element_types.h"
#include "backends/core/geometry.h"
#include "backends/core/sampling.h"
#include "plugins/common.h"

namespace shiftzoo {

// shift / shift_backward: input (N, C, *S) with 1 to 3 spatial axes, shifts (C, d), both floating
// (the input may hold integer or bool data where `integer_data`: shift_affine).
inline void check_shift_args(const at::Tensor& input, const at::Tensor& shifts, bool integer_data = false) {
  TORCH_CHECK_VALUE(input.dim() >= 3 && input.dim() <= 5,
                    "shiftzoo.shift: expected input of shape (N, C, L), (N, C, H, W) or "
                    "(N, C, D, H, W), got ", input.dim(), " dimensions ", input.sizes());
  const int64_t d = input.dim() - 2;
  TORCH_CHECK_VALUE(shifts.dim() == 2 && shifts.size(0) == input.size(1) && shifts.size(1) == d,
                    "shiftzoo.shift: expected shifts of shape (C, d) = (", input.size(1), ", ", d,
                    ") for input ", input.sizes(), ", got ", shifts.sizes());
  TORCH_CHECK_VALUE(input.device() == shifts.device(), "shiftzoo.shift: input is on ",
                    input.device(), " but shifts are on ", shifts.device());
  TORCH_CHECK_VALUE(at::isFloatingType(input.scalar_type()) || (integer_data && is_integer_data(input.scalar_type())),
                    "shiftzoo.shift: expected a floating-point", integer_data ? ", integer or bool" : "", " input, got ",
                    input.scalar_type());
  TORCH_CHECK_VALUE(at::isFloatingType(shifts.scalar_type()),
                    "shiftzoo.shift: expected floating-point shifts, got ", shifts.scalar_type());
}

// shift_tabled / shift_tabled_backward: the input, then the plan's tensors against it: offsets
// (C, d) int64, weights (C, d, K) with 1 <= K <= kMaxSupport, and d index tables
// (C, stride * (m_k - 1) + K) int64 for m_k sampled positions (what raw tap index
// stride * y + offsets[c][k] + t reads, stored at position stride * y + t).
inline void check_tabled_input(const at::Tensor& input) {
  TORCH_CHECK_VALUE(input.dim() >= 3 && input.dim() <= 5 && at::isFloatingType(input.scalar_type()),
                    "shiftzoo.shift_tabled: expected a floating-point input of 3 to 5 dimensions, got ",
                    input.scalar_type(), " ", input.sizes());
}

inline void check_tabled_plan(const at::Tensor& offsets, const at::Tensor& weights, at::TensorList tables,
                              const Geometry& g, const Sampling& sampling) {
  const int d = g.spatial_dims;
  TORCH_CHECK_VALUE(offsets.scalar_type() == at::kLong && offsets.dim() == 2 && offsets.size(0) == g.channels &&
                        offsets.size(1) == d,
                    "shiftzoo.shift_tabled: expected int64 offsets of shape (", g.channels, ", ", d, "), got ",
                    offsets.scalar_type(), " ", offsets.sizes());
  TORCH_CHECK_VALUE(weights.dim() == 3 && weights.size(0) == g.channels && weights.size(1) == d &&
                        weights.size(2) >= 1 && weights.size(2) <= kMaxSupport,
                    "shiftzoo.shift_tabled: expected weights of shape (", g.channels, ", ", d, ", K) with 1 <= K <= ",
                    kMaxSupport, ", got ", weights.sizes());
  const int64_t K = weights.size(2);
  TORCH_CHECK_VALUE(static_cast<int>(tables.size()) == d, "shiftzoo.shift_tabled: expected ", d,
                    " index tables, got ", tables.size());
  for (int k = 0; k < d; ++k) {
    const int axis = g.first_real_axis() + k;
    const int64_t m = output_length(g.size[axis], sampling.stride[axis], sampling.crop_begin[axis],
                                    sampling.crop_end[axis]);
    const int64_t length = m > 0 ? sampling.stride[axis] * (m - 1) + K : 0;
    TORCH_CHECK_VALUE(tables[k].scalar_type() == at::kLong && tables[k].dim() == 2 &&
                          tables[k].size(0) == g.channels && tables[k].size(1) == length,
                      "shiftzoo.shift_tabled: expected table ", k, " of shape (", g.channels, ", ", length,
                      ") int64, got ", tables[k].scalar_type(), " ", tables[k].sizes());
  }
}

// The parameter gradient correlates grad_output with the input: it must have come, in the same
// dtype (its sizes are checked against the op's sampling by the driver).
inline void check_input_for_correlation(const std::optional<at::Tensor>& input, const at::Tensor& grad_out) {
  TORCH_CHECK_VALUE(input.has_value() && input->scalar_type() == grad_out.scalar_type(),
                    "shiftzoo: the shift gradient needs the input, of the dtype of grad_output ",
                    grad_out.scalar_type());
}

}  // namespace shiftzoo
