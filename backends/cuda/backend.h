// The GPU backend of the operator drivers (core/ops.h): plans built on the device by a kernel
// (no shift is read on the host, so no call synchronises), the kernels of kernels.h and their
// launch shapes. Templated on the launcher: CudaGrid (launch_cuda.cuh, register.cu) runs them on
// the GPU, HostGrid (launch_host.h, host_emulation.cpp) runs the same grid on the host for tests.
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <initializer_list>
#include <limits>
#include <optional>
#include <vector>

#include "backends/core/channel_affine.h"
#include "backends/core/contraction.h"
#include "backends/core/element_types.h"
#include "backends/core/geometry.h"
#include "backends/core/plugin_dispatch.h"
#include "backends/core/sampling.h"
#include "backends/core/shift_plan.h"
#include "backends/cuda/grid.h"
#include "backends/cuda/kernels.h"

namespace shiftzoo::gpu {

// Kernels index with int32 where every tensor of a call spans fewer elements than this, with
// int64 otherwise. (Tests lower it to run the int64 kernels on small tensors.)
inline int64_t& index32_limit() {
  static int64_t limit = std::numeric_limits<int32_t>::max();
  return limit;
}

// Whether every element, and the farthest one from the start, of each tensor is within the int32 limit.
inline bool fits_index32(std::initializer_list<const at::Tensor*> tensors) {
  for (const at::Tensor* t : tensors) {
    int64_t extent = 0;
    for (int64_t d = 0; d < t->dim(); ++d) extent += std::max<int64_t>(t->size(d) - 1, 0) * std::abs(t->stride(d));
    if (t->numel() >= index32_limit() || extent >= index32_limit()) return false;
  }
  return true;
}

// Calls fn(T{}, Index{}) with `tensor`'s floating element type T (with IntegerData, also integer
// and bool data as the unsigned integer of its width: core/element_types.h) and the index type a
// call needs.
template <bool IntegerData = false, class Fn>
void with_types(const at::Tensor& tensor, bool index32, Fn&& fn) {
  auto with_index = [&](auto value) {
    if (index32) return fn(value, int32_t{});
    fn(value, int64_t{});
  };
  if constexpr (IntegerData) {
    with_data_type(tensor.scalar_type(), with_index);
  } else {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, tensor.scalar_type(), "shiftzoo",
                                    [&] { with_index(scalar_t{}); });
  }
}

template <typename Index>
Dims5<Index> dims_of(const Geometry& g) {
  const int64_t size[5] = {g.batch, g.channels, g.size[0], g.size[1], g.size[2]};
  const int64_t stride[5] = {g.stride_n, g.stride_c, g.stride[0], g.stride[1], g.stride[2]};
  Dims5<Index> d;
  for (int i = 0; i < 5; ++i) {
    d.size[i] = static_cast<Index>(size[i]);
    d.stride[i] = static_cast<Index>(stride[i]);
  }
  return d;
}

// g's axes innermost first (smallest stride; length-1 axes last, W before H before D on ties).
template <typename Index>
MemoryOrder<Index> memory_order_of(const Geometry& g) {
  const Dims5<int64_t> d = dims_of<int64_t>(g);
  MemoryOrder<Index> order;
  int dims[5] = {4, 3, 2, 1, 0};
  std::stable_sort(dims, dims + 5, [&](int a, int b) {
    const bool a_one = d.size[a] == 1, b_one = d.size[b] == 1;
    if (a_one != b_one) return b_one;
    return std::abs(d.stride[a]) < std::abs(d.stride[b]);
  });
  for (int i = 0; i < 5; ++i) {
    order.dims[i] = dims[i];
    order.size[i] = Divider<Index>(static_cast<Index>(d.size[dims[i]]));
  }
  return order;
}

// A plan in the memory of the kernels' device (kernels.h: PlanView); copies share the tensors.
struct GpuPlan {
  at::Tensor offsets, taps;
  PlanView view{};
};

// Where taps read for a compiled padding (its policy) or a runtime plugin (its tables, kept
// contiguous in `keep` for the call).
template <class Padding>
PolicyReads<Padding> reads_of(const Padding& pad, const Geometry& g, std::vector<at::Tensor>&) {
  return {pad, {g.size[0], g.size[1], g.size[2]}};
}

