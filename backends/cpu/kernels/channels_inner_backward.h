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
          with_step<1>(step_x, [&](auto st) {
            correlate_gathered<kt(), rt(), st()>(g, rows, K, R, C, W, step_x, corr + n * C * taps);
          });
        });
      }
    }
  }
}

// The input gradient of batch items [item_begin, item_end) of a channels-inner layout where the
// shift samples (a stride or a crop): every tap of every output adds w * grad_out to the input it
// read, through each channel's tables (padding included). The sums gather in grad_in itself for
// float types, in a dense copy of the item in A for half types (stored at the end: they round
// once). Output row by output row, pixel by pixel, channel by channel (channels lie next to each
// other in both tensors; one channel across a row would touch a cache line per pixel): each
// channel's source rows are looked up once per output row; the pixels where every regular channel
// reads inside add at plain offsets (a tap that reads nothing, or a channel shifted far, into a
// scratch row instead of branching), the others through the edge tables; input rows are zeroed
// just before the first output row that may add to them, so that they are still in cache when
// the sums arrive. Every input element receives its terms in the order (output row, leading tap,
// pixel, tap), whatever the layout: deterministic. `weights`: every channel's, taps() apart.
// (Unit sampling takes the gather form.)
template <typename T>
void scatter_items_channels_inner(const T* g_data, T* gin_data, const Geometry& grad_geom,
                                  const Geometry& grad_in_geom, const TapTables& taps,
                                  const at::opmath_type<T>* weights, int64_t item_begin, int64_t item_end) {
  using A = at::opmath_type<T>;
  constexpr bool kInPlace = std::is_same_v<T, A>;
  const int64_t C = grad_geom.channels, D = grad_in_geom.size[0], H = grad_in_geom.size[1], W = grad_in_geom.size[2];
  const int64_t W_out = grad_geom.size[2], gs = grad_geom.stride[2], gcs = grad_geom.stride_c;
  const ChannelTaps& front = taps.front();
  const int K = front.kw, R = front.kd * front.kh, per_channel = front.taps();
  // The accumulator's strides: grad_in's, or the dense item's ([z][y][x][c]).
  std::vector<A> item(kInPlace ? 0 : D * H * W * C);
  const int64_t az = kInPlace ? grad_in_geom.stride[0] : H * W * C, ay = kInPlace ? grad_in_geom.stride[1] : W * C;
  const int64_t ax = kInPlace ? grad_in_geom.stride[2] : C, ac = kInPlace ? grad_in_geom.stride_c : 1;
  // The pixels where every channel not shifted far has all its taps inside its row: plain offsets
  // there. A far channel (split_far_channels) goes through its edge table at every pixel instead.
  const FarChannels split = split_far_channels(taps, W_out, [](const ChannelTaps& t) { return t.inner; });
  const Span common = split.common;
  const std::vector<char>& far = split.far;
  const std::vector<int64_t>& far_channels = split.channels;
  // Scratch where taps that read nothing, and far channels on those pixels, add (never read):
  // wide enough for every raw index some output reads.
  const int64_t raw_width = std::max(W, front.step_x * (W_out - 1) + K);
  std::vector<A> sink(std::max<int64_t>(1, (raw_width - 1) * ax + (C - 1) * ac + 1));
  std::vector<A*> rows(static_cast<size_t>(R) * C), moved(rows.size());  // [r * C + c]: its row, and moved by its offset
  std::vector<A> tap_weights(static_cast<size_t>(per_channel) * C);      // [(r * K + t) * C + c]
  for (int64_t c = 0; c < C; ++c)
    for (int i = 0; i < per_channel; ++i) tap_weights[i * C + c] = weights[c * per_channel + i];
  for (int64_t n = item_begin; n < item_end; ++n) {
    A* acc = kInPlace ? reinterpret_cast<A*>(gin_data + n * grad_in_geom.stride_n) : item.data();
    int64_t zeroed = 0;  // input rows z * H + y below this are zeroed
    const auto zero_rows_below = [&](int64_t end) {
      for (; zeroed < end; ++zeroed) {
        A* row = acc + zeroed / H * az + zeroed % H * ay;
        if (ac == 1 && ax == C) {
          std::fill_n(row, W * C, A(0));
        } else {
          for (int64_t x = 0; x < W; ++x)
            for (int64_t c = 0; c < C; ++c) row[x * ax + c * ac] = A(0);
        }
      }
    };
    for (int64_t z = 0; z < grad_geom.size[0]; ++z) {
      for (int64_t y = 0; y < grad_geom.size[1]; ++y) {
        int64_t highest = -1;  // the highest input row this output row adds to
        for (int64_t c = 0; c < C; ++c) {
          const ChannelTaps& t = taps[c];
          for (int r = 0; r < R; ++r) {
            const int64_t sz = t.src_z[z * t.kd + r / t.kh], sy = t.src_y[y * t.kh + r % t.kh];
            A* row = sz == kZeroTap || sy == kZeroTap ? sink.data() : acc + sz * az + sy * ay;
            if (row != sink.data()) highest = std::max(highest, sz * H + sy);
            rows[r * C + c] = row + c * ac;
            moved[r * C + c] = far[c] ? sink.data() + c * ac : row + c * ac + t.offset * ax;
          }
        }
        zero_rows_below(highest + 1);
        const T* g_row = g_data + n * grad_geom.stride_n + z * grad_geom.stride[0] + y * grad_geom.stride[1];
        for (int r = 0; r < R; ++r) {
          A* const* to = moved.data() + r * C;
          const A* w = tap_weights.data() + r * K * C;
          // through channel c's edge table
          const auto add_through_table = [&](int64_t c, int64_t x) {
            const A value = static_cast<A>(g_row[x * gs + c * gcs]);
            taps[c].for_each_source_x(x, [&](int tap, int64_t j) { rows[r * C + c][j * ax] += w[tap * C + c] * value; });
          };
          const auto edge_pixel = [&](int64_t x) {
            for (int64_t c = 0; c < C; ++c)
              if (!far[c]) add_through_table(c, x);
          };
          for (int64_t x = 0; x < common.begin; ++x) edge_pixel(x);
          with_taps(K, [&](auto kt) {
            const int k = kt() > 0 ? kt() : K;
            for (int64_t x = common.begin; x < common.end; ++x) {
              const T* g_x = g_row + x * gs;
              const int64_t at = front.step_x * x * ax;
              for (int64_t c = 0; c < C; ++c) {
                const A value = static_cast<A>(g_x[c * gcs]);
                for (int tap = 0; tap < k; ++tap) to[c][at + tap * ax] += w[tap * C + c] * value;
              }
            }
          });
          for (int64_t x = common.end; x < W_out; ++x) edge_pixel(x);
          for (const int64_t c : far_channels)
            for (int64_t x = 0; x < W_out; ++x) add_through_table(c, x);
        }
      }
    }
    zero_rows_below(D * H);
    if constexpr (!kInPlace) {
      T* gin_n = gin_data + n * grad_in_geom.stride_n;
      for (int64_t z = 0; z < D; ++z)
        for (int64_t y = 0; y < H; ++y) {
          T* row = gin_n + z * grad_in_geom.stride[0] + y * grad_in_geom.stride[1];
          const A* from = item.data() + (z * H + y) * W * C;
          for (int64_t x = 0; x < W; ++x)
            for (int64_t c = 0; c < C; ++c)
              row[x * grad_in_geom.stride[2] + c * grad_in_geom.stride_c] = static_cast<T>(from[x * C + c]);
        }
    }
  }
}

}  // namespace
}  // namespace shiftzoo::cpu
