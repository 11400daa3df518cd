// The forward of channels-inner layouts (channels_last and kin), output row by output row:
//  - nearest: the gathered row straight into the output (channel_gather.h), or, for channels in
//    runs of equal shifts (GroupedShift's layout), a vector of channels at a time;
//  - several taps: the gathered rows, then plain loops over channels at fixed offsets,
//    vectorised; no tables and no edge cases after the gather.
//
// A kernel header (see kernel_table.h): included only by the per-instruction-set units isa_*.cpp,
// once each, after kernels/dependencies.h; its code has internal linkage, so every unit keeps
// its own copy compiled for its instruction set.
#pragma once
#include "backends/cpu/kernels/dependencies.h"
#include "backends/cpu/kernels/vector.h"
#include "backends/cpu/kernels/tap_counts.h"
#include "backends/cpu/kernels/channel_pieces.h"
#include "backends/cpu/kernels/channel_gather.h"

namespace shiftzoo::cpu {
namespace {

// Channels [c0, c1) of one pixel, contiguous (src null: zeros), in blocks of a fixed 32 bytes
// (a couple of vector moves, no call) placed from c1 down; the last block may start below c0,
// never below channel 0 (needs c1 >= the block): what it writes there belongs to channels the
// caller copies later. Shorter spans at the start of the pixel go element by element.
template <typename T>
void copy_channel_span(const T* src, T* dst, int64_t c0, int64_t c1) {
  constexpr int64_t kBlock = 32 / sizeof(T);
  if (c1 < kBlock) {
    for (int64_t c = c0; c < c1; ++c) dst[c] = src ? src[c] : T(0);
    return;
  }
  T zeros[kBlock] = {};
  for (int64_t b = c1 - kBlock;; b -= kBlock) {
    b = std::max<int64_t>(b, 0);
    std::memcpy(dst + b, src ? src + b : zeros, 32);
    if (b <= c0) return;
  }
}

// Output rows (n, z, y) of a single-tap shift of a channels-inner layout whose channels are
// contiguous (stride 1, at least 32 bytes of them: channel_vectors) and come in runs that read
// alike (equal_tap_runs, e.g. GroupedShift's groups). Pixels where every run reads inside the
// row are written 32 bytes at a time, each vector the OR of its runs' source vectors under lane
// masks (one load per run it overlaps, one store): memory order, no table lookup. The few pixels
// near the ends go run by run through the edge tables (copy_channel_span). The plan (which runs
// each vector overlaps) is made once, then rows are copied one at a time, each vector or pixel
// through `map` (the inference form's per-channel maps, KeepPixel) while it is in registers or
// cache.
template <typename T>
class ChannelRunRows {
 public:
  ChannelRunRows(const Geometry& in_geom, const Geometry& out_geom, const TapTables& channel_taps,
                 const std::vector<Span>& runs)
      : in_geom_(in_geom), out_geom_(out_geom), taps_(channel_taps), runs_(runs),
        R_(static_cast<int64_t>(runs.size())), pieces_(run_of(in_geom.channels, runs)), moved_(R_),
        source_(R_) {
    common_ = {0, out_geom.size[2]};  // pixels where every run reads inside the row
    for (const Span& run : runs) {
      common_.begin = std::max(common_.begin, channel_taps[run.begin].inner.begin);
      common_.end = std::min(common_.end, channel_taps[run.begin].inner.end);
    }
    if (common_.end < common_.begin) common_.end = common_.begin;
  }

