// Where a tap reads, for the CPU's index tables (tap_tables.h): source(c, axis, i) maps a raw tap
// index i (any integer, the unpadded position x + offset + t) of channel c along `axis` to an
// input index or kZeroTap. A compiled padding policy answers alike for every channel; a runtime
// plugin answers from its own index tables, checked here against its contract once per call.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <string_view>
#include <vector>

#include "backends/core/shift_plan.h"

namespace shiftzoo::cpu {

// A compiled padding policy: the same for every channel, so channels with equal offsets share
// their tables.
template <class Padding>
struct PolicySource {
  static constexpr bool same_for_every_channel = true;
  Padding pad;
  const Geometry& g;
  int64_t operator()(int64_t, int axis, int64_t i) const { return pad.map(i, g.size[axis]); }
};

// A runtime plugin's index tables (TabledPadding), in host memory. Every entry is checked against
// the padding contract when the source is made, so that a misbehaving plugin gets a clear error
// instead of an out-of-bounds read, and the kernels can trust the tables.
class TableSource {
 public:
  static constexpr bool same_for_every_channel = false;

  TableSource(at::TensorList tables, const ShiftPlan& plan, const Geometry& g, std::string_view name)
      : plan_(plan), g_(g) {
    for (const at::Tensor& t : tables) tables_.push_back(t.contiguous());
    for (int k = 0; k < g.spatial_dims; ++k) {
      const int axis = g.first_real_axis() + k;
      const int64_t n = g.size[axis], length = tables_[k].size(1);
      const int64_t* table = tables_[k].const_data_ptr<int64_t>();
      for (int64_t c = 0; c < g.channels; ++c) {
        for (int64_t position = 0; position < length; ++position) {
          const int64_t i = position + plan.offset(c, axis), j = table[c * length + position];
          TORCH_CHECK_VALUE(j >= -1 && j < n, "shiftzoo: padding '", name, "' mapped index ", i,
                            " on an axis of length ", n, " to ", j,
                            "; a padding must return an index in [0, ", n, ") or -1 (zero)");
          TORCH_CHECK_VALUE(i < 0 || i >= n || j == i, "shiftzoo: padding '", name, "' mapped index ", i,
                            " inside the axis (length ", n, ") to ", j,
                            "; a padding must leave indices inside the axis unchanged");
        }
      }
    }
  }

  int64_t operator()(int64_t c, int axis, int64_t i) const {
    const int k = axis - g_.first_real_axis();
    if (k < 0) return i;  // an axis the input lacks: length 1, never shifted
    const at::Tensor& table = tables_[k];
    // raw index i = x + offset + t sits at position x + t, inside the table by construction
    return table.const_data_ptr<int64_t>()[c * table.size(1) + i - plan_.offset(c, axis)];
  }

 private:
  const ShiftPlan& plan_;
  const Geometry& g_;
  std::vector<at::Tensor> tables_;
};

// The source of a padding: its policy, or a runtime plugin's tables.
template <class Padding>
PolicySource<Padding> tap_source(const Padding& pad, const ShiftPlan&, const Geometry& g) {
  return {pad, g};
}
inline TableSource tap_source(const TabledPadding& pad, const ShiftPlan& plan, const Geometry& g) {
  return TableSource(pad.tables, plan, g, pad.name);
}

}  // namespace shiftzoo::cpu
