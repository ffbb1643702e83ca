"""Measuring an arbitrary spiking model on one batch without changing it: what :func:`~spikelab.analysis.diagnose`
reads (each spiking layer's input currents, spikes and membranes; the first non-finite layer output; the readout),
the state it restores, and the gradient norms per spiking layer and time step.

:func:`spike_gradient_norms` measures, for any model, the quantity that :func:`spikelab.analysis.gradient_flow`
measures on its own deep MLP (``||dL/ds_l[t]||``, SPEC section 2); the two should share this code once
``gradient_flow`` accepts any model.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from spikelab.metrics import layer_names
from spikelab.neurons import BaseNeuron

READOUTS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def count_nonfinite(t: torch.Tensor) -> int:
    """Number of NaN and inf entries of a tensor (0 for integer tensors)."""
    return int((~torch.isfinite(t)).sum()) if t.is_floating_point() else 0


def module_names(model: nn.Module) -> dict[nn.Module, str]:
    """Each module's name: :func:`spikelab.metrics.layer_names` (the keys of the history's firing rates) where that
    is also a name in ``model.named_modules()``, else its qualified name. The root is ``""``."""
    readable = layer_names(model)
    qualified = dict(model.named_modules())
    return {m: ("" if m is model else readable[m] if readable[m] in qualified else q) for q, m in qualified.items()}


@dataclass
class LayerRecord:
    """One spiking layer during the recorded pass (a layer called twice has two entries in each list)."""

    name: str
    neuron: BaseNeuron
    spikes: list[torch.Tensor] = field(default_factory=list)  # outputs [T, B, ...], still in the autograd graph
    currents: list[torch.Tensor] = field(default_factory=list)  # inputs [T, B, ...], detached
    membranes: list[torch.Tensor] = field(default_factory=list)  # h[t] before reset [T, B, ...], detached
    rate: float = 0.0  # spikes per neuron per step (filled in from FiringRates)

    def membrane(self) -> torch.Tensor:
        """All recorded membranes before reset, flattened."""
        return torch.cat([m.flatten() for m in self.membranes])


class Recorder:
    """Forward hooks on every leaf module for one pass. Keeps each spiking layer's record, the first leaf whose output
    holds NaN or inf (``(name, count, whether its input already did)``) and the last Linear/Conv called (the
    readout). Neurons must have ``record=True`` for their membranes to be kept (see :func:`preserved`)."""

    def __init__(self, model: nn.Module, names: dict[nn.Module, str]) -> None:
        self.names = names
        self.layers: dict[nn.Module, LayerRecord] = {
            m: LayerRecord(names[m], m) for m in model.modules() if isinstance(m, BaseNeuron)}
        self.first_nonfinite: tuple[str, int, bool] | None = None
        self.readout: str | None = None
        self._order: list[LayerRecord] = []  # spiking layers in the order they first ran
        self._handles = [m.register_forward_hook(self._hook) for m in model.modules()
                         if next(m.children(), None) is None]

    def _hook(self, module: nn.Module, inputs: tuple, out: Any) -> None:
        if not isinstance(out, torch.Tensor):
            return
        if isinstance(module, READOUTS):
            self.readout = self.names[module]
        if self.first_nonfinite is None:
            h_seq = getattr(module, "h_seq", None) if isinstance(module, BaseNeuron) else None
            bad = count_nonfinite(out) + (count_nonfinite(h_seq) if h_seq is not None else 0)  # NaN never fires
            if bad:
                inp = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
                self.first_nonfinite = (self.names[module], bad, inp is not None and count_nonfinite(inp) > 0)
        layer = self.layers.get(module)
        if layer is not None:
            if not layer.spikes:
                self._order.append(layer)
            layer.spikes.append(out)
            layer.currents.append(inputs[0].detach())
            if module.h_seq is not None:
                layer.membranes.append(module.h_seq)

    def ran(self) -> list[LayerRecord]:
        """The spiking layers that ran, in the order they first ran (input side first)."""
        return list(self._order)

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


@contextmanager
def preserved(model: nn.Module, x: torch.Tensor) -> Iterator[None]:
    """Run a block on ``model`` and leave it as it was: buffers (batch-norm statistics) are copied back, the neurons
    record their membranes inside (their ``record``, ``h_seq`` and ``v_seq`` are restored after), and the global
    random state (CPU and the CUDA devices in use) is forked. Parameters and ``.grad`` are the caller's to keep."""
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    neurons = [(n, n.record, n.h_seq, n.v_seq) for n in model.modules() if isinstance(n, BaseNeuron)]
    tensors = [x, *model.parameters(), *model.buffers()]
    cuda = sorted({t.device.index or 0 for t in tensors if t.device.type == "cuda"})
    try:
        with torch.random.fork_rng(devices=cuda):
            for n, *_ in neurons:
                n.record = True
            yield
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for n, record, h_seq, v_seq in neurons:
            n.record, n.h_seq, n.v_seq = record, h_seq, v_seq


def spike_gradient_norms(layers: list[LayerRecord], grads: list[torch.Tensor | None]) -> torch.Tensor:
    """``||dL/ds_l[t]||`` per spiking layer ``l`` and step ``t``, float64 ``[L, T]``.

    ``grads`` are the gradients of the loss with respect to every ``layer.spikes`` entry, in order (None: unused,
    counted as zero). A layer called several times sums the squares over its calls.
    """
    per_call = []  # (layer index, squared norms [T]) for every call of every layer
    calls = [(li, s) for li, lay in enumerate(layers) for s in lay.spikes]
    for (li, s), g in zip(calls, grads):
        sq = torch.zeros(s.shape[0], dtype=torch.float64) if g is None else \
            g.detach().double().flatten(1).pow(2).sum(1).cpu()  # [T]
        per_call.append((li, sq))
    T = max((sq.numel() for _, sq in per_call), default=0)
    out = torch.zeros(len(layers), T, dtype=torch.float64)
    for li, sq in per_call:
        out[li, : sq.numel()] += sq
    return out.sqrt()