  template <class PixelMap = KeepPixel>
  void row(const T* in_data, T* out_data, int64_t n, int64_t z, int64_t y, const PixelMap& map = {}) {
    const int64_t os = out_geom_.stride[2], xs = in_geom_.stride[2], step_x = taps_.front().step_x;
    T* out_row = out_data + n * out_geom_.stride_n + z * out_geom_.stride[0] + y * out_geom_.stride[1];
    int64_t lowest = -1;  // the lowest input row this output row reads
    for (int64_t r = 0; r < R_; ++r) {  // run r's source row moved by its x offset, or a row of zeros
      const ChannelTaps& taps = taps_[runs_[r].begin];
      const int64_t sz = taps.src_z[z], sy = taps.src_y[y];
      moved_[r] = sz == kZeroTap || sy == kZeroTap ? nullptr
                                                   : in_data + n * in_geom_.stride_n + sz * in_geom_.stride[0] +
                                                         sy * in_geom_.stride[1] + taps.offset * xs;
      source_[r] = moved_[r] ? moved_[r] : zeros(step_x * xs);
      if (moved_[r]) lowest = std::max(lowest, sy);
    }
    const RowsAhead<T> ahead(in_data, in_geom_, n, z, lowest, taps_.front().step_y, step_x);
    auto edge_pixel = [&](int64_t x) {
      for (int64_t r = R_ - 1; r >= 0; --r) {
        const ChannelTaps& taps = taps_[runs_[r].begin];
        const T* src = nullptr;
        if (moved_[r]) {
          const int64_t j = taps.source_x(x);
          if (j != kZeroTap) src = moved_[r] + (j - taps.offset) * xs;
        }
        copy_channel_span(src, out_row + x * os, runs_[r].begin, runs_[r].end);
      }
      map(out_row + x * os);
    };
    for (int64_t x = 0; x < common_.begin; ++x) edge_pixel(x);
    pieces_.copy(source_.data(), out_row, os, common_.begin, common_.end, step_x * xs, ahead, map);
    for (int64_t x = common_.end; x < out_geom_.size[2]; ++x) edge_pixel(x);
  }

 private:
  // [c]: the run channel c belongs to (the runs cover every channel)
  static std::vector<int64_t> run_of(int64_t C, const std::vector<Span>& runs) {
    std::vector<int64_t> run(C);
    for (size_t r = 0; r < runs.size(); ++r) std::fill(run.begin() + runs[r].begin, run.begin() + runs[r].end, r);
    return run;
  }

  // A row of zeros for pieces read at pixels x * step (x < W_out), made where a row first reads
  // nothing.
  const T* zeros(int64_t step) {
    if (zeros_.empty()) zeros_.assign(in_geom_.channels + out_geom_.size[2] * step, T(0));
    return zeros_.data();
  }

  const Geometry &in_geom_, &out_geom_;
  const TapTables& taps_;
  const std::vector<Span>& runs_;
  int64_t R_;
  Span common_;
  ChannelPieces<T> pieces_;             // each vector's runs (source r: run r)
  std::vector<const T*> moved_;         // per row, per run: its source row moved by its x offset, or null
  std::vector<const T*> source_;        // the same, or zeros_
  std::vector<T> zeros_;
};

// Output rows (n, z, y) in [row_begin, row_end) (in memory order) through ChannelRunRows.
template <typename T>
void copy_rows_channel_runs(const T* in_data, T* out_data, const Geometry& in_geom, const Geometry& out_geom,
                            const TapTables& channel_taps, const std::vector<Span>& runs, int64_t row_begin,
                            int64_t row_end) {
  ChannelRunRows<T> copy(in_geom, out_geom, channel_taps, runs);
  const int64_t D = out_geom.size[0], H = out_geom.size[1];
  for (int64_t row = row_begin; row < row_end; ++row) copy.row(in_data, out_data, row / (H * D), (row / H) % D, row % H);
}

// Output pixels [0, W) of one channels-inner row of a several-tap shift from its gathered rows
// (rows[r]: leading tap r, dense, pixel x's channels at [x * C, x * C + C)): out[x * os + c * ocs]
// = sum_r sum_t w[(r * K + t) * C + c] * rows[r][(step * x + t) * C + c]. Channels a vector at a
// time (the ones past the last whole vector one by one).
template <int KT, int RT, int ST, typename T, typename A>
void filter_gathered(const A* const* rows, const A* w, int K, int R, int64_t C, int64_t W, int64_t step, T* out,
                     int64_t os, int64_t ocs) {
  if constexpr (KT > 0) K = KT;
  if constexpr (RT > 0) R = RT;
  if constexpr (ST > 0) step = ST;
  using Vec = Vec32<A>;
  constexpr int64_t kLanes = sizeof(Vec) / sizeof(A);
  const int64_t vector_end = C - C % kLanes;
  for (int64_t x = 0; x < W; ++x) {
    T* __restrict out_x = out + x * os;
    for (int64_t c0 = 0; c0 < vector_end; c0 += kLanes) {
      Vec sum = {};
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < K; ++t)
          sum += load_vec(w + (r * K + t) * C + c0) * load_vec(rows[r] + (step * x + t) * C + c0);
      if (ocs == 1) {
        store_vec<T, A>(out_x + c0, sum);
      } else {
        for (int64_t l = 0; l < kLanes; ++l) out_x[(c0 + l) * ocs] = static_cast<T>(sum[l]);
      }
    }
    for (int64_t c = vector_end; c < C; ++c) {
      A sum = 0;
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < K; ++t) sum += w[(r * K + t) * C + c] * rows[r][(step * x + t) * C + c];
      out_x[c * ocs] = static_cast<T>(sum);
    }
  }
}

