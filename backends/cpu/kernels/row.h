// The work on one row (the last axis) of one channel: an interior range where every tap lies
// inside the row (plain stride-1 loops the compiler vectorises) and a few edge positions whose
// taps come from the channel's tables (tap_tables.h). No padding logic runs here.
//
// A kernel header (see kernel_table.h): included only by the per-instruction-set units isa_*.cpp,
// once each, after kernels/dependencies.h; its code has internal linkage, so every unit keeps
// its own copy compiled for its instruction set.
#pragma once
#include "backends/cpu/kernels/dependencies.h"
#include "backends/cpu/kernels/tap_counts.h"
#include "backends/cpu/kernels/vector.h"

namespace shiftzoo::cpu {
namespace {

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
  for (int64_t e = 0; e < taps.edges; ++e) {
    const int64_t j = taps.edge_src[e];
    dst[taps.edge_x[e]] = j == kZeroTap ? T(0) : src[j];
  }
}

// dst[x] = src[step_x * x + offset] (one block copy for step 1, vectors of every other element
// for step 2) plus the edge fill.
template <typename T>
void copy_row(const T* __restrict src, T* __restrict dst, const ChannelTaps& taps) {
  const Span in = taps.inner;
  if (taps.step_x == 1) {
    if (in.end > in.begin) std::memcpy(dst + in.begin, src + in.begin + taps.offset, (in.end - in.begin) * sizeof(T));
  } else {
    const T* from = src + taps.offset;
    with_step<2>(taps.step_x, [&](auto st) {
      const int64_t step = st() > 0 ? st() : taps.step_x;
      int64_t x = in.begin;
      if constexpr (st() == 2 && (std::is_same_v<T, float> || std::is_same_v<T, double>)) {
        constexpr int64_t L = 32 / sizeof(T);
        for (; x + L <= in.end; x += L) {
          const auto v = load_every<2>(from + 2 * x);
          std::memcpy(dst + x, &v, sizeof(v));
        }
      }
      for (; x < in.end; ++x) dst[x] = from[step * x];
    });
  }
  fill_edges(src, dst, taps);
}

// The rows `rows` x columns `cols` of a dense slice moved by (dy, dx): dst[y * W + x] =
// src[(y + dy) * W + x + dx], as ONE flat block copy from the first to the last element (short
// rows cost no per-row call). The columns outside `cols` of the rows in between are overwritten
// with wrapped-around values: the caller rewrites them. No-op for an empty block.
template <typename T>
void move_block(const T* src, T* dst, int64_t W, Span rows, Span cols, int64_t dy, int64_t dx) {
  if (rows.end <= rows.begin || cols.end <= cols.begin) return;
  const int64_t first = rows.begin * W + cols.begin, last = (rows.end - 1) * W + cols.end;
  std::memcpy(dst + first, src + first + dy * W + dx, (last - first) * sizeof(T));
}

// out[x] = sum_r sum_t w[r][t] * src[r][step * x + t] for x in [begin, end): one long
// vectorisable loop for step 1 (the caller moves each src[r] by its offset).
template <int KT, int RT, int ST, typename T, typename A>
void filter_span(const T* const* src, const A* const* w, int K, int R, T* __restrict out, int64_t begin,
                 int64_t end, int64_t step) {
  if constexpr (KT > 0) K = KT;
  if constexpr (RT > 0) R = RT;
  if constexpr (ST > 0) step = ST;
  for (int64_t x = begin; x < end; ++x) {
    A sum = 0;
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < K; ++t) sum += w[r][t] * static_cast<A>(src[r][step * x + t]);
    out[x] = static_cast<T>(sum);
  }
}

// The edge positions of a K-tap row, from the channel's tables.
template <typename T, typename A>
void filter_edges(const T* const* rows, const A* const* w, int R, T* __restrict out, const ChannelTaps& taps) {
  const int K = taps.kw;
  for (int64_t e = 0; e < taps.edges; ++e) {
    A sum = 0;
    for (int t = 0; t < K; ++t) {
      const int64_t j = taps.edge_src[e * K + t];
      if (j == kZeroTap) continue;
      for (int r = 0; r < R; ++r) sum += w[r][t] * static_cast<A>(rows[r][j]);
    }
    out[taps.edge_x[e]] = static_cast<T>(sum);
  }
}

// out[x] = sum_r sum_t w[r][t] * rows[r][tap t of x]: the R input rows an output row reads,
// each filtered along the row, summed in the accumulation type and stored once.
template <typename T, typename A>
void filter_rows(const T* const* rows, const A* const* w, int R, T* out, const ChannelTaps& taps) {
  const T* moved[kMaxSupport * kMaxSupport];
  for (int r = 0; r < R; ++r) moved[r] = rows[r] + taps.offset;
  with_taps_and_rows(taps.kw, R, [&](auto kt, auto rt) {
    with_step<1, 2>(taps.step_x, [&](auto st) {
      filter_span<kt(), rt(), st()>(moved, w, taps.kw, R, out, taps.inner.begin, taps.inner.end, taps.step_x);
    });
  });
  filter_edges(rows, w, R, out, taps);
}

// sum_x a[x] * b[step * x] with independent lanes (vectorisable for step 1, fixed order:
// deterministic).
template <typename A, int ST = 1, typename TA, typename TB>
A dot(const TA* __restrict a, const TB* __restrict b, int64_t n, int64_t step = 1) {
  if constexpr (ST > 0) step = ST;
  constexpr int kLanes = 8;
  A lane[kLanes] = {};
  int64_t x = 0;
  for (; x + kLanes <= n; x += kLanes) {
    for (int l = 0; l < kLanes; ++l) lane[l] += static_cast<A>(a[x + l]) * static_cast<A>(b[step * (x + l)]);
  }
  A sum = 0;
  for (; x < n; ++x) sum += static_cast<A>(a[x]) * static_cast<A>(b[step * x]);
  for (int l = 0; l < kLanes; ++l) sum += lane[l];
  return sum;
}

}  // namespace
}  // namespace shiftzoo::cpu
