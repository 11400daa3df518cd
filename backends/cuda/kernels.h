// The GPU backend's kernels, as the work of one thread (and, for the shift gradient, of one
// block's reduction): plain __host__ __device__ functors with no ATen types, templated on the
// element type, where taps read (a compiled padding policy or a runtime plugin's tables) and the
// index type. A launcher runs them over a grid: backends/cuda/launch_cuda.cuh on the GPU, and
// backends/cuda/launch_host.h on the host, over the very same grid and in the same order, so
// that the ordinary CPU build tests these bodies (tests/test_gpu_emulation.py).
//
// Every functor has `phases` and `operator()(phase, block, thread, threads, shared)`: the
// launcher runs phase p of every thread of a block before phase p + 1 (on the GPU, a
// __syncthreads() between), with `shared` the block's shared memory (doubles).
#pragma once
#include <cstdint>
#include <limits>

#include "backends/core/channel_affine.h"
#include "backends/core/tap_rule.h"
#include "plugins/common.h"

namespace shiftzoo::gpu {

constexpr int kThreads = 256;        // per block, elementwise kernels
constexpr int kReduceThreads = 128;  // per block, the shift gradient's reduction (a power of two)
constexpr int kReduceSteps = 7;      // log2(kReduceThreads)
static_assert(1 << kReduceSteps == kReduceThreads, "kReduceSteps");

// An adjoint list entry packs (output position y, tap t) as y << kTapBits | t.
constexpr int kTapBits = 3;
static_assert(kMaxSupport <= (1 << kTapBits), "kTapBits holds every tap");

// A tensor as (N, C, D, H, W): sizes and strides in elements.
template <typename Index>
struct Dims5 {
  Index size[5];
  Index stride[5];
  SHIFTZOO_HD Index offset(const Index* coord) const {
    Index o = 0;
    for (int i = 0; i < 5; ++i) o += coord[i] * stride[i];
    return o;
  }
  // The offset of spatial position (i0, i1, i2) within one (n, c) plane.
  SHIFTZOO_HD Index spatial(int64_t i0, int64_t i1, int64_t i2) const {
    return static_cast<Index>(i0) * stride[2] + static_cast<Index>(i1) * stride[3] + static_cast<Index>(i2) * stride[4];
  }
};

// n / d for a divisor fixed at launch: int64 indices by division; int32 ones by a multiply-high
// and a shift (a GPU has no integer divide instruction: a division costs some 20 instructions,
// and the kernels split every element's index into five coordinates).
template <typename Index>
struct Divider {
  Index d = 1;
  Divider() = default;
  explicit Divider(Index divisor) : d(divisor > 0 ? divisor : 1) {}
  SHIFTZOO_HD Index divisor() const { return d; }
  SHIFTZOO_HD Index div(Index n) const { return n / d; }
};

template <>
struct Divider<int32_t> {
  uint32_t d = 1, magic = 1, shift = 0;
  Divider() = default;
  // shift = ceil(log2 d), magic = 2**32 * (2**shift - d) / d + 1: then n / d = (mulhi(n, magic) + n) >> shift
  // for every 0 <= n < 2**31.
  explicit Divider(int32_t divisor) : d(divisor > 0 ? static_cast<uint32_t>(divisor) : 1u) {
    while ((uint64_t{1} << shift) < d) ++shift;
    magic = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1);
  }
  SHIFTZOO_HD int32_t divisor() const { return static_cast<int32_t>(d); }
  SHIFTZOO_HD int32_t div(int32_t n) const {
    const uint32_t u = static_cast<uint32_t>(n);
#ifdef __CUDA_ARCH__
    const uint32_t high = __umulhi(u, magic);
#else
    const uint32_t high = static_cast<uint32_t>((uint64_t{u} * magic) >> 32);
#endif
    return static_cast<int32_t>((high + u) >> shift);
  }
};

