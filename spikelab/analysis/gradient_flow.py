"""Gradient-flow probes (SPEC section 2): how far the surrogate gradient travels back through depth and time.

A feed-forward SNN unrolled over time is a recurrent network: with a surrogate too wide or too tall the gradient
norm grows layer by layer and step by step (explodes), too narrow and it shrinks (vanishes) (Ledinauskas et al.
2020). One probe measures this on any model:

- :func:`gradient_norms`: for one batch through any model (at initialisation or from a checkpoint), the norm of the
  gradient reaching every spiking layer's spikes at every time step, ``|| dL / ds_l[t] ||``, and the gradient
  norm of every conv / linear weight, as a tidy table (one dict per row) ready to plot; optionally with every
  neuron's surrogate replaced by another family or width.
- :func:`norms_matrix` turns the table into a ``[layers, T]`` array; :func:`depth_ratio` gives the first- to
  last-layer gradient-norm ratio (>> 1: explodes toward the input, << 1: vanishes, near 1: flat).
- :func:`gradient_flow`: the same probe on a synthetic deep spiking MLP at initialisation, with or without batch
  norm on each layer's input current (the surrogate explorer's picture); :func:`flow_ratio` sums it up in one
  number (first layer over last) and :func:`width_sweep` / :func:`width_sweeps` compute it over surrogate widths.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from spikelab import surrogate as _surrogate
from spikelab._checks import check_choice, check_int, check_positive, check_tensor
from spikelab.layers import TdBatchNorm
from spikelab.losses import auxiliary_outputs, get_loss, multi_head_loss
from spikelab.neurons import LIF, BaseNeuron

__all__ = ["gradient_flow", "gradient_norms", "norms_matrix", "depth_ratio", "FLOW_KEYS", "flow_ratio",
           "width_sweep", "width_sweeps", "WIDTH_RANGES"]

#: The range (low, high) of each surrogate's width parameter worth sweeping (also the explorers' slider ranges);
#: a larger alpha/slope is narrower, a larger gamma/width wider.
WIDTH_RANGES: dict[str, tuple[float, float]] = {
    "atan": (0.25, 16.0), "sigmoid": (0.5, 32.0), "fast_sigmoid": (1.0, 100.0),
    "triangle": (0.1, 4.0), "rectangle": (0.1, 4.0),
}

#: the columns of a :func:`gradient_norms` row
FLOW_KEYS = ("kind", "layer", "depth", "t", "grad_norm")
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@contextmanager
def _surrogate_of(neurons: list[BaseNeuron], sg: _surrogate.Surrogate | None) -> Iterator[None]:
    """Temporarily give every neuron the surrogate ``sg`` (None: leave them as they are)."""
    saved = [n.surrogate for n in neurons]
    try:
        if sg is not None:
            for n in neurons:
                n.surrogate = sg
        yield
    finally:
        for n, s in zip(neurons, saved):
            n.surrogate = s


def _probe(model: nn.Module, run: Callable[[], torch.Tensor], *, weights: bool) -> list[dict[str, Any]]:
    """Run ``run()`` (a forward pass returning a scalar loss) with hooks on every spiking layer; differentiate.

    Spiking layers are numbered by the order in which they run (``depth`` 0 = nearest the input). Parameter
    gradients are taken with ``torch.autograd.grad``, so ``.grad`` of the model is left untouched.
    """
    names = {m: n for n, m in model.named_modules()}
    neurons = [m for m in model.modules() if isinstance(m, BaseNeuron)]
    if not neurons:
        raise ValueError(f"model ({type(model).__name__}) has no spiking layers (no spikelab.neurons neuron "
                         "modules): the gradient-flow probe measures the gradient reaching spikes")
    order: list[nn.Module] = []
    steps: dict[nn.Module, int] = {}
    sq: dict[nn.Module, torch.Tensor] = {}  # summed squared gradient per step, [T]

    def forward_hook(module: nn.Module, inputs: Any, spikes: torch.Tensor) -> None:
        if module not in order:
            order.append(module)
        steps[module] = spikes.shape[0]
        if spikes.requires_grad:
            def grad_hook(g: torch.Tensor, module: nn.Module = module) -> None:
                s = g.detach().double().pow(2).flatten(1).sum(1)  # [T]
                sq[module] = sq[module] + s if module in sq else s
            spikes.register_hook(grad_hook)

    handles = [n.register_forward_hook(forward_hook) for n in neurons]
    try:
        loss = run()
        check_tensor(loss, "loss")
        if loss.dim() != 0 or not loss.requires_grad:
            raise ValueError("the loss must be a scalar that depends on the model's parameters")
        params = [p for p in model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    rows: list[dict[str, Any]] = []
    for depth, m in enumerate(order):
        norms = sq[m].sqrt().tolist() if m in sq else [0.0] * steps[m]  # no gradient reached this layer
        rows += [dict(kind="spikes", layer=names[m], depth=depth, t=t, grad_norm=v) for t, v in enumerate(norms)]
    if weights:
        grad_of = {id(p): g for p, g in zip(params, grads)}  # by identity: tied weights share one gradient
        layers = [(n, m) for n, m in model.named_modules() if isinstance(m, _WEIGHTED)]
        for depth, (n, m) in enumerate(layers):
            g = grad_of.get(id(m.weight))
            value = float(g.detach().double().norm()) if g is not None else 0.0
            rows.append(dict(kind="weight", layer=n, depth=depth, t=None, grad_norm=value))
    return rows


def gradient_norms(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "sdt",
    surrogate: "str | _surrogate.Surrogate | None" = None,
    checkpoint: str | os.PathLike | None = None,
    train: bool = True,
    weights: bool = True,
) -> list[dict[str, Any]]:
    """Per-layer, per-time-step gradient norms of any spiking model for one batch (SPEC section 2).

    Runs ``loss(model(x), y)`` (plus the same loss of every auxiliary head, as ``fit`` does) and differentiates it.
    Nothing of the model changes: parameters, ``.grad``, batch-norm running statistics, the mode and the
    surrogates are as before the call.

    Args:
        model: any network whose spiking layers are :mod:`spikelab.neurons` modules, e.g. from
            :func:`spikelab.models.build`.
        x: a model input, static ``[B, ...]`` or a sequence ``[T, B, ...]``; ``y``: class indices ``[B]``.
        loss: ``"sdt"``, ``"tet"`` (lam 0.05) or any ``f(outputs [T, B, C], y) -> scalar``.
        surrogate: give every neuron this surrogate for the probe (a name with default width, or an object such
            as ``surrogate.get("triangle", gamma=0.3)``); None keeps the model's own.
        checkpoint: a checkpoint file or run folder (``spikelab train``, :func:`spikelab.training.fit`) whose
            weights are loaded into ``model`` first (this does change the model: it is how you probe a run).
        train: run in training mode (batch norm on batch statistics, as a training step sees it) or eval mode.
        weights: also report the gradient norm of every conv / linear weight.

    Returns:
        rows ``{"kind", "layer", "depth", "t", "grad_norm"}``: ``kind="spikes"`` rows give
        ``|| dL / ds_l[t] ||`` (over batch and neurons) for spiking layer ``layer`` (``depth`` its position in
        the forward pass, 0 = input side) at step ``t``; ``kind="weight"`` rows give ``|| dL / dW ||`` of each
        conv / linear layer (``t`` None, ``depth`` in module order).

    Raises:
        ValueError: the model has no spiking layers; the loss is not a differentiable scalar.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    check_tensor(x, "x")
    check_tensor(y, "y")
    if not isinstance(train, bool):
        raise TypeError(f"train must be a bool, got {type(train).__name__}")
    if isinstance(loss, str):
        loss_fn = get_loss(check_choice(loss, "loss", ("sdt", "tet")))
    elif callable(loss):
        loss_fn = loss
    else:
        raise TypeError(f"loss must be 'sdt', 'tet' or a function f(outputs, targets), got {type(loss).__name__}")
    sg = _surrogate.get(surrogate) if surrogate is not None else None
    if checkpoint is not None:
        from spikelab.training.runs import load_checkpoint  # late: analysis does not need training otherwise

        model.load_state_dict(load_checkpoint(checkpoint)["model"])
    neurons = [m for m in model.modules() if isinstance(m, BaseNeuron)]
    buffers = {k: b.detach().clone() for k, b in model.named_buffers()}
    was_training = model.training
    model.train(train)

    def run() -> torch.Tensor:
        with auxiliary_outputs(model) as aux:
            out = model(x)
            return multi_head_loss(loss_fn, out, aux, y)

    try:
        with _surrogate_of(neurons, sg):
            return _probe(model, run, weights=weights)
    finally:
        model.train(was_training)
        with torch.no_grad():
            for k, b in model.named_buffers():
                b.copy_(buffers[k])


