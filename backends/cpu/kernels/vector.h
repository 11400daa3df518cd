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
