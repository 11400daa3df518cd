// The backward's plane kernels, for planes (n, c) whose channels are not inner: the per-tap
// correlations sum_x grad_out[x] * input[tap(x)] of one plane, from which the parameter gradient
// is contracted (core/contraction.h), in float for half types; and the padding term of an input
// gradient (whose in-range part is the forward with the reversed taps: backward.cpp).
//
// A kernel header (see kernel_table.h): included only by the per-instruction-set units isa_*.cpp,
// once each, after kernels/dependencies.h; its code has internal linkage, so every unit keeps
// its own copy compiled for its instruction set.
#pragma once
#include "backends/cpu/kernels/dependencies.h"
#include "backends/cpu/kernels/vector.h"
#include "backends/cpu/kernels/tap_counts.h"
#include "backends/cpu/kernels/forward_plane.h"
#include "backends/cpu/kernels/row.h"

namespace shiftzoo::cpu {
namespace {

// The grad_output block of a dense plane slice whose every tap lies inside the plane (rows
// inner_y, columns inner, flat range [first, last)), copied with the edge columns zeroed: a flat
// pass over it then covers exactly the interior outputs.
template <typename T>
void masked_block(const T* g_slice, const ChannelTaps& taps, int64_t W, int64_t first, int64_t last, T* gm) {
  std::copy(g_slice + first, g_slice + last, gm + first);
  // Edge columns left of the interior lie in the block from its second row on, those right of it
  // up to its second-to-last row (the block starts and ends inside the interior).
  for (int64_t e = 0; e < taps.edges; ++e) {
    const int64_t x = taps.edge_x[e];
    const bool left = x < taps.inner.begin;
    const int64_t y0 = taps.inner_y.begin + (left ? 1 : 0), y1 = taps.inner_y.end - (left ? 0 : 1);
    for (int64_t y = y0; y < y1; ++y) gm[y * W + x] = T(0);
  }
}

// Flat range of the interior block of a dense plane slice, or an empty range.
inline Span dense_block(const ChannelTaps& taps, int64_t W) {
  if (taps.inner_y.end <= taps.inner_y.begin || taps.inner.end <= taps.inner.begin) return {0, 0};
  return {taps.inner_y.begin * W + taps.inner.begin, (taps.inner_y.end - 1) * W + taps.inner.end};
}

using Double4 = Vec32<double>;
using Float8 = Vec32<float>;

// dots[r][t] += the lanes of lanes[r * KT + t], then the tail i in [tail, n) of g[i] *
// src[r][step * i + t].
template <int KT, int RT, int ST, typename TA, typename TB>
void add_lane_sums(const Double4* lanes, const TA* g, const TB* const* src, int64_t tail, int64_t n,
                   double* const* dots) {
  for (int r = 0; r < RT; ++r) {
    for (int t = 0; t < KT; ++t) {
      const Double4 a = lanes[r * KT + t];
      double sum = (a[0] + a[1]) + (a[2] + a[3]);
      for (int64_t j = tail; j < n; ++j) sum += static_cast<double>(g[j]) * static_cast<double>(src[r][ST * j + t]);
      dots[r][t] += sum;
    }
  }
}

// dots[r][t] += sum_i g[i] * src[r][step * i + t] for i < n: every tap of every source row in
// one pass over g when K, R and the step (1 or 2) are fixed at compile time. float: 8 float lanes
// over chunks of at most 64 elements, each chunk's lanes added into double lanes (fast, and
// accurate to ~1e-7 of a chunk); double: double lanes. (Half types never get here: their planes
// are computed in float.) The order is fixed: results are deterministic.
template <int KT, int RT, int ST, typename TA, typename TB>
void correlate_span(const TA* __restrict g, const TB* const* src, int K, int R, int64_t n, int64_t step,
                    double* const* dots) {
  if constexpr (KT > 0 && RT > 0 && ST > 0 && std::is_same_v<TA, float> && std::is_same_v<TB, float>) {
    constexpr int64_t kChunk = 64;
    Double4 total[RT * KT] = {};
    const int64_t vector_end = n - n % 8;
    for (int64_t i = 0; i < vector_end; i += kChunk) {
      const int64_t stop = std::min(vector_end, i + kChunk);
      Float8 acc[RT * KT] = {};
      for (int64_t k = i; k < stop; k += 8) {
        const Float8 gv = load_vec(g + k);
        for (int r = 0; r < RT; ++r)
          for (int t = 0; t < KT; ++t) acc[r * KT + t] += gv * load_every<ST>(src[r] + ST * k + t);
      }
      for (int j = 0; j < RT * KT; ++j) {
        const Float8 a = acc[j];
        total[j] += __builtin_convertvector(__builtin_shufflevector(a, a, 0, 1, 2, 3), Double4) +
                    __builtin_convertvector(__builtin_shufflevector(a, a, 4, 5, 6, 7), Double4);
      }
    }
    add_lane_sums<KT, RT, ST>(total, g, src, vector_end, n, dots);
  } else if constexpr (KT > 0 && RT > 0 && ST > 0 && std::is_same_v<TA, double> && std::is_same_v<TB, double>) {
    Double4 acc[RT * KT] = {};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      const Double4 gv = load_vec(g + i);
      for (int r = 0; r < RT; ++r)
        for (int t = 0; t < KT; ++t) acc[r * KT + t] += gv * load_every<ST>(src[r] + ST * i + t);
    }
    add_lane_sums<KT, RT, ST>(acc, g, src, i, n, dots);
  } else {
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < K; ++t) dots[r][t] += dot<double, ST>(g, src[r] + t, n, step);
  }
}

