"""Figures of the backward pass through spikes: what the surrogate lets through along a membrane trace.

Re-exported by :mod:`spikelab.viz.figures`; see there for the conventions shared by all builders.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from spikelab._checks import check_positive
from spikelab.viz._common import as_array, check_binary, check_same_shape, finish, real

__all__ = ["surrogate_trace_figure"]


def surrogate_trace_figure(
    h: Any,
    surrogate: Any,
    *,
    v_th: float = 1.0,
    spikes: Any = None,
    input_grad: Any = None,
    dt: float = 1.0,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """The surrogate derivative along one neuron's membrane trace: ``σ′(h[t] − v_th)`` at every step.

    The forward pass fires ``s[t] = Θ(h[t] − v_th)`` whatever the surrogate; the backward pass multiplies the
    gradient reaching ``s[t]`` by ``σ′(h[t] − v_th)`` (SPEC section 2). This row shows that factor: tall where the
    membrane passes near the threshold, near zero far from it, and zero outside a narrow surrogate's support, so two
    surrogates with the same spikes draw different curves. Spike times are marked on it.

    With ``input_grad`` (e.g. ``∂(spike count)/∂I[t]``, from :func:`spikelab.viz._explore.simulate_neuron`) a second
    row shows the gradient that reaches the input current through time (the reset and the leak carry it).

    Args:
        h: membrane potential before reset ``[T]`` (one neuron).
        surrogate: a surrogate object (``spikelab.surrogate.get("atan", alpha=2)``) or a registered name.
        v_th: firing threshold.
        spikes: optional 0/1 spikes ``[T]`` to mark.
        input_grad: optional gradient with respect to the input ``[T]``.
        dt: duration of one step; the time axis is ``t * dt``.
    """
    from spikelab import surrogate as _surrogate

    hv = as_array(h, "h", (1,))
    if isinstance(surrogate, str):
        surrogate = _surrogate.get(surrogate)
    if not callable(getattr(surrogate, "grad", None)):
        raise TypeError(f"surrogate must be a surrogate object with .grad(x) or a name, got {type(surrogate).__name__}")
    v_th = real(v_th, "v_th")
    dt = check_positive(dt, "dt")
    s = None
    if spikes is not None:
        s = as_array(spikes, "spikes", (1,))
        check_same_shape(hv, s, "h", "spikes")
        check_binary(s, "spikes")
    g_in = None
    if input_grad is not None:
        g_in = as_array(input_grad, "input_grad", (1,))
        check_same_shape(hv, g_in, "h", "input_grad")
    t = np.arange(hv.size) * dt
    sg = surrogate.grad(torch.from_numpy(hv - v_th)).double().numpy()  # σ′(h[t] − v_th)
    rows = 2 if g_in is not None else 1
    titles = [f"σ′(h[t] − V<sub>th</sub>) of {surrogate!r}: what each step's spike passes back"]
    if g_in is not None:
        titles.append("∂(spike count) / ∂I[t]: what reaches the input current")
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.16, subplot_titles=titles)
    fig.add_trace(go.Scatter(x=t, y=sg, mode="lines", name="σ′(h − V<sub>th</sub>)", line=dict(color="#ab63fa"),
                             hovertemplate="t = %{x}: σ′ = %{y:.3g}<extra></extra>"), row=1, col=1)
    if s is not None:
        on = s > 0
        fig.add_trace(go.Scatter(x=t[on], y=sg[on], mode="markers", name="spike", marker=dict(color="#ef553b",
                                 size=7), hovertemplate="spike at %{x}: σ′ = %{y:.3g}<extra></extra>"), row=1, col=1)
    fig.update_yaxes(title_text="σ′", rangemode="tozero", row=1, col=1)
    if g_in is not None:
        fig.add_trace(go.Scatter(x=t, y=g_in, mode="lines", name="∂ count / ∂I[t]", line=dict(color="#00cc96"),
                                 hovertemplate="t = %{x}: %{y:.3g}<extra></extra>"), row=2, col=1)
        fig.update_yaxes(title_text="∂ count / ∂I", row=2, col=1)
    fig.update_xaxes(title_text="time step" if dt == 1.0 else f"time (step × {dt:g})", row=rows, col=1)
    fig.update_layout(showlegend=False)
    return finish(fig, title, template)