inline TableReads reads_of(const TabledPadding& pad, const Geometry& g, std::vector<at::Tensor>& keep) {
  TableReads reads{};
  for (int axis = 0; axis < kAxes; ++axis) reads.n[axis] = g.size[axis];
  for (int k = 0; k < g.spatial_dims; ++k) {
    const int axis = g.first_real_axis() + k;
    keep.push_back(pad.tables[k].contiguous());
    reads.table[axis] = keep.back().const_data_ptr<int64_t>();
    reads.length[axis] = keep.back().size(1);
  }
  return reads;
}

template <class Launcher>
struct GpuBackend {
  using Plan = GpuPlan;

  template <class Interp>
  static Plan plan(const at::Tensor& shifts, const Geometry& g, const Sampling& sampling,
                   const std::array<int64_t, kAxes>& periods) {
    Plan plan = empty_plan(shifts, g, sampling, Interp::support);
    const at::Tensor values = shifts.to(at::kDouble).contiguous();  // (on the device: no sync)
    const std::array<int64_t, kAxes> reach = saturation_reaches(g, sampling, Interp::support);
    PlanKernel<Interp> kernel{};
    static_cast<PlanOutput&>(kernel) = output_of(plan, g);
    kernel.shifts = values.const_data_ptr<double>();
    for (int axis = 0; axis < kAxes; ++axis) {
      kernel.origin[axis] = sampling.crop_begin[axis];
      kernel.period[axis] = periods[axis];
      kernel.reach[axis] = reach[axis];
    }
    Launcher::launch(shifts, grid_for(g.channels * kAxes, kThreads), kernel);
    return plan;
  }

  static Plan tabled_plan(const at::Tensor& offsets, const at::Tensor& weights, const Geometry& g,
                          const Sampling& sampling) {
    const int K = static_cast<int>(weights.size(2));
    Plan plan = empty_plan(weights, g, sampling, K);
    const at::Tensor offs = offsets.contiguous(), w = weights.to(at::kDouble).contiguous();
    TabledPlanKernel kernel{};
    static_cast<PlanOutput&>(kernel) = output_of(plan, g);
    kernel.offsets_in = offs.const_data_ptr<int64_t>();
    kernel.weights = w.const_data_ptr<double>();
    Launcher::launch(offsets, grid_for(g.channels * kAxes, kThreads), kernel);
    return plan;
  }

  template <class Padding>
  static void forward(const at::Tensor& input, const at::Tensor& output, const Plan& plan, const Padding& pad) {
    run_forward</*IntegerData=*/false>(input, output, plan, pad, nullptr, nullptr, std::nullopt);
  }

  // The inference form plans like the training op (on the device, every call: no host copy of
  // the frozen shifts to compare them with a cache).
  using InferencePlan = Plan;
  template <class Padding>
  static Plan inference_plan(const at::Tensor& shifts, const Geometry& in_geom, const Geometry&,
                             const Sampling& sampling, const std::array<int64_t, kAxes>& periods, const Padding&) {
    return plan<interp::nearest>(shifts, in_geom, sampling, periods);
  }

  template <class Padding>
  static void forward_affine(const at::Tensor& input, const at::Tensor& output, const Plan& plan,
                             const AffineSpec& pre, const AffineSpec& post, const std::optional<at::Tensor>& fill,
                             const Padding& pad) {
    run_forward</*IntegerData=*/true>(input, output, plan, pad, &pre, &post, fill);
  }

  // The input gradient (a gather through the adjoint lists) if `value_plan`, and the parameter
  // gradient's per-block sums if `grad_plan`: a (C, parts, 3 * slots) double tensor for contract.
  template <class Padding>
  static at::Tensor backward(const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& grad_in,
                             const Plan* value_plan, const Padding& value_pad, const Plan* grad_plan,
                             const Padding& grad_pad) {
    if (value_plan) input_gradient(grad_out, grad_in, *value_plan, value_pad);
    if (!grad_plan) return at::Tensor();
    return correlations(grad_out, input, *grad_plan, grad_pad);
  }

  static at::Tensor contract(const Plan& plan, const Geometry& g, const at::Tensor& partials, Derivative of) {
    const bool of_weights = of == Derivative::weights;
    at::Tensor out = of_weights ? at::empty({g.channels, g.spatial_dims, plan.view.slots}, partials.options())
                                : at::empty({g.channels, g.spatial_dims}, partials.options());
    ContractKernel kernel{};
    kernel.partials = partials.const_data_ptr<double>();
    kernel.channels = g.channels;
    kernel.parts = partials.size(1);
    kernel.plan = plan.view;
    kernel.spatial_dims = g.spatial_dims;
    kernel.of_weights = of_weights;
    kernel.out = out.mutable_data_ptr<double>();
    Launcher::launch(partials, grid_for(g.channels, kReduceThreads), kernel);
    return out;
  }