// dots[t] += sum_x grad_out[x] * src[tap t of x] over one row (both contiguous): the per-tap
// correlations from which the shift gradient is contracted (the weights are constant over a
// channel). The interior in one pass for all taps (correlate_span: steps 1 and 2 in vectors),
// then the edge positions from the tables.
template <int KT, typename T>
void correlate_row(const T* __restrict grad_out, const T* __restrict src, const ChannelTaps& taps, double* dots) {
  const int K = KT > 0 ? KT : taps.kw;
  const Span in = taps.inner;
  const T* interior = src + taps.step_x * in.begin + taps.offset;
  with_step<1, 2>(taps.step_x, [&](auto st) {
    correlate_span<KT, 1, st()>(grad_out + in.begin, &interior, K, 1, in.end - in.begin, taps.step_x, &dots);
  });
  for (int t = 0; t < K; ++t) {
    double sum = 0.0;
    for (int64_t e = 0; e < taps.edges; ++e) {
      const int64_t j = taps.edge_src[e * K + t];
      if (j != kZeroTap) sum += static_cast<double>(grad_out[taps.edge_x[e]]) * static_cast<double>(src[j]);
    }
    dots[t] += sum;
  }
}

// Tap correlations of the interior block of D-slice z of a dense plane: one flat pass for all
// taps over grad_output with the block's edge columns zeroed (`g_masked`, a plane-sized buffer:
// those outputs read other taps), then the edge columns' true taps, where the padding maps them
// to an input (never for zeros).
template <typename T>
void correlate_dense_block(const T* g_slice, const T* in_plane, int64_t in_stride_d, int64_t z,
                           int64_t W, const ChannelTaps& taps, Span flat, double* corr, T* g_masked) {
  const int K = taps.kw;
  const T* src[kMaxSupport * kMaxSupport];   // each source row of the block, moved by the W offset
  const T* base[kMaxSupport * kMaxSupport];  // the same, not moved (for the true edge taps)
  double* dots[kMaxSupport * kMaxSupport];
  int R = 0;
  for (int a = 0; a < taps.kd; ++a) {
    const int64_t sz = taps.src_z[z * taps.kd + a];
    if (sz == kZeroTap) continue;
    for (int b = 0; b < taps.kh; ++b) {
      base[R] = in_plane + sz * in_stride_d + (taps.offset_y + b) * W;
      src[R] = base[R] + taps.offset;
      dots[R++] = corr + (a * taps.kh + b) * K;
    }
  }
  masked_block(g_slice, taps, W, flat.begin, flat.end, g_masked);
  const T* block_src[kMaxSupport * kMaxSupport];
  for (int r = 0; r < R; ++r) block_src[r] = src[r] + flat.begin;
  with_taps_and_rows(K, R, [&](auto kt, auto rt) {
    correlate_span<kt(), rt(), 1>(g_masked + flat.begin, block_src, K, R, flat.end - flat.begin, 1, dots);
  });
  for (int64_t e = 0; e < taps.edges; ++e) {
    const int64_t* js = taps.edge_src + e * K;
    for (int t = 0; t < K; ++t) {
      if (js[t] == kZeroTap) continue;
      for (int r = 0; r < R; ++r) {
        double sum = 0.0;
        for (int64_t y = taps.inner_y.begin; y < taps.inner_y.end; ++y)
          sum += static_cast<double>(g_slice[y * W + taps.edge_x[e]]) * static_cast<double>(base[r][y * W + js[t]]);
        dots[r][t] += sum;
      }
    }
  }
}

