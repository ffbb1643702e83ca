"""What a trained network does, for the labs' inspection views: its per-step outputs on a dataset, the accuracy it
reaches after each time step, and the membrane and spikes of every spiking layer for one input.

All three run in eval mode without gradients and restore the model's mode. A static model input ``[B, ...]`` is
encoded over ``T`` steps (the model's own ``T`` unless ``T=`` says otherwise); event batches from a loader
(``[B, T, ...]``, 5-D) are made time-first.
"""
from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from spikelab._checks import check_int, check_tensor
from spikelab.metrics import layer_names
from spikelab.neurons import BaseNeuron

__all__ = ["predict", "accuracy_by_steps", "record_sample", "LayerRecord", "SampleRecord"]


class LayerRecord(NamedTuple):
    """One spiking layer on one input: membrane before reset ``h`` and ``spikes``, both ``[T, N]`` numpy arrays
    (neurons flattened), and the layer's threshold ``v_th``."""

    h: np.ndarray
    spikes: np.ndarray
    v_th: float


class SampleRecord(NamedTuple):
    """What :func:`record_sample` returns: ``layers`` ``{name: LayerRecord}`` in network order, ``logits`` ``[T, C]``."""

    layers: dict[str, LayerRecord]
    logits: np.ndarray


@contextmanager
def _eval(model: nn.Module, T: int | None):
    was_training, old_T = model.training, getattr(model, "T", None)
    model.eval()
    if T is not None:
        if old_T is None:
            raise ValueError("T= needs a model with a settable T (a spikelab model)")
        model.T = check_int(T, "T", minimum=1)
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)
        if T is not None:
            model.T = old_T


def _model_input(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(0, 1).contiguous() if x.dim() == 5 else x  # events [B, T, ...] -> [T, B, ...]


def predict(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, T: int | None = None,
            limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step outputs and targets over ``batches`` (e.g. a test DataLoader): ``([T, N, C], [N])``.

    Args:
        model: maps a batch to logits ``[T, B, C]``.
        batches: yields ``(x, y)`` in loader layout.
        T: time steps for static inputs (default: the model's ``T``).
        limit: stop after this many samples.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if limit is not None:
        check_int(limit, "limit", minimum=1)
    device = next(model.parameters()).device
    outs, ys, n = [], [], 0
    with _eval(model, T):
        for x, y in batches:
            check_tensor(x, "x")
            o = model(_model_input(x).to(device))  # [T, B, C]
            outs.append(o.float().cpu())
            ys.append(y.cpu())
            n += y.shape[0]
            if limit is not None and n >= limit:
                break
    if not outs:
        raise ValueError("batches yielded nothing")
    out, tgt = torch.cat(outs, dim=1), torch.cat(ys)
    return (out[:, :limit], tgt[:limit]) if limit is not None else (out, tgt)


def accuracy_by_steps(outputs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Accuracy of the prediction ``argmax(mean_{s < t} O[s])`` that reads only the first ``t`` steps, for
    ``t = 1 .. T``: how many steps the network needs. Returns ``[T]`` fractions.

    The network is causal (step ``t`` never sees later inputs) and in eval mode its batch norm is fixed, so the
    value at ``t`` equals the accuracy of the same network run for ``t`` steps.
    """
    check_tensor(outputs, "outputs")
    check_tensor(targets, "targets")
    if outputs.dim() != 3 or targets.shape != outputs.shape[1:2]:
        raise ValueError(f"outputs must be [T, N, C] and targets [N]; got {tuple(outputs.shape)} and "
                         f"{tuple(targets.shape)}")
    cum = outputs.to(torch.float64).cumsum(0)  # the mean's argmax is the sum's argmax
    return (cum.argmax(-1) == targets.unsqueeze(0)).to(torch.float64).mean(1).numpy()


def record_sample(model: nn.Module, x: torch.Tensor, *, T: int | None = None) -> SampleRecord:
    """Membrane potential and spikes of every spiking layer, and the logits, for one input ``x``.

    Args:
        model: a spikelab model (it must expose ``in_shape``).
        x: one sample without a batch axis: static ``[*in_shape]`` or a sequence ``[T, *in_shape]``.
        T: time steps for a static input (default: the model's ``T``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    check_tensor(x, "x")
    in_shape = getattr(model, "in_shape", None)
    if in_shape is None or x.dim() not in (len(in_shape), len(in_shape) + 1):
        raise ValueError(f"x must be one sample [*in_shape] or [T, *in_shape] of a spikelab model, got shape "
                         f"{tuple(x.shape)}")
    names = layer_names(model)
    neurons = [(names[m], m) for m in model.modules() if isinstance(m, BaseNeuron)]
    spikes: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda mod, _i, out, n=name: spikes.__setitem__(n, out.detach()))
               for name, m in neurons]
    flags = [m.record for _, m in neurons]
    device = next(model.parameters()).device
    try:
        for _, m in neurons:
            m.record = True
        with _eval(model, T):
            batch = x.unsqueeze(1) if x.dim() == len(in_shape) + 1 else x.unsqueeze(0)  # [(T,) 1, ...]
            logits = model(batch.to(device))  # [T, 1, C]
        layers = {}
        for name, m in neurons:
            steps = m.h_seq.shape[0]
            layers[name] = LayerRecord(m.h_seq[:, 0].reshape(steps, -1).cpu().numpy(),
                                       spikes[name][:, 0].reshape(steps, -1).cpu().numpy(), float(m.v_th))
        return SampleRecord(layers, logits[:, 0].cpu().numpy())
    finally:
        for h in handles:
            h.remove()
        for (_, m), flag in zip(neurons, flags):
            m.record = flag
            m.h_seq = m.v_seq = None
