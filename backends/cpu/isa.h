// Instruction sets. The per-plane kernels (row_kernels.inc, *_plane.inc) are compiled twice in
// each kernel file: once for the baseline x86-64 the wheel targets, once for AVX2 + FMA, and the
// AVX2 copy runs where the CPU has it (as ATen's own CPU kernels do). The environment variable
// SHIFTZOO_CPU_ISA=baseline forces the baseline copy (for tests and comparisons).
#pragma once
#include <ATen/OpMathType.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include "cpu/plane_loop.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SHIFTZOO_HAVE_AVX2 1
#define SHIFTZOO_AVX2_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")") namespace avx2 {
#define SHIFTZOO_AVX2_END } _Pragma("GCC pop_options")
#elif defined(__x86_64__) && defined(__clang__)
#define SHIFTZOO_HAVE_AVX2 1
#define SHIFTZOO_AVX2_BEGIN \
  _Pragma("clang attribute push (__attribute__((target(\"avx2,fma\"))), apply_to = function)") namespace avx2 {
#define SHIFTZOO_AVX2_END } _Pragma("clang attribute pop")
#endif

namespace shiftzoo::cpu {

// Whether the AVX2 copies of the kernels run on this machine.
inline bool use_avx2() {
#ifdef SHIFTZOO_HAVE_AVX2
  static const bool yes = [] {
    const char* forced = std::getenv("SHIFTZOO_CPU_ISA");
    if (forced != nullptr && std::string_view(forced) == "baseline") return false;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return yes;
#else
  return false;
#endif
}

}  // namespace shiftzoo::cpu

// The copy of kernel `name` (compiled by per_isa.inc) for this machine.
#ifdef SHIFTZOO_HAVE_AVX2
#define SHIFTZOO_PER_ISA(name) (::shiftzoo::cpu::use_avx2() ? &avx2::name : &baseline::name)
#else
#define SHIFTZOO_PER_ISA(name) (&baseline::name)
#endif