// The tap correlations of one plane (any strides), added into plane_corr.
template <typename T>
void correlate_plane(const T* g_plane, const T* in_plane, const Geometry& grad_geom, const Geometry& in_geom,
                     const ChannelTaps& taps, double* plane_corr, Scratch& scratch) {
  const int64_t D = grad_geom.size[0], H = grad_geom.size[1], W = grad_geom.size[2], W_in = in_geom.size[2];
  // Dense planes, every position kept, do their interior block in one flat pass; other rows go
  // one by one.
  const bool dense = unit_sampling(taps, in_geom, grad_geom) && dense_rows(grad_geom) && dense_rows(in_geom);
  const Span flat = dense ? dense_block(taps, W) : Span{0, 0};
  const bool block = flat.end > flat.begin;
  T* const grad_row = scratch.grad_row.get<T>(W);
  T* const input_row = scratch.input_row.get<T>(W_in);
  T* const g_masked = block ? scratch.masked_grad.get<T>(H * W) : nullptr;
  for (int64_t z = 0; z < D; ++z) {
    const T* g_slice = g_plane + z * grad_geom.stride[0];
    if (block) correlate_dense_block(g_slice, in_plane, in_geom.stride[0], z, W, taps, flat, plane_corr, g_masked);
    for (int64_t y = 0; y < H; ++y) {
      if (block && y >= taps.inner_y.begin && y < taps.inner_y.end) continue;  // done above
      const T* g_row = contiguous_row(g_slice + y * grad_geom.stride[1], grad_geom.stride[2], W, grad_row);
      taps.for_each_source_row(z, y, [&](int64_t sz, int64_t sy, int lead) {
        const T* in_row = contiguous_row(in_plane + sz * in_geom.stride[0] + sy * in_geom.stride[1], in_geom.stride[2],
                                         W_in, input_row);
        with_taps(taps.kw, [&](auto kt) { correlate_row<kt()>(g_row, in_row, taps, plane_corr + lead * taps.kw); });
      });
    }
  }
}

// sums[q] = the sum of lanes[q]'s lanes, q < n, four vectors at a time by a transpose (one
// vector of their four sums), the rest one by one. double: ((l0 + l1) + (l2 + l3)). float (a
// small plane's lanes, each the sum of at most kSmallPlane / 8 products): the lanes of each half
// added in float, ((l0 + l2) + (l1 + l3)) and ((l4 + l6) + (l5 + l7)), by in-lane shuffles
// (widening every vector first cost more than the plane's products), then the halves in double.
template <typename A>
[[gnu::always_inline]] inline void lane_sums(const Vec32<A>* lanes, int n, double* sums) {
  int q = 0;
  for (; q + 4 <= n; q += 4) {
    const Vec32<A> &a = lanes[q], &b = lanes[q + 1], &c = lanes[q + 2], &d = lanes[q + 3];
    Double4 total;
    if constexpr (std::is_same_v<A, float>) {
      // ab = [a0+a2, b0+b2, a1+a3, b1+b3, a4+a6, b4+b6, a5+a7, b5+b7] (unpack low + unpack high)
      const Float8 ab = __builtin_shufflevector(a, b, 0, 8, 1, 9, 4, 12, 5, 13) +
                        __builtin_shufflevector(a, b, 2, 10, 3, 11, 6, 14, 7, 15);
      const Float8 cd = __builtin_shufflevector(c, d, 0, 8, 1, 9, 4, 12, 5, 13) +
                        __builtin_shufflevector(c, d, 2, 10, 3, 11, 6, 14, 7, 15);
      // halves = [a0..3, b0..3, c0..3, d0..3, a4..7, b4..7, c4..7, d4..7]
      const Float8 halves = __builtin_shufflevector(ab, cd, 0, 1, 8, 9, 4, 5, 12, 13) +
                            __builtin_shufflevector(ab, cd, 2, 3, 10, 11, 6, 7, 14, 15);
      total = __builtin_convertvector(__builtin_shufflevector(halves, halves, 0, 1, 2, 3), Double4) +
              __builtin_convertvector(__builtin_shufflevector(halves, halves, 4, 5, 6, 7), Double4);
    } else {
      const Double4 ab = __builtin_shufflevector(a, b, 0, 4, 2, 6) + __builtin_shufflevector(a, b, 1, 5, 3, 7);
      const Double4 cd = __builtin_shufflevector(c, d, 0, 4, 2, 6) + __builtin_shufflevector(c, d, 1, 5, 3, 7);
      total = __builtin_shufflevector(ab, cd, 0, 1, 4, 5) + __builtin_shufflevector(ab, cd, 2, 3, 6, 7);
    }
    std::memcpy(sums + q, &total, sizeof(total));
  }
  for (; q < n; ++q) {
    const Vec32<A>& l = lanes[q];
    if constexpr (std::is_same_v<A, float>) {
      sums[q] = static_cast<double>((l[0] + l[2]) + (l[1] + l[3])) + static_cast<double>((l[4] + l[6]) + (l[5] + l[7]));
    } else {
      sums[q] = (l[0] + l[1]) + (l[2] + l[3]);
    }
  }
}

