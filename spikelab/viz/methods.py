"""Figures of the papers' methods for labs 06-09: the two losses over time (SPEC section 3) and the clipped ramp of
pipe-S (SPEC section 4). Pure builders: tensors or numbers in, a plotly ``go.Figure`` out; every builder accepts
``title=`` and ``template=`` and names its axes.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from spikelab._checks import check_range
from spikelab.losses import sdt_loss, tet_loss
from spikelab.viz._common import color, finish

__all__ = ["tet_loss_figure", "ramp_figure", "step_accuracy_figure", "binned_events_figure", "event_rate_figure",
           "LAM_GRID"]

#: the lam values the TET curve is drawn at
LAM_GRID = np.round(np.linspace(0.0, 1.0, 51), 4)


def tet_loss_figure(outputs: Any, targets: Any, *, lam: float, phi: float = 1.0, title: str | None = None,
                    template: str | None = None) -> go.Figure:
    """SDT and TET on the same per-step outputs.

    Left: the cross-entropy of each step's own output, ``CE(O[t], y)`` (averaged over the batch), beside SDT's
    ``CE(mean_t O[t], y)`` and TET's cross-entropy term ``mean_t CE(O[t], y)``. Right: TET's loss
    ``(1 - lam) mean_t CE(O[t], y) + lam mean_t MSE(O[t], phi)`` against ``lam``, with SDT's as a line and the
    chosen ``lam`` marked (SPEC section 3).

    Args:
        outputs: logits ``[T, B, C]``.
        targets: class indices ``[B]``.
        lam: the regulariser weight to mark, in [0, 1].
        phi: the regulariser's target.

    Raises:
        ValueError / TypeError: as :func:`spikelab.losses.tet_loss` for the outputs and targets; ``lam`` outside
            [0, 1] or not a number.
    """
    lam = check_range(lam, "lam", 0.0, 1.0)
    o = torch.as_tensor(outputs).detach().cpu()
    y = torch.as_tensor(targets).detach().cpu()
    sdt = float(sdt_loss(o, y))
    T = o.shape[0]
    per_step = [float(tet_loss(o[t:t + 1], y, lam=0.0)) for t in range(T)]
    tet_ce = float(tet_loss(o, y, lam=0.0))
    curve = [float(tet_loss(o, y, lam=float(v), phi=phi)) for v in LAM_GRID]
    now = float(tet_loss(o, y, lam=lam, phi=phi))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("cross-entropy of each step's output",
                                                        "TET's loss against lam"))
    fig.add_trace(go.Bar(x=list(range(T)), y=per_step, name="CE(O[t], y)", marker_color=color(0)), row=1, col=1)
    for k, (value, label) in enumerate(((tet_ce, "TET's term: mean over t of CE(O[t], y)"),
                                        (sdt, "SDT: CE(mean over t of O[t], y)"))):
        fig.add_trace(go.Scatter(x=[-0.5, T - 0.5], y=[value, value], mode="lines", name=label,
                                 line=dict(color=color(k + 1), dash="dash" if k else "solid")), row=1, col=1)
    fig.add_trace(go.Scatter(x=LAM_GRID, y=curve, mode="lines", name="TET loss", line=dict(color=color(1))),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=[0.0, 1.0], y=[sdt, sdt], mode="lines", name="SDT loss (no lam)", showlegend=False,
                             line=dict(color=color(2), dash="dash")), row=1, col=2)
    fig.add_trace(go.Scatter(x=[lam], y=[now], mode="markers", name=f"lam = {lam:g}: {now:.3f}",
                             marker=dict(size=11, color=color(3))), row=1, col=2)
    fig.update_xaxes(title_text="time step t", tick0=0, dtick=1, row=1, col=1)
    fig.update_xaxes(title_text="lam", range=[0, 1], row=1, col=2)
    fig.update_yaxes(title_text="cross-entropy (nats)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="loss (nats)", rangemode="tozero", row=1, col=2)
    fig.update_layout(height=380, legend=dict(orientation="h", y=-0.25))
    return finish(fig, title or f"SDT {sdt:.3f} against TET {now:.3f} at lam = {lam:g}", template)


def ramp_figure(*, epoch: float, length: float = 100.0, v_th: float = 0.5, title: str | None = None,
                template: str | None = None) -> go.Figure:
    """The clipped ramp of pipe-S at pretraining ``epoch``, beside where it starts (epoch 0, a clipped ReLU) and
    the spike step ``Θ(x - v_th)`` it anneals toward (SPEC section 4): ``clip((x - a) / (b - a), 0, 1)`` with
    ``(a, b) = RampSchedule(length).bounds(epoch, v_th)``.

    Args:
        epoch: pretraining epoch (>= 0); epochs past ``length`` keep the sharpest ramp.
        length: the schedule's length in epochs (official 100).
        v_th: the SNN's threshold (official 0.5).
    """
    from spikelab.transfer import ClippedRamp, RampSchedule

    schedule = RampSchedule(length=length)
    ramp = ClippedRamp(v_th=v_th, schedule=schedule, epoch=epoch, surrogate=None)
    start = ClippedRamp(v_th=v_th, schedule=schedule, epoch=0.0, surrogate=None)
    a, b = ramp.bounds
    x = torch.linspace(-0.25 * v_th, 2.5 * v_th, 551, dtype=torch.float64)
    step = (x >= v_th).to(torch.float64)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x.numpy(), y=start(x).numpy(), mode="lines", name="epoch 0: clipped ReLU",
                             line=dict(color=color(0), dash="dot")))
    fig.add_trace(go.Scatter(x=x.numpy(), y=ramp(x).numpy(), mode="lines", name=f"epoch {epoch:g}: the ramp",
                             line=dict(color=color(1), width=3)))
    fig.add_trace(go.Scatter(x=x.numpy(), y=step.numpy(), mode="lines", name="the spike Θ(x − v_th)",
                             line=dict(color=color(2), dash="dash")))
    fig.update_xaxes(title_text="input current x (a.u.)")
    fig.update_yaxes(title_text="activation", range=[-0.05, 1.1])
    fig.update_layout(height=360)
    return finish(fig, title or f"epoch {epoch:g} of {length:g}: a = {a:.3f}, b = {b:.3f} (slope {1 / (b - a):.3g})",
                  template)


def step_accuracy_figure(curves: Mapping[str, Mapping[str, Sequence[float]]], *, title: str | None = None,
                         template: str | None = None) -> go.Figure:
    """Accuracy of each step's own output ``argmax O[t]`` (solid) and of the mean of the first ``t + 1`` outputs
    (dotted), in %, one pair of lines per run.

    Args:
        curves: ``{label: {"step": [T] fractions, "mean": [T] fractions}}``
            (:func:`spikelab.losses.per_step_accuracy`, :func:`spikelab.analysis.network.accuracy_by_steps`).
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must map at least one run label to {'step': [...], 'mean': [...]}")
    fig = go.Figure()
    for k, (label, c) in enumerate(curves.items()):
        steps = list(range(len(c["step"])))
        fig.add_trace(go.Scatter(x=steps, y=[100 * a for a in c["step"]], mode="lines+markers",
                                 name=f"{label}: O[t] alone", line=dict(color=color(k))))
        fig.add_trace(go.Scatter(x=steps, y=[100 * a for a in c["mean"]], mode="lines+markers",
                                 name=f"{label}: mean of O[0..t]", line=dict(color=color(k), dash="dot")))
    fig.update_xaxes(title_text="time step t", tick0=0, dtick=1)
    fig.update_yaxes(title_text="test accuracy (%)")
    fig.update_layout(height=340, legend=dict(orientation="h", y=-0.3))
    return finish(fig, title or "each step's output on its own, and their running mean", template)


