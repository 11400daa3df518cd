// The CPU backend of the operator drivers (core/ops.h): plans in host memory, built there; tap
// tables from them (tap_tables.h); the kernels' launch (launch.h).
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <memory>
#include <optional>

#include "backends/core/contraction.h"
#include "backends/core/host_plan.h"
#include "backends/core/plugin_dispatch.h"
#include "backends/cpu/frozen_tables.h"
#include "backends/cpu/launch.h"
#include "backends/cpu/tap_sources.h"
#include "backends/cpu/tap_tables.h"

namespace shiftzoo::cpu {

struct CpuBackend {
  using Plan = ShiftPlan;

  template <class Interp>
  static ShiftPlan plan(const at::Tensor& shifts, const Geometry& g, const Sampling& sampling,
                        const std::array<int64_t, kAxes>& periods) {
    return host_plan<Interp>(shifts, g, sampling, periods);
  }

  static ShiftPlan tabled_plan(const at::Tensor& offsets, const at::Tensor& weights, const Geometry& g,
                               const Sampling& sampling) {
    return host_tabled_plan(offsets, weights, g, sampling);
  }

  template <class Padding>
  static void forward(const at::Tensor& input, const at::Tensor& output, const ShiftPlan& plan, const Padding& pad) {
    const Geometry in_geom(input), out_geom(output);
    cpu::forward(input, output, TapTables(plan, in_geom, out_geom, tap_source(pad, plan, in_geom)));
  }

  // The inference form's tables, kept between calls (frozen_tables.h).
  using InferencePlan = std::shared_ptr<const TapTables>;
  template <class Padding>
  static InferencePlan inference_plan(const at::Tensor& shifts, const Geometry& in_geom, const Geometry& out_geom,
                                      const Sampling& sampling, const std::array<int64_t, kAxes>& periods,
                                      const Padding& pad) {
    return frozen_tables(shifts, in_geom, out_geom, sampling, periods, pad);
  }

  template <class Padding>  // (the tables hold the padding)
  static void forward_affine(const at::Tensor& input, const at::Tensor& output, const InferencePlan& tables,
                             const AffineSpec& pre, const AffineSpec& post, const std::optional<at::Tensor>& fill,
                             const Padding&) {
    cpu::forward_affine(input, output, *tables, pre, post, fill);
  }

  // `input` has the input's geometry (the input itself, or where only the input gradient is
  // asked for, grad_in); grad_out the output's.
  template <class Padding>
  static at::Tensor backward(const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& grad_in,
                             const ShiftPlan* value_plan, const Padding& value_pad, const ShiftPlan* grad_plan,
                             const Padding& grad_pad) {
    const Geometry in_geom(input), out_geom(grad_out);
    std::optional<AdjointTables> adjoint;
    std::optional<TapTables> correlate;
    if (value_plan) adjoint.emplace(*value_plan, in_geom, out_geom, value_pad);
    if (grad_plan) correlate.emplace(*grad_plan, in_geom, out_geom, tap_source(grad_pad, *grad_plan, in_geom));
    return cpu::backward(grad_out, input, grad_in, adjoint ? &*adjoint : nullptr, correlate ? &*correlate : nullptr);
  }

  static at::Tensor contract(const ShiftPlan& plan, const Geometry& g, const at::Tensor& correlations, Derivative of) {
    return contract_on_host(plan, g, correlations.const_data_ptr<double>(), of);
  }
};

}  // namespace shiftzoo::cpu
