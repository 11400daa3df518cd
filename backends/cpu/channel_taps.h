// The taps of one channel as small index tables, built once per channel from its plan and the
// padding. The row kernels read only these tables: the padding (compiled policy or, later, a
// runtime table) is consulted here and nowhere in the inner loops.
#pragma once
#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#include "shift_plan.h"

namespace shiftzoo::cpu {

struct Span {
  int64_t begin, end;
};

// Output positions x whose taps x + offset + t (0 <= t < K) all lie in [0, n).
inline Span interior(int64_t n, int64_t offset, int K) {
  const int64_t begin = std::clamp<int64_t>(-offset, 0, n);
  const int64_t end = std::clamp<int64_t>(n - offset - (K - 1), begin, n);
  return {begin, end};
}

// Whether raw tap index i lies outside an axis of length n (the padding decides what it reads).
inline bool outside_axis(int64_t i, int64_t n) { return i < 0 || i >= n; }

// A tap source that reads alike for every channel (the compiled paddings): map(axis, i). The
// channels' index tables then depend on their offsets only and are built once per offset.
template <class Map>
struct UniformSource {
  Map map;
  int64_t operator()(int64_t, int axis, int64_t i) const { return map(axis, i); }
};
template <class Source>
struct is_uniform_source : std::false_type {};
template <class Map>
struct is_uniform_source<UniformSource<Map>> : std::true_type {};

// Where each tap of channel c reads: source(c, axis, i) maps a raw tap index i (any integer, the
// unpadded position x + offset + t) of `axis` to an input index or kZeroTap. It is the padding
// policy for compiled plugins and a lookup in the plugin's table for runtime ones.
// The tables live in ChannelTapsList's storage (shared by channels with equal offsets where the
// source is uniform).
struct ChannelTaps {
  // Leading axes (D, H): which input rows an output row reads.
  int kd = 1, kh = 1;
  const int64_t* src_z = nullptr;  // [D][kd]: input index or kZeroTap
  const int64_t* src_y = nullptr;  // [H][kh]
  int64_t offset_z = 0;            // src_z[z * kd + a] == z + offset_z + a for z in inner_z
  Span inner_z{0, 0};
  int64_t offset_y = 0;            // src_y[y * kh + b] == y + offset_y + b for y in inner_y
  Span inner_y{0, 0};
  // Last axis (W): tap t of output x reads x + offset + t inside `inner`; the few positions
  // outside it read edge_src[e * kw + t] (an index or kZeroTap) for x = edge_x[e], e < edges.
  int kw = 1;
  int64_t offset = 0;
  Span inner{0, 0};
  int64_t edges = 0;
  const int64_t* edge_x = nullptr;
  const int64_t* edge_src = nullptr;
  // weight[(a * kh + b) * kw + t]: the product of the three axes' tap weights.
  const double* weight = nullptr;
  const double *weight_d = nullptr, *weight_h = nullptr, *weight_w = nullptr;  // its factors, per axis

  int taps() const { return kd * kh * kw; }
  // The index e of edge position x (x outside `inner`): edge_x[e] == x.
  int64_t edge_index(int64_t x) const { return x < inner.begin ? x : inner.begin + (x - inner.end); }
  // The input x that tap t of output x reads along W, or kZeroTap.
  int64_t source_x(int64_t x, int t = 0) const {
    return x >= inner.begin && x < inner.end ? x + offset + t : edge_src[edge_index(x) * kw + t];
  }
  // What raw index j + offset_a reads along a leading axis of length n whose table (src_z or
  // src_y, [n][k]) has offset offset_a: tap j - p of position p = min(j, n - 1), for j < n + k - 1.
  // (Tables are functions of the raw index: fill_axis.)
  static int64_t lead_source(const int64_t* table, int k, int64_t n, int64_t j) {
    const int64_t p = std::min(j, n - 1);
    return table[p * k + (j - p)];
  }

  // Index slots of one axis's table for tap offset `offset` and k taps: D and H, [n][k] sources;
  // W, the edge positions (outside the interior) then their [edges][k] sources.
  static int64_t axis_slots(const Geometry& g, int axis, int64_t offset, int k) {
    if (axis < 2) return g.size[axis] * k;
    const Span in = interior(g.size[2], offset, k);
    return (g.size[2] - (in.end - in.begin)) * (1 + k);
  }

