// periodic (circular, wrap; torch.roll):  c d | a b c d | a b
#pragma once
#include "../common.h"

namespace shiftzoo::padding {
struct periodic {
  SHIFTZOO_HD int64_t map(int64_t i, int64_t n) const { return positive_mod(i, n); }
  SHIFTZOO_HD int64_t period(int64_t n) const { return n; }
};
}  // namespace shiftzoo::padding
