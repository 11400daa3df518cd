"""A network with Sparse Shift Layers trained in a plain PyTorch loop on scikit-learn's handwritten
digits (bundled with scikit-learn: nothing to download), then taken to its inference form.

    python examples/train_digits.py
"""
import torch
import torch.nn.functional as F
from torch import nn

import shiftzoo
from shiftzoo.cli.training import load_digits  # scikit-learn's digits as (N, 1, 8, 8) tensors, split 80/20

torch.manual_seed(0)
digits = load_digits()


def bottleneck(channels: int, stride: int = 1) -> nn.Sequential:
    """1x1 conv -> BN -> ReLU -> SSL (the depthwise conv's place) -> 1x1 conv -> BN -> ReLU."""
    return nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
                         shiftzoo.SparseShift2d(channels, stride=stride, sparsity=5e-4),
                         nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())


model = nn.Sequential(nn.Conv2d(1, 48, 3, padding=1), bottleneck(48), bottleneck(48, stride=2),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(48, 10))
shifts = [m.weight for m in model.modules() if isinstance(m, shiftzoo.SparseShift2d)]
others = [p for p in model.parameters() if all(p is not s for s in shifts)]
optimizer = torch.optim.AdamW([{"params": others}, {"params": shifts, "weight_decay": 0.0}], lr=3e-3)


def accuracy() -> float:
    model.eval()
    with torch.no_grad():
        return (model(digits.x_test).argmax(1) == digits.y_test).float().mean().item()


for epoch in range(8):
    model.train()
    for batch in torch.randperm(len(digits.y_train)).split(64):
        loss = F.cross_entropy(model(digits.x_train[batch]), digits.y_train[batch]) + shiftzoo.sparsity_loss(model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch + 1}: test accuracy {100 * accuracy():.1f}%")

for name, layer in model.named_modules():
    if isinstance(layer, shiftzoo.SparseShift2d):
        ints = layer.integer_shifts()
        print(f"{name}: {100 * ints.zero_fraction:.0f}% of the shifts are 0, "
              f"{100 * ints.unshifted_fraction:.0f}% of the channels do not move")

reference = model(digits.x_test).detach()
print(shiftzoo.optimize_for_inference(model))  # whole-pixel shifts, the BN and ReLU around them folded in
assert torch.equal(model(digits.x_test), reference)  # the inference form changes no output
print(f"inference form: test accuracy {100 * accuracy():.1f}%")
