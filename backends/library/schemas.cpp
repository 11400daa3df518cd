// The schemas of every shiftzoo operator, in one place. Kernels register per backend
// (backends/cpu/register.cpp, backends/cuda), the compiled ops' autograd in autograd.cpp beside
// this; fake kernels (and the runtime-plugin ops' autograd) are registered from Python
// (shiftzoo/_ops.py), so torch.compile and torch.export see one node per call. The test-only
// library shiftzoo_gpu_emulation (backends/cuda/host_emulation.cpp) declares the same schemas.
#include "backends/library/schemas.h"

namespace shiftzoo {

void define_schemas(torch::Library& m) {
  // out[n, c, y] = sum over taps of input[n, c, pad(p - shifts[c])] (docs/semantics.md), with the
  // compiled plugins `padding` and `interp`, at the positions p = crop_begin + stride * y of
  // [crop_begin, n - crop_end) along each spatial axis (one entry per axis; stride 1 and no crop
  // keep every position). grad_interp only matters to autograd: its derivative gives the gradient
  // to the shifts.
  m.def(
      "shift(Tensor input, Tensor shifts, str padding, str interp, str grad_interp, int[] stride, "
      "int[] crop_begin, int[] crop_end) -> Tensor");
  // Both gradients of `shift` in one pass. A gradient that is not asked for comes back as an
  // empty tensor and costs nothing; `input` is needed only for the shift gradient, `input_size`
  // gives the input gradient's shape.
  m.def(
      "shift_backward(Tensor grad_output, Tensor? input, Tensor shifts, str padding, str interp, "
      "str grad_interp, int[] stride, int[] crop_begin, int[] crop_end, SymInt[] input_size, bool input_grad, "
      "bool shifts_grad) -> (Tensor, Tensor)");
  // The inference form of a whole-pixel shift with the per-channel maps around it folded in:
  // out = post(shift(pre(input))) with interp nearest, where pre and post are v -> clamp(fma(v,
  // scale[c], bias[c]), min, max) (scale and bias (C,) both given or both None: no affine map; an
  // infinite bound: no clamp), and a tap that reads nothing (the zeros padding outside the axis)
  // reads fill[c] (fill: (C,) of the input's dtype; None: 0) after pre. Integer and bool input
  // moves as it is (no maps): whole-pixel shifts of int8 ... int64 data and of quantized tensors'
  // integers (fill: the zero point). No gradient.
  m.def(
      "shift_affine(Tensor input, Tensor shifts, str padding, int[] stride, int[] crop_begin, int[] crop_end, "
      "Tensor? pre_scale, Tensor? pre_bias, float pre_min, float pre_max, Tensor? post_scale, Tensor? post_bias, "
      "float post_min, float post_max, Tensor? fill=None) -> Tensor");
  // The same shift for runtime plugins, planned in Python: per channel and spatial axis k, tap t
  // of output y reads tables[k][c][stride * y + t] (an index, or -1 for zero) with weight
  // weights[c][k][t]; tap 0 sits at raw index stride * y + offsets[c][k] (the crop included).
  // The value uses (offsets, tables, weights); autograd differentiates with respect to
  // grad_weights, whose plan (grad_*) may differ (straight-through estimators). `padding` names
  // the plugin in error messages.
  m.def(
      "shift_tabled(Tensor input, Tensor offsets, Tensor[] tables, Tensor weights, "
      "Tensor grad_offsets, Tensor[] grad_tables, Tensor grad_weights, str padding, int[] stride, "
      "int[] crop_begin, int[] crop_end) -> Tensor");
  m.def(
      "shift_tabled_backward(Tensor grad_output, Tensor? input, Tensor offsets, Tensor[] tables, "
      "Tensor weights, Tensor grad_offsets, Tensor[] grad_tables, Tensor grad_weights, str padding, "
      "int[] stride, int[] crop_begin, int[] crop_end, SymInt[] input_size, bool input_grad, "
      "bool weights_grad) -> (Tensor, Tensor)");
}

}  // namespace shiftzoo

TORCH_LIBRARY(shiftzoo, m) { shiftzoo::define_schemas(m); }
