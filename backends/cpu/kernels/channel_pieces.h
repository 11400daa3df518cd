// A pixel's channels (channels-inner layouts, contiguous channels) moved 32 bytes at a time from
// a few sources: each vector of channels is the OR of one masked load per distinct source among
// its channels. Channels in runs that read alike (GroupedShift's groups) and channels that read
// at a few distinct offsets (SSL's usual shifts: floor offsets in {-1, 0} on each axis) then move
// in memory order, a load per piece instead of a load and a store per channel.
//
// A kernel header (see kernel_table.h): included only by the per-instruction-set units isa_*.cpp,
// once each, after kernels/dependencies.h; its code has internal linkage, so every unit keeps
// its own copy compiled for its instruction set.
#pragma once
#include "backends/cpu/kernels/dependencies.h"
#include "backends/cpu/kernels/vector.h"

namespace shiftzoo::cpu {
namespace {

// The input rows a channels-inner row loop reads first next: the step_y rows after the lowest
// row that output row (n, z, y) reads (`lowest`, -1 for none; fewer at the bottom). The
// channel-run loop prefetches them pixel by pixel (prefetch(x): the step_x pixels from input
// pixel step_x * x, of every such row): it touches only some channels of each pixel of a row it
// reads first, a pattern the hardware prefetcher does not follow. (A shift that samples every
// other row and pixel reads the ones between too: its runs move by a pixel or so. Prefetching
// them as well measured 15-20 % faster on MobileNetV2's stride-2 layer of 96 channels.)
template <typename T>
struct RowsAhead {
  const char* first = nullptr;  // null: nothing to prefetch
  int64_t rows = 0, row_bytes = 0, step_bytes = 0, span_bytes = 0;

  RowsAhead() = default;  // nothing to prefetch
  RowsAhead(const T* in_data, const Geometry& in_geom, int64_t n, int64_t z, int64_t lowest, int64_t step_y,
            int64_t step_x) {
    rows = std::min(step_y, in_geom.size[1] - 1 - lowest);
    if (lowest < 0 || rows <= 0) return;
    first = reinterpret_cast<const char*>(in_data + n * in_geom.stride_n + z * in_geom.stride[0] +
                                          (lowest + 1) * in_geom.stride[1]);
    const int64_t pixel_bytes = in_geom.stride[2] * static_cast<int64_t>(sizeof(T));
    row_bytes = in_geom.stride[1] * static_cast<int64_t>(sizeof(T));
    step_bytes = step_x * pixel_bytes;
    span_bytes = (step_x - 1) * pixel_bytes + in_geom.channels * in_geom.stride_c * static_cast<int64_t>(sizeof(T));
  }
  void prefetch(int64_t x) const {
    if (!first) return;
    for (int64_t r = 0; r < rows; ++r) {
      const char* pixels = first + r * row_bytes + x * step_bytes;
      for (int64_t b = 0; b < span_bytes; b += 64) __builtin_prefetch(pixels + b);
    }
  }
};

// Pixels [x_begin, x_end) of a channels-inner output row built from pieces (ChannelPieces): vector
// v of pixel x is the OR of its pieces p in [piece_end[v - 1], piece_end[v]), each 32 bytes read
// at source[p] + x * step under the lanes mask[p * lanes, + lanes), stored at channel
// vector_start[v] (through map.vector first, for a map of kVectors; otherwise map(pixel) after).
// Restrict-qualified parameters: the stores cannot change the tables, which stay in registers.
template <typename T, typename Lane, class PixelMap>
void or_pieces(T* __restrict out_row, int64_t os, int64_t x_begin, int64_t x_end, const T* const* __restrict source,
               int64_t step, const Lane* __restrict mask, const int64_t* __restrict vector_start,
               const int64_t* __restrict piece_end, int64_t vectors, const RowsAhead<T>& ahead,
               const PixelMap& pixel_map) {
  using Bits = typename VectorBits<sizeof(T)>::type;
  constexpr int64_t kLanes = 32 / sizeof(T);
  // A copy of its own: the stores to out_row cannot change it, so its bounds stay in registers
  // (through the reference they were reloaded and broadcast for every vector).
  const PixelMap map = pixel_map;
  for (int64_t x = x_begin; x < x_end; ++x) {
    T* out = out_row + x * os;
    const int64_t in_x = x * step;
    ahead.prefetch(x);
    int64_t p = 0;
    for (int64_t v = 0; v < vectors; ++v) {
      Bits acc = {};
      for (; p < piece_end[v]; ++p) {
        Bits bits, lanes;
        std::memcpy(&bits, source[p] + in_x, 32);
        std::memcpy(&lanes, mask + p * kLanes, 32);
        acc |= bits & lanes;
      }
      if constexpr (PixelMap::kVectors) acc = map.vector(acc, vector_start[v]);
      std::memcpy(out + vector_start[v], &acc, 32);
    }
    if constexpr (!PixelMap::kVectors) map(out);
  }
}

// What ChannelPieces does to a pixel once its channels are written: nothing (the plain shift).
// A map either maps a whole pixel, map(pixel), or (kVectors) each 32-byte vector of channels
// [start, start + lanes) in registers before it is stored, map.vector(bits, start), and a whole
// pixel only where it is written channel run by channel run (the row's ends).
struct KeepPixel {
  static constexpr bool kVectors = true;
  template <typename T>
  void operator()(T*) const {}
  template <typename Bits>
  Bits vector(Bits bits, int64_t) const {
    return bits;
  }
};

// The pieces of every 32-byte vector of a pixel's C channels (contiguous, C at least one vector):
// channel c reads source source_of[c] (a small id), and vector v, channels [start, start + lanes)
// (the last one overlapping the one before it), is the OR of one piece per distinct source among
// its channels: 32 bytes read at that source's pointer + start under the lanes of its channels.
// Planned once per call; each row then says where every source lies (copy).
template <typename T>
class ChannelPieces {
  using Bits = typename VectorBits<sizeof(T)>::type;
  using Lane = std::remove_reference_t<decltype(Bits{}[0])>;

