// The inference form's kernels (op shift_affine): a single-tap shift with the per-channel maps
// pre and post around it (core/channel_affine.h), out = post(shift(pre(input))), where a tap that
// reads nothing gives post(fill) (the channel's fill; zero by default). One pass: each output
// element reads its source once. T is a floating type, or the unsigned integer that integer and
// bool data moves as: its maps are the identity (kMapsValues), so its values move bit for bit.
//
// A kernel header (see kernel_table.h): included only by the per-instruction-set units isa_*.cpp,
// once each, after kernels/dependencies.h; its code has internal linkage, so every unit keeps
// its own copy compiled for its instruction set.
#pragma once
#include "backends/cpu/kernels/dependencies.h"
#include "backends/cpu/kernels/channel_gather.h"
#include "backends/cpu/kernels/channels_inner_forward.h"

namespace shiftzoo::cpu {
namespace {

// What output x of a row reads through channel `taps`' tables, mapped: post(pre(row[source])), or
// post(fill) for a tap that reads nothing (row null: the whole row reads nothing).
template <typename T, typename A>
T map_tap(const T* row, int64_t xs, const ChannelTaps& taps, int64_t x, const AffineClamp<A>& pre,
          const AffineClamp<A>& post, A fill) {
  const int64_t j = row ? taps.source_x(x) : kZeroTap;
  return static_cast<T>(post(j == kZeroTap ? fill : pre(static_cast<A>(row[j * xs]))));
}

// Plane (n, c) of a layout whose channels are not inner, any strides, with the channel's maps and fill.
// Dense planes that keep every position: per D-slice, the rows whose tap lies inside the plane
// read the same flat block moved by a fixed offset, mapped in one long loop (short rows cost no
// per-row overhead); then the edge columns and the other rows, through the tables.
template <typename T>
void forward_plane_affine(const T* in_plane, T* out_plane, const Geometry& in_geom, const Geometry& out_geom,
                          const ChannelTaps& taps, const AffineClamp<at::opmath_type<T>>& pre,
                          const AffineClamp<at::opmath_type<T>>& post, T fill) {
  using A = at::opmath_type<T>;
  const int64_t xs = in_geom.stride[2], os = out_geom.stride[2], H = out_geom.size[1], W = out_geom.size[2];
  const A fill_a = static_cast<A>(fill);
  const T nothing_out = static_cast<T>(post(fill_a));
  const bool dense = unit_sampling(taps, in_geom, out_geom) && dense_rows(in_geom) && dense_rows(out_geom);
  const Span rows = taps.inner_y, cols = taps.inner;
  const bool block = dense && rows.end > rows.begin && cols.end > cols.begin;
  for (int64_t z = 0; z < out_geom.size[0]; ++z) {
    T* out_slice = out_plane + z * out_geom.stride[0];
    const int64_t sz = taps.src_z[z];
    const bool slice_block = block && sz != kZeroTap;
    if (slice_block) {
      const T* in = in_plane + sz * in_geom.stride[0] + taps.offset_y * W + taps.offset;
      const int64_t first = rows.begin * W + cols.begin, last = (rows.end - 1) * W + cols.end;
      for (int64_t i = first; i < last; ++i) out_slice[i] = static_cast<T>(post(pre(static_cast<A>(in[i]))));
      for (int64_t y = rows.begin; y < rows.end; ++y) {  // the block's edge columns read other taps
        const T* row = in_plane + sz * in_geom.stride[0] + taps.src_y[y] * W;
        for (int64_t e = 0; e < taps.edges; ++e)
          out_slice[y * W + taps.edge_x[e]] = map_tap(row, int64_t{1}, taps, taps.edge_x[e], pre, post, fill_a);
      }
    }
    for (int64_t y = 0; y < H; ++y) {
      if (slice_block && y >= rows.begin && y < rows.end) continue;  // done above
      T* out = out_slice + y * out_geom.stride[1];
      const int64_t sy = taps.src_y[y];
      if (sz == kZeroTap || sy == kZeroTap) {
        for (int64_t x = 0; x < W; ++x) out[x * os] = nothing_out;
        continue;
      }
      const T* row = in_plane + sz * in_geom.stride[0] + sy * in_geom.stride[1];
      const T* moved = row + taps.offset * xs;
      const int64_t step = taps.step_x * xs;
      for (int64_t x = taps.inner.begin; x < taps.inner.end; ++x)
        out[x * os] = static_cast<T>(post(pre(static_cast<A>(moved[x * step]))));
      for (int64_t e = 0; e < taps.edges; ++e)
        out[taps.edge_x[e] * os] = map_tap(row, xs, taps, taps.edge_x[e], pre, post, fill_a);
    }
  }
}

// A small dense plane (small_planes.h) with the channel's maps and fill: where its reading class's
// translation keeps an output, post(pre(the translated input)); elsewhere the tap reads nothing,
// post(fill); then the few outputs that read elsewhere (a padding's). No per-row or per-edge work:
// late-stage planes (7x7) cost little more than their copy. Where the translated plane lies inside
// the input tensor (`input`), one pass over the whole plane (the mask gives the rest its value);
// otherwise only the kept range [lo, hi) is read. (What is read where the mask is clear is
// discarded.)
template <typename T>
void translate_plane_affine(const T* in_plane, T* __restrict out_plane, const PlaneTranslation<T>& t,
                            const AffineClamp<at::opmath_type<T>>& pre, const AffineClamp<at::opmath_type<T>>& post,
                            T fill, const InputExtent<T>& input) {
  using A = at::opmath_type<T>;
  const T nothing = static_cast<T>(post(static_cast<A>(fill)));
  const T* src = in_plane + t.shift;
  const bool whole = input.holds(in_plane, t.shift, t.numel);
  constexpr int64_t L = 32 / sizeof(T);
  if (!kMapsValues<A> && whole && t.numel >= L) {
    if constexpr (!kMapsValues<A>) {  // integer data: 32-byte bit selects
      using Bits = Vec32<T>;
      const Bits of_nothing = Bits{} + nothing;
      for_overlapping_vectors<L>(t.numel, [&](int64_t, int64_t i) {
        const Bits keep = load_vec(t.keep + i);
        const Bits bits = (load_vec(src + i) & keep) | (of_nothing & ~keep);
        std::memcpy(out_plane + i, &bits, sizeof(bits));
      });
    }
  } else {
    const int64_t lo = whole ? 0 : t.lo, hi = whole ? t.numel : t.hi;
    for (int64_t i = 0; i < lo; ++i) out_plane[i] = nothing;
    if constexpr (kMapsValues<A>) {
      for (int64_t i = lo; i < hi; ++i)
        out_plane[i] = t.keep[i] ? static_cast<T>(post(pre(static_cast<A>(src[i])))) : nothing;
    } else {  // integer data: a bit select, vectorised as translate_plane's AND
      for (int64_t i = lo; i < hi; ++i) out_plane[i] = (src[i] & t.keep[i]) | (nothing & ~t.keep[i]);
    }
    for (int64_t i = hi; i < t.numel; ++i) out_plane[i] = nothing;
  }
  for (int64_t f = 0; f < t.fixes; ++f)
    out_plane[t.fix_out[f]] = static_cast<T>(post(pre(static_cast<A>(in_plane[t.fix_in[f]]))));
}

// translate_plane_affine over planes [begin, end) of a tensor (n-major), each with its channel's
// maps and fill (fill null: zeros): the loop over planes beside the kernel it inlines, so that a
// small plane pays no call or division of its own.
template <typename T>
void translate_planes_affine(const T* in_data, T* out_data, const Geometry& in_geom, const Geometry& out_geom,
                             const SmallPlaneTables<T>& tables, const int32_t* class_of,
                             const AffineClamp<at::opmath_type<T>>* pre, const AffineClamp<at::opmath_type<T>>* post,
                             const T* fill, int64_t begin, int64_t end) {
  const InputExtent<T> input(in_data, in_geom);
  for_planes(begin, end, in_geom.channels, [&](int64_t n, int64_t c) {
    translate_plane_affine(in_data + n * in_geom.stride_n + c * in_geom.stride_c,
                           out_data + n * out_geom.stride_n + c * out_geom.stride_c, *tables[class_of[c]], pre[c],
                           post[c], fill ? fill[c] : T(0), input);
  });
}

// out[c] = post_c(pre_c(out[c])) for the channels of one pixel (contiguous), every channel's map
// laid out as arrays; the affine parts only where the op has them (none for integers).
template <bool PreAffine, bool PostAffine, typename T, typename A>
void map_pixel(T* __restrict out, int64_t C, const A* __restrict pre_scale, const A* __restrict pre_bias, A pre_lo,
               A pre_hi, const A* __restrict post_scale, const A* __restrict post_bias, A post_lo, A post_hi) {
  if constexpr (!kMapsValues<A>) return;
  for (int64_t c = 0; c < C; ++c) {
    A v = static_cast<A>(out[c]);
    if constexpr (PreAffine) v = std::fma(v, pre_scale[c], pre_bias[c]);
    v = clamp_keeping_nan(v, pre_lo, pre_hi);
    if constexpr (PostAffine) v = std::fma(v, post_scale[c], post_bias[c]);
    v = clamp_keeping_nan(v, post_lo, post_hi);
    out[c] = static_cast<T>(v);
  }
}

// The per-channel maps of pixels whose channels are contiguous, with the affine parts fixed at
// compile time: a whole pixel (map_pixel), or, where T is its own accumulation type (float,
// double), a 32-byte vector of channels in registers as ChannelRunRows builds it (kVectors): the
// same fma and clamps lane by lane, so the result is the same bit for bit.
template <bool PreAffine, bool PostAffine, typename T, typename A>
struct PixelMaps {
  static constexpr bool kVectors = std::is_same_v<T, A>;
  const A *pre_scale, *pre_bias, *post_scale, *post_bias;
  A pre_lo, pre_hi, post_lo, post_hi;
  int64_t channels;