 private:
  // An uninitialised plan for g's channels, `support` taps on each axis the input has.
  static Plan empty_plan(const at::Tensor& like, const Geometry& g, const Sampling& sampling, int support) {
    Plan plan;
    plan.offsets = at::empty({g.channels, kAxes}, like.options().dtype(at::kLong));
    plan.taps = at::empty({g.channels, kAxes, 2, support}, like.options().dtype(at::kDouble));
    PlanView& v = plan.view;
    for (int axis = 0; axis < kAxes; ++axis) {
      v.support[axis] = axis < g.first_real_axis() ? 1 : support;
      v.step[axis] = sampling.stride[axis];
    }
    v.slots = support;
    v.offsets = plan.offsets.const_data_ptr<int64_t>();
    v.taps = plan.taps.const_data_ptr<double>();
    return plan;
  }

  // Where a plan kernel writes `plan` (made by empty_plan for g).
  static PlanOutput output_of(Plan& plan, const Geometry& g) {
    return {g.channels, g.spatial_dims, plan.view.slots, plan.offsets.mutable_data_ptr<int64_t>(),
            plan.taps.mutable_data_ptr<double>()};
  }

  // One of shift_affine's maps in the kernels' precision A (arrays kept in `keep`).
  template <typename A>
  static AffineArgs<A> affine_args(const AffineSpec* spec, at::ScalarType a_type, std::vector<at::Tensor>& keep) {
    AffineArgs<A> args;
    args.lo = spec ? static_cast<A>(spec->lo) : -std::numeric_limits<A>::infinity();
    args.hi = spec ? static_cast<A>(spec->hi) : std::numeric_limits<A>::infinity();
    if (spec && spec->scale) {
      keep.push_back(spec->scale->to(a_type).contiguous());
      args.scale = keep.back().const_data_ptr<A>();
      keep.push_back(spec->bias->to(a_type).contiguous());
      args.bias = keep.back().const_data_ptr<A>();
    }
    return args;
  }

  // (pointers cast: integer data runs as unsigned integers of its width)
  template <bool IntegerData, class Padding>
  static void run_forward(const at::Tensor& input, const at::Tensor& output, const Plan& plan, const Padding& pad,
                          const AffineSpec* pre, const AffineSpec* post, const std::optional<at::Tensor>& fill) {
    const Geometry in_geom(input), out_geom(output);
    std::vector<at::Tensor> keep;
    auto reads = reads_of(pad, in_geom, keep);  // (not const: decltype names the kernel's member)
    with_types<IntegerData>(input, fits_index32({&input, &output}), [&](auto value, auto index) {
      using scalar_t = decltype(value);
      using A = at::opmath_type<scalar_t>;
      using Index = decltype(index);
      ForwardKernel<scalar_t, A, decltype(reads), Index> kernel{};
      kernel.in = static_cast<const scalar_t*>(input.const_data_ptr());
      kernel.out = static_cast<scalar_t*>(output.mutable_data_ptr());
      kernel.fill = fill ? static_cast<const scalar_t*>(fill->const_data_ptr()) : nullptr;
      kernel.in_dims = dims_of<Index>(in_geom);
      kernel.out_dims = dims_of<Index>(out_geom);
      kernel.order = memory_order_of<Index>(out_geom);
      kernel.total = static_cast<Index>(output.numel());
      kernel.plan = plan.view;
      kernel.reads = reads;
      if constexpr (kMapsValues<A>) {  // (integer data has none)
        const at::ScalarType a_type = c10::CppTypeToScalarType<A>::value;
        kernel.pre = affine_args<A>(pre, a_type, keep);
        kernel.post = affine_args<A>(post, a_type, keep);
      }
      Launcher::launch(input, grid_for(output.numel(), kThreads), kernel);
    });
  }

