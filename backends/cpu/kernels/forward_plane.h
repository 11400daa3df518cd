// The forward of one plane (n, c) whose channels are not inner, by layout and tap count:
//  - dense planes, one tap (nearest): one block copy per slice plus the edge columns;
//  - dense planes, up to 8 taps (linear): one flat K-tap filter loop per slice plus the edges;
//  - dense planes, more taps (cubic): separable passes along W, then H, then D;
//  - other strides: row by row, through contiguous copies of strided rows.
//
// A kernel header (see kernel_table.h): included only by the per-instruction-set units isa_*.cpp,
// once each, after kernels/dependencies.h; its code has internal linkage, so every unit keeps
// its own copy compiled for its instruction set.
#pragma once
#include "backends/cpu/kernels/dependencies.h"
#include "backends/cpu/kernels/tap_counts.h"
#include "backends/cpu/kernels/row.h"
#include "backends/cpu/kernels/vector.h"

namespace shiftzoo::cpu {
namespace {

// Single-tap forward of `planes` consecutive planes (channels of one item) that read alike, whose
// rows are contiguous and densely stacked. Per D-slice, the rows that read an in-range row form
// one block whose source is the same block moved by offset_y * W + offset: a single memcpy, after
// which only the edge columns and the rows outside the block are rewritten. Several planes
// (GroupedShift's channel groups; single-slice planes stacked densely, stride_c == H * W) share
// one memcpy from the first plane's block to the last's: the rows it fills in between, the
// bottom and top rows of neighbouring planes, are rewritten plane by plane like the edges.
template <typename T>
void copy_dense_planes(const T* in_plane, T* out_plane, const Geometry& in_geom, const Geometry& out_geom,
                       const ChannelTaps& taps, int64_t planes = 1) {
  const int64_t H = in_geom.size[1], W = in_geom.size[2];
  const Span rows = taps.inner_y, cols = taps.inner;
  const bool block = rows.end > rows.begin && cols.end > cols.begin;
  // the rows outside the block: [0, top) and [bottom, H)
  const int64_t top = block ? rows.begin : H, bottom = block ? rows.end : H;
  for (int64_t z = 0; z < in_geom.size[0]; ++z) {
    const int64_t sz = taps.src_z[z];
    if (sz != kZeroTap && block) {
      // rows of planes 0 .. planes - 1 in one flat range (planes > 1: one slice each, stacked)
      const Span stacked{rows.begin, (planes - 1) * H + rows.end};
      move_block(in_plane + sz * in_geom.stride[0], out_plane + z * out_geom.stride[0], W, stacked, cols, taps.offset_y,
                 taps.offset);
    }
    for (int64_t p = 0; p < planes; ++p) {
      T* out_slice = out_plane + p * out_geom.stride_c + z * out_geom.stride[0];
      if (sz == kZeroTap) {
        std::fill(out_slice, out_slice + H * W, T(0));
        continue;
      }
      const T* in_slice = in_plane + p * in_geom.stride_c + sz * in_geom.stride[0];
      if (block) {
        // the edge columns of the block's rows, column by column (no per-row overhead)
        for (int64_t e = 0; e < taps.edges; ++e) {
          const int64_t j = taps.edge_src[e];
          T* out = out_slice + taps.edge_x[e];
          if (j == kZeroTap) {
            for (int64_t y = rows.begin; y < rows.end; ++y) out[y * W] = T(0);
          } else {
            const T* in = in_slice + taps.offset_y * W + j;
            for (int64_t y = rows.begin; y < rows.end; ++y) out[y * W] = in[y * W];
          }
        }
      }
      auto plain_row = [&](int64_t y) {
        T* out_row = out_slice + y * W;
        const int64_t sy = taps.src_y[y];
        if (sy == kZeroTap) {
          std::fill(out_row, out_row + W, T(0));
        } else {
          copy_row(in_slice + sy * W, out_row, taps);
        }
      };
      for (int64_t y = 0; y < top; ++y) plain_row(y);
      for (int64_t y = bottom; y < H; ++y) plain_row(y);
    }
  }
}

// Rows of at most this many 32-byte vectors take translate_rows (its column masks live on the stack).
constexpr int64_t kMaxRowVectors = 32;

// Whether translate_rows moves this single-tap dense plane: rows of at least one vector and at
// most kMaxRowVectors, and a W offset that keeps some columns inside the row.
template <typename T>
bool rows_translate(const ChannelTaps& taps, const Geometry& geom) {
  constexpr int64_t L = 32 / sizeof(T);
  const int64_t W = geom.size[2];
  return W >= L && W <= kMaxRowVectors * L && taps.inner.end > taps.inner.begin;
}

// Single-tap forward of a dense plane (rows_translate), row by row: each output row is the
// 32-byte vectors of its source row moved by the channel's W offset and ANDed with the columns
// that read inside the row (the row's last vector overlaps the one before it), then the edge
// columns that a padding maps elsewhere. Medium rows (28 floats) cost neither a memcpy call nor
// a pass over the edge columns; the masked lanes read the neighbouring rows and are discarded. A
// row whose moved vectors would leave its slice (the first source row moved left, the last moved
// right) goes through copy_row, so nothing outside the plane is read. (Building only those
// vectors lane by lane measured slower: 1.4x the whole plane's time at 28x28.)
template <typename T>
void translate_rows(const T* in_plane, T* out_plane, const Geometry& in_geom, const Geometry& out_geom,
                    const ChannelTaps& taps) {
  using U = KeepMask<T>;  // the elements as bit patterns
  using Bits = Vec32<U>;
  using Lanes = Vec32<std::make_signed_t<U>>;
  constexpr int64_t L = 32 / sizeof(T);
  const int64_t D = out_geom.size[0], H = out_geom.size[1], W = out_geom.size[2];
  const int64_t offset = taps.offset;
  // the columns each vector of a row covers that read inside the row
  using Lane = std::make_signed_t<U>;
  auto splat = [](int64_t value) {
    Lanes lanes;
    for (int64_t l = 0; l < L; ++l) lanes[l] = static_cast<Lane>(value);
    return lanes;
  };
  Lanes iota;
  for (int64_t l = 0; l < L; ++l) iota[l] = static_cast<Lane>(l);
  const Lanes begin = splat(taps.inner.begin), end = splat(taps.inner.end);
  Bits keep[kMaxRowVectors];
  for_overlapping_vectors<L>(W, [&](int64_t v, int64_t start) {
    const Lanes column = iota + splat(start);
    keep[v] = reinterpret_cast<Bits>((column >= begin) & (column < end));
  });
  bool mapped_edges = false;  // a padding's edge columns, read after the masked vectors
  for (int64_t e = 0; e < taps.edges; ++e) mapped_edges |= taps.edge_src[e] != kZeroTap;
  auto store = [](T* out, const Bits& bits) { std::memcpy(out, &bits, sizeof(bits)); };
  for (int64_t z = 0; z < D; ++z) {
    const int64_t sz = taps.src_z[z];
    for (int64_t y = 0; y < H; ++y) {
      T* out_row = out_plane + z * out_geom.stride[0] + y * W;
      const int64_t sy = sz == kZeroTap ? kZeroTap : taps.src_y[y];
      if (sy == kZeroTap) {
        for_overlapping_vectors<L>(W, [&](int64_t, int64_t start) { store(out_row + start, Bits{}); });
        continue;
      }
      const T* src_row = in_plane + sz * in_geom.stride[0] + sy * W;
      if ((sy == 0 && offset < 0) || (sy == H - 1 && offset > 0)) {  // moved vectors would leave the slice
        copy_row(src_row, out_row, taps);
        continue;
      }
      const U* from = reinterpret_cast<const U*>(src_row + offset);
      for_overlapping_vectors<L>(W, [&](int64_t v, int64_t start) {
        store(out_row + start, load_vec(from + start) & keep[v]);
      });
      if (mapped_edges) fill_edges(src_row, out_row, taps);
    }
  }
}

// Output row (z, y) of a plane, one row on its own: gathers the input rows it reads (strided ones
// copied into `source_rows`, room for one row per source row) and copies, filters or zeroes.
template <typename T, typename A>
void forward_row(const T* in_plane, const Geometry& in_geom, const ChannelTaps& taps, const A* weights,
                 int64_t z, int64_t y, T* out_row, int64_t out_width, T* source_rows) {
  const int64_t W = in_geom.size[2];
  const T* rows[kMaxSupport * kMaxSupport];
  const A* row_weights[kMaxSupport * kMaxSupport];
  int count = 0;
  taps.for_each_source_row(z, y, [&](int64_t sz, int64_t sy, int lead) {
    rows[count] = contiguous_row(in_plane + sz * in_geom.stride[0] + sy * in_geom.stride[1], in_geom.stride[2], W,
                                 source_rows + count * W);
    row_weights[count++] = weights + lead * taps.kw;
  });
  if (count == 0) {
    std::fill(out_row, out_row + out_width, T(0));
  } else if (taps.taps() == 1) {
    copy_row(rows[0], out_row, taps);
  } else {
    filter_rows(rows, row_weights, count, out_row, taps);
  }
}

// K-tap forward of a plane whose rows are contiguous and densely stacked. Per D-slice, the rows
// whose taps all lie inside the plane read, for every tap, the same flat block moved by a fixed
// offset: one long filter loop over the whole block (short rows cost no per-row overhead), after
// which the edge columns are rewritten. Rows near the top and bottom go one by one.
template <typename T, typename A>
void filter_dense_plane(const T* in_plane, T* out_plane, const Geometry& in_geom, const Geometry& out_geom,
                        const ChannelTaps& taps, const A* weights) {
  const int64_t D = in_geom.size[0], H = in_geom.size[1], W = in_geom.size[2];
  const Span rows = taps.inner_y, cols = taps.inner;
  const bool block = rows.end > rows.begin && cols.end > cols.begin;
  const T* src[kMaxSupport * kMaxSupport];   // row tap r of the block, moved by the W offset
  const T* base[kMaxSupport * kMaxSupport];  // the same, not moved (for the edge columns)
  const A* w[kMaxSupport * kMaxSupport];
  for (int64_t z = 0; z < D; ++z) {
    T* out_slice = out_plane + z * out_geom.stride[0];
    // every (valid D-tap, H-tap) pair: a source row offset and its weights
    int R = 0;
    for (int a = 0; a < taps.kd; ++a) {
      const int64_t sz = taps.src_z[z * taps.kd + a];
      if (sz == kZeroTap) continue;
      for (int b = 0; b < taps.kh; ++b) {
        base[R] = in_plane + sz * in_geom.stride[0] + (taps.offset_y + b) * W;
        src[R] = base[R] + taps.offset;
        w[R++] = weights + (a * taps.kh + b) * taps.kw;
      }
    }
    if (R == 0) {
      std::fill(out_slice, out_slice + H * W, T(0));
      continue;
    }
    if (block) {
      const int64_t first = rows.begin * W + cols.begin, last = (rows.end - 1) * W + cols.end;
      with_taps_and_rows(taps.kw, R, [&](auto kt, auto rt) {
        filter_span<kt(), rt(), 1>(src, w, taps.kw, R, out_slice, first, last, 1);
      });
      // the edge columns of the block's rows, column by column (no per-row overhead): the
      // column's taps that read an input (a source column of a source row, and its weight)
      // gathered first, so that the loop over rows is a plain sum
      const T* tap_src[kMaxSupport];  // at most taps() <= 8 of them (forward_plane)
      A tap_w[kMaxSupport];
      for (int64_t e = 0; e < taps.edges; ++e) {
        const int64_t* js = taps.edge_src + e * taps.kw;
        int m = 0;
        for (int t = 0; t < taps.kw; ++t) {
          if (js[t] == kZeroTap) continue;
          for (int r = 0; r < R; ++r) {
            tap_src[m] = base[r] + js[t];
            tap_w[m++] = w[r][t];
          }
        }
        T* out = out_slice + taps.edge_x[e];
        for (int64_t y = rows.begin; y < rows.end; ++y) {
          A sum = 0;
          for (int k = 0; k < m; ++k) sum += tap_w[k] * static_cast<A>(tap_src[k][y * W]);
          out[y * W] = static_cast<T>(sum);
        }
      }
    }
    for (int64_t y = 0; y < H; ++y) {
      if (block && y >= rows.begin && y < rows.end) continue;  // done above
      // rows are contiguous here: forward_row never touches source_rows
      forward_row(in_plane, in_geom, taps, weights, z, y, out_slice + y * W, W, static_cast<T*>(nullptr));
    }
  }
}

// dst[x] = sum_t w[t] * src[x + t] for x in [begin, end), in the accumulation type.
template <int KT, typename T, typename A>
void filter_into(const T* __restrict src, const A* w, int K, A* __restrict dst, int64_t begin, int64_t end) {
  if constexpr (KT > 0) K = KT;
  for (int64_t x = begin; x < end; ++x) {
    A sum = 0;
    for (int t = 0; t < K; ++t) sum += w[t] * static_cast<A>(src[x + t]);
    dst[x] = sum;
  }
}

// out[x] = sum_r w[r] * rows[r][x] for x < n: a weighted sum of R whole rows.
template <int RT, typename T, typename A>
void combine_rows(const A* const* rows, const A* w, int R, T* __restrict out, int64_t n) {
  if constexpr (RT > 0) R = RT;
  for (int64_t x = 0; x < n; ++x) {
    A sum = 0;
    for (int r = 0; r < R; ++r) sum += w[r] * rows[r][x];
    out[x] = static_cast<T>(sum);
  }
}

// out = sum over the valid taps of one axis of w[tap] * rows[source of tap], R picked at compile
// time where common.
template <typename T, typename A>
void combine_valid_rows(const A* const* rows, const A* w, int R, T* out, int64_t n) {
  with_taps(R, [&](auto rt) { combine_rows<rt()>(rows, w, R, out, n); });
}

// Separable forward of a dense plane, for interpolations with many taps (cubic: 4 + 4 (+ 4)
// multiply-adds per output instead of 16 (64)): filter every input row along W (interior loop,
// edges from the tables) into `along_w`, then combine those rows along H (the tables pick the
// source rows, zero taps skipped), then along D.
template <typename T, typename A>
void filter_separable_plane(const T* in_plane, T* out_plane, const Geometry& in_geom, const Geometry& out_geom,
                            const ChannelTaps& taps, const ChannelWeights& weights, A* along_w, A* along_h) {
  const int64_t D = in_geom.size[0], H = in_geom.size[1], W = in_geom.size[2];
  A ww[kMaxSupport], wh[kMaxSupport], wd[kMaxSupport];
  for (int t = 0; t < taps.kw; ++t) ww[t] = static_cast<A>(weights.w[t]);
  for (int b = 0; b < taps.kh; ++b) wh[b] = static_cast<A>(weights.h[b]);
  for (int a = 0; a < taps.kd; ++a) wd[a] = static_cast<A>(weights.d[a]);
  for (int64_t z = 0; z < D; ++z) {  // W pass over every input row
    for (int64_t y = 0; y < H; ++y) {
      const T* src = in_plane + z * in_geom.stride[0] + y * W;
      A* dst = along_w + (z * H + y) * W;
      with_taps(taps.kw, [&](auto kt) {
        filter_into<kt()>(src + taps.offset, ww, taps.kw, dst, taps.inner.begin, taps.inner.end);
      });
      for (int64_t e = 0; e < taps.edges; ++e) {
        A sum = 0;
        for (int t = 0; t < taps.kw; ++t) {
          const int64_t j = taps.edge_src[e * taps.kw + t];
          if (j != kZeroTap) sum += ww[t] * static_cast<A>(src[j]);
        }
        dst[taps.edge_x[e]] = sum;
      }
    }
  }
  const A* rows[kMaxSupport];
  A w[kMaxSupport];
  for (int64_t z = 0; z < D; ++z) {
    // the input slices output slice z reads (kd == 1: its only one, combined straight into out)
    int slices = 0;
    for (int a = 0; a < taps.kd; ++a) slices += taps.src_z[z * taps.kd + a] != kZeroTap;
    for (int64_t y = 0; y < H; ++y) {
      T* out_row = out_plane + z * out_geom.stride[0] + y * W;
      auto h_pass = [&](int64_t sz, auto* dst) {  // along H within input slice sz
        int R = 0;
        for (int b = 0; b < taps.kh; ++b) {
          const int64_t sy = taps.src_y[y * taps.kh + b];
          if (sy == kZeroTap) continue;
          rows[R] = along_w + (sz * H + sy) * W;
          w[R++] = wh[b];
        }
        if (R == 0) std::fill(dst, dst + W, std::remove_pointer_t<decltype(dst)>(0));
        else combine_valid_rows(rows, w, R, dst, W);
      };
      if (slices == 0) {
        std::fill(out_row, out_row + W, T(0));
      } else if (taps.kd == 1) {
        h_pass(taps.src_z[z], out_row);
      } else {
        const A* slice_rows[kMaxSupport];
        A slice_w[kMaxSupport];
        int R = 0;
        for (int a = 0; a < taps.kd; ++a) {
          const int64_t sz = taps.src_z[z * taps.kd + a];
          if (sz == kZeroTap) continue;
          A* dst = along_h + R * W;
          h_pass(sz, dst);
          slice_rows[R] = dst;
          slice_w[R++] = wd[a];
        }
        combine_valid_rows(slice_rows, slice_w, R, out_row, W);
      }
    }
  }
}

// A small dense plane of a single-tap shift, by its reading class's translation
// (small_planes.h): a masked copy of the translated input (a vector AND, no gather), zeros around
// it, then the few outputs that read elsewhere. Where the translated plane lies inside the input
// tensor (`input`), one pass of 32-byte vectors over the whole plane, the last overlapping the one
// before it (the mask is clear outside [lo, hi), so the zeros come with it); otherwise only
// [lo, hi) is read.
template <typename T>
void translate_plane(const T* in_plane, T* __restrict out_plane, const PlaneTranslation<T>& t,
                     const InputExtent<T>& input) {
  using Bits = typename AliasedBitsOf<sizeof(T)>::type;
  using U = KeepMask<T>;
  constexpr int64_t L = 32 / sizeof(T);
  // as bit patterns, so that the mask is an AND whatever T is (half types included)
  const Bits* __restrict in = reinterpret_cast<const Bits*>(in_plane);
  Bits* __restrict out = reinterpret_cast<Bits*>(out_plane);
  if (t.numel >= L && input.holds(in_plane, t.shift, t.numel)) {
    const U* src = reinterpret_cast<const U*>(in_plane + t.shift);
    for_overlapping_vectors<L>(t.numel, [&](int64_t, int64_t i) {
      const Vec32<U> bits = load_vec(src + i) & load_vec(t.keep + i);
      std::memcpy(out_plane + i, &bits, sizeof(bits));
    });
  } else {
    const Bits* __restrict src = in + t.shift;
    for (int64_t i = 0; i < t.lo; ++i) out[i] = 0;
    for (int64_t i = t.lo; i < t.hi; ++i) out[i] = src[i] & t.keep[i];
    for (int64_t i = t.hi; i < t.numel; ++i) out[i] = 0;
  }
  for (int64_t f = 0; f < t.fixes; ++f) out[t.fix_out[f]] = in[t.fix_in[f]];
}

// translate_plane over planes [begin, end) of a tensor (n-major): the loop over planes lives
// beside the kernel it inlines, so that a 7x7 plane pays no call or division of its own.
template <typename T>
void translate_planes(const T* in_data, T* out_data, const Geometry& in_geom, const Geometry& out_geom,
                      const SmallPlaneTables<T>& tables, const int32_t* class_of, int64_t begin, int64_t end) {
  const InputExtent<T> input(in_data, in_geom);
  for_planes(begin, end, in_geom.channels, [&](int64_t n, int64_t c) {
    translate_plane(in_data + n * in_geom.stride_n + c * in_geom.stride_c,
                    out_data + n * out_geom.stride_n + c * out_geom.stride_c, *tables[class_of[c]], input);
  });
}

// A small dense plane of a several-tap shift, by its reading class's translations
// (small_planes.h): tap by tap in order, its weight times the translated input where the tap reads
// it (masked as bits: what it does not read never enters, NaN included) and then times what its
// other outputs read (a padding's), accumulated over the plane and stored once. Each output sums
// its taps in the order of the other paths (filter_span, filter_gathered).
template <typename T>
void filter_translated_plane(const T* in_plane, T* __restrict out_plane, const PlaneTranslation<T>* taps, int count,
                             const ChannelWeights& weights) {
  using A = at::opmath_type<T>;
  using Bits = typename AliasedBitsOf<sizeof(T)>::type;
  const int64_t numel = taps[0].numel;
  A acc[kSmallPlane];
  std::fill(acc, acc + numel, A(0));
  for (int q = 0; q < count; ++q) {
    const PlaneTranslation<T>& t = taps[q];
    const A w = static_cast<A>(weights.weight[q]);
    const Bits* src = reinterpret_cast<const Bits*>(in_plane + t.shift);
    for (int64_t i = t.lo; i < t.hi; ++i) {
      const Bits bits = src[i] & t.keep[i];
      T v;
      std::memcpy(&v, &bits, sizeof(v));
      acc[i] += w * static_cast<A>(v);
    }
    for (int64_t f = 0; f < t.fixes; ++f) acc[t.fix_out[f]] += w * static_cast<A>(in_plane[t.fix_in[f]]);
  }
  for (int64_t i = 0; i < numel; ++i) out_plane[i] = static_cast<T>(acc[i]);
}

template <typename T>
void forward_plane(const T* in_plane, T* out_plane, const Geometry& in_geom, const Geometry& out_geom,
                   const ChannelTaps& taps, const ChannelWeights& channel_weights, Scratch& scratch) {
  using A = at::opmath_type<T>;
  const int64_t D = out_geom.size[0], H = out_geom.size[1], W = out_geom.size[2];
  // the flat block passes need every position kept and contiguous, densely stacked rows
  const bool dense = unit_sampling(taps, in_geom, out_geom) && dense_rows(in_geom) && dense_rows(out_geom);
  if (dense && taps.taps() == 1) {
    if (rows_translate<T>(taps, out_geom)) return translate_rows(in_plane, out_plane, in_geom, out_geom, taps);
    return copy_dense_planes(in_plane, out_plane, in_geom, out_geom, taps);
  }
  if (dense && taps.taps() > 8) {
    return filter_separable_plane(in_plane, out_plane, in_geom, out_geom, taps, channel_weights,
                                  scratch.along_w.get<A>(D * H * W),
                                  scratch.along_h.get<A>(taps.kd * W));
  }
  A weights[kMaxSupport * kMaxSupport * kMaxSupport];  // this channel's, in the kernel precision
  for (int i = 0; i < taps.taps(); ++i) weights[i] = static_cast<A>(channel_weights.weight[i]);
  if (dense) return filter_dense_plane(in_plane, out_plane, in_geom, out_geom, taps, weights);

  // strided input rows (every source row of an output row) and a strided output row, made contiguous
  T* const source_rows = scratch.source_rows.get<T>(in_geom.size[2] * (taps.taps() / taps.kw));
  T* const output_row = scratch.output_row.get<T>(W);
  for (int64_t z = 0; z < D; ++z) {
    for (int64_t y = 0; y < H; ++y) {
      T* out_row_dst = out_plane + z * out_geom.stride[0] + y * out_geom.stride[1];
      T* out_row = out_geom.stride[2] == 1 ? out_row_dst : output_row;
      forward_row(in_plane, in_geom, taps, weights, z, y, out_row, W, source_rows);
      if (out_row != out_row_dst) {
        for (int64_t x = 0; x < W; ++x) out_row_dst[x * out_geom.stride[2]] = out_row[x];
      }
    }
  }
}

}  // namespace
}  // namespace shiftzoo::cpu
