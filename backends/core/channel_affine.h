// A per-channel affine map and clamp around a whole-pixel shift, v -> clamp(fma(v, scale[c],
// bias[c]), lo, hi): the eval-mode BatchNorm and the ReLU / ReLU6 / Hardtanh before and after a
// shift layer, which the inference form folds into the shift (shiftzoo.optimize_for_inference,
// op shift_affine) so that one pass over memory does what took five. fma rounds once, as ATen's
// BatchNorm kernels do; optimize_for_inference checks every folded layer against the modules it
// replaces, bit for bit, and folds nothing where they differ.
//
// Integer data (the same op, whole-pixel shifts of int8 ... int64 and bool tensors, moved as
// unsigned integers of their width) has no maps: its values move bit for bit.
#pragma once
#include <ATen/core/Tensor.h>

#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>

#include "plugins/common.h"

namespace shiftzoo {

// As the op takes it: scale and bias (C,) both given or both absent, and the clamp bounds.
struct AffineSpec {
  std::optional<at::Tensor> scale, bias;
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
};

// clamp(v, lo, hi) for lo <= hi, NaN staying NaN: each step is x86's max/min instruction exactly
// ((a > b) ? a : b takes b when either is NaN), so loops of it vectorise without blends.
template <typename A>
SHIFTZOO_HD A clamp_keeping_nan(A v, A lo, A hi) {
  v = lo > v ? lo : v;
  return hi < v ? hi : v;
}

// Whether values of precision A go through maps: floating ones do; integers move as they are.
template <typename A>
inline constexpr bool kMapsValues = std::is_floating_point_v<A>;

// One channel's map, in the kernels' precision A (the identity for integers).
template <typename A>
struct AffineClamp {
  A scale = 1, bias = 0, lo = -std::numeric_limits<A>::infinity(), hi = std::numeric_limits<A>::infinity();
  bool affine = false;

  SHIFTZOO_HD A operator()(A v) const {
    if constexpr (!kMapsValues<A>) {
      return v;
    } else {
      if (affine) v = std::fma(v, scale, bias);
      return clamp_keeping_nan(v, lo, hi);
    }
  }
};

}  // namespace shiftzoo
