// Small planes (late CNN stages: 7x7, 14x14): per reading class and tap, what every output element
// of a plane reads, folded into one table, so that a plane costs a masked copy (a single-tap
// forward or input gradient) or a masked dot product per tap (the backward's correlations) and
// nothing per row or per edge. Built once per call from the tap tables; the kernels that read
// them are translate_plane(s) (kernels/forward_plane.h), translate_plane(s)_affine (kernels/affine.h,
// the inference form, integer data included) and correlate_translated_plane (kernels/backward_plane.h).
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "backends/core/geometry.h"
#include "backends/cpu/tap_tables.h"

namespace shiftzoo::cpu {

// Planes up to this many outputs take the tables: their edges, border rows and per-row calls
// would cost more than the copy itself.
constexpr int64_t kSmallPlane = 256;
// Several-tap forwards take them on planes up to this size (forward.cpp).
constexpr int64_t kSmallFilterPlane = 64;

// The bit pattern kept where an output reads the translated input: all ones or zero, as wide as T,
// so that the masked copy is a vector AND.
template <typename T>
using KeepMask = std::conditional_t<
    sizeof(T) == 1, uint8_t,
    std::conditional_t<sizeof(T) == 2, uint16_t, std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;

// T's bits, read and written in place of T's (the masked copy moves bit patterns): may_alias, so
// the compiler orders them with any access through T.
template <size_t Bytes>
struct AliasedBitsOf;
template <>
struct AliasedBitsOf<1> {
  typedef uint8_t __attribute__((__may_alias__)) type;
};
template <>
struct AliasedBitsOf<2> {
  typedef uint16_t __attribute__((__may_alias__)) type;
};
template <>
struct AliasedBitsOf<4> {
  typedef uint32_t __attribute__((__may_alias__)) type;
};
template <>
struct AliasedBitsOf<8> {
  typedef uint64_t __attribute__((__may_alias__)) type;
};

// What the numel outputs of a dense plane of one reading class read: output i in [lo, hi) reads
// input i + shift where keep[i] is all ones (inside the plane: a translation), and 0 otherwise,
// except the `fixes` outputs fix_out[f], which read input fix_in[f] (what a padding maps taps
// that left the plane to, or every read of a shift that samples). Offsets are within a plane.
// keep holds zeros from numel up to padded_numel(), so that whole 32-byte vectors may read it.
template <typename T>
struct PlaneTranslation {
  int64_t numel = 0, shift = 0, lo = 0, hi = 0, fixes = 0;
  const KeepMask<T>* keep = nullptr;
  const int32_t* fix_out = nullptr;
  const int32_t* fix_in = nullptr;

  // n elements rounded up to whole 32-byte vectors of T
  static int64_t padded(int64_t n) {
    constexpr int64_t L = 32 / sizeof(T);
    return (n + L - 1) / L * L;
  }
  int64_t padded_numel() const { return padded(numel); }
};

// The elements of an input tensor, [data, data + numel) with numel one past its last element's
// offset (strides are not negative where translations are used): a translation may read past its
// plane's edges inside them, masking what it reads there.
template <typename T>
struct InputExtent {
  const T* data = nullptr;
  int64_t numel = 0;

