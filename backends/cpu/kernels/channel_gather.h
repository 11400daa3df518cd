// What every channel of a channels-inner layout (channels_last, channels_last_3d, their 1D
// analogue) reads along a row, gathered into a row of its own: the first step of every
// several-tap kernel of those layouts, and the whole of their nearest forward. Rows (n, z, y) of
// all channels at once, never one channel across a row (its pixels lie a cache line apart), never
// through a transposition.
//
// A kernel header (see kernel_table.h): included only by the per-instruction-set units isa_*.cpp,
// once each, after kernels/dependencies.h; its code has internal linkage, so every unit keeps
// its own copy compiled for its instruction set.
#pragma once
#include "backends/cpu/kernels/dependencies.h"
#include "backends/cpu/kernels/channel_pieces.h"

namespace shiftzoo::cpu {
namespace {

// Channels whose reads leave a row further than this from its ends are "far": the channels-inner
// kernels give each of them a pass of its own instead of shrinking, for every channel, the span of
// pixels read at plain offsets.
constexpr int64_t kFarEdge = 8;

// The channels of `taps` split for a row of `width` pixels by where each reading class reads
// inside it (inside(its ChannelTaps): a span of pixels), decided once per class: `common`, the
// pixels where every channel that is not far reads inside; the far channels, flagged and listed.
struct FarChannels {
  Span common;
  std::vector<char> far_class;   // [k]: whether reading class k is far
  std::vector<char> far;         // [c]
  std::vector<int64_t> channels;  // the far ones, in order
};
template <class Inside>
FarChannels split_far_channels(const TapTables& taps, int64_t width, const Inside& inside) {
  FarChannels split{{0, width}, std::vector<char>(taps.classes()), std::vector<char>(taps.size()), {}};
  for (int64_t k = 0; k < taps.classes(); ++k) {
    const Span in = inside(taps.of_class(k));
    split.far_class[k] = in.begin > kFarEdge || in.end < width - kFarEdge;
    if (split.far_class[k]) continue;
    split.common.begin = std::max(split.common.begin, in.begin);
    split.common.end = std::min(split.common.end, in.end);
  }
  if (split.common.end < split.common.begin) split.common.end = split.common.begin;
  for (int64_t c = 0; c < taps.size(); ++c) {
    split.far[c] = split.far_class[taps.reading_class()[c]];
    if (split.far[c]) split.channels.push_back(c);
  }
  return split;
}

// Pixels `common` of a gathered row, pixel by pixel, channel by channel: out[x * os + c * ocs] =
// source(c)[x * xs] (every read in range by the caller's choice of `common`).
template <typename G, class Source>
void copy_shared_pixels(G* out, int64_t os, int64_t ocs, const Source& source, int64_t C, int64_t xs, Span common) {
  for (int64_t x = common.begin; x < common.end; ++x) {
    G* __restrict out_x = out + x * os;
    const int64_t in_x = x * xs;
    for (int64_t c = 0; c < C; ++c) out_x[c * ocs] = static_cast<G>(source(c)[in_x]);
  }
}

// What every channel reads along one row, gathered into a row of `width` pixels. Gathered row
// (a, j) holds at pixel x, for channel c, the input at raw index pixel_step * x + offset_c along W
// (through the padding; 0 where it reads nothing) of the input row that the channel's D tap a and
// raw H index j + offset_y_c read. Output row (z, y)'s taps (a, b, t) at pixel x then read gathered
// row (a, step_y * y + b) at pixel step_x * x + t (pixel_step 1: every raw index, width
// step_x * (W_out - 1) + K), for every channel alike, and consecutive output rows share gathered
// rows; a single-tap shift gathers its output row itself (pixel_step = step_x, width W_out).
// Pixel by pixel, channel by channel (channels are adjacent in memory): the pixels `common`,
// where every regular channel reads inside the input row, straight from the moved source rows;
// the few outside it (at most kFarEdge at each end) through a table built once; the channels shifted
// further (not regular) each on its own afterwards, so that they cannot shrink `common`.
// Rows away from the input's edges (most of them) read at fixed distances from the raw row: one
// table of offsets serves them all, no work per channel and row; only the rows near the edges
// look up each channel's source row (from flat per-channel tables, no division per channel).
// Where channels are contiguous and their reading classes few per vector of channels (SSL's
// usual shifts: 4 classes), `common` goes a vector at a time instead (ChannelPieces, one source
// per class), and the rows near the edges look up a source row per class, not per channel.
template <typename T>
class ChannelRowGather {
 public:
  ChannelRowGather(const TapTables& taps, const Geometry& in_geom, const Geometry& out_geom, int64_t width,
                   int64_t pixel_step)
      : taps_(taps), in_geom_(in_geom), C_(in_geom.channels), W_(in_geom.size[2]), width_(width),
        pixel_step_(pixel_step), out_size_(out_geom.size), x_shift_(C_), inside_row_(C_), inside_offset_(C_),
        src_z_(C_), src_y_(C_),
        zero_row_(std::max(width * pixel_step, W_) * in_geom.stride[2] + in_geom.channels * in_geom.stride_c, T(0)),
        rows_(C_), sources_(C_) {
    const ChannelTaps& front = taps.front();
    // every raw (D, H) index some output reads
    inside_z_ = {0, front.step_z * std::max<int64_t>(out_size_[0] - 1, 0) + front.kd};
    inside_y_ = {0, front.step_y * std::max<int64_t>(out_size_[1] - 1, 0) + front.kh};
    // Which channels are far, and what every other one reads inside, once per reading class
    // (channels that read alike: a few for compiled paddings); per channel, lookups only.
    const FarChannels split = split_far_channels(taps, width, [&](const ChannelTaps& t) { return reads_inside(t); });
    common_ = split.common;
    far_ = split.channels;
    const int64_t classes = taps.classes();
    const std::vector<int32_t>& class_of = taps.reading_class();
    for (int64_t k = 0; k < classes; ++k) {
      if (split.far_class[k]) continue;
      const ChannelTaps& t = taps.of_class(k);
      inside_z_ = {std::max(inside_z_.begin, -t.offset_z), std::min(inside_z_.end, in_geom.size[0] - t.offset_z)};
      inside_y_ = {std::max(inside_y_.begin, -t.offset_y), std::min(inside_y_.end, in_geom.size[1] - t.offset_y)};
    }
    int64_t some_regular = -1;
    std::vector<int64_t> row_shift(C_);  // [c]: from raw row (zz, j) to channel c's input row, in elements
    for (int64_t c = 0; c < C_; ++c) {
      const ChannelTaps& t = taps[c];
      src_z_[c] = t.src_z;
      src_y_[c] = t.src_y;
      row_shift[c] = c * in_geom.stride_c + t.offset_z * in_geom.stride[0] + t.offset_y * in_geom.stride[1];
      x_shift_[c] = t.offset * in_geom.stride[2];
      if (!split.far[c]) some_regular = c;
    }
    if (some_regular < 0) {  // far channels only: no row is read at fixed distances (all near the edges)
      common_.end = common_.begin;
      inside_z_ = inside_y_ = {0, 0};
    }
    // On rows inside, a far channel reads where a regular one does, in its own channel (in range;
    // overwritten afterwards).
    for (int64_t c = 0; c < C_; ++c) {
      const int64_t like = !split.far[c] || some_regular < 0 ? c : some_regular;
      inside_row_[c] = row_shift[like] + (c - like) * in_geom.stride_c;
      inside_offset_[c] = inside_row_[c] + x_shift_[like];
    }
    // Where a channel reads nothing, the band reads its row's pixel 0 and the zero comes after
    // (band_silent): no branch per element.
    for (int64_t x = 0; x < width; ++x)
      if (x < common_.begin || x >= common_.end) band_x_.push_back(x);
    std::vector<int64_t> class_band(band_x_.size() * classes);  // [b * classes + k]
    for (size_t b = 0; b < band_x_.size(); ++b)
      for (int64_t k = 0; k < classes; ++k)
        class_band[b * classes + k] = split.far_class[k] ? 0 : source_x(taps.of_class(k), band_x_[b]);
    band_src_.resize(band_x_.size() * C_);
    for (size_t b = 0; b < band_x_.size(); ++b)
      for (int64_t c = 0; c < C_; ++c) {
        const int64_t source = class_band[b * classes + class_of[c]];
        if (source == kZeroTap) band_silent_.push_back({band_x_[b], c});
        band_src_[b * C_ + c] = source == kZeroTap ? 0 : source;
      }
    plan_pieces(taps, split.far);
  }