  void operator()(T* out) const {
    map_pixel<PreAffine, PostAffine>(out, channels, pre_scale, pre_bias, pre_lo, pre_hi, post_scale, post_bias,
                                     post_lo, post_hi);
  }

  template <typename Bits>
  Bits vector(Bits bits, int64_t start) const {
    if constexpr (!kMapsValues<A>) return bits;
    using Vec = Vec32<A>;
    Vec v = reinterpret_cast<Vec>(bits);
    if constexpr (PreAffine) v = fma_lanes(v, load_vec(pre_scale + start), load_vec(pre_bias + start));
    v = clamp_lanes(v, pre_lo, pre_hi);
    if constexpr (PostAffine) v = fma_lanes(v, load_vec(post_scale + start), load_vec(post_bias + start));
    v = clamp_lanes(v, post_lo, post_hi);
    return reinterpret_cast<Bits>(v);
  }

 private:
  // fma lane by lane (one rounding, as std::fma): the FMA instruction where this unit has it
  template <typename Vec>
  static Vec fma_lanes(Vec v, Vec scale, Vec bias) {
#ifdef __FMA__
    if constexpr (std::is_same_v<A, float>) return __builtin_ia32_vfmaddps256(v, scale, bias);
    else return __builtin_ia32_vfmaddpd256(v, scale, bias);
#else
    for (int l = 0; l < static_cast<int>(sizeof(Vec) / sizeof(A)); ++l) v[l] = std::fma(v[l], scale[l], bias[l]);
    return v;
#endif
  }
  // clamp_keeping_nan lane by lane: NaN stays NaN
  template <typename Vec>
  static Vec clamp_lanes(Vec v, A lo, A hi) {
    const Vec low = lo - Vec{}, high = hi - Vec{};  // broadcasts (x - 0 is x; 0 + x is not, for x = -0.0)
    v = low > v ? low : v;
    return high < v ? high : v;
  }
};

// Output rows (n, z, y) in [row_begin, row_end) of a single-tap shift of a channels-inner layout
// with every channel's maps (pre[c], post[c]) and fills (fill[c]; null: zeros). Each row is shifted as the plain shift does it
// (raw values, 0 where a tap reads nothing): a vector at a time for channels in `runs` that read
// alike (ChannelRunRows; empty: none), each vector mapped in registers before it is stored, else
// gathered (ChannelRowGather) and then mapped in place a pixel at a time, vectorised over
// channels; a tap that reads nothing then takes post(0): per run, on rows
// it reads nothing from and at the pixels outside its interior that read nothing; gathered, at
// the few pixels near the ends by the band tables and on whole rows of channels whose source row
// reads nothing, and the channels shifted far (not regular) are mapped element by element.
// (post(0) above: post(fill) with a fill.)
template <typename T>
void forward_rows_affine_channels_inner(const T* in_data, T* out_data, const Geometry& in_geom,
                                        const Geometry& out_geom, const TapTables& taps, const std::vector<Span>& runs,
                                        const AffineClamp<at::opmath_type<T>>* pre,
                                        const AffineClamp<at::opmath_type<T>>* post, const T* fill,
                                        int64_t row_begin, int64_t row_end) {
  using A = at::opmath_type<T>;
  const int64_t C = in_geom.channels, D = out_geom.size[0], H = out_geom.size[1], W = out_geom.size[2];
  const int64_t xs = in_geom.stride[2], ics = in_geom.stride_c, os = out_geom.stride[2], ocs = out_geom.stride_c;
  std::optional<ChannelRunRows<T>> run_rows;  // channels in runs that read alike
  std::optional<ChannelRowGather<T>> gather;  // channels in any order
  if (!runs.empty()) run_rows.emplace(in_geom, out_geom, taps, runs);
  else gather.emplace(taps, in_geom, out_geom, W, taps.front().step_x);
  std::vector<A> pre_scale(C), pre_bias(C), post_scale(C), post_bias(C);
  std::vector<T> of_nothing(C);  // post(fill) per channel: what a tap that reads nothing gives
  std::vector<A> fill_a(C);
  for (int64_t c = 0; c < C; ++c) {
    pre_scale[c] = pre[c].scale;
    pre_bias[c] = pre[c].bias;
    post_scale[c] = post[c].scale;
    post_bias[c] = post[c].bias;
    fill_a[c] = fill ? static_cast<A>(fill[c]) : A(0);
    of_nothing[c] = static_cast<T>(post[c](fill_a[c]));
  }
  const bool pre_affine = C > 0 && pre[0].affine, post_affine = C > 0 && post[0].affine;
  const A pre_lo = C > 0 ? pre[0].lo : A(0), pre_hi = C > 0 ? pre[0].hi : A(0);
  const A post_lo = C > 0 ? post[0].lo : A(0), post_hi = C > 0 ? post[0].hi : A(0);
  // body(maps): the PixelMaps of this call, its affine parts fixed at compile time
  auto with_maps = [&](auto&& body) {
    auto make = [&](auto pre_on, auto post_on) {
      body(PixelMaps<decltype(pre_on)::value, decltype(post_on)::value, T, A>{
          pre_scale.data(), pre_bias.data(), post_scale.data(), post_bias.data(), pre_lo, pre_hi, post_lo, post_hi,
          C});
    };
    if constexpr (!kMapsValues<A>) make(std::false_type{}, std::false_type{});  // integers: no maps
    else if (pre_affine && post_affine) make(std::true_type{}, std::true_type{});
    else if (pre_affine) make(std::true_type{}, std::false_type{});
    else if (post_affine) make(std::false_type{}, std::true_type{});
    else make(std::false_type{}, std::false_type{});
  };
  std::vector<T> pixel(ocs == 1 ? 0 : C);  // a pixel's channels made contiguous
  auto map = [&](T* out) {
    T* channels = ocs == 1 ? out : pixel.data();
    if (ocs != 1)
      for (int64_t c = 0; c < C; ++c) channels[c] = out[c * ocs];
    with_maps([&](const auto& maps) { maps(channels); });
    if (ocs != 1)
      for (int64_t c = 0; c < C; ++c) out[c * ocs] = channels[c];
  };
  for (int64_t row_index = row_begin; row_index < row_end; ++row_index) {
    const int64_t y = row_index % H, z = (row_index / H) % D, n = row_index / (H * D);
    T* out_row = out_data + n * out_geom.stride_n + z * out_geom.stride[0] + y * out_geom.stride[1];
    if (run_rows) {
      // channels contiguous here: the maps go with ChannelRunRows' vectors
      with_maps([&](const auto& maps) { run_rows->row(in_data, out_data, n, z, y, maps); });
      for (const Span run : runs) {  // where a run reads nothing: post(fill) (channels adjacent here)
        const ChannelTaps& t = taps[run.begin];
        auto reads_nothing = [&](int64_t x) {
          std::copy(of_nothing.begin() + run.begin, of_nothing.begin() + run.end, out_row + x * os + run.begin);
        };
        if (t.src_z[z] == kZeroTap || t.src_y[y] == kZeroTap) {
          for (int64_t x = 0; x < W; ++x) reads_nothing(x);
          continue;
        }
        // inside its interior every pixel reads: only the edge pixels can read nothing
        for (int64_t e = 0; e < t.edges; ++e)
          if (t.edge_src[e] == kZeroTap) reads_nothing(t.edge_x[e]);
      }
      continue;
    }
    const T* in_n = in_data + n * in_geom.stride_n;
    gather->gather(in_n, z, 0, taps.front().step_y * y, out_row, os, ocs);
    for (int64_t x = 0; x < W; ++x) map(out_row + x * os);
    for (const auto& [x, c] : gather->band_silent()) out_row[x * os + c * ocs] = of_nothing[c];
    for (const int64_t c : gather->silent_channels())  // channels whose source row reads nothing
      for (int64_t x = 0; x < W; ++x) out_row[x * os + c * ocs] = of_nothing[c];
    for (const int64_t c : gather->far_channels()) {
      const int64_t sz = taps[c].src_z[z], sy = taps[c].src_y[y];
      if (sz == kZeroTap || sy == kZeroTap) continue;  // done above
      const T* row = in_n + c * ics + sz * in_geom.stride[0] + sy * in_geom.stride[1];
      for (int64_t x = 0; x < W; ++x)
        out_row[x * os + c * ocs] = map_tap(row, xs, taps[c], x, pre[c], post[c], fill_a[c]);
    }
  }
}

}  // namespace
}  // namespace shiftzoo::cpu