// Element e of a tensor visited in its memory order: `dims` lists (N, C, D, H, W) innermost first,
// so that consecutive threads touch consecutive addresses; `size` their lengths in that order.
template <typename Index>
struct MemoryOrder {
  int dims[5];
  Divider<Index> size[5];
  SHIFTZOO_HD void coords(Index e, Index* coord) const {
    for (int i = 0; i < 5; ++i) {
      const Index q = size[i].div(e);
      coord[dims[i]] = e - q * size[i].divisor();
      e = q;
    }
  }
};

// What a plan holds, in the memory of the device that runs the kernels (backend.h builds it):
// per channel and axis of (D, H, W), tap t of output y reads step * y + offset + t with weight
// w[t] (d w[t] / d shift: dw[t]), t < support[axis]. Axes the input lacks: one tap, offset 0.
struct PlanView {
  int support[3];
  int64_t step[3];
  int slots;               // weights stored per channel and axis (the largest support)
  const int64_t* offsets;  // [channel][axis]
  const double* taps;      // [channel][axis][w, dw][slot]

  SHIFTZOO_HD int64_t offset(int64_t c, int axis) const { return offsets[c * 3 + axis]; }
  SHIFTZOO_HD const double* w(int64_t c, int axis) const { return taps + (c * 3 + axis) * 2 * slots; }
  SHIFTZOO_HD const double* dw(int64_t c, int axis) const { return w(c, axis) + slots; }
};

// Where taps read through a compiled padding policy: the tap's raw index, mapped.
template <class Padding>
struct PolicyReads {
  Padding pad;
  int64_t n[3];  // the input's (D, H, W)
  // The input index that tap t of output y reads along `axis` (kZeroTap: zero).
  SHIFTZOO_HD int64_t operator()(int axis, int64_t, int64_t y, int t, const PlanView& plan, int64_t offset) const {
    return pad.map(plan.step[axis] * y + offset + t, n[axis]);
  }
};

// Where taps read through a runtime plugin's index tables (core/shift_plan.h: TabledPadding):
// tables[axis][c][step * y + t]. An entry outside [0, n) reads zero, so that no table, however
// wrong, makes a kernel read outside the input (the GPU cannot check them without a host sync).
struct TableReads {
  const int64_t* table[3];  // null for the axes the input lacks
  int64_t length[3];
  int64_t n[3];
  SHIFTZOO_HD int64_t operator()(int axis, int64_t c, int64_t y, int t, const PlanView& plan, int64_t offset) const {
    if (table[axis] == nullptr) return plan.step[axis] * y + offset + t;  // (0: a length-1 axis)
    const int64_t i = table[axis][c * length[axis] + plan.step[axis] * y + t];
    return i >= 0 && i < n[axis] ? i : kZeroTap;
  }
};

// One channel's reads at output position `y` (D, H, W): per axis, the input index and weight of
// each tap.
template <typename A>
struct TapReads {
  int64_t index[3][kMaxSupport];
  A w[3][kMaxSupport];

  template <class Reads, typename Index>
  SHIFTZOO_HD void gather(const Reads& reads, const PlanView& plan, int64_t c, const Index* y) {
    for (int axis = 0; axis < 3; ++axis) {
      const int64_t offset = plan.offset(c, axis);
      const double* weights = plan.w(c, axis);
      for (int t = 0; t < plan.support[axis]; ++t) {
        index[axis][t] = reads(axis, c, static_cast<int64_t>(y[axis]), t, plan, offset);
        w[axis][t] = static_cast<A>(weights[t]);
      }
    }
  }
};

// A per-channel map of shift_affine (core/channel_affine.h), from arrays in the kernels'
// precision A: none where `scale` is null and the bounds are infinite.
template <typename A>
struct AffineArgs {
  const A* scale = nullptr;
  const A* bias = nullptr;
  A lo, hi;
  SHIFTZOO_HD AffineClamp<A> at(int64_t c) const {
    AffineClamp<A> map;
    map.lo = lo;
    map.hi = hi;
    if (scale != nullptr) {
      map.affine = true;
      map.scale = scale[c];
      map.bias = bias[c];
    }
    return map;
  }
};

