"""The neuron equations, written once (SPEC section 1). Modules in :mod:`spikelab.neurons` only loop over them.

Charge:  ``h[t] = decay * v[t-1] + I[t]``                       (``v[-1] = v_init``)
Fire:    ``s[t] = Theta(h[t] - v_th)``                          (backward: the surrogate's derivative)
Reset:   hard ``v[t] = h[t] * (1 - s[t]) + v_reset * s[t]``
         soft ``v[t] = h[t] - v_th * s[t]``
         none ``v[t] = h[t]``
``detach_reset``: the ``s[t]`` used in the reset carries no gradient.

A membrane exactly at threshold fires (``Theta(0) = 1``), as in SpikingJelly; snnTorch, TET's code and the
pretraining paper's code fire only strictly above it. PLIF's published form scales the input by ``1 - decay``
(``1/tau``) before the charge; :class:`spikelab.neurons.PLIF` does that once for the whole sequence.
Currents and states are real floating-point tensors (SPEC section 1).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from spikelab._checks import check_float_tensor
from spikelab.surrogate import Surrogate

RESET_MODES = ("hard", "soft", "none")

Decay = float | torch.Tensor


def charge(v: torch.Tensor, x: torch.Tensor, decay: Decay) -> torch.Tensor:
    """Leaky integration ``h = decay * v + x`` (``decay = 1``: the IF neuron, no leak)."""
    return decay * v + x


def fire(h: torch.Tensor, v_th: float, surrogate: Surrogate) -> torch.Tensor:
    """Spike ``s = Theta(h - v_th)`` with the surrogate's derivative in the backward pass."""
    return surrogate(h - v_th)


def reset(
    h: torch.Tensor, s: torch.Tensor, *, mode: str, v_th: float, v_reset: float = 0.0, detach: bool = False
) -> torch.Tensor:
    """Membrane after the spike: ``hard`` to ``v_reset``, ``soft`` by subtracting ``v_th``, or ``none``."""
    if detach:
        s = s.detach()
    if mode == "hard":
        return h * (1 - s) + v_reset * s
    if mode == "soft":
        return h - v_th * s
    if mode == "none":
        return h
    raise ValueError(f"reset must be one of {', '.join(repr(m) for m in RESET_MODES)}; got {mode!r}")


def neuron_step(
    x: torch.Tensor,
    v: torch.Tensor,
    *,
    decay: Decay,
    v_th: float,
    reset_mode: str,
    surrogate: Surrogate,
    v_reset: float = 0.0,
    detach_reset: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One time step: charge, fire, reset. Returns ``(s, h, v_new)``, all shaped like ``x``."""
    check_float_tensor(x, "x")
    h = charge(v, x, decay)
    s = fire(h, v_th, surrogate)
    return s, h, reset(h, s, mode=reset_mode, v_th=v_th, v_reset=v_reset, detach=detach_reset)


class SequenceResult(NamedTuple):
    """What :func:`neuron_sequence` returns. ``h_seq`` and ``v_seq`` are None unless ``record=True``."""

    spikes: torch.Tensor  # [T, B, ...]
    v: torch.Tensor  # [B, ...] membrane after the last step
    h_seq: torch.Tensor | None  # [T, B, ...] membrane before reset (charged), detached
    v_seq: torch.Tensor | None  # [T, B, ...] membrane after reset, detached


def neuron_sequence(
    x_seq: torch.Tensor,
    *,
    decay: Decay,
    v_th: float,
    reset_mode: str,
    surrogate: Surrogate,
    v_reset: float = 0.0,
    detach_reset: bool = False,
    v_init: torch.Tensor | float = 0.0,
    record: bool = False,
) -> SequenceResult:
    """Run :func:`neuron_step` over ``x_seq`` ``[T, B, ...]`` from ``v_init`` (a float or a ``[B, ...]`` state).

    The time loop unbinds ``x_seq`` once (indexing ``x_seq[t]`` of a tensor that requires grad is slow).
    """
    check_float_tensor(x_seq, "x_seq")
    if isinstance(v_init, torch.Tensor):
        check_float_tensor(v_init, "v_init")
        v = v_init
    else:
        v = torch.full_like(x_seq[0], float(v_init))
    spikes, hs, vs = [], [], []
    for x in x_seq.unbind(0):
        s, h, v = neuron_step(
            x, v, decay=decay, v_th=v_th, reset_mode=reset_mode, surrogate=surrogate,
            v_reset=v_reset, detach_reset=detach_reset,
        )
        spikes.append(s)
        if record:
            hs.append(h.detach())
            vs.append(v.detach())
    return SequenceResult(
        torch.stack(spikes), v, torch.stack(hs) if record else None, torch.stack(vs) if record else None
    )
