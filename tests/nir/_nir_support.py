"""Helpers for the NIR tests: briefly trained models and per-layer spike recording."""
from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from spikelab import data
from spikelab.losses import sdt_loss
from spikelab.neurons import BaseNeuron


def _fit(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Digits ``[B, 1, 8, 8]`` in the model's sample shape (flat for an MLP built for 64 inputs)."""
    shape = model.in_shape
    return x if None in shape else x.reshape(x.shape[0], *shape)


def train_briefly(model: nn.Module, steps: int = 4, lr: float = 1e-2) -> nn.Module:
    """A few Adam steps on the embedded digits: weights move and batch norm gathers running statistics."""
    train, _, _ = data.make_loaders("digits", batch_size=32, limit=256, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for x, y in itertools.islice(itertools.cycle(train), steps):
        opt.zero_grad()
        sdt_loss(model(_fit(model, x)), y).backward()
        opt.step()
    # batch-norm statistics of the final weights, as a long training would leave them (cumulative average)
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    with torch.no_grad():
        for x, _ in itertools.islice(train, 2):
            model(_fit(model, x))
    for m in norms:
        m.momentum = 0.1
    return model.eval()


class SpikeRecorder:
    """Records every spiking layer's output ``[T, B, ...]`` by a name: a NIR node name for loaded networks."""

    def __init__(self, model: nn.Module, names: dict[str, str] | None = None) -> None:
        self.spikes: dict[str, torch.Tensor] = {}
        self._hooks = []
        for qual, m in model.named_modules():
            if isinstance(m, BaseNeuron):
                name = qual
                if names is not None:  # a NIRNetwork: "layers.<key>" -> node name
                    name = names[qual.split(".", 1)[1]]
                self._hooks.append(m.register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def hook(_m, _inp, out):
            self.spikes[name] = out.detach().clone()
        return hook

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()


def run_and_record(model: nn.Module, x: torch.Tensor, names: dict[str, str] | None = None):
    """``(output, {layer: spikes})`` of ``model(x)`` without gradients."""
    rec = SpikeRecorder(model, names)
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        rec.remove()
    return out, rec.spikes