// Plan entry e = (channel, axis) of a plan kernel: its weights cleared, and where the input lacks
// the axis, the identity tap (weight 1 at offset 0). Returns whether the axis is a real one.
struct PlanEntry {
  int64_t index, channel;  // index: channel * 3 + axis, where offsets[index] lies
  int axis, first;  // first: the first axis the input has
  double* w;
  double* dw;
  SHIFTZOO_HD PlanEntry(int64_t e, int spatial_dims, int slots, int64_t* offsets, double* taps)
      : index(e), channel(e / 3), axis(static_cast<int>(e % 3)), first(3 - spatial_dims), w(taps + e * 2 * slots),
        dw(w + slots) {
    for (int t = 0; t < slots; ++t) w[t] = dw[t] = 0.0;
    offsets[e] = 0;
    if (axis < first) w[0] = 1.0;
  }
  SHIFTZOO_HD bool real() const { return axis >= first; }
  // A shift that cannot be honoured (non-finite): NaN weights, so the channel comes out NaN.
  SHIFTZOO_HD void poison(int slots) const {
    for (int t = 0; t < slots; ++t) w[t] = dw[t] = std::numeric_limits<double>::quiet_NaN();
  }
};

// What both plan kernels write, and the (channel, axis) entry each of their threads plans.
struct PlanOutput {
  int64_t channels;
  int spatial_dims;
  int slots;  // taps per axis (K)
  int64_t* offsets;
  double* taps;

  // Calls plan(entry, k) for thread (block, thread)'s entry where its axis is a real one, k
  // indexing the (C, d) inputs; entries past the plan and the axes the input lacks are set up
  // (PlanEntry) and left.
  template <class Plan>
  SHIFTZOO_HD void for_entry(int64_t block, int thread, int threads, Plan&& plan) const {
    const int64_t e = block * threads + thread;
    if (e >= channels * 3) return;
    const PlanEntry entry(e, spatial_dims, slots, offsets, taps);
    if (!entry.real()) return;
    plan(entry, entry.channel * spatial_dims + entry.axis - entry.first);
  }
};

// The plan of a compiled interpolation: one thread per (channel, axis), the tap rule of
// core/tap_rule.h. A non-finite shift cannot be refused without a host sync: its channel's weights
// become NaN, so its output is NaN.
template <class Interp>
struct PlanKernel : PlanOutput {
  static constexpr int phases = 1;
  const double* shifts;  // (C, d), contiguous
  int64_t origin[3], period[3], reach[3];

  SHIFTZOO_HD void operator()(int, int64_t block, int thread, int threads, double*) const {
    for_entry(block, thread, threads, [&](const PlanEntry& entry, int64_t k) {
      const double s = shifts[k];
      if (!(s - s == 0.0)) return entry.poison(slots);  // infinite or NaN
      AxisTaps rule;
      set_axis_taps<Interp>(rule, s, origin[entry.axis], period[entry.axis], reach[entry.axis]);
      offsets[entry.index] = rule.offset;
      for (int t = 0; t < Interp::support; ++t) {
        entry.w[t] = rule.w[t];
        entry.dw[t] = rule.dw[t];
      }
    });
  }
};

// The plan of a runtime plugin from the offsets (C, d) and weights (C, d, K) Python computed
// (shiftzoo/_tabled.py), both contiguous; their dweights are applied in Python. An offset the
// planner marked non-finite (int64 min) or beyond +-2**62 poisons its channel, as PlanKernel does.
struct TabledPlanKernel : PlanOutput {
  static constexpr int phases = 1;
  const int64_t* offsets_in;
  const double* weights;

  SHIFTZOO_HD void operator()(int, int64_t block, int thread, int threads, double*) const {
    for_entry(block, thread, threads, [&](const PlanEntry& entry, int64_t k) {
      constexpr int64_t kFar = int64_t{1} << 62;
      if (offsets_in[k] <= -kFar || offsets_in[k] >= kFar) return entry.poison(slots);
      offsets[entry.index] = offsets_in[k];
      for (int t = 0; t < slots; ++t) entry.w[t] = weights[k * slots + t];
    });
  }
};