// The tap correlations of a small dense plane of float or double, every tap combination in one
// pass: whole vectors over the plane's padded length (keep is zero past the plane), grad_out
// loaded once per vector, each combination's products masked as bits (what a masked position
// reads never enters the sum, NaN included) and summed in its own vector lanes, then in double,
// then its fixes (`fixes`: whether any combination has some). Q: the count, 0 for a runtime
// count. Bounded: the planes at the tensors' ends, whose vectors would read past them (grad,
// input: the extents), load lane by lane, zero outside (masked anyway): the same operations in
// the same order, so a plane's sums do not depend on where its tensor lies.
template <int Q, bool Bounded, typename A>
void correlate_translations(const A* g, const A* in, const PlaneTranslation<A>* taps, int count, bool fixes,
                            double* corr, const InputExtent<A>& grad, const InputExtent<A>& input) {
  using Bits = typename VectorBits<sizeof(A)>::type;
  constexpr int64_t L = 32 / sizeof(A);
  auto load = [](const InputExtent<A>& extent, const A* p) {
    if constexpr (Bounded) {
      Vec32<A> v{};
      for (int64_t l = 0; l < L; ++l)
        if (extent.holds(p, l, 1)) v[l] = p[l];
      return v;
    } else {
      return load_vec(p);
    }
  };
  const int n = Q > 0 ? Q : count;
  const A* src[Q > 0 ? Q : kSmallPlaneTaps];
  for (int q = 0; q < n; ++q) src[q] = in + taps[q].shift;
  auto product = [&](const Vec32<A>& gv, int q, int64_t i) {
    Bits keep;
    std::memcpy(&keep, taps[q].keep + i, sizeof(keep));
    return reinterpret_cast<Vec32<A>>(reinterpret_cast<Bits>(gv * load(input, src[q] + i)) & keep);
  };
  // the lanes start from the first vector's products (a plane has one at least): no zeroing pass
  Vec32<A> lanes[Q > 0 ? Q : kSmallPlaneTaps];
  const Vec32<A> first = load(grad, g);
  for (int q = 0; q < n; ++q) lanes[q] = product(first, q, 0);
  const int64_t padded = taps[0].padded_numel();
  for (int64_t i = L; i < padded; i += L) {
    const Vec32<A> gv = load(grad, g + i);
    for (int q = 0; q < n; ++q) lanes[q] += product(gv, q, i);
  }
  double sums[Q > 0 ? Q : kSmallPlaneTaps];
  lane_sums<A>(lanes, n, sums);
  if (fixes) {
    for (int q = 0; q < n; ++q) {
      const PlaneTranslation<A>& t = taps[q];
      for (int64_t f = 0; f < t.fixes; ++f) sums[q] += static_cast<double>(g[t.fix_out[f]] * in[t.fix_in[f]]);
    }
  }
  for (int q = 0; q < n; ++q) corr[q] += sums[q];
}