  // Gathered row (a, j) of batch item n (input at in_n) for output rows in D-slice z, pixel x's
  // channels at out[x * os + c * ocs]; j is a raw H index some output row reads.
  template <typename G>
  void gather(const T* in_n, int64_t z, int a, int64_t j, G* out, int64_t os, int64_t ocs) {
    const int64_t xs = in_geom_.stride[2];
    const int64_t zz = taps_.front().step_z * z + a;  // the raw D index, counted like j
    silent_.clear();
    const RowIndex at = row_index(z, a, j);
    const bool inside = zz >= inside_z_.begin && zz < inside_z_.end && j >= inside_y_.begin && j < inside_y_.end;
    bool far_listed = false;  // whether the far channels that read nothing are in silent_ already
    if constexpr (std::is_same_v<G, T>) {
      if (pieces_ && ocs == 1) {
        gather_pieces(in_n, zz, j, at, inside, out, os);
        return finish(in_n, at, out, os, ocs, false);
      }
    }
    if (inside) {
      // every regular channel reads an input row at its own fixed distance from (zz, j)
      const T* base = in_n + zz * in_geom_.stride[0] + j * in_geom_.stride[1];
      const int64_t* offset = inside_offset_.data();
      const int64_t* row = inside_row_.data();
      copy_shared_pixels(out, os, ocs, [&](int64_t c) { return base + offset[c]; }, C_, pixel_step_ * xs, common_);
      copy_band(out, os, ocs, [&](int64_t c) { return base + row[c]; });
    } else {
      for (int64_t c = 0; c < C_; ++c) {
        rows_[c] = source_row(in_n, c, at);
        if (!rows_[c]) {
          silent_.push_back(c);
          rows_[c] = sources_[c] = zero_row_.data() + c * in_geom_.stride_c;
          continue;
        }
        sources_[c] = rows_[c] + x_shift_[c];
      }
      for (const int64_t c : far_) rows_[c] = sources_[c] = zero_row_.data() + c * in_geom_.stride_c;  // below
      const T* const* sources = sources_.data();
      const T* const* rows = rows_.data();
      copy_shared_pixels(out, os, ocs, [&](int64_t c) { return sources[c]; }, C_, pixel_step_ * xs, common_);
      copy_band(out, os, ocs, [&](int64_t c) { return rows[c]; });
      far_listed = true;
    }
    finish(in_n, at, out, os, ocs, far_listed);
  }

