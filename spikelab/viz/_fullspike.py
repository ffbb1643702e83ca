"""Figures of full-spike networks (lab 10): the residual joins as truth tables (SPEC section 5).

Re-exported by :mod:`spikelab.viz.figures`; see there for the conventions shared by all builders.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from spikelab.viz._common import finish

__all__ = ["join_table", "join_table_figure"]


def join_table(connect: str) -> np.ndarray:
    """The output of join ``connect`` for every pair of binary inputs: ``[2, 2]``, row ``a`` (the block's spikes),
    column ``s`` (the shortcut's), computed by :func:`spikelab.models.resnet.sew_function` itself."""
    from spikelab.models.resnet import sew_function

    a = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    s = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    return sew_function(a, s, connect).numpy()


def join_table_figure(connects: Sequence[str] = ("ADD", "IAND", "AND", "OR", "XOR"), *, title: str | None = None,
                      template: str | None = None) -> go.Figure:
    """One 2 x 2 truth table per join ``g(a, s)``: rows the block's spike ``a``, columns the shortcut's spike
    ``s``; cells hold the output, coloured 0 (white), 1 (blue) and 2 (red: not a spike, as ADD gives)."""
    if isinstance(connects, str) or not connects:
        raise ValueError("connects must be a non-empty sequence of join names")
    fig = make_subplots(rows=1, cols=len(connects), subplot_titles=[str(c) for c in connects],
                        horizontal_spacing=0.04)
    for k, connect in enumerate(connects):
        z = join_table(connect)
        fig.add_trace(go.Heatmap(z=z, x=["s = 0", "s = 1"], y=["a = 0", "a = 1"], zmin=0, zmax=2, showscale=False,
                                 colorscale=[[0, "#ffffff"], [0.5, "#4c78a8"], [1, "#e45756"]], xgap=2, ygap=2,
                                 text=[[f"{v:g}" for v in row] for row in z], texttemplate="%{text}",
                                 textfont=dict(size=18), name=str(connect),
                                 hovertemplate=f"{connect}: %{{y}}, %{{x}} → %{{z}}<extra></extra>"),
                      row=1, col=k + 1)
        fig.update_yaxes(autorange="reversed", showticklabels=k == 0, row=1, col=k + 1)
    fig.update_xaxes(side="bottom", title_text="shortcut spike")
    fig.update_yaxes(title_text="block spike", row=1, col=1)
    fig.update_layout(height=260)
    return finish(fig, title, template)
