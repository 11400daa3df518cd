"""A trained network with depthwise convolutions converted to shift layers, then fine-tuned: the
usual way to put shifts into an existing model (torchvision's MobileNetV2 converts the same way).

    python examples/convert_and_finetune.py
"""
import torch
import torch.nn.functional as F
from torch import nn

import shiftzoo
from shiftzoo.cli.training import load_digits  # scikit-learn's digits as (N, 1, 8, 8) tensors, split 80/20

torch.manual_seed(0)
digits = load_digits()


def inverted_residual(channels: int, stride: int = 1) -> nn.Sequential:
    """MobileNetV2's block without its residual: expand, depthwise 3x3, project."""
    wide = 3 * channels
    return nn.Sequential(nn.Conv2d(channels, wide, 1, bias=False), nn.BatchNorm2d(wide), nn.ReLU6(),
                         nn.Conv2d(wide, wide, 3, stride=stride, padding=1, groups=wide, bias=False),
                         nn.BatchNorm2d(wide), nn.ReLU6(), nn.Conv2d(wide, channels, 1, bias=False),
                         nn.BatchNorm2d(channels))


model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), inverted_residual(32), inverted_residual(32, stride=2),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def fit(epochs: int, lr: float) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(digits.y_train)).split(64):
            loss = F.cross_entropy(model(digits.x_train[batch]), digits.y_train[batch]) + shiftzoo.sparsity_loss(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def accuracy() -> float:
    model.eval()
    with torch.no_grad():
        return (model(digits.x_test).argmax(1) == digits.y_test).float().mean().item()


fit(epochs=5, lr=3e-3)  # stands for the pretrained network you start from
print(f"depthwise network: test accuracy {100 * accuracy():.1f}%")

report = shiftzoo.replace_depthwise(model, layer="sparse", sparsity=1e-4)  # the stride-2 one samples as the conv did
print(report)
print(f"right after conversion: test accuracy {100 * accuracy():.1f}% (the shifts start untrained)")

fit(epochs=4, lr=1e-3)
print(f"after fine-tuning: test accuracy {100 * accuracy():.1f}%")

print(shiftzoo.optimize_for_inference(model))
print(f"inference form: test accuracy {100 * accuracy():.1f}%")