  template <class Padding>
  static void input_gradient(const at::Tensor& grad_out, const at::Tensor& grad_in, const Plan& plan,
                             const Padding& pad) {
    const Geometry grad_geom(grad_out), in_geom(grad_in);
    // Taps outside the axis read zero: only in-range taps read an input, found by arithmetic.
    // Otherwise the adjoint lists (kept alive in `buffer` for the call).
    const bool use_lists = !outside_is_zero<Padding>::value;
    AdjointLists lists{};
    at::Tensor buffer;
    if (use_lists) buffer = adjoint_lists(grad_out, in_geom, grad_geom, plan, pad, lists);
    with_types(grad_out, fits_index32({&grad_out, &grad_in}), [&](auto value, auto index) {
      using scalar_t = decltype(value);
      using A = at::opmath_type<scalar_t>;
      using Index = decltype(index);
      InputGradientKernel<scalar_t, A, Index> kernel{};
      kernel.grad_out = grad_out.const_data_ptr<scalar_t>();
      kernel.grad_in = grad_in.mutable_data_ptr<scalar_t>();
      kernel.grad_dims = dims_of<Index>(grad_geom);
      kernel.in_dims = dims_of<Index>(in_geom);
      kernel.order = memory_order_of<Index>(in_geom);
      kernel.total = static_cast<Index>(grad_in.numel());
      kernel.plan = plan.view;
      kernel.use_lists = use_lists;
      kernel.lists = lists;
      Launcher::launch(grad_out, grid_for(grad_in.numel(), kThreads), kernel);
    });
  }

  // The adjoint lists of every axis (kernels.h: AdjointListKernel), built into one int64 buffer,
  // which is returned; `lists` says where each list lies in it.
  template <class Padding>
  static at::Tensor adjoint_lists(const at::Tensor& like, const Geometry& in_geom, const Geometry& grad_geom,
                                  const Plan& plan, const Padding& pad, AdjointLists& lists) {
    const int64_t C = in_geom.channels;
    for (int axis = 0; axis < kAxes; ++axis) {
      lists.in_len[axis] = in_geom.size[axis];
      lists.out_len[axis] = grad_geom.size[axis];
      lists.support[axis] = plan.view.support[axis];
    }
    at::Tensor buffer = at::empty({lists.size(C)}, like.options().dtype(at::kLong));
    lists.place(buffer.mutable_data_ptr<int64_t>(), C);
    std::vector<at::Tensor> keep;
    auto reads = reads_of(pad, in_geom, keep);  // (not const: decltype names the kernel's member)
    AdjointListKernel<decltype(reads)> build{};
    build.plan = plan.view;
    build.reads = reads;
    build.channels = C;
    build.lists = lists;
    // (one serial thread per channel and axis: small blocks spread them over the device)
    Launcher::launch(like, grid_for(C * kAxes, 32), build);
    return buffer;
  }

  // Blocks per channel for the parameter gradient: a fixed function of the shape (never of the
  // device), so that the partition, and with it every sum, is the same on any GPU. About four
  // elements per thread, at most some 4096 blocks in all.
  static int64_t parts_per_channel(int64_t channels, int64_t per_channel) {
    const int64_t wanted = (per_channel + 4 * kReduceThreads - 1) / (4 * kReduceThreads);
    return std::clamp<int64_t>(wanted, 1, std::max<int64_t>(1, 4096 / std::max<int64_t>(channels, 1)));
  }

  template <class Padding>
  static at::Tensor correlations(const at::Tensor& grad_out, const at::Tensor& input, const Plan& plan,
                                 const Padding& pad) {
    const Geometry grad_geom(grad_out), in_geom(input);
    const int64_t C = in_geom.channels;
    const int64_t per_channel = grad_geom.batch * grad_geom.plane_numel();
    const int64_t parts = parts_per_channel(C, per_channel);
    const int width = kAxes * plan.view.slots;
    at::Tensor partials = at::empty({C, parts, width}, grad_out.options().dtype(at::kDouble));
    std::vector<at::Tensor> keep;
    auto reads = reads_of(pad, in_geom, keep);  // (not const: decltype names the kernel's member)
    with_types(grad_out, fits_index32({&grad_out, &input}), [&](auto value, auto index) {
      using scalar_t = decltype(value);
      using A = at::opmath_type<scalar_t>;
      using Index = decltype(index);
      CorrelationKernel<scalar_t, A, decltype(reads), Index> kernel{};
      kernel.grad_out = grad_out.const_data_ptr<scalar_t>();
      kernel.in = input.const_data_ptr<scalar_t>();
      kernel.grad_dims = dims_of<Index>(grad_geom);
      kernel.in_dims = dims_of<Index>(in_geom);
      kernel.plan = plan.view;
      kernel.reads = reads;
      kernel.channels = C;
      kernel.parts = parts;
      for (int axis = 0; axis < kAxes; ++axis) kernel.out_len[axis] = Divider<Index>(static_cast<Index>(grad_geom.size[axis]));
      kernel.per_channel = static_cast<Index>(per_channel);
      kernel.partials = partials.mutable_data_ptr<double>();
      Launcher::launch(grad_out, Grid{C * parts, kReduceThreads, width}, kernel);
    });
    return partials;
  }
};

}  // namespace shiftzoo::gpu
