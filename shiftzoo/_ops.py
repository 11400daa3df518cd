"""Fake kernels for the compiled ops, and fake kernels and autograd for the runtime-plugin ops,
registered from Python (as torchvision does) so that torch.compile and torch.export see
``shiftzoo::shift`` as one node.

Imported by the package only when the extension is loaded.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor
from torch._prims_common import suggest_memory_format

from ._sampling import output_length
from ._validation import check_shift_args


def _is_unit(stride: List[int], crop_begin: List[int], crop_end: List[int]) -> bool:
    return all(s == 1 for s in stride) and not any(crop_begin) and not any(crop_end)


def _sampled(input: Tensor, size, stride: List[int], crop_begin: List[int], crop_end: List[int]) -> Tensor:
    """A new tensor as the op makes it: ``input``'s very strides where every position is kept
    (``size`` is then its size); otherwise a tensor of ``size`` in ``input``'s memory format where it
    has one (channels_last, channels_last_3d), else dense with its axes in memory in ``input``'s
    order, outermost first, ties in axis order (channels-inner stays so in every rank)."""
    if _is_unit(stride, crop_begin, crop_end):
        return torch.empty_like(input)
    memory_format = suggest_memory_format(input)
    if memory_format != torch.contiguous_format:
        return torch.empty(tuple(size), dtype=input.dtype, device=input.device, memory_format=memory_format)
    order = sorted(range(input.dim()), key=lambda i: -input.stride(i))  # stable: ties keep axis order
    dense = torch.empty([size[i] for i in order], dtype=input.dtype, device=input.device)
    return dense.permute([order.index(i) for i in range(input.dim())])


def _output_size(input: Tensor, stride: List[int], crop_begin: List[int], crop_end: List[int]):
    return tuple(input.shape[:2]) + tuple(output_length(n, s, b, e) for n, s, b, e in
                                          zip(input.shape[2:], stride, crop_begin, crop_end))


@torch.library.register_fake("shiftzoo::shift")
def _shift_fake(input: Tensor, shifts: Tensor, padding: str, interp: str, grad_interp: str, stride: List[int],
                crop_begin: List[int], crop_end: List[int]) -> Tensor:
    check_shift_args(input, shifts)
    return _sampled(input, _output_size(input, stride, crop_begin, crop_end), stride, crop_begin, crop_end)


@torch.library.register_fake("shiftzoo::shift_backward")
def _shift_backward_fake(grad_output: Tensor, input: Optional[Tensor], shifts: Tensor, padding: str,
                         interp: str, grad_interp: str, stride: List[int], crop_begin: List[int],
                         crop_end: List[int], input_size, input_grad: bool, shifts_grad: bool
                         ) -> Tuple[Tensor, Tensor]:
    like = input if input is not None else grad_output
    grad_input = (_sampled(like, input_size, stride, crop_begin, crop_end) if input_grad
                  else grad_output.new_empty(0))
    grad_shifts = torch.empty_like(shifts) if shifts_grad else shifts.new_empty(0)
    return grad_input, grad_shifts


@torch.library.register_fake("shiftzoo::shift_affine")
def _shift_affine_fake(input: Tensor, shifts: Tensor, padding: str, stride: List[int], crop_begin: List[int],
                       crop_end: List[int], pre_scale, pre_bias, pre_min, pre_max, post_scale, post_bias, post_min,
                       post_max, fill=None) -> Tensor:
    check_shift_args(input, shifts, integer_data=True)
    return _sampled(input, _output_size(input, stride, crop_begin, crop_end), stride, crop_begin, crop_end)


def _inference_only(ctx, *grads):
    raise RuntimeError("shiftzoo.shift_affine is the inference form of a shift layer (optimize_for_inference) "
                       "and has no gradient: train the model before optimizing it")


torch.library.register_autograd("shiftzoo::shift_affine", _inference_only,
                                setup_context=lambda ctx, inputs, output: None)


# The compiled ops' autograd is registered in C++ (backends/library/autograd.cpp): the engine then
# calls shift_backward without a Python frame per call.


def _no_double_backward(ctx, *grads):
    raise RuntimeError(
        "shiftzoo.shift: double backward (differentiating the gradient again, e.g. "
        "create_graph=True followed by another backward) is not supported")


# ---- runtime plugins (shiftzoo/_tabled.py plans them) ----------------------------------------

@torch.library.register_fake("shiftzoo::shift_tabled")
def _shift_tabled_fake(input, offsets, tables, weights, grad_offsets, grad_tables, grad_weights, padding, stride,
                       crop_begin, crop_end):
    return _sampled(input, _output_size(input, stride, crop_begin, crop_end), stride, crop_begin, crop_end)


@torch.library.register_fake("shiftzoo::shift_tabled_backward")
def _shift_tabled_backward_fake(grad_output, input, offsets, tables, weights, grad_offsets, grad_tables,
                                grad_weights, padding, stride, crop_begin, crop_end, input_size, input_grad,
                                weights_grad):
    like = input if input is not None else grad_output
    grad_input = (_sampled(like, input_size, stride, crop_begin, crop_end) if input_grad
                  else grad_output.new_empty(0))
    grad_w = torch.empty_like(grad_weights) if weights_grad else grad_weights.new_empty(0)
    return grad_input, grad_w


def _setup_tabled_context(ctx, inputs, output) -> None:
    (input, offsets, tables, weights, grad_offsets, grad_tables, grad_weights, ctx.padding, ctx.stride,
     ctx.crop_begin, ctx.crop_end) = inputs
    ctx.save_for_backward(input if grad_weights.requires_grad else None, offsets, weights, grad_offsets,
                          grad_weights, *tables, *grad_tables)
    ctx.dims = len(tables)
    ctx.input_size = tuple(input.shape)


def _shift_tabled_backward(ctx, grad_output: Tensor):
    input, offsets, weights, grad_offsets, grad_weights, *rest = ctx.saved_tensors
    tables, grad_tables = rest[:ctx.dims], rest[ctx.dims:]
    input_grad, weights_grad = ctx.needs_input_grad[0], ctx.needs_input_grad[6]
    grad_input, grad_w = torch.ops.shiftzoo.shift_tabled_backward(
        grad_output, input, offsets, tables, weights, grad_offsets, grad_tables, grad_weights, ctx.padding,
        ctx.stride, ctx.crop_begin, ctx.crop_end, ctx.input_size, input_grad, weights_grad)
    no_tables = [None] * ctx.dims  # the gradient's structure mirrors the inputs' (lists for Tensor[])
    return (grad_input if input_grad else None, None, no_tables, None, None, no_tables,
            grad_w if weights_grad else None, None, None, None, None)


torch.library.register_autograd("shiftzoo::shift_tabled", _shift_tabled_backward,
                                setup_context=_setup_tabled_context)
torch.library.register_autograd("shiftzoo::shift_tabled_backward", _no_double_backward)