  // The channels whose input row the last gathered row reads nothing from (zeros there).
  const std::vector<int64_t>& silent_channels() const { return silent_; }
  // The pixels x (outside those where every regular channel reads inside its row) at which
  // regular channel c reads nothing from its row: pairs (x, c).
  const std::vector<std::array<int64_t, 2>>& band_silent() const { return band_silent_; }
  const std::vector<int64_t>& far_channels() const { return far_; }

 private:
  // The pixels outside `common`, through the band table: out = row(c)[source * xs] (band_silent
  // still to be zeroed).
  template <typename G, class Row>
  void copy_band(G* out, int64_t os, int64_t ocs, const Row& row) const {
    const int64_t xs = in_geom_.stride[2];
    for (size_t b = 0; b < band_x_.size(); ++b) {
      G* __restrict out_x = out + band_x_[b] * os;
      const int64_t* src_x = band_src_.data() + b * C_;
      for (int64_t c = 0; c < C_; ++c) out_x[c * ocs] = static_cast<G>(row(c)[src_x[c] * xs]);
    }
  }
  // Pixels x of a gathered row whose raw index pixel_step * x + offset lies inside the input row.
  Span reads_inside(const ChannelTaps& taps) const {
    const auto up = [&](int64_t a) { return pixel_step_ == 1 ? a : ceil_div(a, pixel_step_); };  // (no division)
    const int64_t begin = std::clamp<int64_t>(up(-taps.offset), 0, width_);
    return {begin, std::clamp<int64_t>(up(W_ - taps.offset), begin, width_)};
  }
  // What raw index pixel_step * x + offset reads along W: tap r - step_x * p of output
  // p = min(r / step_x, W_out - 1), r = pixel_step * x (kZeroTap for a raw index no tap reads).
  int64_t source_x(const ChannelTaps& taps, int64_t x) const {
    const int64_t r = pixel_step_ * x;
    const int64_t p = std::min(taps.step_x == 1 ? r : r / taps.step_x, out_size_[2] - 1);
    const int64_t t = r - taps.step_x * p;
    return t < taps.kw ? taps.source_x(p, static_cast<int>(t)) : kZeroTap;
  }
  // Where gathered row (a, j) of D-slice z lies in every channel's D and H tables (tables are
  // functions of the raw index: ChannelTaps::lead_source), found once per gathered row.
  struct RowIndex {
    int64_t z, y;  // entries of src_z and src_y
    bool read;     // whether some tap reads raw H index j (otherwise every channel reads zeros)
  };
  RowIndex row_index(int64_t z, int a, int64_t j) const {
    const ChannelTaps& front = taps_.front();
    const int64_t p = std::min(j / front.step_y, out_size_[1] - 1), t = j - front.step_y * p;
    return {z * front.kd + a, p * front.kh + t, t < front.kh};
  }
  // Channel c's input row at that index, or null (it reads zeros).
  const T* source_row(const T* in_n, int64_t c, const RowIndex& at) const {
    const int64_t sz = src_z_[c][at.z], sy = at.read ? src_y_[c][at.y] : kZeroTap;
    if (sz == kZeroTap || sy == kZeroTap) return nullptr;
    return in_n + c * in_geom_.stride_c + sz * in_geom_.stride[0] + sy * in_geom_.stride[1];
  }
  // Vectors of channels take pieces where they average at least this many lanes per piece. Measured
  // (float, 8 lanes): SSL's shift gradient taps from uniform(-1, 1) shifts, 4 classes, ~3.6 pieces
  // a vector: its correlation pass 10-20 % faster; its nearest forward, 9 classes, ~5.5 pieces:
  // 20-25 % slower than copying channel by channel.
  static constexpr int64_t kLanesPerPiece = 2;

