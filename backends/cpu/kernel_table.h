// The CPU kernels as a table of function pointers, one table per element type and instruction
// set, so that the launch code (forward.cpp, backward.cpp) runs the best copy this machine has.
//
// The kernels (kernels/*.h) are ordinary headers of templates with internal linkage. Each
// per-instruction-set unit includes them once: isa_baseline.cpp for the x86-64 baseline the wheel
// targets, isa_avx2.cpp for AVX2 + FMA (as ATen does for its own CPU kernels), and fills a
// table (kernels/table.h). SHIFTZOO_CPU_ISA=baseline forces the baseline copy (tests, timings).
#pragma once
#include <ATen/OpMathType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "backends/core/channel_affine.h"
#include "backends/core/geometry.h"
#include "backends/cpu/scratch.h"
#include "backends/cpu/small_planes.h"
#include "backends/cpu/tap_tables.h"

namespace shiftzoo::cpu {

// The inference form's kernels (op shift_affine) of element type T: a floating type, or the
// unsigned integer that integer and bool data of its width moves as (core/element_types.h).
template <typename T>
struct AffineKernels {
  using Accum = at::opmath_type<T>;
  // One plane (n, c) whose channels are not inner, with the channel's maps and fill (what a tap
  // that reads nothing reads).
  void (*plane)(const T* in, T* out, const Geometry& in_geom, const Geometry& out_geom, const ChannelTaps& taps,
                const AffineClamp<Accum>& pre, const AffineClamp<Accum>& post, T fill);
  // Planes [begin, end) (n-major) of small dense planes, by their reading classes' translations
  // (small_planes.h; plane (n, c) of class class_of[c]), with every channel's maps and fill (null: zeros).
  void (*small_planes)(const T* in, T* out, const Geometry& in_geom, const Geometry& out_geom,
                       const SmallPlaneTables<T>& tables, const int32_t* class_of, const AffineClamp<Accum>* pre,
                       const AffineClamp<Accum>* post, const T* fill, int64_t begin, int64_t end);
  // Output rows [row_begin, row_end) of a channels-inner layout, with every channel's maps and
  // fill (null: zeros).
  void (*rows_channels_inner)(const T* in, T* out, const Geometry& in_geom, const Geometry& out_geom,
                              const TapTables& taps, const std::vector<Span>& runs, const AffineClamp<Accum>* pre,
                              const AffineClamp<Accum>* post, const T* fill, int64_t row_begin, int64_t row_end);
};

// The kernels of element type T (half types accumulate in float: Accum).
template <typename T>
struct Kernels {
  using Accum = at::opmath_type<T>;
  // Forward of one plane (n, c) whose channels are not inner.
  void (*forward_plane)(const T* in, T* out, const Geometry& in_geom, const Geometry& out_geom,
                        const ChannelTaps& taps, const ChannelWeights& weights, Scratch& scratch);
  // Single-tap forward of small dense planes [begin, end) of a tensor (n-major), by their reading
  // classes' translations (plane (n, c) of class class_of[c]).
  void (*translate_planes)(const T* in, T* out, const Geometry& in_geom, const Geometry& out_geom,
                           const SmallPlaneTables<T>& tables, const int32_t* class_of, int64_t begin, int64_t end);
  // Several-tap forward of a small dense plane, by its reading class's translations (count: one per
  // tap combination) and the channel's weights.
  void (*filter_translated_plane)(const T* in, T* out, const PlaneTranslation<T>* taps, int count,
                                  const ChannelWeights& weights);
  // Single-tap forward of `planes` consecutive planes that read alike, rows contiguous and the
  // planes densely stacked (a channel run of one batch item): one block move.
  void (*copy_plane_run)(const T* in, T* out, const Geometry& in_geom, const Geometry& out_geom,
                         const ChannelTaps& taps, int64_t planes);
  // Forward of output rows (n, z, y) in [row_begin, row_end) of a channels-inner layout, several
  // taps or none alike (weights: every channel's, taps() apart, in Accum).
  void (*forward_rows_channels_inner)(const T* in, T* out, const Geometry& in_geom, const Geometry& out_geom,
                                      const TapTables& taps, const Accum* weights, int64_t row_begin,
                                      int64_t row_end);
  // The same for single-tap channels in runs that read alike, channels contiguous.
  void (*copy_rows_channel_runs)(const T* in, T* out, const Geometry& in_geom, const Geometry& out_geom,
                                 const TapTables& taps, const std::vector<Span>& runs, int64_t row_begin,
                                 int64_t row_end);
  // The inference form (shift_affine).
  AffineKernels<T> affine;
  // corr[i] += sum over plane (n, c) of grad_out times the input read by tap combination i.
  void (*correlate_plane)(const T* grad, const T* in, const Geometry& grad_geom, const Geometry& in_geom,
                          const ChannelTaps& taps, double* corr, Scratch& scratch);
  // The backward of small dense planes [begin, end) of a tensor (n-major), by their reading
  // classes' translations (`correlate`, count per class; plane (n, c) of class
  // correlate_class[c]): the tap correlations (corr[(n * C + c) * count + i]), each plane's after
  // its input gradient where `input_grad` (single-tap translations of grad_out) is given.
  void (*backward_translated_planes)(const T* grad, const T* in, T* grad_in, const Geometry& grad_geom,
                                     const Geometry& in_geom, const Geometry& grad_in_geom,
                                     const SmallPlaneTables<T>* input_grad, const int32_t* input_grad_class,
                                     const SmallPlaneTables<T>& correlate, const int32_t* correlate_class, int count,
                                     double* corr, int64_t begin, int64_t end);
  // Adds the padding term of plane (n, c) of an input gradient (weights: the channel's, in Accum).
  void (*add_padding_term)(const T* grad, T* grad_in, const Geometry& grad_geom, const Geometry& grad_in_geom,
                           const ChannelTaps& taps, const Accum* weights, Scratch& scratch);
  // The input gradient of plane (n, c) of a shift that samples: a scatter through the channel's
  // taps (weights: the channel's, in Accum).
  void (*scatter_plane)(const T* grad, T* grad_in, const Geometry& grad_geom, const Geometry& grad_in_geom,
                        const ChannelTaps& taps, const Accum* weights, Scratch& scratch);
  // The same for batch items [item_begin, item_end) of a channels-inner layout (weights: every
  // channel's, taps() apart).
  void (*scatter_items_channels_inner)(const T* grad, T* grad_in, const Geometry& grad_geom,
                                       const Geometry& grad_in_geom, const TapTables& taps, const Accum* weights,
                                       int64_t item_begin, int64_t item_end);
  // Backward of batch items [item_begin, item_end) of a channels-inner layout: input gradient
  // rows (with `input_grad`, its reversed taps and their weights) and tap correlations
  // (corr[(n * C + c) * taps + i]).
  void (*backward_items_channels_inner)(const T* grad, const T* in, T* grad_in, const Geometry& grad_geom,
                                        const Geometry& in_geom, const Geometry& grad_in_geom,
                                        const TapTables* input_grad, const Accum* input_grad_weights,
                                        const TapTables& correlate, double* corr, int64_t item_begin,
                                        int64_t item_end);
};

// The kernels of every element type the ops take, for one instruction set.
struct KernelSet {
  Kernels<float> f32;
  Kernels<double> f64;
  Kernels<c10::Half> f16;
  Kernels<c10::BFloat16> bf16;
  // integer and bool data, by width: the inference form only
  AffineKernels<uint8_t> u8;
  AffineKernels<uint16_t> u16;
  AffineKernels<uint32_t> u32;
  AffineKernels<uint64_t> u64;

