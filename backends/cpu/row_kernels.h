// The work on one row (the last axis) of one channel: an interior range where every tap lies
// inside the row — plain stride-1 loops the compiler vectorises — and a few edge positions whose
// taps come from the channel's tables (channel_taps.h). No padding logic runs here.
//
// K is a template parameter for the common tap counts (1, 2, 4) so the tap loops unroll; K == 0
// means "runtime count" and serves every other support up to kMaxSupport.
#pragma once
#include <ATen/OpMathType.h>

#include <cstring>

#include "cpu/channel_taps.h"

namespace shiftzoo::cpu {

// A pointer to the row as n contiguous elements: the row itself when it is contiguous,
// otherwise a copy in `scratch`.
template <typename T>
const T* contiguous_row(const T* row, int64_t stride, int64_t n, T* scratch) {
  if (stride == 1) return row;
  for (int64_t x = 0; x < n; ++x) scratch[x] = row[x * stride];
  return scratch;
}

// The edge positions of a single-tap row: dst[x] = src[edge source of x] or 0.
template <typename T>
void fill_edges(const T* __restrict src, T* __restrict dst, const ChannelTaps& taps) {
  for (size_t e = 0; e < taps.edge_x.size(); ++e) {
    const int64_t j = taps.edge_src[e];
    dst[taps.edge_x[e]] = j == kZeroTap ? T(0) : src[j];
  }
}

// dst[x] = src[x + offset] (one block copy) plus the edge fill.
template <typename T>
void copy_row(const T* __restrict src, T* __restrict dst, const ChannelTaps& taps) {
  const Span in = taps.inner;
  if (in.end > in.begin) std::memcpy(dst + in.begin, src + in.begin + taps.offset, (in.end - in.begin) * sizeof(T));
  fill_edges(src, dst, taps);
}

// acc[x] += sum_t w[t] * src[tap t of x]
template <int KT, typename T, typename A>
void filter_row(const T* __restrict src, A* __restrict acc, const A* __restrict w,
                const ChannelTaps& taps) {
  const int K = KT > 0 ? KT : taps.kw;
  const T* shifted = src + taps.offset;
  for (int64_t x = taps.inner.begin; x < taps.inner.end; ++x) {
    A sum = 0;
    for (int t = 0; t < K; ++t) sum += w[t] * static_cast<A>(shifted[x + t]);
    acc[x] += sum;
  }
  for (size_t e = 0; e < taps.edge_x.size(); ++e) {
    A sum = 0;
    for (int t = 0; t < K; ++t) {
      const int64_t j = taps.edge_src[e * K + t];
      if (j != kZeroTap) sum += w[t] * static_cast<A>(src[j]);
    }
    acc[taps.edge_x[e]] += sum;
  }
}

// The transpose of filter_row: grad_in[tap t of x] += w[t] * grad_out[x]. Several outputs may
// read the same input (border, reflect, symmetric): their terms add up, in a fixed order.
template <int KT, typename T, typename A>
void adjoint_row(const T* __restrict grad_out, A* __restrict grad_in, const A* __restrict w,
                 const ChannelTaps& taps) {
  const int K = KT > 0 ? KT : taps.kw;
  for (int t = 0; t < K; ++t) {
    const A wt = w[t];
    A* dst = grad_in + taps.offset + t;
    for (int64_t x = taps.inner.begin; x < taps.inner.end; ++x) dst[x] += wt * static_cast<A>(grad_out[x]);
  }
  for (size_t e = 0; e < taps.edge_x.size(); ++e) {
    const A g = static_cast<A>(grad_out[taps.edge_x[e]]);
    for (int t = 0; t < K; ++t) {
      const int64_t j = taps.edge_src[e * K + t];
      if (j != kZeroTap) grad_in[j] += w[t] * g;
    }
  }
}

// sum_x a[x] * b[x] with independent lanes (vectorisable, fixed order: deterministic).
template <typename T, typename A>
A dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  constexpr int kLanes = 8;
  A lane[kLanes] = {};
  int64_t x = 0;
  for (; x + kLanes <= n; x += kLanes) {
    for (int l = 0; l < kLanes; ++l) lane[l] += static_cast<A>(a[x + l]) * static_cast<A>(b[x + l]);
  }
  A sum = 0;
  for (; x < n; ++x) sum += static_cast<A>(a[x]) * static_cast<A>(b[x]);
  for (int l = 0; l < kLanes; ++l) sum += lane[l];
  return sum;
}

// dots[t] += sum_x grad_out[x] * src[tap t of x]: the per-tap correlations from which the shift
// gradient is contracted (the weights are constant over a channel).
template <int KT, typename T>
void correlate_row(const T* __restrict grad_out, const T* __restrict src,
                   const ChannelTaps& taps, double* dots) {
  using A = at::opmath_type<T>;
  const int K = KT > 0 ? KT : taps.kw;
  const Span in = taps.inner;
  for (int t = 0; t < K; ++t) {
    A sum = dot<T, A>(grad_out + in.begin, src + in.begin + taps.offset + t, in.end - in.begin);
    for (size_t e = 0; e < taps.edge_x.size(); ++e) {
      const int64_t j = taps.edge_src[e * K + t];
      if (j != kZeroTap) sum += static_cast<A>(grad_out[taps.edge_x[e]]) * static_cast<A>(src[j]);
    }
    dots[t] += static_cast<double>(sum);
  }
}

// Runs ROW_FN<K>(args...) with K fixed at compile time for the common counts.
#define SHIFTZOO_WITH_SUPPORT(K, ROW_FN, ...)  \
  switch (K) {                                 \
    case 1: ROW_FN<1>(__VA_ARGS__); break;     \
    case 2: ROW_FN<2>(__VA_ARGS__); break;     \
    case 4: ROW_FN<4>(__VA_ARGS__); break;     \
    default: ROW_FN<0>(__VA_ARGS__); break;    \
  }

}  // namespace shiftzoo::cpu
