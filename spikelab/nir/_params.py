"""Neuron parameters between spikelab's per-step charge and NIR's continuous-time neurons (SPEC section 1).

spikelab charges ``h[t] = decay * v[t-1] + k * I[t] + c`` (``k = 1``, ``c = 0`` for its LIF, IF and PLIF; a loaded
neuron may carry a per-neuron input scale ``k`` and offset ``c``). NIR's LIF is ``tau dv/dt = (v_leak - v) + R I``
and its IF ``dv/dt = R I``; both fire when ``v > v_threshold`` and reset to ``v_reset``.

With a step ``dt`` (same unit as ``tau``):

- Euler (``"euler"``, the peers' choice): ``v[t] = (1 - dt/tau) v + (dt/tau) (v_leak + R I)``, so
  ``decay = 1 - dt/tau``, ``k = R dt/tau``, ``c = (dt/tau) v_leak``; export ``tau = dt/(1 - decay)``,
  ``R = k/(1 - decay)``, ``v_leak = c/(1 - decay)``.
- exact (``"exact"``, the input held over the step): ``v[t] = e^(-dt/tau) v + (1 - e^(-dt/tau)) (v_leak + R I)``, so
  ``decay = exp(-dt/tau)``, ``k = (1 - decay) R``, ``c = (1 - decay) v_leak``; export ``tau = -dt/ln(decay)`` and the
  same ``R`` and ``v_leak``.
- IF (``decay = 1``) in both: ``v[t] = v + dt R I``, so ``k = R dt``; export ``R = k/dt``.

Neuron parameters are written as float64 arrays of the layer's per-sample shape, so that ``decay`` survives the
round trip to the last bit of a float32 model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import nir
import numpy as np

DISCRETISATIONS = ("euler", "exact")


@dataclass(frozen=True)
class Charge:
    """One spiking layer in spikelab's terms: ``h = decay * v + k * I + c``, fire at ``v_th``, hard reset.

    ``k`` and ``c`` are floats or float64 arrays of the layer's per-sample shape; the rest are floats.
    """

    decay: float
    k: float | np.ndarray
    c: float | np.ndarray
    v_th: float
    v_reset: float


def check_dt(dt: object, name: str = "dt") -> float:
    """``dt`` must be a finite float > 0 (the step in the unit of NIR's ``tau``; default 1e-4 as snnTorch)."""
    if isinstance(dt, bool) or not isinstance(dt, (int, float)):
        raise TypeError(f"{name} must be a positive number (the time step in the unit of tau), got {type(dt).__name__}")
    if not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {dt}")
    return float(dt)


def to_nir_neuron(
    charge: Charge, shape: tuple[int, ...], *, dt: float, discretisation: str, layer: str
) -> nir.NIRNode:
    """The NIR ``LIF`` (or ``IF`` for ``decay = 1``) node with per-neuron parameters of ``shape``."""

    def full(value: float | np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=np.float64), shape).copy()

    d = charge.decay
    v_th, v_reset = full(charge.v_th), full(charge.v_reset)
    if d == 1.0:
        if np.any(full(charge.c) != 0):
            raise ValueError(f"layer {layer!r}: NIR's IF has no constant input; this neuron adds one (c != 0)")
        return nir.IF(r=full(charge.k) / dt, v_threshold=v_th, v_reset=v_reset)
    if discretisation == "exact":
        if d == 0.0:
            raise ValueError(
                f"layer {layer!r}: decay = 0 has no exact time constant (tau = 0); export it with "
                "discretisation='euler' (tau = dt)"
            )
        tau = -dt / math.log(d)
    else:
        tau = dt / (1.0 - d)
    return nir.LIF(
        tau=full(tau), r=full(charge.k) / (1.0 - d), v_leak=full(charge.c) / (1.0 - d),
        v_threshold=v_th, v_reset=v_reset,
    )


def _array(node: nir.NIRNode, field: str, name: str) -> np.ndarray:
    value = np.asarray(getattr(node, field), dtype=np.float64)
    if not np.all(np.isfinite(value)):
        raise ValueError(f"NIR node {name!r} ({type(node).__name__}): {field} must be finite, got {value.ravel()[:4]}")
    return value


def _uniform(value: np.ndarray, field: str, node: nir.NIRNode, name: str) -> float:
    flat = np.unique(value.ravel())
    if flat.size != 1:
        raise ValueError(
            f"NIR node {name!r} ({type(node).__name__}) has {flat.size} different values of {field} "
            f"(e.g. {flat[:3].tolist()}); spikelab neurons share one {field} per layer"
        )
    return float(flat[0])


def _tolerance(node: nir.NIRNode, *fields: str) -> float:
    """Rounding slack of the stored parameters: 8 machine epsilons of their coarsest float type."""
    eps = float(np.finfo(np.float64).eps)
    for field in fields:
        dtype = np.asarray(getattr(node, field)).dtype
        if dtype.kind == "f":
            eps = max(eps, float(np.finfo(dtype).eps))
    return 8 * eps


def _snap(value: np.ndarray, target: float, tol: float) -> float | np.ndarray:
    """``target`` where every entry is within ``tol`` of it (the file's rounding), else ``value`` itself."""
    if np.all(np.abs(value - target) <= tol * max(1.0, abs(target))):
        return target
    if np.unique(value.ravel()).size == 1:
        return float(value.ravel()[0])
    return value


def from_nir_neuron(node: nir.NIRNode, *, dt: float, discretisation: str, name: str) -> Charge:
    """spikelab's :class:`Charge` for a NIR ``LIF`` or ``IF`` node (the inverse of :func:`to_nir_neuron`).

    ``k`` is snapped to 1 and ``c`` to 0 where the file's parameters give them up to rounding (8 epsilons of
    the parameters' float type: snnTorch writes float32). Raises ``ValueError`` naming the node for a
    non-finite parameter, a threshold <= 0, a time constant that gives no valid decay, or per-neuron
    time constants, thresholds or resets that differ within the layer.
    """
    v_th = _uniform(_array(node, "v_threshold", name), "v_threshold", node, name)
    v_reset = _uniform(_array(node, "v_reset", name), "v_reset", node, name)
    if v_th <= 0:
        raise ValueError(f"NIR node {name!r}: v_threshold must be > 0 for a spikelab neuron, got {v_th}")
    r = _array(node, "r", name)
    if isinstance(node, nir.IF):
        k = r * dt
        return Charge(1.0, _snap(k, 1.0, _tolerance(node, "r")), 0.0, v_th, v_reset)
    tau = _uniform(_array(node, "tau", name), "tau", node, name)
    if tau <= 0:
        raise ValueError(f"NIR node {name!r}: tau must be > 0, got {tau}")
    if discretisation == "exact":
        decay = math.exp(-dt / tau)
        gain = 1.0 - decay
    else:
        if tau < dt:
            raise ValueError(
                f"NIR node {name!r}: tau = {tau:g} is shorter than dt = {dt:g}, so the Euler step would give a "
                "negative decay; load it with the dt it was written for, or with discretisation='exact'"
            )
        decay = 1.0 - dt / tau
        gain = dt / tau
    tol = _tolerance(node, "tau", "r", "v_leak")
    k = _snap(r * gain, 1.0, tol)
    c = _snap(_array(node, "v_leak", name) * gain, 0.0, tol)
    return Charge(decay, k, c, v_th, v_reset)
