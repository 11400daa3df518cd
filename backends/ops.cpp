// The schemas of every shiftzoo operator, in one place. Kernels register per backend
// (backends/cpu, backends/cuda); fake kernels and autograd are registered from Python
// (shiftzoo/_ops.py) so torch.compile and torch.export see one node per call.
#include <torch/library.h>

TORCH_LIBRARY(shiftzoo, m) {
  // out[n, c, x] = sum over taps of input[n, c, pad(x - shifts[c])] (DESIGN.md §2).
  // grad_interp only matters to autograd: its derivative gives the gradient to the shifts.
  m.def("shift(Tensor input, Tensor shifts, str padding, str interp, str grad_interp) -> Tensor");
  // Both gradients of `shift` in one pass. A gradient that is not asked for comes back as an
  // empty tensor and costs nothing; `input` is needed only for the shift gradient.
  m.def(
      "shift_backward(Tensor grad_output, Tensor? input, Tensor shifts, str padding, str interp, "
      "str grad_interp, bool input_grad, bool shifts_grad) -> (Tensor, Tensor)");
}
