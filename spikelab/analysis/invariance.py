"""Scale invariance of batch-normalised networks, the reason loss landscapes need filter normalisation (Li et al.
2018; lab 07).

A conv or linear layer followed by batch norm can have its weights multiplied by any ``c > 0`` without changing
what the network computes: in training the norm divides the scale out, and in evaluation mode the same holds once
its running mean is multiplied by ``c`` and its running variance by ``c^2``. The loss landscape along a *raw* random
direction then depends on ``c`` (``c * theta + alpha * d`` is ``c * (theta + (alpha / c) * d)``: the rescaled layers
move ``c`` times less per step), though the function is the same; along a *filter-normalised* direction (each
filter of ``d`` scaled to the norm of the same filter of ``theta``) it does not.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from spikelab._checks import check_positive

__all__ = ["rescale_before_norm"]


def _pairs(model: nn.Module) -> list[tuple[nn.Module, _BatchNorm]]:
    """(conv or linear, the batch norm right after it) in the order the modules were registered."""
    pairs, last = [], None
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            last = m
        elif isinstance(m, _BatchNorm):
            if last is not None:
                pairs.append((last, m))
            last = None
        elif len(list(m.children())) == 0:  # any other leaf (a neuron, a pooling) breaks the pair
            last = None
    return pairs


@torch.no_grad()
def rescale_before_norm(model: nn.Module, factor: float) -> nn.Module:
    """A copy of ``model`` in which every conv or linear layer feeding a batch norm directly has its weight (and
    bias) multiplied by ``factor``, and that norm's running mean by ``factor`` and running variance by
    ``factor^2``: in evaluation mode the copy computes the same outputs (up to the norm's ``eps``, relatively
    ``eps / var``) with differently scaled weights. The model itself is not changed.

    Raises:
        ValueError: ``factor`` is not a positive finite number, or ``model`` has no conv/linear layer followed by
        batch norm.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    factor = check_positive(factor, "factor")
    twin = copy.deepcopy(model)
    pairs = _pairs(twin)
    if not pairs:
        raise ValueError("model has no conv or linear layer followed directly by batch norm: nothing to rescale")
    for layer, norm in pairs:
        layer.weight.mul_(factor)
        if layer.bias is not None:
            layer.bias.mul_(factor)
        if norm.running_mean is not None:
            norm.running_mean.mul_(factor)
            norm.running_var.mul_(factor * factor)
    return twin