def norms_matrix(rows: list[dict[str, Any]]) -> tuple[list[str], np.ndarray]:
    """The ``kind="spikes"`` rows of :func:`gradient_norms` as ``(layer names, array [layers, T])``, by depth."""
    spikes = [r for r in rows if r.get("kind") == "spikes"]
    if not spikes:
        raise ValueError("rows hold no kind='spikes' entries (see gradient_norms)")
    depth = max(r["depth"] for r in spikes) + 1
    steps = max(r["t"] for r in spikes) + 1
    out = np.zeros((depth, steps))
    names = [""] * depth
    for r in spikes:
        out[r["depth"], r["t"]] = r["grad_norm"]
        names[r["depth"]] = r["layer"]
    return names, out


def depth_ratio(rows: list[dict[str, Any]]) -> float:
    """``||g_first|| / ||g_last||``: the gradient norm at the first spiking layer over that at the last one, each
    over all time steps (``sqrt(sum_t ||dL/ds_l[t]||^2)``). >> 1: explodes toward the input; << 1: vanishes.
    :func:`flow_ratio` of :func:`norms_matrix`: ``inf`` if the last layer gets no gradient but an earlier one does,
    ``0.0`` if none does."""
    return flow_ratio(norms_matrix(rows)[1])


class _DeepSpikingMLP(nn.Module):
    """``depth`` blocks of Linear -> tdBN -> LIF, or Linear -> LIF without batch norm (the probe network of
    :func:`gradient_flow`)."""

    def __init__(self, depth: int, width: int, surrogate: _surrogate.Surrogate, decay: float,
                 batch_norm: bool = True) -> None:
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(width, width, bias=False) for _ in range(depth))
        self.norms = nn.ModuleList(TdBatchNorm(width) if batch_norm else nn.Identity() for _ in range(depth))
        self.neurons = nn.ModuleList(LIF(decay, surrogate=surrogate) for _ in range(depth))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        for lin, bn, lif in zip(self.linears, self.norms, self.neurons):
            x_seq = lif(bn(lin(x_seq)))  # [T, B, width]
        return x_seq


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
    For any other model, use :func:`gradient_norms` (the same probe).
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
    rows = _probe(net, lambda: (net(x_seq) @ readout).sum(), weights=False)
    return norms_matrix(rows)[1]


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