  // Fills the table of `axis` for tap offset `offset` and k taps (channel c's sources) into out.
  // Every entry is source(c, axis, raw index): what a tap reads depends on its raw index alone
  // (the channels-inner kernels gather by raw index and share the gathered rows between taps).
  template <class Source>
  static void fill_axis(const Source& source, int64_t c, int axis, int64_t offset, int k, const Geometry& g,
                        int64_t* out) {
    const int64_t n = g.size[axis];
    if (axis < 2) {
      for (int64_t i = 0; i < n; ++i)
        for (int t = 0; t < k; ++t) *out++ = source(c, axis, i + offset + t);
      return;
    }
    const Span in = interior(n, offset, k);
    int64_t* ex = out;
    int64_t* es = out + (n - (in.end - in.begin));
    for (int64_t x = 0; x < n; ++x) {
      if (x == in.begin) x = in.end;
      if (x >= n) break;
      *ex++ = x;
      for (int t = 0; t < k; ++t) *es++ = source(c, 2, x + offset + t);
    }
  }

  // Channel c of `plan`, reading its three axis tables (as fill_axis wrote them) and keeping its
  // tap weights in weight_storage (taps() of them), their factors in factor_storage (kd + kh + kw).
  void set(const ShiftPlan& plan, int64_t c, const Geometry& g, const std::array<const int64_t*, kAxes>& tables,
           double* weight_storage, double* factor_storage) {
    const AxisTaps &td = plan.at(c, 0), &th = plan.at(c, 1), &tw = plan.at(c, 2);
    kd = plan.support[0];
    kh = plan.support[1];
    kw = plan.support[2];
    src_z = tables[0];
    offset_z = td.offset;
    inner_z = interior(g.size[0], offset_z, kd);
    src_y = tables[1];
    offset_y = th.offset;
    inner_y = interior(g.size[1], offset_y, kh);
    offset = tw.offset;
    inner = interior(g.size[2], offset, kw);
    edges = g.size[2] - (inner.end - inner.begin);
    edge_x = tables[2];
    edge_src = tables[2] + edges;
    for (int a = 0; a < kd; ++a)
      for (int b = 0; b < kh; ++b)
        for (int t = 0; t < kw; ++t) weight_storage[(a * kh + b) * kw + t] = td.w[a] * th.w[b] * tw.w[t];
    weight = weight_storage;
    std::copy(td.w, td.w + kd, factor_storage);
    std::copy(th.w, th.w + kh, factor_storage + kd);
    std::copy(tw.w, tw.w + kw, factor_storage + kd + kh);
    weight_d = factor_storage;
    weight_h = factor_storage + kd;
    weight_w = factor_storage + kd + kh;
  }

  // Whether some tap outside the plane reads an input (every padding but zeros does): the adjoint
  // then owes that input more than the reversed in-range shift gives it.
  bool reads_padding(const Geometry& g) const {
    for (int64_t z = 0; z < g.size[0]; ++z)
      for (int a = 0; a < kd; ++a)
        if (outside_axis(z + offset_z + a, g.size[0]) && src_z[z * kd + a] != kZeroTap) return true;
    for (int64_t y = 0; y < g.size[1]; ++y)
      for (int b = 0; b < kh; ++b)
        if (outside_axis(y + offset_y + b, g.size[1]) && src_y[y * kh + b] != kZeroTap) return true;
    for (int64_t e = 0; e < edges; ++e)
      for (int t = 0; t < kw; ++t)
        if (outside_axis(edge_x[e] + offset + t, g.size[2]) && edge_src[e * kw + t] != kZeroTap) return true;
    return false;
  }

  // Calls fn(src_z, src_y, lead_index) for each input row (not a zero tap) that output row
  // (z, y) reads; lead_index = a * kh + b picks the weights.
  template <class Fn>
  void for_each_source_row(int64_t z, int64_t y, Fn&& fn) const {
    for (int a = 0; a < kd; ++a) {
      const int64_t sz = src_z[z * kd + a];
      if (sz == kZeroTap) continue;
      for (int b = 0; b < kh; ++b) {
        const int64_t sy = src_y[y * kh + b];
        if (sy != kZeroTap) fn(sz, sy, a * kh + b);
      }
    }
  }
};

}  // namespace shiftzoo::cpu
