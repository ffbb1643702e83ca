"""What an input code costs and how faithful it is (lab 02): encode intensities, decode them back, count spikes.

The rate code's estimate ``count / T`` is unbiased with standard deviation ``sqrt(x (1 - x) / T)`` (a binomial
count), so its error falls as ``1 / sqrt(T)`` while it spends ``x T`` spikes per input. The linear latency code sends
one spike per input (none at or below its threshold) and its error is the rounding of the spike time, at most
``1 / (2 (T - 1))``: it falls as ``1 / T``, at a constant cost. The direct code sends the value itself (no error,
no spikes; the first layer does the encoding with multiply-accumulates).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from spikelab._checks import check_choice, check_int, check_range
from spikelab.encoding import decode_latency, decode_rate, latency, rate

__all__ = ["CODES", "code_tradeoff"]

CODES = ("rate", "latency")


def code_tradeoff(
    x: torch.Tensor,
    Ts: Sequence[int],
    *,
    codes: Sequence[str] = CODES,
    trials: int = 20,
    gain: float = 1.0,
    seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """Decoding error and spike cost of each code at each number of time steps.

    Args:
        x: intensities in [0, 1], any shape (e.g. a batch of images ``[B, 1, H, W]``).
        Ts: numbers of time steps to try.
        codes: any of :data:`CODES`.
        trials: independent encodings per ``T`` for the (random) rate code; the latency code is deterministic.
        gain: the rate code's gain (it fires with probability ``gain * x``).
        seed: seed of the rate code's random spikes.

    Returns:
        ``{code: {"T": [K], "rmse": [K], "spikes": [K]}}``: the root-mean-square error of the decoded intensity
        over all inputs (and trials), and the mean number of spikes per input.
    """
    if not isinstance(x, torch.Tensor) or x.numel() == 0:
        raise TypeError("x must be a non-empty torch.Tensor of intensities in [0, 1]")
    steps = [check_int(t, "Ts[i]", minimum=1) for t in Ts]
    if not steps:
        raise ValueError("Ts must not be empty")
    for c in codes:
        check_choice(c, "codes[i]", CODES)
    trials = check_int(trials, "trials", minimum=1)
    gain = check_range(gain, "gain", 1e-6, 1.0)
    x = x.detach().to(torch.float64)
    gen = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    out: dict[str, dict[str, np.ndarray]] = {}
    for code in codes:
        rmse, spikes = [], []
        for T in steps:
            if code == "rate":
                s = rate(x.expand(trials, *x.shape), T, gain=gain, generator=gen)  # [T, trials, ...]
                err = decode_rate(s, gain=gain) - x
                spikes.append(float(s.sum()) / (trials * x.numel()))
            else:
                s = latency(x, T)
                err = decode_latency(s) - x
                spikes.append(float(s.sum()) / x.numel())
            rmse.append(float(err.pow(2).mean().sqrt()))
        out[code] = {"T": np.array(steps), "rmse": np.array(rmse), "spikes": np.array(spikes)}
    return out
