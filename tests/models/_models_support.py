"""Tiny configurations of every registered model, small enough for a CPU test in milliseconds."""
from __future__ import annotations

import torch

from spikelab import models

# kwargs for models.build at smoke size; inputs are 8x8 with 2 channels
SMOKE = {
    "mlp": dict(hidden=(12, 8)),
    "conv-small": dict(channels=(4, 6)),
    "resnet19": dict(widths=(4, 8, 8), stages=(1, 1, 1), head_hidden=8),
    "resnet19-tet": dict(widths=(4, 8, 8), stages=(1, 1, 1), head_hidden=8, stem_width=3),
    "vggsnn": dict(cfg=(4, 4, "A", 8, "A"), input_size=(8, 8)),
    "spiking-resnet18": dict(widths=(4, 4, 8, 8), stages=(1, 1, 1, 1), stem="cifar"),
    "spiking-resnet34": dict(widths=(4, 4, 8, 8), stages=(1, 2, 1, 1)),
    "sew-resnet18": dict(widths=(4, 4, 8, 8), stages=(1, 1, 1, 1), stem="cifar"),
    "sew-resnet34": dict(widths=(4, 4, 8, 8), stages=(1, 2, 1, 1)),
    "dsnn-resnet18": dict(widths=(4, 4, 8, 8), stages=(1, 1, 1, 1), stem="cifar"),
    "dsnn-resnet34": dict(widths=(4, 4, 8, 8), stages=(1, 2, 1, 1)),
    "dsnn-small": dict(widths=(4, 6, 8)),
}
C_IN, SIZE, CLASSES = 2, 8, 5


def smoke(name: str, T: int = 3, **overrides) -> models.SpikingModel:
    """The smoke-size model ``name`` for 2x8x8 inputs and 5 classes."""
    kw = {**SMOKE[name], **overrides}
    return models.build(name, num_classes=CLASSES, in_channels=C_IN, T=T, **kw)


def first_weight(model: torch.nn.Module) -> torch.Tensor:
    """The weight of the first conv/linear layer (inside ``model.stem``)."""
    layer = model.stem.conv if hasattr(model.stem, "conv") else model.stem.fc
    return layer.module.weight


def randomise_bn(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Give every batch norm non-trivial running statistics and affine parameters (for eval-mode tests)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                m.weight.copy_(1.0 + 0.3 * torch.randn(n, generator=generator))
                m.bias.copy_(0.3 * torch.randn(n, generator=generator))
