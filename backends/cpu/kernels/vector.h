// 32-byte vectors of the kernels' element types (GCC/clang vector extensions: plain vector code
// in every instruction-set copy, no reliance on the auto-vectoriser): loads, and stores that
// narrow to the element type.
//
// A kernel header (see kernel_table.h): included only by the per-instruction-set units isa_*.cpp,
// once each, after kernels/dependencies.h; its code has internal linkage, so every unit keeps
// its own copy compiled for its instruction set.
#pragma once
#include "backends/cpu/kernels/dependencies.h"

namespace shiftzoo::cpu {
namespace {

// A vector of 32 bytes of A, and its unaligned load.
template <typename A>
struct Vector32 {
  typedef A type __attribute__((vector_size(32)));
};
template <typename A>
using Vec32 = typename Vector32<A>::type;
template <typename A>
Vec32<A> load_vec(const A* p) {
  Vec32<A> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Lanes p[0], p[S], p[2 * S], ... of a float or double vector: a plain load for S = 1; for S = 2
// two loads, the even lanes kept (the second load ends at the last lane's element: nothing past
// it is read).
template <int S, typename A>
Vec32<A> load_every(const A* p) {
  static_assert(S == 1 || S == 2, "steps 1 and 2");
  if constexpr (S == 1) {
    return load_vec(p);
  } else {
    constexpr int L = 32 / sizeof(A);
    const Vec32<A> low = load_vec(p), high = load_vec(p + L - 1);  // p[0, L), p[L - 1, 2L - 1)
    if constexpr (L == 8) return __builtin_shufflevector(low, high, 0, 2, 4, 6, 9, 11, 13, 15);
    else return __builtin_shufflevector(low, high, 0, 2, 5, 7);
  }
}

// p[2 * i] += w * v[i] for the L lanes of v (float or double), in the form the scalar kernels
// write it (so that the compiler contracts both alike), the odd elements between written back as
// they were (a blend: their bits stay), nothing past p[2L - 2] touched: the two loads of
// load_every<2>, stored back in the same places.
template <typename A>
void add_every_other(A* p, const Vec32<A>& v, A w) {
  constexpr int L = 32 / sizeof(A);
  const Vec32<A> low = load_vec(p), high = load_vec(p + L - 1);  // high's even lanes hold odd elements
  Vec32<A> low_out, high_out;
  if constexpr (L == 8) {
    const Vec32<A> low_sum = low + w * __builtin_shufflevector(v, v, 0, 0, 1, 1, 2, 2, 3, 3);
    const Vec32<A> high_sum = high + w * __builtin_shufflevector(v, v, 4, 4, 5, 5, 6, 6, 7, 7);
    low_out = __builtin_shufflevector(low_sum, low, 0, 9, 2, 11, 4, 13, 6, 15);
    high_out = __builtin_shufflevector(high, high_sum, 0, 9, 2, 11, 4, 13, 6, 15);
  } else {
    const Vec32<A> low_sum = low + w * __builtin_shufflevector(v, v, 0, 0, 1, 1);
    const Vec32<A> high_sum = high + w * __builtin_shufflevector(v, v, 2, 2, 3, 3);
    low_out = __builtin_shufflevector(low_sum, low, 0, 5, 2, 7);
    high_out = __builtin_shufflevector(high, high_sum, 0, 5, 2, 7);
  }
  std::memcpy(p, &low_out, sizeof(low_out));
  std::memcpy(p + L - 1, &high_out, sizeof(high_out));  // its lane 0, p[L - 1], as low_out left it
}

// 32 bytes as lanes of unsigned integers as wide as an element.
template <size_t ElementBytes>
struct VectorBits;
template <>
struct VectorBits<1> {
  typedef uint8_t type __attribute__((vector_size(32)));
};
template <>
struct VectorBits<2> {
  typedef uint16_t type __attribute__((vector_size(32)));
};
template <>
struct VectorBits<4> {
  typedef uint32_t type __attribute__((vector_size(32)));
};
template <>
struct VectorBits<8> {
  typedef uint64_t type __attribute__((vector_size(32)));
};

// Calls body(v, start) for the vectors of L elements that cover n >= L elements: vector v starts
// at v * L, the last one at n - L, overlapping the one before it (what the overlap writes twice
// must come out the same both times).
template <int64_t L, class Body>
void for_overlapping_vectors(int64_t n, Body&& body) {
  const int64_t vectors = (n + L - 1) / L;
  for (int64_t v = 0; v + 1 < vectors; ++v) body(v, v * L);
  body(vectors - 1, n - L);
}

// Stores the lanes of v as consecutive T: a plain store; bfloat16 rounded to nearest even (NaN
// stays NaN) in vector code, as c10's conversion does lane by lane; others lane by lane.
template <typename T, typename A>
void store_vec(T* out, const Vec32<A>& v) {
  constexpr int kLanes = sizeof(v) / sizeof(A);
  if constexpr (std::is_same_v<T, A>) {
    std::memcpy(out, &v, sizeof(v));
  } else if constexpr (std::is_same_v<T, c10::BFloat16> && std::is_same_v<A, float>) {
    typedef uint32_t Bits __attribute__((vector_size(32)));
    typedef uint16_t Half __attribute__((vector_size(16)));
    Bits bits;
    std::memcpy(&bits, &v, sizeof(v));
    const Bits nan = reinterpret_cast<Bits>(v != v);
    const Bits rounded = (bits + (((bits >> 16) & 1) + 0x7FFF)) >> 16;
    const Half narrow = __builtin_convertvector((rounded & ~nan) | (0x7FC0 & nan), Half);
    std::memcpy(out, &narrow, sizeof(narrow));
  } else {
    for (int l = 0; l < kLanes; ++l) out[l] = static_cast<T>(v[l]);
  }
}

}  // namespace
}  // namespace shiftzoo::cpu
