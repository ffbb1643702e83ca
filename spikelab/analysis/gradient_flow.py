"""Gradient-flow probes (SPEC section 2): how far the surrogate gradient travels back through depth and time.

A feed-forward SNN unrolled over time is a recurrent network: with a surrogate too wide or too tall the gradient
norm grows layer by layer and step by step (explodes), too narrow and it shrinks (vanishes). :func:`gradient_flow`
measures the per-layer, per-step gradient norms of a deep spiking MLP at initialisation for one surrogate, with or
without batch norm on each layer's input current; :func:`flow_ratio` sums them up in one number (first layer over
last) and :func:`width_sweep` computes it over a range of surrogate widths.
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

__all__ = ["gradient_flow", "flow_ratio", "width_sweep", "width_sweeps", "WIDTH_RANGES"]

#: The range (low, high) of each surrogate's width parameter worth sweeping (also the explorers' slider ranges);
#: a larger alpha/slope is narrower, a larger gamma/width wider.
WIDTH_RANGES: dict[str, tuple[float, float]] = {
    "atan": (0.25, 16.0), "sigmoid": (0.5, 32.0), "fast_sigmoid": (1.0, 100.0),
    "triangle": (0.1, 4.0), "rectangle": (0.1, 4.0),
}


class _DeepSpikingMLP(nn.Module):
    """``depth`` blocks of Linear -> tdBN -> LIF, or Linear -> LIF without batch norm (the probe network of
    :func:`gradient_flow`)."""

    def __init__(self, depth: int, width: int, surrogate: _surrogate.Surrogate, decay: float,
                 batch_norm: bool = True) -> None:
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(width, width, bias=False) for _ in range(depth))
        self.norms = nn.ModuleList(TdBatchNorm(width) if batch_norm else nn.Identity() for _ in range(depth))
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
    batch_norm: bool = True,
) -> np.ndarray:
    """Gradient norms ``[depth, T]`` of a deep spiking MLP at initialisation (SPEC section 2).

    The network is ``depth`` blocks of Linear -> tdBN -> LIF (``decay``, ``v_th = 1``, hard reset; with
    ``batch_norm=False`` the tdBN is left out, so each neuron gets the raw Linear output) on Bernoulli
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
    if not isinstance(batch_norm, bool):
        raise TypeError(f"batch_norm must be a bool, got {type(batch_norm).__name__}")
    gen = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _DeepSpikingMLP(depth, width, sg, decay, batch_norm)
    x_seq = (torch.rand(T, batch, width, generator=gen) < 0.3).float()
    readout = torch.randn(width, generator=gen) / math.sqrt(width)
    outs = net(x_seq)
    (outs[-1] @ readout).sum().backward()
    norms = [out.grad.pow(2).sum(dim=(1, 2)).sqrt() for out in outs]  # each [T]
    return torch.stack(norms).numpy().astype(np.float64)


def flow_ratio(grad_norms: np.ndarray) -> float:
    """How much gradient reaches the first layer compared with the last: ``||g_0|| / ||g_{L-1}||``, each the norm
    over all time steps of a row of :func:`gradient_flow`'s ``[depth, T]`` output.

    Below about 0.1 the gradient vanishes with depth, above about 10 it explodes; ``0.0`` if nothing reaches the
    first layer, ``inf`` if the last layer gets no gradient but an earlier one does.
    """
    g = np.asarray(grad_norms, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] < 1:
        raise ValueError(f"grad_norms must be [depth, T], got shape {g.shape}")
    per_layer = np.sqrt((g ** 2).sum(axis=1))
    first, last = float(per_layer[0]), float(per_layer[-1])
    if last == 0.0:
        return 0.0 if first == 0.0 else math.inf
    return first / last


def width_sweep(
    family: str,
    widths: "np.ndarray | list[float]",
    *,
    batch_norm: bool = True,
    depth: int = 8,
    **kwargs: object,
) -> np.ndarray:
    """:func:`flow_ratio` of :func:`gradient_flow` for surrogate ``family`` at each value of its width parameter
    (``alpha`` for atan, ``gamma`` for triangle, ...; see ``Surrogate.width_param``). Returns ``[len(widths)]``.

    ``kwargs`` go to :func:`gradient_flow` (``width`` there is the layer width, not the surrogate's).
    """
    param = _surrogate.get(family).width_param
    values = [float(w) for w in widths]
    if not values:
        raise ValueError("widths must not be empty")
    return np.array([flow_ratio(gradient_flow(_surrogate.get(family, **{param: w}), depth=depth,
                                              batch_norm=batch_norm, **kwargs)) for w in values])


def width_sweeps(
    *,
    families: "list[str] | None" = None,
    n: int = 9,
    depth: int = 8,
    batch_norm: tuple[bool, ...] = (True, False),
) -> dict[str, dict[str, object]]:
    """:func:`width_sweep` of every surrogate family over ``n`` log-spaced widths of :data:`WIDTH_RANGES`, with and
    without batch norm: ``{family: {"param": name, "widths": [n], "ratios": {"with batch norm": [n], ...}}}``, the
    input of :func:`spikelab.viz.figures.width_sweep_figure`."""
    families = list(WIDTH_RANGES) if families is None else list(families)
    n = check_int(n, "n", minimum=2)
    out: dict[str, dict[str, object]] = {}
    for fam in families:
        lo, hi = WIDTH_RANGES[_surrogate.get(fam).name]
        widths = np.geomspace(lo, hi, n)
        ratios = {("with" if bn else "without") + " batch norm": width_sweep(fam, widths, batch_norm=bn, depth=depth)
                  for bn in batch_norm}
        out[fam] = {"param": _surrogate.get(fam).width_param, "widths": widths, "ratios": ratios}
    return out
