// The CPU kernels compiled for AVX2 + FMA, chosen at run time where the CPU has them. Everything
// outside the kernels is included first (kernels/dependencies.h), so that only the kernels are
// compiled with the wider instructions.
#include <cstdlib>
#include <string_view>

#include "backends/cpu/kernels/dependencies.h"
#include "backends/cpu/kernel_table.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SHIFTZOO_HAVE_AVX2 1
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#include "backends/cpu/kernels/table.h"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

namespace shiftzoo::cpu {

const KernelSet* avx2_kernels() {
#ifdef SHIFTZOO_HAVE_AVX2
  static const KernelSet set = make_kernel_set();
  return &set;
#else
  return nullptr;
#endif
}

bool use_avx2() {
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