// The forward: one thread per output element, in the output's memory order. Each tap reads its
// input index on every axis (where one says kZeroTap: the channel's fill, zero without one),
// mapped by `pre`; the weighted sum, in A (float for the half types), goes through `post`
// (shift_affine; identity maps otherwise). Integer data (shift_affine, nearest; T an unsigned
// integer, core/element_types.h) moves as it is; a channel whose shift is not finite reads nothing.
template <typename T, typename A, class Reads, typename Index>
struct ForwardKernel {
  static constexpr int phases = 1;
  const T* in;
  T* out;
  Dims5<Index> in_dims, out_dims;
  MemoryOrder<Index> order;  // the output's
  Index total;
  PlanView plan;
  Reads reads;
  AffineArgs<A> pre, post;
  const T* fill;  // (C,) or null: zeros

  SHIFTZOO_HD void operator()(int, int64_t block, int thread, int threads, double*) const {
    const int64_t e = block * threads + thread;
    if (e >= static_cast<int64_t>(total)) return;
    Index pos[5];
    order.coords(static_cast<Index>(e), pos);
    const int64_t c = pos[1];
    const T* base = in + pos[0] * in_dims.stride[0] + pos[1] * in_dims.stride[1];
    const AffineClamp<A> pre_map = pre.at(c), post_map = post.at(c);
    const A nothing = fill != nullptr ? static_cast<A>(fill[c]) : A(0);
    // the value a tap reads: pre(input) where it reads one, the fill where an axis says kZeroTap
    auto read = [&](int64_t i0, int64_t i1, int64_t i2) {
      return i0 >= 0 && i1 >= 0 && i2 >= 0 ? pre_map(static_cast<A>(base[in_dims.spatial(i0, i1, i2)])) : nothing;
    };
    A acc;
    if (plan.slots == 1) {  // nearest: one read, exactly the input's value
      const A v = read(reads(0, c, pos[2], 0, plan, plan.offset(c, 0)), reads(1, c, pos[3], 0, plan, plan.offset(c, 1)),
                       reads(2, c, pos[4], 0, plan, plan.offset(c, 2)));
      const double w = plan.w(c, 0)[0] * plan.w(c, 1)[0] * plan.w(c, 2)[0];  // 1 unless poisoned (NaN)
      if constexpr (kMapsValues<A>) acc = static_cast<A>(w) * v;
      else acc = w == 1.0 ? v : nothing;
    } else if constexpr (kMapsValues<A>) {
      TapReads<A> taps;
      taps.gather(reads, plan, c, pos + 2);
      acc = A(0);
      for (int a = 0; a < plan.support[0]; ++a) {
        for (int b = 0; b < plan.support[1]; ++b) {
          for (int t = 0; t < plan.support[2]; ++t) {
            const A v = read(taps.index[0][a], taps.index[1][b], taps.index[2][t]);
            acc += taps.w[0][a] * taps.w[1][b] * taps.w[2][t] * v;
          }
        }
      }
    } else {
      acc = nothing;  // (integer data takes nearest only: never reached)
    }
    out[out_dims.offset(pos)] = static_cast<T>(post_map(acc));
  }
};