  InputExtent(const T* tensor_data, const Geometry& g) : data(tensor_data), numel(1) {
    numel += (g.batch - 1) * g.stride_n + (g.channels - 1) * g.stride_c;
    for (int axis = 0; axis < kAxes; ++axis) numel += (g.size[axis] - 1) * g.stride[axis];
  }
  // Whether the n elements from plane + offset lie inside.
  bool holds(const T* plane, int64_t offset, int64_t n) const {
    const int64_t at = (plane - data) + offset;
    return at >= 0 && at + n <= numel;
  }
};

// The translations of every tap combination (TapTables: (a * kh + b) * kw + t) of every reading
// class, for output planes with dense rows of at most kSmallPlane elements, at most kSmallPlaneTaps
// combinations and input offsets that fit 32 bits; empty() otherwise.
constexpr int kSmallPlaneTaps = 16;

template <typename T>
class SmallPlaneTables {
 public:
  SmallPlaneTables(const TapTables& taps, const Geometry& in_geom, const Geometry& out_geom) {
    const int64_t numel = out_geom.plane_numel();
    const int64_t reach = (in_geom.size[0] - 1) * in_geom.stride[0] + (in_geom.size[1] - 1) * in_geom.stride[1] +
                          (in_geom.size[2] - 1) * in_geom.stride[2];
    auto dense_plane = [](const Geometry& g) {  // rows and slices densely stacked
      return dense_rows(g) && (g.size[0] == 1 || g.stride[0] == g.size[1] * g.size[2]);
    };
    if (taps.size() == 0 || taps.front().taps() > kSmallPlaneTaps || numel > kSmallPlane || !dense_plane(out_geom) ||
        reach >= (int64_t{1} << 31) || in_geom.stride[0] < 0 || in_geom.stride[1] < 0 || in_geom.stride[2] < 0)
      return;
    // A translation needs the input plane dense too and every position kept; otherwise every read
    // is a fix (a gather).
    const bool translates = taps.unit_sampling() && dense_plane(in_geom);
    const ChannelTaps& shape = taps.front();
    taps_ = shape.taps();
    const int64_t count = taps.classes() * taps_;
    const int64_t keep_stride = PlaneTranslation<T>::padded(numel);  // each tap's keep, zero-padded
    keep_.assign(count * keep_stride, 0);
    std::vector<int64_t> fix_start(count + 1, 0);
    planes_.resize(count);
    for (int64_t k = 0; k < taps.classes(); ++k) {
      const ChannelTaps& t = taps.of_class(k);
      for (int a = 0; a < t.kd; ++a)
        for (int b = 0; b < t.kh; ++b)
          for (int w = 0; w < t.kw; ++w) {
            const int64_t q = k * taps_ + (a * t.kh + b) * t.kw + w;
            PlaneTranslation<T>& p = planes_[q];
            p.numel = numel;
            p.shift = translates ? (t.offset_z + a) * in_geom.stride[0] + (t.offset_y + b) * in_geom.stride[1] +
                                       (t.offset + w) * in_geom.stride[2]
                                 : 0;
            KeepMask<T>* keep = keep_.data() + q * keep_stride;
            int64_t lo = numel, hi = 0;
            // Output i (in order) reads input j: kept where that is the translation, a fix otherwise.
            auto place = [&](int64_t i, int64_t j) {
              if (translates && j == i + p.shift) {
                keep[i] = static_cast<KeepMask<T>>(~KeepMask<T>{0});
                lo = std::min(lo, i);
                hi = i + 1;
              } else {
                fix_out_.push_back(static_cast<int32_t>(i));
                fix_in_.push_back(static_cast<int32_t>(j));
              }
            };
            const int64_t W = out_geom.size[2];
            for (int64_t z = 0; z < out_geom.size[0]; ++z)
              for (int64_t y = 0; y < out_geom.size[1]; ++y) {
                const int64_t sz = t.src_z[z * t.kd + a], sy = t.src_y[y * t.kh + b];
                if (sz == kZeroTap || sy == kZeroTap) continue;
                const int64_t row = (z * out_geom.size[1] + y) * W;  // output i of x = 0
                const int64_t base = sz * in_geom.stride[0] + sy * in_geom.stride[1];
                auto edge = [&](int64_t x) {
                  const int64_t sx = t.source_x(x, w);
                  if (sx != kZeroTap) place(row + x, base + sx * in_geom.stride[2]);
                };
                for (int64_t x = 0; x < t.inner.begin; ++x) edge(x);
                // inside, input x is step_x * x + offset + w: a translated row either keeps all
                // of it (one range) or none (unit sampling: j - i does not depend on x)
                auto source = [&](int64_t x) { return base + (t.step_x * x + t.offset + w) * in_geom.stride[2]; };
                const int64_t first = row + t.inner.begin;
                if (t.inner.begin < t.inner.end && translates && source(t.inner.begin) == first + p.shift) {
                  const int64_t last = row + t.inner.end;
                  std::fill(keep + first, keep + last, static_cast<KeepMask<T>>(~KeepMask<T>{0}));
                  lo = std::min(lo, first);
                  hi = last;
                } else {
                  for (int64_t x = t.inner.begin; x < t.inner.end; ++x) place(row + x, source(x));
                }
                for (int64_t x = t.inner.end; x < W; ++x) edge(x);
              }
            p.lo = lo < hi ? lo : 0;
            p.hi = lo < hi ? hi : 0;
            fix_start[q + 1] = static_cast<int64_t>(fix_out_.size());
          }
    }
    for (int64_t q = 0; q < count; ++q) {  // pointers once the vectors stopped growing
      PlaneTranslation<T>& p = planes_[q];
      p.keep = keep_.data() + q * keep_stride;
      p.fixes = fix_start[q + 1] - fix_start[q];
      p.fix_out = fix_out_.data() + fix_start[q];
      p.fix_in = fix_in_.data() + fix_start[q];
    }
    reach_.resize(taps.classes());
    for (int64_t k = 0; k < taps.classes(); ++k) {
      ClassReach& r = reach_[k];
      r.low = r.high = planes_[k * taps_].shift;
      for (int64_t q = k * taps_; q < (k + 1) * taps_; ++q) {
        r.low = std::min(r.low, planes_[q].shift);
        r.high = std::max(r.high, planes_[q].shift);
        r.fixes = r.fixes || planes_[q].fixes > 0;
      }
    }
  }

  // What the translations of one reading class read, for checks made once per plane rather than
  // per tap: their lowest and highest shifts, and whether any has fixes.
  struct ClassReach {
    int64_t low = 0, high = 0;
    bool fixes = false;
  };

  bool empty() const { return planes_.empty(); }
  // The translations of reading class k, one per tap combination.
  const PlaneTranslation<T>* operator[](int64_t k) const { return planes_.data() + k * taps_; }
  const ClassReach& reach(int64_t k) const { return reach_[k]; }

 private:
  int64_t taps_ = 0;
  std::vector<PlaneTranslation<T>> planes_;  // [class][tap combination]
  std::vector<ClassReach> reach_;            // [class]
  std::vector<KeepMask<T>> keep_;
  std::vector<int32_t> fix_out_, fix_in_;
};

}  // namespace shiftzoo::cpu
