"""One neuron's input-output curve: the F-I curve (firing rate against a constant input current, SPEC section 1).

For a constant current ``I`` a hard-reset LIF neuron starting from rest charges as
``h[k] = I (1 - decay^(k+1)) / (1 - decay)`` and fires at the first ``k`` with ``h[k] >= v_th``; after the reset the
cycle repeats, so it fires every ``n`` steps and its rate is ``1 / n``. Below the threshold current
``I* = v_th (1 - decay)`` it never fires. A soft reset keeps the surplus above threshold (for the IF neuron the rate
is ``I / v_th``); without a reset the neuron fires at every step once it has crossed.
"""
from __future__ import annotations

import numpy as np
import torch

from spikelab._checks import check_int
from spikelab.neurons import NeuronConfig

__all__ = ["fi_curve"]


def fi_curve(currents: "np.ndarray | torch.Tensor | list[float]", config: NeuronConfig | None = None, *,
             T: int = 200) -> np.ndarray:
    """Firing rate (spikes per step) of one neuron for each constant input current, over ``T`` steps from rest.

    Args:
        currents: ``[K]`` constant input currents (arbitrary units, the same as ``v_th``).
        config: the neuron (default ``NeuronConfig()``: LIF, decay 0.5, v_th 1, hard reset).
        T: steps simulated per current; the rate ``count / T`` includes the first charge from rest, whose share
            shrinks as ``1 / T``.

    Returns:
        ``[K]`` float64 rates in [0, 1].
    """
    config = NeuronConfig() if config is None else config
    if not isinstance(config, NeuronConfig):
        raise TypeError(f"config must be a spikelab.neurons.NeuronConfig or None, got {type(config).__name__}")
    T = check_int(T, "T", minimum=1)
    i = torch.as_tensor(np.asarray(currents, dtype=np.float64))
    if i.dim() != 1 or i.numel() == 0:
        raise ValueError(f"currents must be a non-empty 1-D sequence, got shape {tuple(i.shape)}")
    if not torch.isfinite(i).all():
        raise ValueError("currents must be finite")
    x_seq = i.unsqueeze(0).expand(T, -1)  # [T, K]: every column is one constant current
    with torch.no_grad():
        spikes = config.build()(x_seq)
    return (spikes.sum(0) / T).numpy()
