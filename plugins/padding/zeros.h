// zeros (constant 0):  0 0 | a b c d | 0 0
#pragma once
#include "../common.h"

namespace shiftzoo::padding {
struct zeros {
  // Every index outside the axis reads zero: the adjoint of a shift then needs no padding term.
  static constexpr bool outside_is_zero = true;
  SHIFTZOO_HD int64_t map(int64_t i, int64_t n) const { return (i >= 0 && i < n) ? i : kZeroTap; }
  SHIFTZOO_HD int64_t period(int64_t) const { return 0; }
};
}  // namespace shiftzoo::padding
