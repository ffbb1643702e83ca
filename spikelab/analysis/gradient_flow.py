"""Gradient-flow probes (SPEC section 2): how far the surrogate gradient travels back through depth and time.

A feed-forward SNN unrolled over time is a recurrent network: with a surrogate too wide or too tall the gradient
norm grows layer by layer and step by step (explodes), too narrow and it shrinks (vanishes). :func:`gradient_flow`
measures the per-layer, per-step gradient norms of a deep spiking MLP at initialisation for one surrogate.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from spikelab import surrogate as _surrogate
from spikelab._checks import check_int, check_positive
from spikelab.layers import TdBatchNorm
from spikelab.neurons import LIF

__all__ = ["gradient_flow"]


class _DeepSpikingMLP(nn.Module):
    """``depth`` blocks of Linear -> tdBN -> LIF (the probe network of :func:`gradient_flow`)."""

    def __init__(self, depth: int, width: int, surrogate: _surrogate.Surrogate, decay: float) -> None:
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(width, width, bias=False) for _ in range(depth))
        self.norms = nn.ModuleList(TdBatchNorm(width) for _ in range(depth))
        self.neurons = nn.ModuleList(LIF(decay, surrogate=surrogate) for _ in range(depth))

    def forward(self, x_seq: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for lin, bn, lif in zip(self.linears, self.norms, self.neurons):
            x_seq = lif(bn(lin(x_seq)))  # [T, B, width]
            x_seq.retain_grad()
            outs.append(x_seq)
        return outs


def gradient_flow(
    surrogate: "str | _surrogate.Surrogate",
    *,
    depth: int = 8,
    width: int = 64,
    T: int = 8,
    batch: int = 32,
    decay: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """Gradient norms ``[depth, T]`` of a deep spiking MLP at initialisation (SPEC section 2).

    The network is ``depth`` blocks of Linear -> tdBN -> LIF (``decay``, ``v_th = 1``, hard reset) on Bernoulli
    (0.3) input spikes ``[T, batch, width]``; the loss is a fixed random readout of the last layer's spikes summed
    over time. Entry ``[l, t]`` is ``|| dL / ds_l[t] ||``, the gradient reaching layer ``l``'s spikes at step ``t``
    (row 0 is the input side). The same ``seed`` gives the same weights and inputs, so only the surrogate changes.
    """
    sg = _surrogate.get(surrogate)
    depth = check_int(depth, "depth", minimum=1)
    width = check_int(width, "width", minimum=1)
    T = check_int(T, "T", minimum=1)
    batch = check_int(batch, "batch", minimum=2)
    decay = check_positive(decay, "decay")
    gen = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _DeepSpikingMLP(depth, width, sg, decay)
    x_seq = (torch.rand(T, batch, width, generator=gen) < 0.3).float()
    readout = torch.randn(width, generator=gen) / math.sqrt(width)
    outs = net(x_seq)
    (outs[-1] @ readout).sum().backward()
    norms = [out.grad.pow(2).sum(dim=(1, 2)).sqrt() for out in outs]  # each [T]
    return torch.stack(norms).numpy().astype(np.float64)
