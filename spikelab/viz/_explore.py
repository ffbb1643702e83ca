"""Computations behind the neuron and surrogate explorers (no widgets here, so they are testable on their own).

- :func:`input_current` and :func:`simulate_neuron`: one neuron driven by a chosen current, with its membrane
  before reset ``h[t]``, its spikes, and the surrogate gradient of the spike count with respect to the current.
(The surrogate explorer's gradient-flow picture comes from :func:`spikelab.analysis.gradient_flow`.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from spikelab import surrogate as _surrogate
from spikelab._checks import check_choice, check_float_tensor, check_int, check_real
from spikelab.analysis.gradient_flow import WIDTH_RANGES  # slider range (low, high) of each surrogate's width
from spikelab.neurons import NeuronConfig

CURRENT_KINDS = ("constant", "step", "ramp", "sine", "noisy", "poisson")


def default_width(name: str) -> float:
    """The registered default of surrogate ``name``'s width parameter (e.g. 2.0 for atan's alpha)."""
    sg = _surrogate.get(name)
    return float(getattr(sg, sg.width_param))


def input_current(kind: str, amplitude: float, T: int, *, seed: int = 0) -> torch.Tensor:
    """An input current ``I[t]`` ``[T]`` (float64) of one of :data:`CURRENT_KINDS`, scaled by ``amplitude``.

    constant ``A``; step ``A`` from ``t = T // 5`` on; ramp ``A t / (T - 1)``; sine ``A (1 + sin(2 pi t / 25)) / 2``;
    noisy ``A + 0.5 N(0, 1)``; poisson ``A`` times a Bernoulli(0.3) input spike train (``seed`` fixes the noise).
    """
    check_choice(kind, "kind", CURRENT_KINDS)
    a = check_real(amplitude, "amplitude")
    T = check_int(T, "T", minimum=1)
    t = torch.arange(T, dtype=torch.float64)
    gen = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    if kind == "constant":
        return torch.full((T,), a, dtype=torch.float64)
    if kind == "step":
        return a * (t >= T // 5).to(torch.float64)
    if kind == "ramp":
        return a * t / max(T - 1, 1)
    if kind == "sine":
        return a * (1 + torch.sin(2 * math.pi * t / 25)) / 2
    if kind == "noisy":
        return a + 0.5 * torch.randn(T, generator=gen, dtype=torch.float64)
    return a * (torch.rand(T, generator=gen, dtype=torch.float64) < 0.3).to(torch.float64)


@dataclass(frozen=True)
class NeuronTrace:
    """One neuron's run: ``current``, ``h`` (membrane before reset), ``v`` (after reset), ``spikes``, all ``[T]``
    numpy arrays, and ``grad`` ``[T]``: the surrogate gradient of the spike count with respect to each ``I[t]``."""

    current: np.ndarray
    h: np.ndarray
    v: np.ndarray
    spikes: np.ndarray
    grad: np.ndarray

    @property
    def count(self) -> int:
        """Number of spikes."""
        return int(self.spikes.sum())


def simulate_neuron(config: NeuronConfig, current: torch.Tensor) -> NeuronTrace:
    """Run one neuron built from ``config`` on ``current`` ``[T]`` and backpropagate its spike count.

    The forward pass is the exact spiking neuron (SPEC section 1); ``grad[t] = d(sum_t s[t]) / d I[t]`` uses the
    surrogate derivative at ``h[t] - v_th``, so it changes with the surrogate while the spikes do not.
    """
    if not isinstance(config, NeuronConfig):
        raise TypeError(f"config must be a spikelab.neurons.NeuronConfig, got {type(config).__name__}")
    check_float_tensor(current, "current")  # int, bool and complex currents are refused, as by the neurons
    if current.dim() != 1 or current.numel() < 1:
        raise ValueError("current must be a 1-D tensor [T] with T >= 1")
    neuron = config.build(record=True)
    x = current.detach().to(torch.float64).reshape(-1, 1).clone().requires_grad_(True)  # [T, B=1]
    spikes = neuron(x)
    spikes.sum().backward()
    return NeuronTrace(
        current=current.detach().cpu().numpy().astype(np.float64),
        h=neuron.h_seq[:, 0].cpu().numpy(), v=neuron.v_seq[:, 0].cpu().numpy(),
        spikes=spikes.detach()[:, 0].cpu().numpy(), grad=x.grad[:, 0].cpu().numpy(),
    )
