"""Figures of the labs' analyses: F-I curves, what input codes cost, spike counts per pixel, how far the gradient
travels at each surrogate width, accuracy against time steps, statistics per time step, and SNN-against-ANN
operations and energy.

Re-exported by :mod:`spikelab.viz.figures`; see there for the conventions shared by all builders.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from spikelab.viz._common import as_array, check_mapping, color, finish, log_ticks, real

__all__ = ["fi_curve_figure", "code_tradeoff_figure", "spike_count_figure", "width_sweep_figure",
           "accuracy_by_steps_figure", "per_step_figure", "energy_compare_figure"]

FLAT_BAND = (0.1, 10.0)  # gradient ratios (first layer / last) drawn as "roughly flat"
RATIO_FLOOR = 1e-12  # ratios below this (0: no gradient at all) are drawn at the floor of the log axis


def _curves(curves: Any, name: str, size: int | None = None) -> dict[str, np.ndarray]:
    """``{label: [K] values}`` checked to be 1-D (and of length ``size``)."""
    check_mapping(dict(curves) if isinstance(curves, Mapping) else curves, name)
    out = {}
    for label, seq in curves.items():
        y = as_array(seq, f"{name}[{label!r}]", (1,), allow_sequence=True)
        if size is not None and y.size != size:
            raise ValueError(f"{name}[{label!r}] must have {size} values, got {y.size}")
        out[str(label)] = y
    return out


def fi_curve_figure(
    currents: Any,
    rates: Mapping[str, Any],
    *,
    threshold_current: float | None = None,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Firing rate against a constant input current (the F-I curve), one line per neuron setting.

    Args:
        currents: input currents ``[K]`` (a.u.).
        rates: ``{label: [K] rates}`` in spikes per step (e.g. one per reset mode, from
            :func:`spikelab.analysis.fi_curve`).
        threshold_current: if given, a dotted line marks the current below which the neuron never fires.
    """
    i = as_array(currents, "currents", (1,), allow_sequence=True)
    curves = _curves(rates, "rates", i.size)
    fig = go.Figure()
    for k, (label, y) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=i, y=y, mode="lines", name=label, line=dict(color=color(k), width=2),
                                 hovertemplate="I = %{x:.3g}: %{y:.3f} spikes / step<extra>%{fullData.name}</extra>"))
    if threshold_current is not None:
        fig.add_vline(x=real(threshold_current, "threshold_current"), line=dict(dash="dot", color="grey"),
                      annotation_text="threshold current I*", annotation_position="top left")
    fig.update_xaxes(title_text="constant input current I (a.u.)")
    fig.update_yaxes(title_text="firing rate (spikes / step)", rangemode="tozero")
    fig.update_layout(legend_title_text="reset")
    return finish(fig, title, template)


def code_tradeoff_figure(tradeoff: Mapping[str, Mapping[str, Any]], *, title: str | None = None,
                         template: str | None = None) -> go.Figure:
    """Fidelity against cost of input codes: decoding error and spikes per input against ``T`` (log axes).

    Args:
        tradeoff: ``{code: {"T": [K], "rmse": [K], "spikes": [K]}}`` as :func:`spikelab.analysis.code_tradeoff`
            returns.
    """
    check_mapping(dict(tradeoff) if isinstance(tradeoff, Mapping) else tradeoff, "tradeoff")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("how faithful: error of the decoded intensity", "what it costs: spikes"))
    for k, (code, d) in enumerate(tradeoff.items()):
        if not isinstance(d, Mapping) or not {"T", "rmse", "spikes"} <= set(d):
            raise ValueError(f"tradeoff[{code!r}] must be a dict with keys 'T', 'rmse' and 'spikes'")
        t = as_array(d["T"], f"tradeoff[{code!r}]['T']", (1,), allow_sequence=True)
        for col, key in ((1, "rmse"), (2, "spikes")):
            y = as_array(d[key], f"tradeoff[{code!r}][{key!r}]", (1,), allow_sequence=True)
            if y.size != t.size:
                raise ValueError(f"tradeoff[{code!r}][{key!r}] must have {t.size} values, got {y.size}")
            fig.add_trace(go.Scatter(x=t, y=y, mode="lines+markers", name=f"{code} code", legendgroup=code,
                                     showlegend=col == 1, line=dict(color=color(k))), row=1, col=col)
    steps = sorted({float(v) for d in tradeoff.values() for v in np.asarray(d["T"]).ravel()})
    fig.update_xaxes(title_text="time steps T", type="log", tickvals=steps, ticktext=[f"{v:g}" for v in steps])
    fig.update_yaxes(type="log", dtick=1, exponentformat="power")
    fig.update_yaxes(title_text="RMS error (intensity, 0-1)", row=1, col=1)
    fig.update_yaxes(title_text="spikes per input", row=1, col=2)
    return finish(fig, title, template)