def binned_events_figure(events: Any, *, T: int, H: int, W: int, by: str = "time", title: str | None = None,
                         template: str | None = None) -> go.Figure:
    """An event stream cut into ``T`` frames (:func:`spikelab.data.events.events_to_frames`: ``by="time"``, equal
    time bins over the stream; ``by="count"``, bins of equal event count) and drawn as signed frames ON − OFF
    (:func:`spikelab.viz.figures.event_frames_figure`, at most 16 frames shown).

    Args:
        events: a structured array with fields ``t`` (µs), ``x``, ``y``, ``p``.
        T: number of frames (time bins). H, W: the sensor's height and width in pixels.
    """
    from spikelab.data.events import events_to_frames
    from spikelab.viz._events import event_frames_figure

    frames = events_to_frames(events, T, H, W, by=by)  # [T, 2, H, W]
    counts = frames.sum(axis=(1, 2, 3))
    return event_frames_figure(frames, max_frames=16, cols=8, template=template,
                               title=title or f"{len(events)} events in {T} frames by {by}: "
                                              f"{int(counts.min())} to {int(counts.max())} events per frame")


def event_rate_figure(events: Any, *, bins: int = 60, title: str | None = None,
                      template: str | None = None) -> go.Figure:
    """How many ON and OFF events an event stream holds per time bin (``bins`` equal bins over the stream): the
    saccades of an emulated recording show as bursts.

    Args:
        events: a structured array with fields ``t`` (µs), ``x``, ``y``, ``p`` (1 = ON), at least one event.
        bins: number of time bins.
    """
    from spikelab._checks import check_int

    bins = check_int(bins, "bins", minimum=1)
    if not isinstance(events, np.ndarray) or events.dtype.names is None or "t" not in events.dtype.names:
        raise TypeError("events must be a structured numpy array with fields t, x, y, p")
    if len(events) == 0:
        raise ValueError("events must hold at least one event")
    t = events["t"].astype(np.float64) / 1000.0  # ms
    edges = np.linspace(t.min(), t.max() + 1e-3, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    for k, (name, mask) in enumerate((("ON", events["p"] > 0), ("OFF", events["p"] <= 0))):
        counts, _ = np.histogram(t[mask], bins=edges)
        fig.add_trace(go.Scatter(x=centres, y=counts, mode="lines", name=name,
                                 line=dict(color="#d62728" if k == 0 else "#1f77b4")))
    fig.update_xaxes(title_text="time (ms)")
    fig.update_yaxes(title_text=f"events per {(edges[1] - edges[0]):.1f} ms", rangemode="tozero")
    fig.update_layout(height=320)
    return finish(fig, title or f"{len(events)} events over {t.max() - t.min():.0f} ms", template)
