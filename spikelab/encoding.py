"""Input encoders: turn a static input ``[B, ...]`` into a time-first sequence ``[T, B, ...]``.

- :func:`direct`: the analogue input repeated at every step (the first layer acts as the encoder; SPEC section 3).
- :func:`rate`: Bernoulli ("Poisson") spikes with probability ``gain * x`` per step.
- :func:`latency`: one spike per input, earlier for larger values (time to first spike).

Inputs are real floating-point tensors (an integer, bool or complex ``x`` raises ``TypeError``: convert it, e.g.
``x.float() / 255``); the outputs have ``x``'s dtype. Spikes are 0/1 in that dtype.

:func:`decode_rate` and :func:`decode_latency` turn spike trains back into intensities (to measure how faithful a
code is at a given ``T``).
"""
from __future__ import annotations


import torch

from spikelab._checks import (
    check_choice,
    check_float_tensor,
    check_int,
    check_positive,
    check_range,
    check_tensor,
    check_tensor_range,
)

_UNIT_HINT = " (normalise intensities first)"


def direct(x: torch.Tensor, T: int) -> torch.Tensor:
    """Repeat ``x`` ``[B, ...]`` at each of ``T`` steps: ``[T, B, ...]`` (a read-only expanded view)."""
    check_float_tensor(x, "x")
    check_int(T, "T", minimum=1)
    return x.unsqueeze(0).expand(T, *x.shape)


def rate(x: torch.Tensor, T: int, gain: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rate code: ``s[t] ~ Bernoulli(gain * x)`` independently per step; ``x`` in [0, 1], ``gain`` in (0, 1].

    The expected firing rate of each input equals ``gain * x``. The uniform draws and the comparison are made in
    float64 whatever ``x``'s dtype, so the firing probability is exact to about 1e-16 for float16 and bfloat16
    inputs too, and a seeded ``generator`` gives the same spikes for the same values in any dtype. NaN or values
    outside [0, 1] raise ``ValueError``.

    Returns:
        spikes ``[T, *x.shape]`` (0/1 in ``x``'s dtype).
    """
    check_float_tensor(x, "x")
    check_int(T, "T", minimum=1)
    gain = check_range(gain, "gain", 0.0, 1.0)
    if gain == 0.0:
        raise ValueError("gain must be > 0, got 0")
    check_tensor_range(x, "x", 0.0, 1.0, _UNIT_HINT)
    u = torch.rand((T, *x.shape), generator=generator, dtype=torch.float64, device=x.device)
    return (u < gain * x.detach().to(torch.float64)).to(x.dtype)


def latency(
    x: torch.Tensor, T: int, *, method: str = "linear", threshold: float = 0.01, tau: float = 1.0
) -> torch.Tensor:
    """Time-to-first-spike code: each input with ``x > threshold`` spikes exactly once; larger is earlier.

    ``method="linear"``: spike time ``round((1 - x) * (T - 1))`` (``x = 1`` fires at step 0).
    ``method="log"``: the RC charging time ``tau * ln(x / (x - threshold))``, rounded and clipped to ``T - 1``.
    Inputs at or below ``threshold`` never spike. ``x`` must lie in [0, 1] (NaN raises ``ValueError``); spike
    times are computed in float64 whatever ``x``'s dtype.

    Returns:
        spikes ``[T, *x.shape]`` (0/1 in ``x``'s dtype).
    """
    check_float_tensor(x, "x")
    check_int(T, "T", minimum=1)
    check_choice(method, "method", ("linear", "log"))
    threshold = check_range(threshold, "threshold", 0.0, 1.0)
    tau = check_positive(tau, "tau")
    check_tensor_range(x, "x", 0.0, 1.0, _UNIT_HINT)
    xf = x.detach().to(torch.float64)
    fires = xf > threshold
    if method == "linear":
        t_spike = torch.round((1 - xf) * (T - 1))
    else:
        safe = torch.where(fires, xf, torch.ones_like(xf))
        t_spike = torch.round(tau * torch.log(safe / (safe - threshold)))
    t_spike = t_spike.clamp(0, T - 1).long()
    steps = torch.arange(T, device=x.device).view(T, *([1] * x.dim()))
    out = (steps == t_spike.unsqueeze(0)) & fires.unsqueeze(0)
    return out.to(x.dtype)


def decode_rate(spikes: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Estimate the intensities behind a rate code: ``count / (T * gain)``, ``[T, B, ...]`` -> ``[B, ...]``.

    Unbiased; each estimate has standard deviation ``sqrt(x (1 / gain - x) / T)`` (a binomial count).
    """
    check_tensor(spikes, "spikes")
    if spikes.dim() < 1 or spikes.shape[0] < 1:
        raise ValueError(f"spikes must be [T, ...] with T >= 1, got shape {tuple(spikes.shape)}")
    gain = check_range(gain, "gain", 0.0, 1.0)
    if gain == 0.0:
        raise ValueError("gain must be > 0, got 0")
    return spikes.to(torch.float64).mean(0) / gain


def decode_latency(spikes: torch.Tensor) -> torch.Tensor:
    """Invert the linear latency code: a spike at step ``t`` decodes to ``1 - t / (T - 1)`` (1 if ``T = 1``); an
    input that never spiked decodes to 0. ``[T, B, ...]`` -> ``[B, ...]`` (float64); the first spike counts."""
    check_tensor(spikes, "spikes")
    if spikes.dim() < 1 or spikes.shape[0] < 1:
        raise ValueError(f"spikes must be [T, ...] with T >= 1, got shape {tuple(spikes.shape)}")
    T = spikes.shape[0]
    fired = spikes.to(torch.bool)
    first = fired.to(torch.int8).argmax(0).to(torch.float64)  # index of the first spike (0 if none)
    value = 1.0 - first / (T - 1) if T > 1 else torch.ones_like(first)
    return torch.where(fired.any(0), value, torch.zeros_like(value))


ENCODERS = {"direct": direct, "rate": rate, "latency": latency}
