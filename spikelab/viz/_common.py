"""Input checks and layout helpers shared by the figure builders.

Builders accept torch tensors or numpy arrays; :func:`as_array` turns either into a float numpy array and checks
its number of dimensions, so a wrong shape fails with a message naming the argument.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from spikelab._checks import check_real

# Colours cycled over runs, layers and neurons (plotly's default qualitative palette).
PALETTE = (
    "#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a",
    "#19d3f3", "#ff6692", "#b6e880", "#ff97ff", "#fecb52",
)


def color(i: int) -> str:
    """The ``i``-th colour of :data:`PALETTE`, cycling."""
    return PALETTE[i % len(PALETTE)]


def as_array(x: Any, name: str, ndims: Sequence[int] | None = None, allow_sequence: bool = False) -> np.ndarray:
    """Return ``x`` (a tensor or ndarray; a list or tuple if ``allow_sequence``) as a float64 numpy array.

    ``ndims`` lists the accepted numbers of dimensions. Raises ``TypeError`` for other types and ``ValueError``
    for a wrong number of dimensions or non-numeric data, naming ``name``.
    """
    if isinstance(x, torch.Tensor):
        arr = x.detach().to("cpu", torch.float64).numpy()
    elif isinstance(x, np.ndarray):
        arr = x
    elif allow_sequence and isinstance(x, (list, tuple)):
        items = [float(v) if isinstance(v, torch.Tensor) else v for v in x]
        try:
            if _holds_non_real(np.asarray(items, dtype=object)):
                raise TypeError
            arr = np.asarray(items, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a rectangular sequence of real numbers") from None
    else:
        kinds = "a torch.Tensor, numpy array, list or tuple" if allow_sequence else "a torch.Tensor or numpy array"
        raise TypeError(f"{name} must be {kinds}, got {type(x).__name__}")
    if arr.dtype.kind not in "biuf":
        if _holds_non_real(arr):  # numpy would turn "1" into 1.0 and drop imaginary parts
            raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}") from None
    if ndims is not None and arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {want}, got shape {tuple(arr.shape)}")
    return np.asarray(arr, dtype=np.float64)


def _holds_non_real(arr: np.ndarray) -> bool:
    """True if ``arr`` holds text or complex numbers (which ``astype(float)`` would silently convert)."""
    if arr.dtype.kind in "USc":
        return True
    return arr.dtype.kind == "O" and any(isinstance(v, (str, bytes, complex, np.complexfloating)) for v in arr.flat)


def check_binary(arr: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` unless every entry of ``arr`` is 0 or 1."""
    if arr.size and not np.all((arr == 0) | (arr == 1)):
        bad = arr[(arr != 0) & (arr != 1)].flat[0]
        raise ValueError(f"{name} must hold only 0 and 1 (spikes), found {bad!r}")


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"{name_b} must have the same shape as {name_a} {tuple(a.shape)}, got {tuple(b.shape)}")


def check_mapping(x: Any, name: str) -> dict:
    """Return ``x`` if it is a non-empty dict, else raise naming ``name``."""
    if not isinstance(x, dict):
        raise TypeError(f"{name} must be a dict, got {type(x).__name__}")
    if not x:
        raise ValueError(f"{name} must not be empty")
    return x


def finish(fig: go.Figure, title: str | None, template: str | None) -> go.Figure:
    """Set the figure's title and template (either may be None to keep plotly's default); return ``fig``."""
    if title is not None:
        if not isinstance(title, str):
            raise TypeError(f"title must be a str or None, got {type(title).__name__}")
        fig.update_layout(title_text=title)
    if template is not None:
        if not isinstance(template, str):
            raise TypeError(f"template must be a str (e.g. 'plotly_dark') or None, got {type(template).__name__}")
        fig.update_layout(template=template)
    fig.update_layout(margin=dict(l=60, r=20, t=60 if title else 30, b=50))
    return fig


def add_hint(fig: go.Figure, text: str) -> go.Figure:
    """Write ``text`` across the middle of ``fig`` (a plot that has nothing to show yet says what will appear and
    how); returns ``fig``."""
    if not isinstance(text, str) or not text:
        raise TypeError(f"text must be a non-empty str, got {text!r}")
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14, color="#666"), bgcolor="rgba(255,255,255,0.85)", name="hint")
    return fig


def row_names(names: Sequence[str] | None, n: int, arg: str, default: list[str]) -> list[str]:
    """Row labels: ``names`` as strings (checked to number ``n``), or ``default``."""
    if names is None:
        return default
    if isinstance(names, str) or not isinstance(names, (list, tuple, range)):
        raise TypeError(f"{arg} must be a list of labels, got {type(names).__name__}")
    if len(names) != n:
        raise ValueError(f"{arg} must have {n} entries (one per row), got {len(names)}")
    return [str(x) for x in names]


def integer_ticks(n: int) -> dict:
    """Axis settings that label rows 0 .. n-1 with whole numbers only (no 0.5 ticks between neurons)."""
    step = 1
    for base in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000):
        step = base
        if n / base <= 10:
            break
    return dict(tick0=0, dtick=step, tickformat="d")


def log_colorbar(zlog: np.ndarray, title: str) -> dict:
    """A colourbar for data plotted as ``log10(value)``: ticks labelled with the value, not its exponent.

    Ticks sit on whole decades (``10<sup>k</sup>``) when the data spans at least two; otherwise on five evenly
    spaced values labelled with three significant digits.
    """
    finite = zlog[np.isfinite(zlog)]
    if finite.size == 0:
        return dict(title=dict(text=title))
    lo, hi = float(finite.min()), float(finite.max())
    decades = np.arange(np.ceil(lo), np.floor(hi) + 1)
    if decades.size >= 2:
        vals = decades
        text = [f"10<sup>{int(k)}</sup>" for k in decades]
    else:
        vals = np.linspace(lo, hi, 5) if hi > lo else np.array([lo])
        text = [f"{10 ** v:.3g}" for v in vals]
    return dict(title=dict(text=title), tickvals=[float(v) for v in vals], ticktext=text)


def log_ticks(lo: float, hi: float) -> dict:
    """Axis ticks for a log axis spanning ``[lo, hi]`` (both > 0): the 1-2-5 values inside it, labelled as plain
    numbers (``0.5, 1, 2, 5, 10``), instead of plotly's bare mantissas (``5, 1, 2, 5``) that hide the decade."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 or hi < lo:
        raise ValueError(f"log_ticks needs 0 < lo <= hi, got lo={lo!r}, hi={hi!r}")
    vals = [m * 10.0 ** k for k in range(int(np.floor(np.log10(lo))), int(np.floor(np.log10(hi))) + 1)
            for m in (1, 2, 5)]
    eps = 1e-9
    vals = [v for v in vals if lo * (1 - eps) <= v <= hi * (1 + eps)]
    if len(vals) < 2:  # a span narrower than one step of 1-2-5: the two ends
        vals = sorted({lo, hi})
    return dict(tickvals=vals, ticktext=[f"{v:g}" for v in vals])


def real(value: Any, name: str) -> float:
    """``check_real`` that also accepts numpy scalars (``np.float32(0.1)``) and 0-d arrays."""
    if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
        value = value.item()
    return check_real(value, name)