// The tap correlations of a small dense plane, by its reading class's translations
// (small_planes.h: `taps`, and `reach`, what they read together), added into plane_corr: per tap
// combination, grad_out times the translated input where the tap reads it, summed in double, then
// the taps that read elsewhere (float and double: correlate_translations, Q combinations, 0 for a
// runtime count; half types in float, element by element over each translation's range). The
// order is fixed: results are deterministic.
template <int Q, typename T, typename Reach>
void correlate_translated_plane(const T* g_plane, const T* in_plane, const PlaneTranslation<T>* taps, int count,
                                const Reach& reach, double* plane_corr, const InputExtent<T>& grad,
                                const InputExtent<T>& input) {
  using A = at::opmath_type<T>;
  if constexpr (std::is_same_v<T, A>) {
    const int64_t padded = taps[0].padded_numel();
    // every translation's vectors inside both tensors: from the lowest shift to the highest's end
    if (grad.holds(g_plane, 0, padded) && input.holds(in_plane, reach.low, reach.high - reach.low + padded))
      return correlate_translations<Q, false>(g_plane, in_plane, taps, count, reach.fixes, plane_corr, grad, input);
    return correlate_translations<Q, true>(g_plane, in_plane, taps, count, reach.fixes, plane_corr, grad, input);
  }
  for (int q = 0; q < count; ++q) {
    const PlaneTranslation<T>& t = taps[q];
    const T* src = in_plane + t.shift;
    double sum = 0.0;
    for (int64_t i = t.lo; i < t.hi; ++i)
      if (t.keep[i]) sum += static_cast<double>(static_cast<A>(g_plane[i]) * static_cast<A>(src[i]));
    for (int64_t f = 0; f < t.fixes; ++f)
      sum += static_cast<double>(static_cast<A>(g_plane[t.fix_out[f]]) * static_cast<A>(in_plane[t.fix_in[f]]));
    plane_corr[q] += sum;
  }
}

// The backward of small dense planes [begin, end) of a tensor (n-major), by their reading
// classes' translations: each plane's tap correlations, after its input gradient (a masked copy
// of grad_out's plane, translate_plane) where `input_grad` is given, so that grad_out's plane
// comes from memory once for both. The loop over planes lives beside the kernels it inlines, as
// translate_planes' does, inside the one dispatch on the combination count (float and double).
template <typename T>
void backward_translated_planes(const T* grad, const T* in, T* grad_in, const Geometry& grad_geom,
                                const Geometry& in_geom, const Geometry& grad_in_geom,
                                const SmallPlaneTables<T>* input_grad, const int32_t* input_grad_class,
                                const SmallPlaneTables<T>& correlate, const int32_t* correlate_class, int count,
                                double* corr, int64_t begin, int64_t end) {
  // what the translations may read past a plane's edges: grad_out and the input
  const InputExtent<T> grad_extent(grad, grad_geom), in_extent(in, in_geom);
  auto planes = [&](auto q) {
    for_planes(begin, end, grad_geom.channels, [&](int64_t n, int64_t c) {
      const T* g_plane = grad + n * grad_geom.stride_n + c * grad_geom.stride_c;
      if (input_grad) {
        translate_plane(g_plane, grad_in + n * grad_in_geom.stride_n + c * grad_in_geom.stride_c,
                        *(*input_grad)[input_grad_class[c]], grad_extent);
      }
      const int32_t k = correlate_class[c];
      correlate_translated_plane<q()>(g_plane, in + n * in_geom.stride_n + c * in_geom.stride_c, correlate[k], count,
                                      correlate.reach(k), corr + (n * grad_geom.channels + c) * count, grad_extent,
                                      in_extent);
    });
  };
  if constexpr (std::is_same_v<T, at::opmath_type<T>>) {
    with_combinations(count, planes);
  } else {
    planes(Int<0>{});  // half types: element by element, in float
  }
}

// The tap correlations of one plane of a half type (float16, bfloat16): both planes in float,
// densely in the task's scratch, through the float kernel.
template <typename T>
void correlate_plane_in_float(const T* g_plane, const T* in_plane, const Geometry& grad_geom, const Geometry& in_geom,
                              const ChannelTaps& taps, double* plane_corr, Scratch& scratch) {
  const float* g = plane_in_float(g_plane, grad_geom, scratch.grad_float);
  const float* in = plane_in_float(in_plane, in_geom, scratch.input_float);
  correlate_plane<float>(g, in, dense_plane(grad_geom), dense_plane(in_geom), taps, plane_corr, scratch);
}