// The input gradient as a gather: for every input index p along an axis, the (output y, tap t)
// pairs that read it. Where every tap outside the axis reads zero (Padding::outside_is_zero), only
// taps inside read p: y = (p - offset - t) / step for each t, by arithmetic. Otherwise taps that
// left the axis and came back through the padding read p too: a first kernel lists them all, per
// channel and axis (one thread each), for every input index in increasing (y, t) order, as CSR
// (starts (n + 1) and entries y << kTapBits | t). Either way, the exact adjoint for every padding
// and sampling, with no atomics and one summation order.
//
// Where the lists lie: per axis, starts [channel][in_len + 1] and entries [channel][out_len * support].
struct AdjointLists {
  int64_t* starts[3];
  int64_t* entries[3];
  int64_t in_len[3], out_len[3];
  int support[3];
  SHIFTZOO_HD int64_t* start(int axis, int64_t c) const { return starts[axis] + c * (in_len[axis] + 1); }
  SHIFTZOO_HD int64_t* entry(int axis, int64_t c) const { return entries[axis] + c * out_len[axis] * support[axis]; }
  // The int64 elements all the lists of `channels` channels take.
  SHIFTZOO_HD int64_t size(int64_t channels) const {
    int64_t total = 0;
    for (int axis = 0; axis < 3; ++axis) total += channels * (in_len[axis] + 1 + out_len[axis] * support[axis]);
    return total;
  }
  // Lays the lists out one after another from `base`.
  SHIFTZOO_HD void place(int64_t* base, int64_t channels) {
    for (int axis = 0; axis < 3; ++axis) {
      starts[axis] = base;
      entries[axis] = base + channels * (in_len[axis] + 1);
      base = entries[axis] + channels * out_len[axis] * support[axis];
    }
  }
};

template <class Reads>
struct AdjointListKernel {
  static constexpr int phases = 1;
  PlanView plan;
  Reads reads;
  int64_t channels;
  AdjointLists lists;

  SHIFTZOO_HD void operator()(int, int64_t block, int thread, int threads, double*) const {
    const int64_t e = block * threads + thread;
    if (e >= channels * 3) return;
    const int axis = static_cast<int>(e / channels);
    const int64_t c = e % channels, n = lists.in_len[axis], m = lists.out_len[axis];
    const int K = plan.support[axis];
    const int64_t offset = plan.offset(c, axis);
    int64_t* start = lists.start(axis, c);
    int64_t* entry = lists.entry(axis, c);
    for (int64_t p = 0; p <= n; ++p) start[p] = 0;
    for (int64_t y = 0; y < m; ++y)  // count the readers of each index in start[p + 1]
      for (int t = 0; t < K; ++t) {
        const int64_t p = reads(axis, c, y, t, plan, offset);
        if (p >= 0) ++start[p + 1];
      }
    for (int64_t p = 0; p < n; ++p) start[p + 1] += start[p];
    for (int64_t y = 0; y < m; ++y)  // fill in (y, t) order; start[p] advances to p's end
      for (int t = 0; t < K; ++t) {
        const int64_t p = reads(axis, c, y, t, plan, offset);
        if (p >= 0) entry[start[p]++] = y << kTapBits | t;
      }
    for (int64_t p = n; p > 0; --p) start[p] = start[p - 1];  // back to the beginnings
    start[0] = 0;
  }
};

// One thread per input-gradient element, in its memory order: the sum, over the readers of its
// three indices, of grad_output times the taps' weights.
template <typename T, typename A, typename Index>
struct InputGradientKernel {
  static constexpr int phases = 1;
  const T* grad_out;
  T* grad_in;
  Dims5<Index> grad_dims, in_dims;
  MemoryOrder<Index> order;  // grad_in's
  Index total;
  PlanView plan;
  bool use_lists;      // read the adjoint lists (else: taps inside the axis only, by arithmetic)
  AdjointLists lists;  // (only read with use_lists)

  // The readers of index p along `axis` of channel c: `count` of them, the i-th is (y, t) if it
  // exists (by arithmetic, tap i reads p only for one y, which may not exist).
  struct Readers {
    const InputGradientKernel* k;
    int axis;
    int64_t c, p, begin, count;
    const int64_t* list;