def spike_count_figure(image: Any, counts: Any, *, title: str | None = None,
                       template: str | None = None) -> go.Figure:
    """An image next to the number of spikes each of its pixels sent (a code's picture of it).

    Args:
        image: intensities ``[H, W]`` (or ``[1, H, W]``) in [0, 1].
        counts: spikes per pixel ``[H, W]`` (or ``[1, H, W]``), e.g. ``spikes.sum(0)``.
    """
    img = as_array(image, "image", (2, 3))
    cnt = as_array(counts, "counts", (2, 3))
    img, cnt = img.reshape(img.shape[-2:]), cnt.reshape(cnt.shape[-2:])
    if img.shape != cnt.shape:
        raise ValueError(f"counts must have the image's shape {img.shape}, got {cnt.shape}")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.18,
                        subplot_titles=("input intensity", "spikes sent per pixel"))
    fig.add_trace(go.Heatmap(z=img, colorscale="Greys", reversescale=True, zmin=0, zmax=1, name="intensity",
                             colorbar=dict(title=dict(text="intensity"), x=0.41, len=0.9),
                             hovertemplate="x %{x}, y %{y}: %{z:.2f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Heatmap(z=cnt, colorscale="Viridis", zmin=0, name="spike count",
                             colorbar=dict(title=dict(text="spikes"), len=0.9),
                             hovertemplate="x %{x}, y %{y}: %{z:.0f} spikes<extra></extra>"), row=1, col=2)
    fig.update_xaxes(title_text="x (pixel)", constrain="domain")
    fig.update_yaxes(title_text="y (pixel)", autorange="reversed", constrain="domain")
    fig.update_yaxes(scaleanchor="x", row=1, col=1)
    fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    return finish(fig, title, template)