// The forward of a channels-inner layout, one output row (n, z, y) at a time. One tap (nearest):
// the row gathered straight into the output. Several taps: the gathered rows it reads (kept while
// later rows read them: rows in order are cheapest), then filter_gathered. `weights` holds every
// channel's weights, taps() apart.
template <typename T>
class ChannelsInnerForward {
  using A = at::opmath_type<T>;

 public:
  ChannelsInnerForward(const TapTables& taps, const Geometry& in_geom, const Geometry& out_geom, const A* weights)
      : in_geom_(in_geom), out_geom_(out_geom), K_(taps.front().kw), step_y_(taps.front().step_y),
        step_x_(taps.front().step_x) {
    const int64_t C = in_geom.channels;
    const int per_channel = taps.front().taps();
    if (per_channel == 1) {
      single_.emplace(taps, in_geom, out_geom, out_geom.size[2], step_x_);
      return;
    }
    several_.emplace(taps, in_geom, out_geom);
    weights_.resize(static_cast<size_t>(per_channel) * C);  // by tap, then channel
    for (int64_t c = 0; c < C; ++c)
      for (int i = 0; i < per_channel; ++i) weights_[i * C + c] = weights[c * per_channel + i];
  }

  void row(const T* in_data, T* out_data, int64_t n, int64_t z, int64_t y) {
    const T* in_n = in_data + n * in_geom_.stride_n;
    T* out_row = out_data + n * out_geom_.stride_n + z * out_geom_.stride[0] + y * out_geom_.stride[1];
    if (single_) return single_->gather(in_n, z, 0, step_y_ * y, out_row, out_geom_.stride[2], out_geom_.stride_c);
    several_->load(in_n, n, z, y);
    const int R = several_->leading_taps();
    const A* rows[kMaxSupport * kMaxSupport];
    for (int r = 0; r < R; ++r) rows[r] = several_->row(r);
    with_taps_and_rows(K_, R, [&](auto kt, auto rt) {
      with_step<1>(step_x_, [&](auto st) {
        filter_gathered<kt(), rt(), st()>(rows, weights_.data(), K_, R, in_geom_.channels, out_geom_.size[2], step_x_,
                                          out_row, out_geom_.stride[2], out_geom_.stride_c);
      });
    });
  }

 private:
  const Geometry &in_geom_, &out_geom_;
  int K_;
  int64_t step_y_, step_x_;
  std::optional<ChannelRowGather<T>> single_;
  std::optional<GatheredRows<T, A>> several_;
  std::vector<A> weights_;
};

// Output rows (n, z, y) in [row_begin, row_end) (in memory order) of a channels-inner layout.
template <typename T>
void forward_rows_channels_inner(const T* in_data, T* out_data, const Geometry& in_geom, const Geometry& out_geom,
                                 const TapTables& taps, const at::opmath_type<T>* weights, int64_t row_begin,
                                 int64_t row_end) {
  ChannelsInnerForward<T> forward(taps, in_geom, out_geom, weights);
  const int64_t D = out_geom.size[0], H = out_geom.size[1];
  for (int64_t row = row_begin; row < row_end; ++row) forward.row(in_data, out_data, row / (H * D), (row / H) % D, row % H);
}

}  // namespace
}  // namespace shiftzoo::cpu
