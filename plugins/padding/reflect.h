// reflect (mirror without edge repeat; numpy/F.pad "reflect"):  c b | a b c d | c b
// Period 2(n - 1); an axis of length 1 always reads its only element.
#pragma once
#include "../common.h"

namespace shiftzoo::padding {
struct reflect {
  SHIFTZOO_HD int64_t map(int64_t i, int64_t n) const {
    if (n == 1) return 0;
    const int64_t m = 2 * (n - 1);
    const int64_t r = positive_mod(i, m);
    return r < n ? r : m - r;
  }
  SHIFTZOO_HD int64_t period(int64_t n) const { return n == 1 ? 1 : 2 * (n - 1); }
};
}  // namespace shiftzoo::padding