// Adds the padding term of the input gradient of plane (n, c), any strides: the in-range part of
// the adjoint is the forward of grad_out with the reversed taps (backward.cpp); every tap outside
// the plane that the padding mapped to an input (border, reflect, ...) gives that input its term.
// Only rows and pixels with such taps are visited. `weights`: this channel's, in A.
template <typename T>
void add_padding_term(const T* g, T* gin, const Geometry& grad_geom, const Geometry& grad_in_geom,
                      const ChannelTaps& taps, const at::opmath_type<T>* weights, Scratch&) {
  using A = at::opmath_type<T>;
  const int64_t D = grad_geom.size[0], H = grad_geom.size[1], W = grad_geom.size[2];
  const int K = taps.kw;
  for (int64_t z = 0; z < D; ++z) {
    for (int a = 0; a < taps.kd; ++a) {
      const int64_t sz = taps.src_z[z * taps.kd + a];
      if (sz == kZeroTap) continue;
      const bool z_out = outside_axis(z + taps.offset_z + a, D);
      for (int64_t y = 0; y < H; ++y) {
        for (int b = 0; b < taps.kh; ++b) {
          const int64_t sy = taps.src_y[y * taps.kh + b];
          if (sy == kZeroTap) continue;
          const bool row_out = z_out || outside_axis(y + taps.offset_y + b, H);
          const A* w = weights + (a * taps.kh + b) * K;
          const T* g_row = g + z * grad_geom.stride[0] + y * grad_geom.stride[1];
          T* gin_row = gin + sz * grad_in_geom.stride[0] + sy * grad_in_geom.stride[1];
          auto add_term = [&](int64_t x, int t, int64_t sx) {
            T& dst = gin_row[sx * grad_in_geom.stride[2]];
            dst = static_cast<T>(static_cast<A>(dst) + w[t] * static_cast<A>(g_row[x * grad_geom.stride[2]]));
          };
          if (row_out) {  // every tap of the row left the plane
            for (int64_t x = taps.inner.begin; x < taps.inner.end; ++x)
              for (int t = 0; t < K; ++t) add_term(x, t, x + taps.offset + t);
          }
          for (int64_t e = 0; e < taps.edges; ++e) {
            for (int t = 0; t < K; ++t) {
              const int64_t sx = taps.edge_src[e * K + t];
              if (sx != kZeroTap && (row_out || outside_axis(taps.edge_x[e] + taps.offset + t, W))) add_term(taps.edge_x[e], t, sx);
            }
          }
        }
      }
    }
  }
}

// add_padding_term for a half type: the plane's grad_out and input gradient in float (dense, in
// the task's scratch), so that the terms add up in float and round once.
template <typename T>
void add_padding_term_in_float(const T* g, T* gin, const Geometry& grad_geom, const Geometry& grad_in_geom,
                               const ChannelTaps& taps, const float* weights, Scratch& scratch) {
  const float* g_f = plane_in_float(g, grad_geom, scratch.grad_float);
  float* gin_f = plane_in_float(gin, grad_in_geom, scratch.input_grad_float);
  const Geometry dense = dense_plane(grad_geom);
  add_padding_term(g_f, gin_f, dense, dense, taps, weights, scratch);
  dense_to_plane(gin_f, grad_in_geom, gin);
}

// to[(step * x + t) * xs] += w[t] * g[x * gs] for x in `span` and every tap t (all inside: plain
// offsets), each element's terms in the order (x, t). Stride 2 on contiguous rows whose taps do
// not overlap from one x to the next (K <= 2: an element receives one term, so any order is that
// order) goes tap by tap a vector at a time (the compiler leaves it scalar); the rest x by x.
template <int KT, int ST, typename T, typename A>
void add_taps_at_offsets(const T* g, int64_t gs, T* to, int64_t xs, const A* w, int K, int64_t step, Span span) {
  if constexpr (KT > 0) K = KT;
  if constexpr (ST > 0) step = ST;
  int64_t x = span.begin;
  if constexpr (ST == 2 && std::is_same_v<T, A>) {
    if (K <= 2 && xs == 1 && gs == 1) {
      constexpr int64_t L = 32 / sizeof(A);
      const int64_t vector_end = span.begin + std::max<int64_t>(span.end - span.begin, 0) / L * L;
      for (int t = 0; t < K; ++t)
        for (int64_t v = span.begin; v < vector_end; v += L) add_every_other(to + 2 * v + t, load_vec(g + v), w[t]);
      x = vector_end;
    }
  }
  for (; x < span.end; ++x) {
    const A value = static_cast<A>(g[x * gs]);
    T* at = to + step * x * xs;
    for (int t = 0; t < K; ++t) at[t * xs] = static_cast<T>(static_cast<A>(at[t * xs]) + w[t] * value);
  }
}

