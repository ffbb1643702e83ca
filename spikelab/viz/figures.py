"""Pure figure builders: tensors, arrays or a History in, a plotly ``go.Figure`` out.

No builder shows, saves or touches a widget; a notebook displays the figure, a dashboard copies its traces into a
``FigureWidget``. Every builder accepts ``title=`` and ``template=`` (e.g. ``"plotly_dark"`` to follow a dark Voila
theme), names its axes, and raises ``TypeError``/``ValueError`` naming the argument when an input has the wrong type
or shape. Arrays may be torch tensors (detached and moved to the CPU here) or numpy arrays.

This module holds the neuron-level figures (membrane traces, rasters, encodings, surrogates, firing rates,
gradient norms); training figures live in ``_training.py``, event-camera figures in ``_events.py``, the labs'
analysis figures (F-I curves, code trade-offs, width sweeps, accuracy against steps, energy) in ``_analysis.py``, the
papers' analysis figures (gradient ratios, convergence, accuracy against energy) in ``_papers.py``, the surrogate
derivative along a membrane trace in ``_gradients.py``;
all are re-exported here so that ``spikelab.viz.figures`` is the one place to import builders from.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from spikelab._checks import check_int, check_positive
from spikelab.viz._common import (
    as_array, check_binary, check_mapping, check_same_shape, color, finish, integer_ticks, log_colorbar, real,
    row_names,
)
from spikelab.viz._analysis import (
    accuracy_by_steps_figure, code_tradeoff_figure, energy_compare_figure, fi_curve_figure, per_step_figure,
    spike_count_figure, width_sweep_figure,
)
from spikelab.viz._papers import accuracy_energy_figure, convergence_figure, depth_ratio_figure
from spikelab.viz._events import event_frames_figure, events_scatter_figure
from spikelab.viz._gradients import surrogate_trace_figure
from spikelab.viz._training import (
    confusion_figure, curves_figure, landscape_1d_figure, landscape_2d_figure, ops_table_figure,
)

__all__ = [
    "membrane_figure", "raster_figure", "encoding_figure", "surrogate_figure", "firing_rate_figure",
    "firing_rate_time_figure", "gradient_heatmap", "curves_figure", "confusion_figure", "landscape_1d_figure",
    "landscape_2d_figure", "event_frames_figure", "events_scatter_figure", "ops_table_figure",
    "depth_ratio_figure", "convergence_figure", "accuracy_energy_figure",
    "fi_curve_figure", "code_tradeoff_figure", "spike_count_figure", "width_sweep_figure", "accuracy_by_steps_figure",
    "per_step_figure", "energy_compare_figure", "surrogate_trace_figure",
]

MAX_NEURONS = 5  # membrane_figure plots at most this many neurons unless `neurons=` picks them
RASTER_TIME_BINS = 1000  # the count heatmap has at most this many time bins ...
RASTER_NEURON_BINS = 500  # ... and this many neuron bins
SVG_MAX_POINTS = 10_000  # rasters with at most this many spikes are SVG, not WebGL (see raster_figure)
RATE_LABEL = "firing rate (spikes / neuron / step)"
X_LABEL = "x = V<sub>m</sub> − V<sub>th</sub>"


def _time_label(dt: float) -> str:
    return "time step" if dt == 1.0 else f"time (step × {dt:g})"


def membrane_figure(
    v_seq: Any,
    spikes: Any,
    *,
    v_th: float = 1.0,
    input_current: Any = None,
    dt: float = 1.0,
    neurons: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Membrane potential of a few neurons over time, with the threshold and their spikes.

    Stacked panels sharing the time axis: the input current ``I[t]`` (if given), the membrane potential with a
    dashed line at ``v_th`` (pass the potential *before* reset, ``h[t]``, to see it cross the line), and one row
    of spike ticks per neuron (``s[t] = Θ(h[t] − v_th)``), each row named. Currents and potentials are in arbitrary
    units (a.u.), those of ``v_th``. A legend appears only when there is more than one neuron to tell apart.

    Args:
        v_seq: membrane potential, ``[T]`` (one neuron) or ``[T, N]``.
        spikes: 0/1 spikes, same shape as ``v_seq``.
        v_th: firing threshold, drawn as a horizontal line.
        input_current: optional input current, same shape as ``v_seq``.
        dt: duration of one step; the time axis is ``t * dt``.
        neurons: indices of the neurons to plot (default: the first ``MAX_NEURONS``).
        names: a label per plotted neuron (default ``"neuron <index>"``).
    """
    v = as_array(v_seq, "v_seq", (1, 2))
    s = as_array(spikes, "spikes", (1, 2))
    check_same_shape(v, s, "v_seq", "spikes")
    check_binary(s, "spikes")
    cur = None
    if input_current is not None:
        cur = as_array(input_current, "input_current", (1, 2))
        check_same_shape(v, cur, "v_seq", "input_current")
    v_th = real(v_th, "v_th")
    dt = check_positive(dt, "dt")
    if v.shape[0] < 1:
        raise ValueError(f"v_seq must have T >= 1 time steps, got shape {tuple(v.shape)}")
    if v.ndim == 1:
        v, s = v[:, None], s[:, None]
        cur = None if cur is None else cur[:, None]
    n_total = v.shape[1]
    if neurons is None:
        picked = list(range(min(n_total, MAX_NEURONS)))
    else:
        if not isinstance(neurons, (list, tuple, range)) or len(neurons) == 0:
            raise TypeError(f"neurons must be a non-empty list of neuron indices, got {neurons!r}")
        picked = [check_int(n, "neurons[i]", minimum=0) for n in neurons]
        if max(picked) >= n_total:
            raise ValueError(f"neurons must be indices below N = {n_total}, got {max(picked)}")
    labels = row_names(names, len(picked), "names", [f"neuron {n}" for n in picked])

    t = np.arange(v.shape[0]) * dt
    rows = (["input current"] if cur is not None else []) + ["membrane", "spikes"]
    heights = ([0.25] if cur is not None else []) + [0.5, 0.25]
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=heights)
    row_v, row_s = len(rows) - 1, len(rows)
    for k, (n, label) in enumerate(zip(picked, labels)):
        line = dict(color=color(k), width=1.5)
        if cur is not None:
            fig.add_trace(go.Scatter(x=t, y=cur[:, n], mode="lines", name=label, legendgroup=label,
                                     showlegend=False, line=line), row=1, col=1)
        fig.add_trace(go.Scatter(x=t, y=v[:, n], mode="lines", name=label, legendgroup=label, line=line),
                      row=row_v, col=1)
        ts = t[s[:, n] > 0]
        fig.add_trace(go.Scatter(x=ts, y=np.full(ts.shape, k), mode="markers", name=label, legendgroup=label,
                                 showlegend=False, marker=dict(symbol="line-ns-open", size=14, color=color(k),
                                                               line=dict(width=2, color=color(k))),
                                 hovertemplate="spike at %{x}<extra>%{fullData.name}</extra>"), row=row_s, col=1)
    fig.add_hline(y=v_th, line=dict(dash="dash", color="grey", width=1.5), annotation_text="V<sub>th</sub>",
                  annotation_position="top left", row=row_v, col=1)
    if cur is not None:
        fig.update_yaxes(title_text="I[t] (a.u.)", row=1, col=1)
    fig.update_yaxes(title_text="V<sub>m</sub> (a.u.)", row=row_v, col=1)
    fig.update_yaxes(title_text="spikes", tickvals=list(range(len(picked))), ticktext=labels,
                     showticklabels=len(picked) > 1, range=[-0.5, len(picked) - 0.5], showgrid=False,
                     row=row_s, col=1)
    fig.update_xaxes(title_text=_time_label(dt), row=row_s, col=1)
    fig.update_layout(showlegend=len(picked) > 1, height=160 + 100 * len(rows))
    return finish(fig, title, template)