  // The pieces of every vector of channels, one per reading class among its channels (the far
  // channels one more: they are overwritten afterwards), where the input's channels are
  // contiguous and the pieces few enough.
  void plan_pieces(const TapTables& taps, const std::vector<char>& far) {
    if (in_geom_.stride_c != 1 || C_ < ChannelPieces<T>::kLanes) return;
    const int64_t far_class = taps.classes();
    piece_class_.resize(C_);
    for (int64_t c = 0; c < C_; ++c) piece_class_[c] = far[c] ? far_class : taps.reading_class()[c];
    const int64_t lanes = ChannelPieces<T>::kLanes, vectors = (C_ + lanes - 1) / lanes;
    if (ChannelPieces<T>::count(piece_class_) * kLanesPerPiece > vectors * lanes) return;
    pieces_.emplace(piece_class_);
    // each class by a channel of its own (channel - channel_0 is its distance from channel 0's
    // place), and its channels (for silent_)
    class_channel_.assign(far_class + 1, -1);
    class_members_.resize(far_class + 1);
    for (int64_t c = 0; c < C_; ++c) {
      if (class_channel_[piece_class_[c]] < 0) class_channel_[piece_class_[c]] = c;
      if (!far[c]) class_members_[piece_class_[c]].push_back(c);
    }
    class_row_.resize(far_class + 1);
    class_source_.resize(far_class + 1);
  }
  // The piece path of gather(): every class's source row at channel 0's place (moved by the
  // class's offset along W), then `common` a vector of channels at a time, the band by the table.
  void gather_pieces(const T* in_n, int64_t zz, int64_t j, const RowIndex& at, bool inside, T* out, int64_t os) {
    const int64_t xs = in_geom_.stride[2], classes = static_cast<int64_t>(class_channel_.size());
    if (inside) {
      const T* base = in_n + zz * in_geom_.stride[0] + j * in_geom_.stride[1];
      for (int64_t k = 0; k < classes; ++k)
        if (class_channel_[k] >= 0) class_source_[k] = base + inside_offset_[class_channel_[k]] - class_channel_[k];
      pieces_->copy(class_source_.data(), out, os, common_.begin, common_.end, pixel_step_ * xs);
      const int64_t* row = inside_row_.data();
      copy_band(out, os, 1, [&](int64_t c) { return base + row[c]; });
      return;
    }
    for (int64_t k = 0; k < classes; ++k) {
      const int64_t c = class_channel_[k];
      const T* row = c < 0 || class_members_[k].empty() ? nullptr : source_row(in_n, c, at);
      if (!row) {  // a class that reads nothing, or the far channels (overwritten afterwards)
        class_row_[k] = class_source_[k] = zero_row_.data();
        silent_.insert(silent_.end(), class_members_[k].begin(), class_members_[k].end());
        continue;
      }
      class_row_[k] = row - c;
      class_source_[k] = class_row_[k] + x_shift_[c];
    }
    pieces_->copy(class_source_.data(), out, os, common_.begin, common_.end, pixel_step_ * xs);
    const int64_t* piece_class = piece_class_.data();
    copy_band(out, os, 1, [&](int64_t c) { return class_row_[piece_class[c]] + c; });
  }
  // What every path of gather() ends with: zeros where a regular channel reads nothing at the
  // band's pixels, then the far channels one by one (far_listed: the ones whose row reads
  // nothing are in silent_ already).
  template <typename G>
  void finish(const T* in_n, const RowIndex& at, G* out, int64_t os, int64_t ocs, bool far_listed) {
    for (const auto& [x, c] : band_silent_) out[x * os + c * ocs] = G(0);
    for (const int64_t c : far_) {
      const T* row = source_row(in_n, c, at);
      if (!row && !far_listed) silent_.push_back(c);
      far_channel(taps_[c], row, out + c * ocs, os);
    }
  }

