// border (replicate, edge, clamp):  a a | a b c d | d d
#pragma once
#include "../common.h"

namespace shiftzoo::padding {
struct border {
  SHIFTZOO_HD int64_t map(int64_t i, int64_t n) const { return i < 0 ? 0 : (i >= n ? n - 1 : i); }
  SHIFTZOO_HD int64_t period(int64_t) const { return 0; }
};
}  // namespace shiftzoo::padding