    SHIFTZOO_HD Readers(const InputGradientKernel* kernel, int axis_, int64_t c_, int64_t p_)
        : k(kernel), axis(axis_), c(c_), p(p_), begin(0), count(kernel->plan.support[axis_]), list(nullptr) {
      if (!k->use_lists) return;
      const int64_t* start = k->lists.start(axis, c) + p;
      begin = start[0];
      count = start[1] - start[0];
      list = k->lists.entry(axis, c);
    }
    SHIFTZOO_HD bool get(int64_t i, Index& y, int& t) const {
      if (list != nullptr) {
        const int64_t e = list[begin + i];
        y = static_cast<Index>(e >> kTapBits);
        t = static_cast<int>(e & ((1 << kTapBits) - 1));
        return true;
      }
      t = static_cast<int>(i);
      const int64_t q = p - k->plan.offset(c, axis) - t, step = k->plan.step[axis];
      const int64_t yy = step == 1 ? q : (q >= 0 ? q / step : -1);
      if (q < 0 || yy * step != q || yy >= static_cast<int64_t>(k->grad_dims.size[2 + axis])) return false;
      y = static_cast<Index>(yy);
      return true;
    }
  };

  SHIFTZOO_HD void operator()(int, int64_t block, int thread, int threads, double*) const {
    const int64_t e = block * threads + thread;
    if (e >= static_cast<int64_t>(total)) return;
    Index pos[5];
    order.coords(static_cast<Index>(e), pos);
    const int64_t c = pos[1];
    const Readers r0(this, 0, c, pos[2]), r1(this, 1, c, pos[3]), r2(this, 2, c, pos[4]);
    const double *w0 = plan.w(c, 0), *w1 = plan.w(c, 1), *w2 = plan.w(c, 2);
    const T* g = grad_out + pos[0] * grad_dims.stride[0] + pos[1] * grad_dims.stride[1];
    A acc(0);
    Index y0, y1, y2;
    int t0, t1, t2;
    for (int64_t i = 0; i < r0.count; ++i) {
      if (!r0.get(i, y0, t0)) continue;
      const A wa = static_cast<A>(w0[t0]);
      for (int64_t j = 0; j < r1.count; ++j) {
        if (!r1.get(j, y1, t1)) continue;
        const A wab = wa * static_cast<A>(w1[t1]);
        for (int64_t k = 0; k < r2.count; ++k) {
          if (!r2.get(k, y2, t2)) continue;
          const A v = static_cast<A>(g[grad_dims.spatial(y0, y1, y2)]);
          acc += wab * static_cast<A>(w2[t2]) * v;
        }
      }
    }
    grad_in[in_dims.offset(pos)] = static_cast<T>(acc);
  }
};

// The parameter gradient, stage 1: per channel, `parts` blocks each sum over a fixed share of the
// (batch, output position) elements, d loss / d w[axis][t] = sum of grad_output times the input
// that each tap combination reads times the other axes' weights. Phase 0: each thread sums its
// elements (a stride of parts * threads apart) in A; phases 1 .. kReduceSteps: a tree over the
// block's threads in shared memory, in double; last phase: thread 0 writes the block's sums.
// Every order is fixed: the result is bit-identical from run to run.
template <typename T, typename A, class Reads, typename Index>
struct CorrelationKernel {
  static constexpr int phases = kReduceSteps + 2;
  const T* grad_out;
  const T* in;
  Dims5<Index> grad_dims, in_dims;
  PlanView plan;
  Reads reads;
  int64_t channels, parts;  // blocks per channel
  Divider<Index> out_len[3];  // (D, H, W) of grad_output
  Index per_channel;      // batch * output positions
  double* partials;       // [channel][part][3][slots]

  SHIFTZOO_HD void operator()(int phase, int64_t block, int thread, int threads, double* shared) const {
    const int width = 3 * plan.slots;
    double* mine = shared + thread * width;
    if (phase == 0) {
      accumulate(block, thread, threads, mine);
    } else if (phase <= kReduceSteps) {
      const int half = threads >> phase;
      if (thread < half)
        for (int j = 0; j < width; ++j) mine[j] += shared[(thread + half) * width + j];
    } else if (thread == 0) {
      const int64_t c = block % channels, part = block / channels;
      for (int j = 0; j < width; ++j) partials[(c * parts + part) * width + j] = shared[j];
    }
  }