def width_sweep_figure(
    sweeps: Mapping[str, Mapping[str, Any]],
    *,
    band: tuple[float, float] = FLAT_BAND,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """How far the gradient travels (first-layer over last-layer gradient norm) against each surrogate's width
    parameter, one panel per family, one line per condition (e.g. with and without batch norm), log axes.

    The shaded band marks "roughly flat"; a ratio of 0 (no gradient reaches the first layer) is drawn at
    ``RATIO_FLOOR``.

    Args:
        sweeps: ``{family: {"param": width parameter name, "widths": [K], "ratios": {condition: [K]}}}``, e.g.
            from :func:`spikelab.analysis.width_sweep`.
        band: ``(low, high)`` ratios shaded as flat.
    """
    check_mapping(dict(sweeps) if isinstance(sweeps, Mapping) else sweeps, "sweeps")
    lo, hi = real(band[0], "band[0]"), real(band[1], "band[1]")
    families = list(sweeps)
    fig = make_subplots(rows=1, cols=len(families), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=families)
    conditions: list[str] = []
    for col, fam in enumerate(families, start=1):
        d = sweeps[fam]
        if not isinstance(d, Mapping) or not {"param", "widths", "ratios"} <= set(d):
            raise ValueError(f"sweeps[{fam!r}] must be a dict with keys 'param', 'widths' and 'ratios'")
        w = as_array(d["widths"], f"sweeps[{fam!r}]['widths']", (1,), allow_sequence=True)
        for cond, ratios in _curves(d["ratios"], f"sweeps[{fam!r}]['ratios']", w.size).items():
            if cond not in conditions:
                conditions.append(cond)
            k = conditions.index(cond)
            shown = np.where(np.isfinite(ratios), np.maximum(ratios, RATIO_FLOOR), np.nan)
            fig.add_trace(go.Scatter(x=w, y=shown, customdata=ratios, mode="lines+markers", name=cond,
                                     legendgroup=cond, showlegend=col == 1, line=dict(color=color(k)),
                                     hovertemplate=f"{d['param']} = %{{x:.3g}}: ratio %{{customdata:.3g}}"
                                                   "<extra>%{fullData.name}</extra>"), row=1, col=col)
        fig.add_hrect(y0=lo, y1=hi, fillcolor="green", opacity=0.12, line_width=0, row=1, col=col)
        positive = w[np.isfinite(w) & (w > 0)]
        ticks = log_ticks(float(positive.min()), float(positive.max())) if positive.size else {}
        fig.update_xaxes(title_text=str(d["param"]), type="log", **ticks, row=1, col=col)
    fig.update_yaxes(type="log", exponentformat="power")
    fig.update_yaxes(title_text="gradient at layer 1 / at last layer", row=1, col=1)
    fig.update_layout(height=380, legend=dict(orientation="h", y=-0.25))
    return finish(fig, title, template)


def accuracy_by_steps_figure(
    accuracies: Mapping[str, Any] | Any,
    *,
    trained_T: int | None = None,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Accuracy of the prediction read after the first ``t`` time steps, against ``t`` (how many steps a network
    needs), one line per network.

    Args:
        accuracies: ``[T]`` fractions (from :func:`spikelab.analysis.accuracy_by_steps`) or ``{label: [T]}``.
        trained_T: if given, a dotted line marks the number of steps the network was trained with.
    """
    curves = _curves(accuracies if isinstance(accuracies, Mapping) else {"accuracy": accuracies}, "accuracies")
    fig = go.Figure()
    for k, (label, acc) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=np.arange(1, acc.size + 1), y=100 * acc, mode="lines+markers", name=label,
                                 line=dict(color=color(k)), hovertemplate="%{x} steps: %{y:.1f} %<extra></extra>"))
    if trained_T is not None:
        fig.add_vline(x=real(trained_T, "trained_T"), line=dict(dash="dot", color="grey"),
                      annotation_text="trained with T", annotation_position="bottom right")
    longest = max(a.size for a in curves.values())
    fig.update_xaxes(title_text="time steps read (t)", tick0=1, dtick=max(1, longest // 10), range=[0.5, longest + 0.5])
    fig.update_yaxes(title_text="test accuracy (%)", range=[0, 101])
    fig.update_layout(showlegend=len(curves) > 1)
    return finish(fig, title, template)


def per_step_figure(
    series: Mapping[str, Any],
    *,
    y_title: str,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """A statistic per time step (e.g. the mean of a normalised current), one line per method.

    Args:
        series: ``{label: [T] values}``, all of the same length.
        y_title: the statistic and its unit.
    """
    curves = _curves(series, "series")
    if len({y.size for y in curves.values()}) > 1:
        raise ValueError("series must all have the same length T")
    fig = go.Figure()
    for k, (label, y) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=np.arange(y.size), y=y, mode="lines+markers", name=label,
                                 line=dict(color=color(k))))
    fig.update_xaxes(title_text="time step", tick0=0, dtick=1)
    fig.update_yaxes(title_text=y_title)
    return finish(fig, title, template)


def energy_compare_figure(
    totals: Mapping[str, Mapping[str, float]],
    *,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Operations and energy per sample of several networks side by side (e.g. an SNN and its ANN twin).

    Args:
        totals: ``{network: {"acs", "macs", "energy_pj"}}`` per sample (``spikelab.metrics.ops_totals``).
    """
    check_mapping(dict(totals) if isinstance(totals, Mapping) else totals, "totals")
    names = list(totals)
    vals = {}
    for n in names:
        d = totals[n]
        if not isinstance(d, Mapping) or not {"acs", "macs", "energy_pj"} <= set(d):
            raise ValueError(f"totals[{n!r}] must be a dict with keys 'acs', 'macs' and 'energy_pj'")
        vals[n] = {k: real(d[k], f"totals[{n!r}][{k!r}]") for k in ("acs", "macs", "energy_pj")}
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14,
                        subplot_titles=("synaptic operations per sample", "energy per sample (45 nm)"))
    for k, (kind, label) in enumerate((("acs", "accumulates (AC, 0.9 pJ)"), ("macs", "multiply-accumulates "
                                                                              "(MAC, 4.6 pJ)"))):
        fig.add_trace(go.Bar(x=names, y=[vals[n][kind] / 1e6 for n in names], name=label, marker_color=color(k),
                             hovertemplate="%{x}: %{y:.3g} M<extra>%{fullData.name}</extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=[vals[n]["energy_pj"] / 1e6 for n in names], name="energy",
                         marker_color=color(2), showlegend=False,
                         text=[f"{vals[n]['energy_pj'] / 1e6:.3g} µJ" for n in names], textposition="auto",
                         hovertemplate="%{x}: %{y:.3g} µJ<extra></extra>"), row=1, col=2)
    fig.update_yaxes(title_text="operations (millions)", row=1, col=1)
    fig.update_yaxes(title_text="energy (µJ)", row=1, col=2)
    fig.update_xaxes(type="category")
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.2))
    return finish(fig, title, template)
