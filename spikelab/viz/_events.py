"""Event-camera figures: binned event frames (a grid or an animation) and raw events as a 3-D point cloud.

Re-exported by :mod:`spikelab.viz.figures`; see there for the conventions shared by all builders.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from spikelab._checks import check_int
from spikelab.viz._common import as_array, finish

ON_COLOR, OFF_COLOR = "#b2182b", "#2166ac"


def _signed_scale(template: str | None) -> list[list]:
    """OFF blue -> no events (white, or near-black on a dark template) -> ON red."""
    middle = "#111111" if template and "dark" in template else "#f7f7f7"
    return [[0.0, OFF_COLOR], [0.5, middle], [1.0, ON_COLOR]]


def event_frames_figure(
    frames: Any,
    *,
    animate: bool = False,
    max_frames: int = 16,
    cols: int = 8,
    on_channel: int = 1,
    frame_ms: int = 150,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Event frames as signed images ``ON − OFF`` (ON events red, OFF blue), as a grid or an animation.

    Without ``animate``: a grid of at most ``max_frames`` frames evenly spaced over T, each titled with its time
    step, sharing one colour scale. With ``animate``: one image with a play / pause button and a time-step slider
    over all T frames (``fig.frames``).

    Args:
        frames: event counts ``[T, 2, H, W]`` of one sample (polarity channel second).
        animate: build the animation instead of the grid.
        max_frames: most frames in the grid.
        cols: frames per grid row.
        on_channel: which channel holds ON events (1 as in tonic / SpikingJelly, where channel = polarity bit).
        frame_ms: animation frame duration in milliseconds.
    """
    f = as_array(frames, "frames", (4,))
    if f.shape[1] != 2 or f.shape[0] < 1:
        raise ValueError(f"frames must be [T, 2, H, W] with T >= 1 (ON/OFF channels second), got {tuple(f.shape)}")
    if not np.all(f >= 0):  # also false for NaN
        raise ValueError("frames must hold event counts >= 0 (no NaN)")
    if on_channel not in (0, 1) or isinstance(on_channel, bool):
        raise ValueError(f"on_channel must be 0 or 1, got {on_channel!r}")
    max_frames, cols = check_int(max_frames, "max_frames", minimum=1), check_int(cols, "cols", minimum=1)
    frame_ms = check_int(frame_ms, "frame_ms", minimum=1)
    signed = f[:, on_channel] - f[:, 1 - on_channel]  # [T, H, W]
    m = float(np.abs(signed).max()) or 1.0
    n_steps = signed.shape[0]
    heat = dict(coloraxis="coloraxis", hovertemplate="x %{x}, y %{y}: ON − OFF = %{z}<extra></extra>")
    coloraxis = dict(colorscale=_signed_scale(template), cmin=-m, cmax=m,
                     colorbar=dict(title=dict(text="ON − OFF<br>events")))
    if not animate:
        idx = np.unique(np.linspace(0, n_steps - 1, min(n_steps, max_frames)).round().astype(int))
        ncols = min(cols, idx.size)
        nrows = math.ceil(idx.size / ncols)
        fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=[f"t = {t}" for t in idx],
                            horizontal_spacing=0.02, vertical_spacing=0.08 if nrows > 1 else 0.02)
        for k, t in enumerate(idx):
            r, c = k // ncols + 1, k % ncols + 1
            fig.add_trace(go.Heatmap(z=signed[t], name=f"t = {t}", **heat), row=r, col=c)
            anchor = "x" if k == 0 else f"x{k + 1}"
            fig.update_yaxes(scaleanchor=anchor, row=r, col=c)
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, constrain="domain",
                         autorange="reversed")
        fig.update_xaxes(title_text="x (pixel)", row=nrows, col=1)
        fig.update_yaxes(title_text="y (pixel)", col=1)
        cell = 560 / ncols * signed.shape[1] / signed.shape[2]  # height of one frame at about 700 px width
        fig.update_layout(coloraxis=coloraxis, height=int(100 + nrows * (cell + 40)))
        return finish(fig, title, template)

    play = dict(frame=dict(duration=frame_ms, redraw=True), fromcurrent=True, transition=dict(duration=0))
    still = dict(frame=dict(duration=0, redraw=True), mode="immediate", transition=dict(duration=0))
    fig = go.Figure(
        data=[go.Heatmap(z=signed[0], name="events", **heat)],
        frames=[go.Frame(data=[go.Heatmap(z=signed[t])], traces=[0], name=str(t)) for t in range(n_steps)],
    )
    fig.update_layout(
        coloraxis=coloraxis,
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.12, xanchor="left", yanchor="top",
                          showactive=False, buttons=[
                              dict(label="▶ play", method="animate", args=[None, play]),
                              dict(label="❚❚ pause", method="animate", args=[[None], still]),
                          ])],
        sliders=[dict(active=0, x=0.2, len=0.8, y=-0.08, yanchor="top", currentvalue=dict(prefix="t = "),
                      steps=[dict(label=str(t), method="animate", args=[[str(t)], still])
                             for t in range(n_steps)])],
    )
    fig.update_xaxes(title_text="x (pixel)")
    fig.update_yaxes(title_text="y (pixel)", autorange="reversed", scaleanchor="x")
    return finish(fig, title, template)


def events_scatter_figure(
    events: np.ndarray,
    *,
    max_events: int = 50_000,
    seed: int = 0,
    time_unit: str = "µs",
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Raw events as a 3-D point cloud (x, y, t), ON events (p > 0) red and OFF events blue.

    Above ``max_events`` events a uniform random subset of that size is drawn (with ``seed``), kept in time order.
    Always two traces, ``ON`` then ``OFF``, even if one is empty.

    Args:
        events: numpy structured array with fields ``t``, ``x``, ``y``, ``p`` (as tonic returns).
        max_events: most events drawn.
        seed: seed of the subsampling.
        time_unit: unit of ``t`` for the axis title.
    """
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise TypeError(f"events must be a numpy structured array with fields t, x, y, p, got {type(events).__name__}")
    missing = [k for k in ("t", "x", "y", "p") if k not in events.dtype.names]
    if missing:
        raise ValueError(f"events lacks the fields {missing}; it has {list(events.dtype.names)}")
    if events.ndim != 1:
        raise ValueError(f"events must be 1-D, got shape {events.shape}")
    max_events = check_int(max_events, "max_events", minimum=1)
    ev = events
    if ev.size > max_events:
        keep = np.sort(np.random.default_rng(seed).choice(ev.size, size=max_events, replace=False))
        ev = ev[keep]
    on = ev["p"] > 0
    fig = go.Figure()
    for name, mask, col in (("ON", on, ON_COLOR), ("OFF", ~on, OFF_COLOR)):
        fig.add_trace(go.Scatter3d(x=ev["x"][mask], y=ev["y"][mask], z=ev["t"][mask], mode="markers", name=name,
                                   marker=dict(size=2, color=col, opacity=0.7)))
    fig.update_layout(scene=dict(xaxis_title="x (pixel)", yaxis_title="y (pixel)", zaxis_title=f"t ({time_unit})"))
    return finish(fig, title, template)