 private:
  SHIFTZOO_HD void accumulate(int64_t block, int thread, int threads, double* mine) const {
    // Blocks run channel-fastest: blocks in flight together read the same positions of
    // neighbouring channels, which share memory sectors in channels_last layouts.
    const int64_t c = block % channels, part = block / channels;
    A acc[3][kMaxSupport];
    for (int axis = 0; axis < 3; ++axis)
      for (int t = 0; t < plan.slots; ++t) acc[axis][t] = A(0);
    const T* g_base = grad_out + static_cast<Index>(c) * grad_dims.stride[1];
    const T* in_base = in + static_cast<Index>(c) * in_dims.stride[1];
    for (int64_t e = part * threads + thread; e < static_cast<int64_t>(per_channel); e += parts * threads) {
      Index y[3];
      Index rest = static_cast<Index>(e);
      for (int axis = 2; axis >= 0; --axis) {
        const Index q = out_len[axis].div(rest);
        y[axis] = rest - q * out_len[axis].divisor();
        rest = q;
      }
      const Index n = rest;
      const A g = static_cast<A>(g_base[n * grad_dims.stride[0] + grad_dims.spatial(y[0], y[1], y[2])]);
      TapReads<A> taps;
      taps.gather(reads, plan, c, y);
      const T* item = in_base + n * in_dims.stride[0];
      for (int a = 0; a < plan.support[0]; ++a) {
        for (int b = 0; b < plan.support[1]; ++b) {
          for (int t = 0; t < plan.support[2]; ++t) {
            const int64_t i0 = taps.index[0][a], i1 = taps.index[1][b], i2 = taps.index[2][t];
            if (i0 < 0 || i1 < 0 || i2 < 0) continue;
            const A v = g * static_cast<A>(item[in_dims.spatial(i0, i1, i2)]);
            acc[0][a] += v * taps.w[1][b] * taps.w[2][t];
            acc[1][b] += v * taps.w[0][a] * taps.w[2][t];
            acc[2][t] += v * taps.w[0][a] * taps.w[1][b];
          }
        }
      }
    }
    for (int axis = 0; axis < 3; ++axis)
      for (int t = 0; t < plan.slots; ++t) mine[axis * plan.slots + t] = static_cast<double>(acc[axis][t]);
  }
};

// Stage 2, one thread per channel: the blocks' sums added in block order, then per spatial axis
// the gradient: of the shift (sum over taps of d loss / d w[t] * d w[t] / d shift; out (C, d)) or
// of the weights themselves (a runtime plugin's; out (C, d, K)).
struct ContractKernel {
  static constexpr int phases = 1;
  const double* partials;
  int64_t channels, parts;
  PlanView plan;
  int spatial_dims;
  bool of_weights;
  double* out;

  SHIFTZOO_HD void operator()(int, int64_t block, int thread, int threads, double*) const {
    const int64_t c = block * threads + thread;
    if (c >= channels) return;
    const int width = 3 * plan.slots, first = 3 - spatial_dims;
    double sum[3 * kMaxSupport];
    for (int j = 0; j < width; ++j) sum[j] = 0.0;
    for (int64_t part = 0; part < parts; ++part)
      for (int j = 0; j < width; ++j) sum[j] += partials[(c * parts + part) * width + j];
    for (int k = 0; k < spatial_dims; ++k) {
      const int axis = first + k;
      const double* g = sum + axis * plan.slots;
      if (of_weights) {
        for (int t = 0; t < plan.slots; ++t) out[(c * spatial_dims + k) * plan.slots + t] = g[t];
        continue;
      }
      const double* dw = plan.dw(c, axis);
      double total = 0.0;
      for (int t = 0; t < plan.support[axis]; ++t) total += g[t] * dw[t];
      out[c * spatial_dims + k] = total;
    }
  }
};

}  // namespace shiftzoo::gpu