def _spike_coords(spikes: Any, name: str) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(T, N, t_idx, n_idx) of a 0/1 ``[T, N]`` tensor or array, without a float64 copy of the whole raster."""
    if isinstance(spikes, torch.Tensor):
        x = spikes.detach().cpu()
        if x.dim() != 2:
            raise ValueError(f"{name} must be 2-D [T, N] (flatten features with .reshape(T, -1)), "
                             f"got shape {tuple(x.shape)}")
        if x.dtype != torch.bool and not bool(((x == 0) | (x == 1)).all()):
            raise ValueError(f"{name} must hold only 0 and 1 (spikes)")
        t_idx, n_idx = (c.numpy() for c in torch.nonzero(x, as_tuple=True))
    elif isinstance(spikes, np.ndarray):
        x = spikes
        if x.ndim != 2:
            raise ValueError(f"{name} must be 2-D [T, N] (flatten features with .reshape(T, -1)), "
                             f"got shape {tuple(x.shape)}")
        if x.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
        if x.dtype != bool:
            check_binary(x, name)
        t_idx, n_idx = np.nonzero(x)
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(spikes).__name__}")
    return int(x.shape[0]), int(x.shape[1]), t_idx, n_idx


def raster_figure(
    spikes: Any,
    *,
    names: Sequence[str] | None = None,
    y_title: str = "neuron",
    max_points: int = 500_000,
    svg_points: int = SVG_MAX_POINTS,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Spike raster: a tick at (time step, neuron) for every spike.

    Rows are labelled with ``names`` when given (e.g. ``["hard", "soft", "none"]``), else with whole neuron
    indices. Up to ``svg_points`` spikes are drawn as SVG ticks (``Scatter``), up to ``max_points`` as WebGL ticks
    (``Scattergl``, fast for 100k+ spikes; every WebGL plot holds one of the browser's few graphics contexts). Above
    that the figure is a heatmap of spike counts in bins of ``ceil(T / RASTER_TIME_BINS)`` steps by
    ``ceil(N / RASTER_NEURON_BINS)`` neurons, placed at the bin centres.

    Args:
        spikes: 0/1 spikes ``[T, N]`` of one sample (flatten conv features first).
        names: a label per row (``N`` of them).
        y_title: what a row is (``"neuron"``, ``"input pixel"``, ...).
        max_points: most spikes drawn individually.
        svg_points: most spikes drawn as SVG.
    """
    n_steps, n_neurons, t_idx, n_idx = _spike_coords(spikes, "spikes")
    max_points = check_int(max_points, "max_points", minimum=0)
    svg_points = check_int(svg_points, "svg_points", minimum=0)
    if not isinstance(y_title, str):
        raise TypeError(f"y_title must be a str, got {type(y_title).__name__}")
    labels = row_names(names, n_neurons, "names", [])
    fig = go.Figure()
    if t_idx.size <= max_points:
        size = float(np.clip(400 / max(n_neurons, 1), 3, 12))
        cls = go.Scatter if t_idx.size <= svg_points else go.Scattergl
        hover = "t = %{x}, %{text}<extra></extra>" if labels else f"t = %{{x}}, {y_title} %{{y}}<extra></extra>"
        fig.add_trace(cls(x=t_idx, y=n_idx, mode="markers", name="spikes",
                          text=[labels[i] for i in n_idx] if labels else None,
                          marker=dict(symbol="line-ns-open", size=size, line=dict(width=1)), hovertemplate=hover))
        fig.update_xaxes(range=[-0.5, n_steps - 0.5])
        fig.update_yaxes(range=[-0.5, n_neurons - 0.5])
    else:
        bt = -(-n_steps // RASTER_TIME_BINS)
        bn = -(-n_neurons // RASTER_NEURON_BINS)
        nt, nn = -(-n_steps // bt), -(-n_neurons // bn)
        counts = np.bincount((t_idx // bt) * nn + n_idx // bn, minlength=nt * nn).reshape(nt, nn)
        fig.add_trace(go.Heatmap(z=counts.T, x=np.arange(nt) * bt + (bt - 1) / 2,
                                 y=np.arange(nn) * bn + (bn - 1) / 2, colorscale="Greys", name="spike count",
                                 colorbar=dict(title=dict(text=f"spikes per bin<br>({bt} step × {bn} {y_title})")),
                                 hovertemplate=f"t ≈ %{{x}}, {y_title} ≈ %{{y}}: %{{z}} spikes<extra></extra>"))
    fig.update_xaxes(title_text="time step", **integer_ticks(n_steps))
    if labels:
        fig.update_yaxes(title_text=y_title, tickvals=list(range(n_neurons)), ticktext=labels)
    else:
        fig.update_yaxes(title_text=y_title, **integer_ticks(n_neurons))
    return finish(fig, title, template)


def encoding_figure(
    x_seq: Any,
    *,
    image: Any = None,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """An encoded input of one sample as a heatmap of features (flattened) over time steps.

    Binary encodings (rate, latency) are drawn black-on-white like a raster; real-valued ones (direct) with a
    colour scale. With ``image`` the original input is shown beside it.

    Args:
        x_seq: encoded input of one sample, ``[T, ...]`` (e.g. ``[T, 1, 28, 28]``); features are flattened.
        image: optional original input, ``[H, W]``, ``[1, H, W]`` (grey) or ``[3, H, W]`` (RGB in [0, 1]).
    """
    x = as_array(x_seq, "x_seq")
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"x_seq must be [T, ...] for one sample (at least 2-D), got shape {tuple(x.shape)}")
    z = x.reshape(x.shape[0], -1).T  # [F, T]
    binary = bool(np.all((z == 0) | (z == 1)))
    cols = 1 if image is None else 2
    fig = make_subplots(rows=1, cols=cols, column_widths=[0.3, 0.7] if cols == 2 else None,
                        subplot_titles=(["original"] if cols == 2 else []) + ["encoded input"],
                        horizontal_spacing=0.12)
    if image is not None:
        img = as_array(image, "image", (2, 3))
        if img.ndim == 3 and img.shape[0] not in (1, 3):
            raise ValueError(f"image must be [H, W], [1, H, W] or [3, H, W], got shape {tuple(img.shape)}")
        if img.ndim == 2 or img.shape[0] == 1:
            fig.add_trace(go.Heatmap(z=img.reshape(img.shape[-2:]), colorscale=[[0, "black"], [1, "white"]],
                                     showscale=False, name="original"), row=1, col=1)
        else:
            rgb = np.clip(np.moveaxis(img, 0, -1), 0.0, 1.0) * 255
            fig.add_trace(go.Image(z=rgb, name="original"), row=1, col=1)
        fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", title_text="y (pixel)",
                         row=1, col=1)
        fig.update_xaxes(title_text="x (pixel)", constrain="domain", row=1, col=1)
    heat = dict(colorscale=[[0, "white"], [1, "black"]], zmin=0, zmax=1, showscale=False) if binary else dict(
        colorscale="Viridis", colorbar=dict(title=dict(text="value")))
    fig.add_trace(go.Heatmap(z=z, name="encoded input", hovertemplate="t = %{x}, feature %{y}: %{z}<extra></extra>",
                             **heat), row=1, col=cols)
    fig.update_xaxes(title_text="time step", row=1, col=cols)
    fig.update_yaxes(title_text="feature (flattened)", autorange="reversed", row=1, col=cols)
    return finish(fig, title, template)


def _surrogate_items(surrogates: Any) -> list[tuple[str, Any]]:
    if isinstance(surrogates, Mapping):
        items = [(str(k), v) for k, v in check_mapping(dict(surrogates), "surrogates").items()]
    elif isinstance(surrogates, (list, tuple)):
        if not surrogates:
            raise ValueError("surrogates must not be empty")
        items = [(None, v) for v in surrogates]
    else:
        items = [(None, surrogates)]
    out = []
    for label, obj in items:
        if isinstance(obj, str):
            from spikelab.surrogate import get
            obj = get(obj)
        if not (callable(getattr(obj, "primitive", None)) and callable(getattr(obj, "grad", None))):
            raise TypeError(f"surrogates must hold surrogate objects with .primitive(x) and .grad(x) (or names), "
                            f"got {type(obj).__name__}")
        out.append((label if label is not None else repr(obj), obj))
    return out


def surrogate_figure(
    surrogates: Any,
    *,
    x_range: tuple[float, float] = (-2.0, 2.0),
    n: int = 401,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Surrogate families side by side: the smooth primitive σ(x) next to the step Θ(x), and the derivative σ′(x).

    Forward passes use the step ``Θ(x)``; backward passes use ``σ′(x)`` at ``x = h − v_th``.

    Args:
        surrogates: one surrogate, a list of them (labelled by ``repr``), or ``{label: surrogate}``; names such as
            ``"atan"`` are built with ``spikelab.surrogate.get``.
        x_range: ``(low, high)`` of x.
        n: number of sample points.
    """
    items = _surrogate_items(surrogates)
    if not isinstance(x_range, (tuple, list)) or len(x_range) != 2:
        raise TypeError(f"x_range must be a (low, high) pair, got {x_range!r}")
    lo, hi = real(x_range[0], "x_range[0]"), real(x_range[1], "x_range[1]")
    if not lo < hi:
        raise ValueError(f"x_range must have low < high, got {x_range!r}")
    n = check_int(n, "n", minimum=2)
    x = torch.linspace(lo, hi, n, dtype=torch.float64)
    x[x.abs() < 1e-9 * (hi - lo)] = 0.0  # sample the step and the peaks exactly at 0 (linspace gives ~1e-17)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=("primitive σ(x) and the step Θ(x)",
                                                        "derivative σ′(x) (backward pass)"))
    if lo < 0.0 <= hi:
        xs, ys = [lo, 0.0, 0.0, hi], [0.0, 0.0, 1.0, 1.0]
    else:
        xs, ys = [lo, hi], [float(lo >= 0)] * 2
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="step Θ(x)",
                             line=dict(color="grey", dash="dash")), row=1, col=1)
    xn = x.numpy()
    with torch.no_grad():
        for k, (label, sg) in enumerate(items):
            for col, fn in ((1, sg.primitive), (2, sg.grad)):
                y = fn(x)
                if not isinstance(y, torch.Tensor) or tuple(y.shape) != (n,):
                    raise ValueError(f"surrogate {label}: {fn.__name__}(x) must return a tensor shaped like x ({n},)")
                fig.add_trace(go.Scatter(x=xn, y=y.detach().cpu().numpy(), mode="lines", name=label,
                                         legendgroup=label, showlegend=col == 1, line=dict(color=color(k))),
                              row=1, col=col)
    fig.update_xaxes(title_text=X_LABEL)
    fig.update_yaxes(title_text="σ(x)", row=1, col=1)
    fig.update_yaxes(title_text="σ′(x)", row=1, col=2)
    return finish(fig, title, template)


def firing_rate_figure(
    rates: Mapping[str, float], *, title: str | None = None, template: str | None = None
) -> go.Figure:
    """Mean firing rate per layer as bars (spikes per neuron per time step, in [0, 1] for binary spikes).

    Args:
        rates: ``{layer_name: rate}`` in network order.
    """
    rates = check_mapping(dict(rates) if isinstance(rates, Mapping) else rates, "rates")
    values = [real(v, f"rates[{k!r}]") for k, v in rates.items()]
    for k, v in zip(rates, values):
        if v < 0:
            raise ValueError(f"rates[{k!r}] must be >= 0, got {v}")
    fig = go.Figure(go.Bar(x=[str(k) for k in rates], y=values, name="firing rate", text=[f"{v:.3f}" for v in values],
                           textposition="auto", hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    fig.update_xaxes(title_text="layer", type="category")
    fig.update_yaxes(title_text=RATE_LABEL, rangemode="tozero")
    return finish(fig, title, template)


def firing_rate_time_figure(
    rates_t: Mapping[str, Any], *, title: str | None = None, template: str | None = None
) -> go.Figure:
    """Firing rate of each layer over time steps, one line per layer.

    Args:
        rates_t: ``{layer_name: rates}``, each a ``[T]`` sequence, tensor or array of spikes per neuron at step t.
    """
    rates_t = check_mapping(dict(rates_t) if isinstance(rates_t, Mapping) else rates_t, "rates_t")
    fig = go.Figure()
    for k, (name, seq) in enumerate(rates_t.items()):
        r = as_array(seq, f"rates_t[{name!r}]", (1,), allow_sequence=True)
        fig.add_trace(go.Scatter(x=np.arange(r.size), y=r, mode="lines+markers", name=str(name),
                                 line=dict(color=color(k))))
    fig.update_xaxes(title_text="time step")
    fig.update_yaxes(title_text=RATE_LABEL, rangemode="tozero")
    return finish(fig, title, template)


def gradient_heatmap(
    grad_norms: Any,
    *,
    layer_names: Sequence[str] | None = None,
    log: bool = True,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Gradient norm per layer (rows, input side on top) and time step (columns) as a heatmap.

    With ``log`` the colour is ``log10(‖∇‖)`` and the colourbar is labelled in powers of ten, so growth or decay
    layer by layer and step by step (exploding / vanishing gradients) shows as a colour gradient. Zero norms are
    left blank on the log scale; the hover shows the raw value.

    Args:
        grad_norms: ``[L, T]`` tensor or array, or ``{layer_name: [T] sequence}``; entries >= 0 (NaN = missing).
        layer_names: row labels for an ``[L, T]`` input (default ``"layer 0"``, ...).
        log: colour by ``log10`` of the norm.
    """
    if isinstance(grad_norms, Mapping):
        if layer_names is not None:
            raise ValueError("layer_names is taken from the keys when grad_norms is a dict; leave it None")
        check_mapping(dict(grad_norms), "grad_norms")
        rows = [as_array(v, f"grad_norms[{k!r}]", (1,), allow_sequence=True) for k, v in grad_norms.items()]
        if len({r.size for r in rows}) > 1:
            raise ValueError(f"grad_norms sequences must all have the same length T, got {[r.size for r in rows]}")
        g, names = np.stack(rows), [str(k) for k in grad_norms]
    else:
        g = as_array(grad_norms, "grad_norms", (2,))
        names = [f"layer {i}" for i in range(g.shape[0])] if layer_names is None else [str(n) for n in layer_names]
        if len(names) != g.shape[0]:
            raise ValueError(f"layer_names must have L = {g.shape[0]} entries, got {len(names)}")
    if np.isinf(g).any() or (g < 0).any():
        raise ValueError("grad_norms must be finite and >= 0 (NaN marks a missing value)")
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(g > 0, np.log10(np.where(g > 0, g, 1.0)), np.nan)
        colorbar = log_colorbar(z, "gradient norm<br>(log scale)")
    else:
        z, colorbar = g, dict(title=dict(text="gradient norm"))
    fig = go.Figure(go.Heatmap(z=z, x=np.arange(g.shape[1]), y=names, customdata=g, colorscale="Viridis",
                               colorbar=colorbar, name="gradient norm",
                               hovertemplate="%{y}, t = %{x}: ‖∇‖ = %{customdata:.3g}<extra></extra>"))
    fig.update_xaxes(title_text="time step")
    fig.update_yaxes(title_text="layer", autorange="reversed", type="category")
    return finish(fig, title, template)


# lab 11's figure of full-scale runs (kept at the end, apart from the imports above, so that merges stay clean)
from spikelab.viz._scale import accuracy_vs_T_figure  # noqa: E402

__all__ += ["accuracy_vs_T_figure"]

# lab 10's truth tables of the residual joins
from spikelab.viz._fullspike import join_table_figure  # noqa: E402

__all__ += ["join_table_figure"]
