"""Argument checks shared by every public entry point.

Each check raises ``TypeError`` or ``ValueError`` whose message names the argument and what was expected,
so that bad input fails loudly at the boundary instead of deep inside a time loop.
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


def check_real(value: Any, name: str) -> float:
    """Check that ``value`` is a finite real number (int or float, not bool) and return it as float."""
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
