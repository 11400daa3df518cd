// symmetric (half-sample mirror, edge repeated; numpy "symmetric"):  b a | a b c d | d c
#pragma once
#include "../common.h"

namespace shiftzoo::padding {
struct symmetric {
  SHIFTZOO_HD int64_t map(int64_t i, int64_t n) const {
    const int64_t m = 2 * n;
    const int64_t r = positive_mod(i, m);
    return r < n ? r : m - 1 - r;
  }
  SHIFTZOO_HD int64_t period(int64_t n) const { return 2 * n; }
};
}  // namespace shiftzoo::padding
