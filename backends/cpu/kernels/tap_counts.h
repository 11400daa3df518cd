// Tap and row counts fixed at compile time where common, so that the kernels' tap loops unroll:
// K (and R) is a template parameter for 1, 2 and 4; 0 means "runtime count" and serves every
// other support up to kMaxSupport.
//
// A kernel header (see kernel_table.h): included only by the per-instruction-set units isa_*.cpp,
// once each, after kernels/dependencies.h; its code has internal linkage, so every unit keeps
// its own copy compiled for its instruction set.
#pragma once
#include "backends/cpu/kernels/dependencies.h"

namespace shiftzoo::cpu {
namespace {

template <int N>
using Int = std::integral_constant<int, N>;

// Calls f(Int<N>) with n fixed at compile time where it is one of Common, Int<0> else.
template <int... Common, class F>
void with_count(int n, F&& f) {
  const bool fixed = ((n == Common ? (f(Int<Common>{}), true) : false) || ...);
  if (!fixed) f(Int<0>{});
}

// Calls f(Int<K>) with K fixed at compile time for the common tap counts (1, 2, 4), Int<0> else.
template <class F>
void with_taps(int K, F&& f) {
  with_count<1, 2, 4>(K, f);
}

// Calls f(Int<K>, Int<R>) with the tap count K and the row count R fixed where common.
template <class F>
void with_taps_and_rows(int K, int R, F&& f) {
  with_taps(K, [&](auto kt) { with_count<1, 2, 4>(R, [&](auto rt) { f(kt, rt); }); });
}

// Calls f(Int<Q>) with the tap combination count Q fixed at compile time where common (linear
// interpolation: 2, 4, 8), Int<0> else.
template <class F>
void with_combinations(int count, F&& f) {
  with_count<2, 4, 8>(count, f);
}

// Calls f(Int<S>) with the sampling step fixed at compile time where it is one of Fixed, f(Int<0>)
// (a runtime step) otherwise. Every kernel fixes 1, so that unit-step loops stay plain stride-1
// loops; the row kernels of planes also fix 2, the commonest stride (their vectors then take every
// other element: load_every, add_every_other).
template <int... Fixed, class F>
void with_step(int64_t step, F&& f) {
  const bool fixed = ((step == Fixed ? (f(Int<Fixed>{}), true) : false) || ...);
  if (!fixed) f(Int<0>{});
}

}  // namespace
}  // namespace shiftzoo::cpu
