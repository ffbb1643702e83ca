"""Argument checks shared by every public entry point.

Each check raises ``TypeError`` or ``ValueError`` whose message names the argument and what was expected,
so that bad input fails loudly at the boundary instead of deep inside a time loop.

Rules they enforce across the package:

- Range checks on tensors go through :func:`check_tensor_range`, which rejects NaN (a test written as
  ``x.min() < lo or x.max() > hi`` is False for NaN and lets it through).
- Currents, inputs and sequences are floating-point tensors (:func:`check_float_tensor`): integer and bool
  tensors are not silently converted, complex ones are refused with a clear message.
- Settings (thresholds, decays, widths, gains) are plain numbers: a 0-d tensor is read as a float, but one that
  requires grad is refused (:func:`check_real`), since reading it as a float would silently cut its gradient.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


def check_tensor(x: Any, name: str) -> torch.Tensor:
    """Return ``x`` if it is a tensor, else raise ``TypeError`` naming ``name``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def check_time_first(x: Any, name: str = "x_seq", min_dim: int = 2) -> torch.Tensor:
    """Check that ``x`` is a time-first tensor ``[T, B, ...]`` with ``T >= 1``."""
    check_tensor(x, name)
    if x.dim() < min_dim:
        raise ValueError(
            f"{name} must be time-first [T, B, ...] with at least {min_dim} dimensions, "
            f"got shape {tuple(x.shape)}"
        )
    if x.shape[0] < 1:
        raise ValueError(f"{name} must have T >= 1 time steps (dimension 0), got shape {tuple(x.shape)}")
    return x


def check_int(value: Any, name: str, minimum: int | None = None) -> int:
    """Check that ``value`` is an int (not a bool) and at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_float_tensor(x: Any, name: str) -> torch.Tensor:
    """Check that ``x`` is a real floating-point tensor (float16, bfloat16, float32 or float64).

    Integer and bool tensors are refused rather than converted (``x.float()`` says what is meant), and so are
    complex ones, whose imaginary part nothing in a spiking network could use.
    """
    check_tensor(x, name)
    if not x.is_floating_point():
        if x.is_complex():
            fix = f"take {name}.real or {name}.abs() explicitly"
        elif x.dtype == torch.uint8:
            fix = f"convert it explicitly, e.g. {name}.float() (or {name}.float() / 255 for 8-bit images)"
        else:
            fix = f"convert it explicitly, e.g. {name}.float()"
        raise TypeError(
            f"{name} must be a real floating-point tensor (float16, bfloat16, float32 or float64), got {x.dtype}; "
            f"{fix}"
        )
    return x


def check_tensor_range(x: torch.Tensor, name: str, low: float, high: float, hint: str = "") -> torch.Tensor:
    """Check that every entry of ``x`` lies in ``[low, high]``; NaN is out of range (unlike ``x.min() < low``).

    The message gives the offending range and the number of NaN entries; ``hint`` is appended to it.
    """
    check_tensor(x, name)
    if x.numel() == 0:
        return x
    xf = x.detach()
    inside = (xf >= low) & (xf <= high)  # False for NaN
    if not bool(inside.all()):
        nan = int(torch.isnan(xf).sum()) if xf.is_floating_point() else 0
        finite = xf[~torch.isnan(xf)] if nan else xf
        got = f"range [{finite.min().item():.4g}, {finite.max().item():.4g}]" if finite.numel() else "no number"
        if nan:
            got += f" and {nan} NaN value{'s' if nan > 1 else ''}"
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}]{hint}, got {got}")
    return x


def check_not_learnable(value: Any, name: str, hint: str = "") -> None:
    """Refuse a tensor that requires grad where a plain number (a fixed setting) is expected.

    Such a tensor would be read once as a float, so its gradient would be silently lost; ``hint`` says where the
    learnable version lives (e.g. PLIF for a learned decay).
    """
    if isinstance(value, torch.Tensor) and value.requires_grad:
        raise TypeError(
            f"{name} must be a number, got a tensor that requires grad: it would be read once as a float and never "
            f"learn{hint or ' (pass a plain number, or value.item() if it is not meant to be learned)'}"
        )


def check_real(value: Any, name: str) -> float:
    """Check that ``value`` is a finite real number (int or float, not bool) and return it as float.

    A 0-d tensor is read as its value, unless it requires grad (see :func:`check_not_learnable`).
    """
    check_not_learnable(value, name)
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def check_positive(value: Any, name: str) -> float:
    """Check that ``value`` is a finite number > 0."""
    v = check_real(value, name)
    if v <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return v


def check_range(value: Any, name: str, low: float, high: float) -> float:
    """Check that ``low <= value <= high``."""
    v = check_real(value, name)
    if not low <= v <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return v


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    """Check that ``value`` is one of ``choices``; the message lists the valid ones."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value