  template <typename T>
  const Kernels<T>& of() const {
    if constexpr (std::is_same_v<T, float>) return f32;
    else if constexpr (std::is_same_v<T, double>) return f64;
    else if constexpr (std::is_same_v<T, c10::Half>) return f16;
    else return bf16;
  }

  template <typename T>
  const AffineKernels<T>& affine_of() const {
    if constexpr (std::is_same_v<T, uint8_t>) return u8;
    else if constexpr (std::is_same_v<T, uint16_t>) return u16;
    else if constexpr (std::is_same_v<T, uint32_t>) return u32;
    else if constexpr (std::is_same_v<T, uint64_t>) return u64;
    else return of<T>().affine;
  }
};

const KernelSet& baseline_kernels();  // isa_baseline.cpp
const KernelSet* avx2_kernels();      // isa_avx2.cpp: null where the compiler cannot target AVX2

// Whether the AVX2 copies run here: compiled in, supported by this CPU, not switched off.
bool use_avx2();

// The kernel set for this machine.
inline const KernelSet& kernel_set() {
  static const KernelSet& set = use_avx2() ? *avx2_kernels() : baseline_kernels();
  return set;
}

// The kernels of T for this machine.
template <typename T>
const Kernels<T>& kernels() {
  return kernel_set().of<T>();
}

// The inference form's kernels of T for this machine.
template <typename T>
const AffineKernels<T>& affine_kernels() {
  return kernel_set().affine_of<T>();
}

}  // namespace shiftzoo::cpu
