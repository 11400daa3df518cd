// The CPU kernels' launch: which kernel path a call takes (by layout and tap count) and how its
// work is split over threads. Independent of where the taps came from: they read the tap tables.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>

#include "backends/core/channel_affine.h"
#include "backends/cpu/tap_tables.h"

namespace shiftzoo::cpu {

// output = the shift of input described by `taps` (forward.cpp).
void forward(const at::Tensor& input, const at::Tensor& output, const TapTables& taps);

// output = post(the single-tap shift of pre(input) described by `taps`) (forward.cpp; the
// maps of core/channel_affine.h), a tap that reads nothing reading fill[c] (none: zero); any
// floating, integer or bool input.
void forward_affine(const at::Tensor& input, const at::Tensor& output, const TapTables& taps, const AffineSpec& pre,
                    const AffineSpec& post, const std::optional<at::Tensor>& fill);

// Both gradients in one pass (backward.cpp). With `input_grad`, grad_input = the adjoint of the
// forward those tables came from. With `correlate`, returns per channel the tap correlations
// summed over the batch in a fixed order, a (C, taps per channel) double tensor: the sum over
// the plane of grad_output times the input read by each tap combination.
at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& grad_input,
                    const AdjointTables* input_grad, const TapTables* correlate);

}  // namespace shiftzoo::cpu
