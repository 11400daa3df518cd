"""Writing shiftzoo plugins at run time, with no compiler: a padding and an interpolation.

    python examples/custom_plugins.py
"""
import torch

import shiftzoo
from shiftzoo.functional import shift


# A padding maps any raw tap index i (a LongTensor) on an axis of length n to an index in [0, n),
# or to -1 for "reads zero"; indices inside the axis map to themselves. This one replicates the
# edge for one sample, then reads zeros. It saturates beyond the axis: period=0 tells shiftzoo so,
# which lets shifts of any size work.
@shiftzoo.register_padding("edge_then_zeros", period=0)
def edge_then_zeros(i: torch.Tensor, n: int) -> torch.Tensor:
    return torch.where((i >= -1) & (i <= n), i.clamp(0, n - 1), torch.full_like(i, -1))


# An interpolation gives the K tap weights for the fraction f of the sampling position (taps
# floor(p) - 1 ... floor(p) + 2 for K = 4). The weights must sum to 1: Lanczos-2 does not exactly,
# so normalise. Their derivative (for the gradient to the shifts) comes from autograd unless you
# pass dweights=.
def lanczos2(f: torch.Tensor) -> torch.Tensor:
    distances = torch.stack([f + 1, f, f - 1, f - 2], -1)
    w = torch.sinc(distances) * torch.sinc(distances / 2)
    return w / w.sum(-1, keepdim=True)


shiftzoo.register_interp("lanczos2", support=4, weights=lanczos2)

if __name__ == "__main__":
    for info in shiftzoo.list_paddings() + shiftzoo.list_interps():
        print(f"{info.kind:8s} {info.name:16s} {'compiled' if info.compiled else 'runtime'}")

    x = torch.randn(2, 8, 16, 16, requires_grad=True)
    shifts = torch.nn.Parameter(torch.empty(8, 2).uniform_(-2, 2))
    y = shift(x, shifts, padding="edge_then_zeros", interp="lanczos2")
    y.square().mean().backward()
    print("output", tuple(y.shape), "| shift gradient norm", shifts.grad.norm().item())

    # Works under torch.compile too (the plugin functions are traced).
    compiled = torch.compile(lambda t: shift(t, shifts, "edge_then_zeros", "lanczos2"), fullgraph=True)
    same = torch.allclose(compiled(x), y)
    print("compiled == eager:", same)
    assert same, "the compiled shift differs from the eager one"
