// The table of every CPU kernel (kernel_table.h), filled from the templates of kernels/*.h in the
// instruction set of the unit that includes this (isa_*.cpp). Half types correlate, add the
// padding term and scatter in float: their table holds the *_in_float variants. Integer and bool
// data has the inference form's kernels only.
//
// A kernel header: included only by the per-instruction-set units, once each, after
// kernels/dependencies.h; its code has internal linkage.
#pragma once
#include "backends/cpu/kernels/dependencies.h"
#include "backends/cpu/kernels/affine.h"
#include "backends/cpu/kernels/backward_plane.h"
#include "backends/cpu/kernels/channels_inner_backward.h"
#include "backends/cpu/kernels/channels_inner_forward.h"
#include "backends/cpu/kernels/forward_plane.h"
#include "backends/cpu/kernels/row.h"

namespace shiftzoo::cpu {
namespace {

template <typename T>
AffineKernels<T> make_affine_kernels() {
  return {&forward_plane_affine<T>, &translate_planes_affine<T>, &forward_rows_affine_channels_inner<T>};
}

template <typename T>
Kernels<T> make_kernels() {
  constexpr bool in_float = !std::is_same_v<T, at::opmath_type<T>>;
  Kernels<T> k;
  k.forward_plane = &forward_plane<T>;
  k.copy_plane_run = &copy_dense_planes<T>;
  k.translate_planes = &translate_planes<T>;
  k.filter_translated_plane = &filter_translated_plane<T>;
  k.backward_translated_planes = &backward_translated_planes<T>;
  k.forward_rows_channels_inner = &forward_rows_channels_inner<T>;
  k.copy_rows_channel_runs = &copy_rows_channel_runs<T>;
  k.affine = make_affine_kernels<T>();
  if constexpr (in_float) {
    k.correlate_plane = &correlate_plane_in_float<T>;
    k.add_padding_term = &add_padding_term_in_float<T>;
    k.scatter_plane = &scatter_plane_in_float<T>;
  } else {
    k.correlate_plane = &correlate_plane<T>;
    k.add_padding_term = &add_padding_term<T>;
    k.scatter_plane = &scatter_plane<T>;
  }
  k.scatter_items_channels_inner = &scatter_items_channels_inner<T>;
  k.backward_items_channels_inner = &backward_items_channels_inner<T>;
  return k;
}

KernelSet make_kernel_set() {
  return {make_kernels<float>(),
          make_kernels<double>(),
          make_kernels<c10::Half>(),
          make_kernels<c10::BFloat16>(),
          make_affine_kernels<uint8_t>(),
          make_affine_kernels<uint16_t>(),
          make_affine_kernels<uint32_t>(),
          make_affine_kernels<uint64_t>()};
}

}  // namespace
}  // namespace shiftzoo::cpu
