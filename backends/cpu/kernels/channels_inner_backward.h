// The backward of channels-inner layouts (channels_last and kin), batch item by batch item: the
// input gradient's row (the forward of grad_output with the reversed taps) and the tap
// correlations of the same row, from the gathered input rows, so that grad_output comes from
// memory once.
//
// A kernel header (see kernel_table.h): included only by the per-instruction-set units isa_*.cpp,
// once each, after kernels/dependencies.h; its code has internal linkage, so every unit keeps
// its own copy compiled for its instruction set.
#pragma once
#include "backends/cpu/kernels/dependencies.h"
#include "backends/cpu/kernels/vector.h"
#include "backends/cpu/kernels/tap_counts.h"
#include "backends/cpu/kernels/channel_gather.h"
#include "backends/cpu/kernels/channels_inner_forward.h"

namespace shiftzoo::cpu {
namespace {

// The tap correlations of one channels-inner output row from its gathered rows (rows[r]: leading
// tap r, dense) and its grad_out row g (dense, in A): corr[c * taps + r * K + t] += sum over x of
// g[x * C + c] * rows[r][(step * x + t) * C + c]. Channels a vector at a time with every tap's
// running sum in registers, over runs of at most 64 pixels in the kernel precision (then added in
// double); the channels past the last whole vector one by one. In a fixed order: deterministic.
template <int KT, int RT, int ST, typename A>
void correlate_gathered(const A* g, const A* const* rows, int K, int R, int64_t C, int64_t W, int64_t step,
                        double* corr) {
  using Vec = Vec32<A>;
  constexpr int64_t kLanes = sizeof(Vec) / sizeof(A);
  constexpr int64_t kRun = 64;
  if constexpr (KT > 0) K = KT;
  if constexpr (RT > 0) R = RT;
  if constexpr (ST > 0) step = ST;
  const int taps = R * K;
  const int64_t vector_end = C - C % kLanes;
  for (int64_t x0 = 0; x0 < W; x0 += kRun) {
    const int64_t x1 = std::min(W, x0 + kRun);
    for (int64_t c0 = 0; c0 < vector_end; c0 += kLanes) {
      Vec acc[KT > 0 && RT > 0 ? KT * RT : kMaxSupport * kMaxSupport * kMaxSupport];
      for (int i = 0; i < taps; ++i) acc[i] = Vec{};
      for (int64_t x = x0; x < x1; ++x) {
        const Vec gv = load_vec(g + x * C + c0);
        for (int r = 0; r < R; ++r)
          for (int t = 0; t < K; ++t) acc[r * K + t] += gv * load_vec(rows[r] + (step * x + t) * C + c0);
      }
      for (int i = 0; i < taps; ++i)
        for (int64_t l = 0; l < kLanes; ++l) corr[(c0 + l) * taps + i] += static_cast<double>(acc[i][l]);
    }
    for (int64_t c = vector_end; c < C; ++c) {
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < K; ++t) {
          A sum = 0;
          for (int64_t x = x0; x < x1; ++x) sum += g[x * C + c] * rows[r][(step * x + t) * C + c];
          corr[c * taps + r * K + t] += static_cast<double>(sum);
        }
    }
  }
}

// The backward of batch items [item_begin, item_end) of a channels-inner layout, row by row: the
// input gradient's row (if asked for: the forward of grad_out with `input_grad_taps`, the reversed
// taps) and the tap correlations of the row (corr[(n * C + c) * taps + i] += sum over the row of
// grad_out times what tap combination i read: correlate_gathered on the gathered input rows).
// Both read grad_out's rows near the current one, so grad_out comes from memory once.
template <typename T>
void backward_items_channels_inner(const T* g_data, const T* in_data, T* gin_data, const Geometry& grad_geom,
                                   const Geometry& in_geom, const Geometry& grad_in_geom, const TapTables* input_grad_taps,
                                   const at::opmath_type<T>* input_grad_weights, const TapTables& correlate_taps,
                                   double* corr, int64_t item_begin, int64_t item_end) {
  using A = at::opmath_type<T>;
  const int64_t C = grad_geom.channels, D = grad_geom.size[0], H = grad_geom.size[1], W = grad_geom.size[2];
  const int64_t gs = grad_geom.stride[2], gcs = grad_geom.stride_c;
  const int K = correlate_taps.front().kw, taps = correlate_taps.front().taps();
  const int64_t step_x = correlate_taps.front().step_x;
  std::optional<ChannelsInnerForward<T>> input_grad;
  if (input_grad_taps) input_grad.emplace(*input_grad_taps, grad_geom, grad_in_geom, input_grad_weights);
  GatheredRows<T, A> gathered(correlate_taps, in_geom, grad_geom);
  const int R = gathered.leading_taps();
  // grad_out's row in A, dense, where it is not already
  const bool g_dense = std::is_same_v<T, A> && gcs == 1 && gs == C;
  std::vector<A> g_copy(g_dense ? 0 : W * C);
  const A* rows[kMaxSupport * kMaxSupport];
  for (int64_t n = item_begin; n < item_end; ++n) {
    for (int64_t z = 0; z < D; ++z) {
      for (int64_t y = 0; y < H; ++y) {
        if (input_grad) input_grad->row(g_data, gin_data, n, z, y);
        gathered.load(in_data + n * in_geom.stride_n, n, z, y);
        for (int r = 0; r < R; ++r) rows[r] = gathered.row(r);
        const T* g_row = g_data + n * grad_geom.stride_n + z * grad_geom.stride[0] + y * grad_geom.stride[1];
        const A* g = reinterpret_cast<const A*>(g_row);
        if (!g_dense) {
          if (gcs == 1 && gs == C) {
            convert_row(g_row, 1, W * C, g_copy.data());
          } else {
            for (int64_t x = 0; x < W; ++x)
              for (int64_t c = 0; c < C; ++c) g_copy[x * C + c] = static_cast<A>(g_row[x * gs + c * gcs]);
          }
          g = g_copy.data();
        }
        with_taps_and_rows(K, R, [&](auto kt, auto rt) {
          with_step(step_x, [&](auto st) {
            correlate_gathered<kt(), rt(), st()>(g, rows, K, R, C, W, step_x, corr + n * C * taps);
          });
        });
      }
    }
  }
}

// The input gradient of batch items [item_begin, item_end) of a channels-inner layout where the
// shift samples (a stride or a crop): per item, every tap of every output adds w * grad_out to the
// input it read, through each channel's tables (padding included), into a zeroed copy of the
// item in A that is then stored (half types round once). In a fixed order: deterministic.
// `weights`: every channel's, taps() apart. (Unit sampling takes the gather form instead.)
template <typename T>
void scatter_items_channels_inner(const T* g_data, T* gin_data, const Geometry& grad_geom,
                                  const Geometry& grad_in_geom, const TapTables& taps,
                                  const at::opmath_type<T>* weights, int64_t item_begin, int64_t item_end) {
  using A = at::opmath_type<T>;
  const int64_t C = grad_geom.channels, D = grad_in_geom.size[0], H = grad_in_geom.size[1], W = grad_in_geom.size[2];
  const int64_t gs = grad_geom.stride[2], gcs = grad_geom.stride_c, K = taps.front().kw;
  const int per_channel = taps.front().taps();
  std::vector<A> item(D * H * W * C);  // [z][y][x][c]
  for (int64_t n = item_begin; n < item_end; ++n) {
    std::fill(item.begin(), item.end(), A(0));
    for (int64_t z = 0; z < grad_geom.size[0]; ++z) {
      for (int64_t y = 0; y < grad_geom.size[1]; ++y) {
        const T* g_row = g_data + n * grad_geom.stride_n + z * grad_geom.stride[0] + y * grad_geom.stride[1];
        for (int64_t c = 0; c < C; ++c) {
          const ChannelTaps& t = taps[c];
          t.for_each_source_row(z, y, [&](int64_t sz, int64_t sy, int lead) {
            A* row = item.data() + (sz * H + sy) * W * C + c;
            const A* w = weights + c * per_channel + lead * K;
            for (int64_t x = 0; x < grad_geom.size[2]; ++x) {
              const A value = static_cast<A>(g_row[x * gs + c * gcs]);
              for (int tap = 0; tap < K; ++tap) {
                const int64_t j = t.source_x(x, tap);
                if (j != kZeroTap) row[j * C] += w[tap] * value;
              }
            }
          });
        }
      }
    }
    T* gin_n = gin_data + n * grad_in_geom.stride_n;
    for (int64_t z = 0; z < D; ++z)
      for (int64_t y = 0; y < H; ++y) {
        T* row = gin_n + z * grad_in_geom.stride[0] + y * grad_in_geom.stride[1];
        const A* from = item.data() + (z * H + y) * W * C;
        for (int64_t x = 0; x < W; ++x)
          for (int64_t c = 0; c < C; ++c) row[x * grad_in_geom.stride[2] + c * grad_in_geom.stride_c] = static_cast<T>(from[x * C + c]);
      }
  }
}

}  // namespace
}  // namespace shiftzoo::cpu
