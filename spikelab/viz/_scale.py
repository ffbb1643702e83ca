"""Figures of full-scale runs (lab 11): accuracy of trained runs against the number of time steps they are read
with (``spikelab eval RUN --T ...``), beside numbers reported elsewhere (``docs/RESULTS.md``).

Re-exported by :mod:`spikelab.viz.figures`; see there for the conventions shared by all builders.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from spikelab.viz._common import check_mapping, color, finish, real

__all__ = ["accuracy_vs_T_figure"]


def _points(rows: Any, name: str) -> tuple[list[int], list[float]]:
    """``(Ts, accs)`` sorted by T from ``[{"T", "acc"}, ...]`` (rows of ``evaluate_at_T``) or ``{T: acc}``."""
    if isinstance(rows, Mapping):
        pairs = list(rows.items())
    elif isinstance(rows, Sequence) and not isinstance(rows, str):
        if not all(isinstance(r, Mapping) and "T" in r and "acc" in r for r in rows):
            raise ValueError(f"{name} must be rows with 'T' and 'acc' (from evaluate_at_T) or a {{T: acc}} mapping")
        pairs = [(r["T"], r["acc"]) for r in rows]
    else:
        raise TypeError(f"{name} must be a list of rows or a {{T: acc}} mapping, got {type(rows).__name__}")
    if not pairs:
        raise ValueError(f"{name} holds no point")
    out = []
    for T, acc in pairs:
        if isinstance(T, bool) or int(T) != T or int(T) < 1:
            raise ValueError(f"{name}: T must be whole numbers >= 1, got {T!r}")
        a = real(acc, f"{name} accuracy")
        if not 0.0 <= a <= 1.0:  # NaN fails too
            raise ValueError(f"{name}: accuracies are fractions in [0, 1], got {acc!r} at T={T}")
        out.append((int(T), a))
    out.sort()
    return [t for t, _ in out], [a for _, a in out]


def accuracy_vs_T_figure(
    runs: Mapping[str, Any],
    *,
    reference: Mapping[str, Any] | None = None,
    trained_T: int | None = None,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Test accuracy (%) against the number of time steps ``T`` a network is run for, one solid line per run and
    one dashed line per reported result.

    Args:
        runs: ``{label: rows}``, rows as :func:`spikelab.training.evaluate_at_T` returns them (``[{"T", "acc"},
            ...]``, ``acc`` a fraction) or ``{T: acc}``.
        reference: numbers to compare with, e.g. ``docs/RESULTS.md``'s, in the same forms (dashed, grey tones).
        trained_T: if given, a dotted line marks the T the network was trained with.
    """
    runs = check_mapping(runs, "runs")
    if not runs:
        raise ValueError("runs must hold at least one run")
    reference = {} if reference is None else check_mapping(reference, "reference")
    fig = go.Figure()
    Ts: set[int] = set()
    for k, (label, rows) in enumerate(runs.items()):
        x, y = _points(rows, f"runs[{label!r}]")
        Ts.update(x)
        fig.add_trace(go.Scatter(x=x, y=[100 * a for a in y], mode="lines+markers", name=str(label),
                                 line=dict(color=color(k)), hovertemplate="T = %{x}: %{y:.2f} %<extra></extra>"))
    for k, (label, rows) in enumerate(reference.items()):
        x, y = _points(rows, f"reference[{label!r}]")
        Ts.update(x)
        fig.add_trace(go.Scatter(x=x, y=[100 * a for a in y], mode="lines+markers", name=str(label),
                                 line=dict(color=["#555", "#999", "#bbb"][k % 3], dash="dash"),
                                 marker=dict(symbol="x"), hovertemplate="T = %{x}: %{y:.2f} %<extra></extra>"))
    if trained_T is not None:
        fig.add_vline(x=real(trained_T, "trained_T"), line=dict(dash="dot", color="grey"),
                      annotation_text="trained with T", annotation_position="bottom right")
    fig.update_xaxes(title_text="time steps T (steps)", tickvals=sorted(Ts), range=[0.5, max(Ts) + 0.5])
    fig.update_yaxes(title_text="test accuracy (%)")
    fig.update_layout(showlegend=len(runs) + len(reference) > 1, legend=dict(orientation="h", y=-0.25))
    return finish(fig, title, template)