 public:
  static constexpr int64_t kLanes = 32 / sizeof(T);

  explicit ChannelPieces(const std::vector<int64_t>& source_of) {
    int64_t piece_of_lane[kLanes];  // in the current vector
    for_each_lane(source_of, [&](int64_t start, int64_t lane, int64_t first) {
      if (lane == 0) vector_start_.push_back(start);
      if (first == lane) {  // a new source: a new piece
        piece_of_lane[lane] = static_cast<int64_t>(piece_source_.size());
        piece_source_.push_back(source_of[start + lane]);
        piece_start_.push_back(start);
        mask_.resize(mask_.size() + kLanes, Lane{0});
      } else {
        piece_of_lane[lane] = piece_of_lane[first];
      }
      mask_[piece_of_lane[lane] * kLanes + lane] = static_cast<Lane>(~Lane{0});
      if (lane == kLanes - 1) piece_end_.push_back(static_cast<int64_t>(piece_source_.size()));
    });
    placed_.resize(piece_source_.size());
  }

  // How many pieces the plan of source_of would have (no plan made: cheap to turn one down).
  static int64_t count(const std::vector<int64_t>& source_of) {
    int64_t total = 0;
    for_each_lane(source_of, [&](int64_t, int64_t lane, int64_t first) { total += first == lane; });
    return total;
  }

  int64_t pieces() const { return static_cast<int64_t>(piece_source_.size()); }
  int64_t vectors() const { return static_cast<int64_t>(vector_start_.size()); }

  // Pixels [x_begin, x_end) of a row (pixel x's channels at out_row + x * os), source s of pixel
  // x read at sources[s] + x * step (channel 0's place), each vector or pixel through `map`.
  template <class PixelMap = KeepPixel>
  void copy(const T* const* sources, T* out_row, int64_t os, int64_t x_begin, int64_t x_end, int64_t step,
            const RowsAhead<T>& ahead = {}, const PixelMap& map = {}) {
    for (size_t p = 0; p < placed_.size(); ++p) placed_[p] = sources[piece_source_[p]] + piece_start_[p];
    or_pieces(out_row, os, x_begin, x_end, placed_.data(), step, mask_.data(), vector_start_.data(),
              piece_end_.data(), vectors(), ahead, map);
  }

 private:
  // Calls fn(start, lane, first) for every lane of every vector of channels (channels [start,
  // start + kLanes), the last vector overlapping the one before it), in order: first is the
  // vector's lowest lane whose channel reads lane's source (lane itself for a new source).
  template <class Fn>
  static void for_each_lane(const std::vector<int64_t>& source_of, Fn&& fn) {
    const int64_t C = static_cast<int64_t>(source_of.size());
    for (int64_t v = 0; v * kLanes < C; ++v) {
      const int64_t start = std::min(v * kLanes, C - kLanes);
      const int64_t* lanes = source_of.data() + start;
      for (int64_t lane = 0; lane < kLanes; ++lane) fn(start, lane, std::find(lanes, lanes + lane, lanes[lane]) - lanes);
    }
  }

  // piece p: source piece_source_[p] at channel piece_start_[p], under lanes [p * kLanes, +
  // kLanes) of mask_; vector v's pieces end at piece_end_[v]. (Lanes, not 32-byte vectors: a
  // std::vector of 32-byte vectors crashed in this build on a misaligned move when it grew.)
  std::vector<int64_t> piece_source_, piece_start_, vector_start_, piece_end_;
  std::vector<Lane> mask_;
  std::vector<const T*> placed_;  // per copy: piece p's source at x = 0
};

}  // namespace
}  // namespace shiftzoo::cpu