  // One channel's whole gathered row (out: its pixel 0), from input row `row` (null: zeros).
  template <typename G>
  void far_channel(const ChannelTaps& taps, const T* row, G* out, int64_t os) const {
    const int64_t xs = in_geom_.stride[2];
    const Span in = reads_inside(taps);
    for (int64_t x = 0; x < width_; ++x) {
      const int64_t j = !row                             ? kZeroTap
                        : x >= in.begin && x < in.end ? pixel_step_ * x + taps.offset
                                                      : source_x(taps, x);
      out[x * os] = j == kZeroTap ? G(0) : static_cast<G>(row[j * xs]);
    }
  }

  const TapTables& taps_;
  const Geometry& in_geom_;
  int64_t C_, W_, width_, pixel_step_;
  std::array<int64_t, kAxes> out_size_;
  Span common_;
  Span inside_z_, inside_y_;           // raw (D, H) indices at which every regular channel reads inside
  std::vector<int64_t> x_shift_;       // [c]: its offset along W, in elements
  std::vector<int64_t> inside_row_;    // [c]: on rows inside, from raw row (zz, j) to channel c's input row
  std::vector<int64_t> inside_offset_;  // [c]: the same, moved by its offset along W
  std::vector<const int64_t*> src_z_, src_y_;  // [c]: the channel's D and H tables
  std::vector<int64_t> far_;           // the channels that are not regular
  std::vector<int64_t> band_x_;        // the pixels outside common_
  std::vector<int64_t> band_src_;      // [b * C + c]: what channel c reads at band_x_[b] (nothing, far: 0)
  std::vector<std::array<int64_t, 2>> band_silent_;  // (x, c): where regular channel c reads nothing
  std::vector<T> zero_row_;            // stands in for a zero row: read at [c * ics + x * xs]
  std::vector<const T*> rows_;         // per gather near the edges: channel c's input row
  std::vector<const T*> sources_;      // the same, moved by the channel's offset
  std::vector<int64_t> silent_;        // per gather: silent_channels()
  // The piece path (plan_pieces): per channel, its piece class (a reading class, or one past the
  // last for the far channels); per class, a channel of it (-1: none) and its regular channels,
  // and per gather, its source row at channel 0's place (class_row_) and moved (class_source_).
  std::optional<ChannelPieces<T>> pieces_;
  std::vector<int64_t> piece_class_, class_channel_;
  std::vector<std::vector<int64_t>> class_members_;
  std::vector<const T*> class_row_, class_source_;
};

// The gathered rows (ChannelRowGather, in A, dense: pixel x's channels at [x * C, x * C + C))
// that output row (n, z, y) of a several-tap shift reads: for each leading tap (a, b), gathered
// row (a, step_y * y + b), which depends on the raw indices (step_z * z + a, step_y * y + b) alone.
// Each is gathered once and kept while later rows read it: the next rows down, and with D taps
// the next slices (a whole slice of gathered rows is kept then).
template <typename T, typename A>
class GatheredRows {
 public:
  GatheredRows(const TapTables& taps, const Geometry& in_geom, const Geometry& out_geom)
      : gather_(taps, in_geom, out_geom, width(taps, out_geom), 1), kd_(taps.front().kd), kh_(taps.front().kh),
        step_z_(taps.front().step_z), step_y_(taps.front().step_y),
        rows_per_slice_(kd_ > 1 ? step_y_ * std::max<int64_t>(out_geom.size[1] - 1, 0) + kh_ : kh_),
        C_(in_geom.channels), row_size_(width(taps, out_geom) * C_), rows_(kd_ * rows_per_slice_ * row_size_),
        held_(kd_ * rows_per_slice_, Key{-1, -1, -1}) {}

