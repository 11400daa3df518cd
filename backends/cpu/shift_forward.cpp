// CPU forward. Single-tap interpolation (nearest): every output row is one block copy plus edge
// fill. Otherwise: a sum of K-tap row filters over the source rows it reads.
#include <ATen/Dispatch.h>

#include <vector>

#include "cpu/row_kernels.h"
#include "cpu/shift_kernels.h"

namespace shiftzoo::cpu {
namespace {

// Single-tap forward of one plane whose rows are contiguous and densely stacked. Per D-slice,
// the rows that read an in-range row form one block whose source is the same block moved by
// offset_y * W + offset: a single memcpy, after which only the edge columns are rewritten.
template <typename T>
void copy_dense_plane(const T* in_plane, T* out_plane, const Geometry& gi, const Geometry& go,
                      const ChannelTaps& taps) {
  const int64_t H = gi.size[1], W = gi.size[2];
  const Span rows = taps.inner_y, cols = taps.inner;
  for (int64_t z = 0; z < gi.size[0]; ++z) {
    T* out_slice = out_plane + z * go.stride[0];
    const int64_t sz = taps.src_z[z];
    if (sz == kZeroTap) {
      for (int64_t y = 0; y < H; ++y) std::fill(out_slice + y * W, out_slice + (y + 1) * W, T(0));
      continue;
    }
    const T* in_slice = in_plane + sz * gi.stride[0];
    const bool block = rows.end > rows.begin && cols.end > cols.begin;
    if (block) {
      const int64_t first = rows.begin * W + cols.begin, last = (rows.end - 1) * W + cols.end;
      std::memcpy(out_slice + first, in_slice + first + taps.offset_y * W + taps.offset,
                  (last - first) * sizeof(T));
    }
    for (int64_t y = 0; y < H; ++y) {
      T* out_row = out_slice + y * W;
      const int64_t sy = taps.src_y[y];
      if (sy == kZeroTap) {
        std::fill(out_row, out_row + W, T(0));
      } else if (block && y >= rows.begin && y < rows.end) {
        fill_edges(in_slice + sy * W, out_row, taps);
      } else {
        copy_row(in_slice + sy * W, out_row, taps);
      }
    }
  }
}

template <typename T>
void forward(const at::Tensor& input, const at::Tensor& output, const ChannelTapsList& channel_taps) {
  using A = at::opmath_type<T>;
  const Geometry gi(input), go(output);
  const int64_t D = gi.size[0], H = gi.size[1], W = gi.size[2];
  const T* in_data = input.const_data_ptr<T>();
  T* out_data = output.mutable_data_ptr<T>();
  const bool single_tap = channel_taps.front().taps() == 1;
  const bool dense_rows = gi.stride[2] == 1 && go.stride[2] == 1 && gi.stride[1] == W && go.stride[1] == W;

  for_each_plane(gi, [&](int64_t n, int64_t c) {
    const ChannelTaps& taps = channel_taps[c];
    const T* in_plane = plane_ptr(in_data, gi, n, c);
    T* out_plane = plane_ptr(out_data, go, n, c);
    if (single_tap && dense_rows) return copy_dense_plane(in_plane, out_plane, gi, go, taps);

    thread_local std::vector<T> in_scratch, out_scratch;
    thread_local std::vector<A> acc;
    in_scratch.resize(W);
    out_scratch.resize(W);
    acc.resize(W);
    A w[kMaxSupport];
    auto source_row = [&](int64_t flat_row) {
      const T* row = in_plane + (flat_row / H) * gi.stride[0] + (flat_row % H) * gi.stride[1];
      return contiguous_row(row, gi.stride[2], W, in_scratch.data());
    };
    for (int64_t z = 0; z < D; ++z) {
      for (int64_t y = 0; y < H; ++y) {
        T* out_row_dst = out_plane + z * go.stride[0] + y * go.stride[1];
        T* out_row = go.stride[2] == 1 ? out_row_dst : out_scratch.data();
        if (single_tap) {
          const int64_t sz = taps.src_z[z], sy = taps.src_y[y];
          if (sz == kZeroTap || sy == kZeroTap) {
            std::fill(out_row, out_row + W, T(0));
          } else {
            copy_row(source_row(sz * H + sy), out_row, taps);
          }
        } else {
          std::fill(acc.begin(), acc.end(), A(0));
          taps.for_each_source_row(z, y, H, [&](int64_t src, int lead) {
            taps.row_weights(lead, w);
            SHIFTZOO_WITH_SUPPORT(taps.kw, filter_row, source_row(src), acc.data(), w, taps)
          });
          for (int64_t x = 0; x < W; ++x) out_row[x] = static_cast<T>(acc[x]);
        }
        if (out_row != out_row_dst) {
          for (int64_t x = 0; x < W; ++x) out_row_dst[x * go.stride[2]] = out_row[x];
        }
      }
    }
  });
}

}  // namespace

void shift_forward_kernel(const at::Tensor& input, const at::Tensor& output,
                          const ChannelTapsList& taps) {
  if (input.numel() == 0) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "shiftzoo.shift", [&] {
    forward<scalar_t>(input, output, taps);
  });
}

}  // namespace shiftzoo::cpu
