"""Figures for the analyses and paper reproductions: gradient-norm ratios across surrogate scales, power-iteration
convergence, accuracy against energy.

Re-exported by :mod:`spikelab.viz.figures`; see there for the conventions shared by all builders.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from spikelab.viz._common import as_array, check_mapping, color, finish, real

__all__ = ["depth_ratio_figure", "convergence_figure", "accuracy_energy_figure"]


def depth_ratio_figure(
    x: Any,
    ratios: Mapping[str, Any],
    *,
    x_title: str = "surrogate peak σ'(0)",
    band: tuple[float, float] = (0.1, 10.0),
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """First- to last-layer gradient-norm ratio against a surrogate knob, one line per setting, on log-log axes.

    A shaded band marks the "flat" range (``band``, default 0.1 to 10) and a dotted line ratio 1; above it the
    gradient explodes toward the input, below it vanishes. Ratios that are 0, negative or not finite (no gradient
    reached a layer) are not drawn; the hover of each point shows its value.

    Args:
        x: the knob's values ``[K]`` (e.g. the surrogate's peak height ``σ'(0)``), all > 0.
        ratios: ``{label: [K] ratios}`` (e.g. ``"18 layers, BN"``).
        band: the (low, high) ratios shaded as flat; ``low < 1 < high``.
    """
    xs = as_array(x, "x", (1,), allow_sequence=True)
    if (xs <= 0).any() or not np.isfinite(xs).all():
        raise ValueError("x must be finite and > 0 (a log axis)")
    check_mapping(dict(ratios), "ratios")
    lo, hi = real(band[0], "band[0]"), real(band[1], "band[1]")
    if not 0 < lo < 1 < hi:
        raise ValueError(f"band must satisfy 0 < low < 1 < high, got {band}")
    fig = go.Figure()
    for k, (label, seq) in enumerate(ratios.items()):
        r = as_array(seq, f"ratios[{label!r}]", (1,), allow_sequence=True)
        if r.size != xs.size:
            raise ValueError(f"ratios[{label!r}] must have len(x) = {xs.size} values, got {r.size}")
        ok = np.isfinite(r) & (r > 0)
        fig.add_trace(go.Scatter(x=xs[ok], y=r[ok], mode="lines+markers", name=str(label),
                                 line=dict(color=color(k)),
                                 hovertemplate="%{x:.3g}: ratio %{y:.3g}<extra>" + str(label) + "</extra>"))
    fig.add_hrect(y0=lo, y1=hi, fillcolor="green", opacity=0.12, line_width=0)
    fig.add_hline(y=1.0, line=dict(dash="dot", color="grey"))
    for y, text in ((0.98, "explodes toward the input ↑"), (0.02, "vanishes ↓")):
        fig.add_annotation(x=0.99, y=y, xref="paper", yref="paper", text=text, showarrow=False,
                           xanchor="right", yanchor="top" if y > 0.5 else "bottom", font=dict(color="grey"))
    fig.update_xaxes(title_text=x_title, type="log")
    fig.update_yaxes(title_text="‖∇ first layer‖ / ‖∇ last layer‖ (shaded: flat)", type="log",
                     exponentformat="power")
    return finish(fig, title, template)


def convergence_figure(
    histories: Mapping[str, Any],
    *,
    y_title: str = "top Hessian eigenvalue estimate",
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Estimate per iteration, one line per run (e.g. the Rayleigh quotients of power iteration).

    Args:
        histories: ``{label: [K] estimates}``; runs may have different lengths.
    """
    check_mapping(dict(histories), "histories")
    fig = go.Figure()
    for k, (label, seq) in enumerate(histories.items()):
        h = as_array(seq, f"histories[{label!r}]", (1,), allow_sequence=True)
        fig.add_trace(go.Scatter(x=np.arange(1, h.size + 1), y=h, mode="lines+markers", name=str(label),
                                 line=dict(color=color(k))))
    fig.update_xaxes(title_text="iteration")
    fig.update_yaxes(title_text=y_title)
    return finish(fig, title, template)


def accuracy_energy_figure(
    points: Mapping[str, tuple[float, float, float]],
    *,
    energy_unit: str = "µJ",
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Test accuracy against the energy estimate per sample, one point (with an accuracy error bar) per model.

    Args:
        points: ``{label: (energy, accuracy %, accuracy spread)}``; energy > 0 in ``energy_unit`` (log axis).
    """
    check_mapping(dict(points), "points")
    fig = go.Figure()
    for k, (label, p) in enumerate(points.items()):
        if not isinstance(p, (tuple, list)) or len(p) != 3:
            raise ValueError(f"points[{label!r}] must be (energy, accuracy, spread), got {p!r}")
        e, acc, sd = (real(v, f"points[{label!r}]") for v in p)
        if e <= 0:
            raise ValueError(f"points[{label!r}] energy must be > 0, got {e}")
        fig.add_trace(go.Scatter(x=[e], y=[acc], mode="markers+text", name=str(label), text=[str(label)],
                                 textposition="top center", marker=dict(size=12, color=color(k)),
                                 error_y=dict(type="data", array=[sd], visible=True)))
    fig.update_xaxes(title_text=f"energy per sample ({energy_unit}, 45 nm estimate)", type="log")
    fig.update_yaxes(title_text="test accuracy (%)")
    fig.update_layout(showlegend=False)
    return finish(fig, title, template)