  // Makes row(r) the rows output row (n, z, y) reads (input of item n at in_n).
  void load(const T* in_n, int64_t n, int64_t z, int64_t y) {
    z_ = step_z_ * z;
    y_ = step_y_ * y;
    for (int a = 0; a < kd_; ++a) {
      for (int b = 0; b < kh_; ++b) {
        const int64_t slot = slot_of(a, b);
        const Key key{n, z_ + a, y_ + b};
        if (held_[slot] == key) continue;
        gather_.gather(in_n, z, a, y_ + b, rows_.data() + slot * row_size_, C_, int64_t{1});
        held_[slot] = key;
      }
    }
  }
  // The gathered row of leading tap r = a * kh + b of the loaded output row.
  const A* row(int r) const { return rows_.data() + slot_of(r / kh_, r % kh_) * row_size_; }
  int leading_taps() const { return kd_ * kh_; }

 private:
  using Key = std::array<int64_t, 3>;  // (n, raw D index, raw H index) of the gathered row a slot holds
  // Pixels of a gathered row: every raw W index some output reads.
  static int64_t width(const TapTables& taps, const Geometry& out_geom) {
    return taps.front().step_x * std::max<int64_t>(out_geom.size[2] - 1, 0) + taps.front().kw;
  }
  int64_t slot_of(int a, int b) const { return (z_ + a) % kd_ * rows_per_slice_ + (y_ + b) % rows_per_slice_; }

  ChannelRowGather<T> gather_;
  int kd_, kh_;
  int64_t step_z_, step_y_, rows_per_slice_, C_, row_size_;
  std::vector<A> rows_;
  std::vector<Key> held_;
  int64_t z_ = 0, y_ = 0;  // raw indices of the loaded output row's first leading tap
};

}  // namespace
}  // namespace shiftzoo::cpu
