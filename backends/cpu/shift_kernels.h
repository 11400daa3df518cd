// The CPU kernels, independent of where the taps came from (compiled padding policy or runtime
// plugin tables): they read the per-channel tap tables and nothing else.
#pragma once
#include <ATen/core/Tensor.h>

#include "cpu/plane_loop.h"

namespace shiftzoo::cpu {

// output = the shift of input described by `taps` (one entry per channel).
void shift_forward_kernel(const at::Tensor& input, const at::Tensor& output,
                          const ChannelTapsList& taps);

// The forward of one plane (n, c) whose channels are not inner, in the best instruction set
// (shift_forward_kernel's per-plane step; the backward runs it fused with the correlations).
// Instantiated for float, double, c10::Half and c10::BFloat16.
template <typename T>
using PlaneForward = void (*)(const T* in_plane, T* out_plane, const Geometry& gi, const Geometry& go,
                              const ChannelTaps& taps, Scratch& scratch);
template <typename T>
PlaneForward<T> plane_forward_kernel();

// With `input_grad`, grad_input = the adjoint of the forward those taps came from. With
// `correlate_taps`, correlations[(n * C + c) * K + i] = sum over the plane of grad_output times
// the input read by tap combination i (K = taps per channel).
void shift_backward_kernel(const at::Tensor& grad_output, const at::Tensor& input,
                           const at::Tensor& grad_input, const InputGradTaps* input_grad,
                           const ChannelTapsList* correlate_taps, double* correlations);

}  // namespace shiftzoo::cpu