// The input gradient of plane (n, c) of a shift that samples (a stride or a crop), any strides:
// zeroed, then every tap of every output adds w * grad_out to the input it read: at plain offsets
// where all its taps read inside (the tap count fixed at compile time: a runtime count took ~40 %
// longer on MobileNetV2's stride-2 layer), elsewhere through the channel's edge table (padding
// included). In a fixed order: deterministic. `weights`: the channel's, in A. (Unit sampling
// takes the gather form instead: the forward with the reversed taps.)
template <typename T>
void scatter_plane(const T* g, T* gin, const Geometry& grad_geom, const Geometry& grad_in_geom, const ChannelTaps& taps,
                   const at::opmath_type<T>* weights, Scratch&) {
  using A = at::opmath_type<T>;
  const int64_t xs = grad_in_geom.stride[2], gs = grad_geom.stride[2];
  if (dense_rows(grad_in_geom)) {  // (a memset per row cost more than the adds on 80x80 planes)
    for (int64_t z = 0; z < grad_in_geom.size[0]; ++z)
      std::fill_n(gin + z * grad_in_geom.stride[0], grad_in_geom.size[1] * grad_in_geom.size[2], T(0));
  } else {
    for (int64_t z = 0; z < grad_in_geom.size[0]; ++z)
      for (int64_t y = 0; y < grad_in_geom.size[1]; ++y) {
        T* row = gin + z * grad_in_geom.stride[0] + y * grad_in_geom.stride[1];
        for (int64_t x = 0; x < grad_in_geom.size[2]; ++x) row[x * xs] = T(0);
      }
  }
  const int K = taps.kw;
  for (int64_t z = 0; z < grad_geom.size[0]; ++z) {
    for (int64_t y = 0; y < grad_geom.size[1]; ++y) {
      const T* g_row = g + z * grad_geom.stride[0] + y * grad_geom.stride[1];
      taps.for_each_source_row(z, y, [&](int64_t sz, int64_t sy, int lead) {
        T* gin_row = gin + sz * grad_in_geom.stride[0] + sy * grad_in_geom.stride[1];
        const A* w = weights + lead * K;
        const auto edge_pixel = [&](int64_t x) {  // through the edge table
          const A value = static_cast<A>(g_row[x * gs]);
          taps.for_each_source_x(x, [&](int t, int64_t j) {
            gin_row[j * xs] = static_cast<T>(static_cast<A>(gin_row[j * xs]) + w[t] * value);
          });
        };
        for (int64_t x = 0; x < taps.inner.begin; ++x) edge_pixel(x);
        with_taps(K, [&](auto kt) {  // every tap inside: plain offsets
          with_step<1, 2>(taps.step_x, [&](auto st) {
            add_taps_at_offsets<kt(), st()>(g_row, gs, gin_row + taps.offset * xs, xs, w, K, taps.step_x, taps.inner);
          });
        });
        for (int64_t x = taps.inner.end; x < grad_geom.size[2]; ++x) edge_pixel(x);
      });
    }
  }
}

// scatter_plane for a half type: the plane's grad_out and input gradient in float (dense, in the
// task's scratch), so that the terms add up in float and round once.
template <typename T>
void scatter_plane_in_float(const T* g, T* gin, const Geometry& grad_geom, const Geometry& grad_in_geom,
                            const ChannelTaps& taps, const float* weights, Scratch& scratch) {
  const float* g_f = plane_in_float(g, grad_geom, scratch.grad_float);
  float* gin_f = scratch.input_grad_float.get<float>(grad_in_geom.plane_numel());
  const Geometry dense_in = dense_plane(grad_in_geom);
  scatter_plane(g_f, gin_f, dense_plane(grad_geom), dense_in, taps, weights, scratch);
  dense_to_plane(gin_f, grad_in_geom, gin);
}

}  // namespace
}  // namespace shiftzoo::cpu
