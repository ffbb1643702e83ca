"""Figures of the TET and pretraining reproductions (``docs/RESULTS.md``): pure builders from a reproduction's
table data (``Table.data``, or the ``data`` entry of its ``table.json``) to plotly figures.

``python -m spikelab.viz.tet_transfer OUT FOLDER`` reads ``OUT/<name>/table.json`` of each reproduction found
(``spikelab reproduce NAME --out OUT``) and writes ``FOLDER/<name>.png`` and ``.svg``.
"""
from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

COLORS = {"sdt": "#1f77b4", "tet": "#d62728", "scratch": "#1f77b4", "tit": "#d62728", "pipe": "#2ca02c",
          "ann": "#9467bd"}


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def _runs(data: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list) or not data["runs"]:
        raise ValueError("data must be a reproduction's Table.data with a non-empty 'runs' list")
    return data["runs"]


def tet_vs_sdt_figure(data: dict[str, Any]) -> go.Figure:
    """Test accuracy (%) against T for SDT and TET, one panel per dataset, mean and std over seeds."""
    runs = _runs(data)
    datasets = list(dict.fromkeys(r["dataset"] for r in runs))
    fig = make_subplots(rows=1, cols=len(datasets), subplot_titles=datasets)
    for col, ds in enumerate(datasets, start=1):
        for loss in ("sdt", "tet"):
            Ts = sorted({r["T"] for r in runs if r["dataset"] == ds})
            stats = [_mean_std([100 * r["final"] for r in runs if (r["dataset"], r["T"], r["loss"]) == (ds, T, loss)])
                     for T in Ts]
            fig.add_trace(go.Scatter(x=Ts, y=[m for m, _ in stats], error_y=dict(array=[s for _, s in stats]),
                                     mode="lines+markers", name=loss.upper(), legendgroup=loss, showlegend=col == 1,
                                     line=dict(color=COLORS[loss])), row=1, col=col)
        fig.update_xaxes(title_text="time steps T", tickvals=[2, 4, 6], row=1, col=col)
    fig.update_yaxes(title_text="test accuracy (%)", row=1, col=1)
    fig.update_layout(title="TET against SDT (mean ± std over seeds)", height=380, width=820, template="plotly_white")
    return fig


def _epoch_means(curves: list[list[dict[str, Any]]], key: str) -> tuple[list[float], list[float]]:
    n = min(len(c) for c in curves)
    return ([sum(c[i]["time_s"] for c in curves) / len(curves) for i in range(n)],
            [100 * sum(c[i][key] for c in curves) / len(curves) for i in range(n)])


def tit_figure(data: dict[str, Any]) -> go.Figure:
    """Left: test accuracy against wall time for TIT and scratch (per epoch, mean over seeds). Right: accuracy of
    the trained models evaluated at other T."""
    runs = _runs(data)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("test accuracy during training", "evaluated at other T"))
    for arm, label in (("tit", "TIT (T=2, then T=6)"), ("scratch", "scratch (T=6)")):
        mine = [r for r in runs if r["arm"] == arm]
        x, y = _epoch_means([r["epochs"] for r in mine], "test_acc")
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=label, legendgroup=arm,
                                 line=dict(color=COLORS[arm])), row=1, col=1)
        Ts = sorted(int(t) for t in mine[0]["at_T"])
        stats = [_mean_std([100 * r["at_T"][str(T) if str(T) in r["at_T"] else T] for r in mine]) for T in Ts]
        fig.add_trace(go.Scatter(x=Ts, y=[m for m, _ in stats], error_y=dict(array=[s for _, s in stats]),
                                 mode="lines+markers", name=label, legendgroup=arm, showlegend=False,
                                 line=dict(color=COLORS[arm])), row=1, col=2)
    fig.update_xaxes(title_text="wall time (s)", row=1, col=1)
    fig.update_xaxes(title_text="time steps T at evaluation", row=1, col=2)
    fig.update_yaxes(title_text="test accuracy (%)", row=1, col=1)
    fig.update_layout(title="Time inheritance training against training at T=6 from scratch", height=380,
                      width=900, template="plotly_white")
    return fig


def pipe_s_figure(data: dict[str, Any]) -> go.Figure:
    """Test accuracy against wall time: the scratch SNN, the ANN twin while pretraining, and the transferred SNN
    before and during fine-tuning (mean over seeds)."""
    runs = _runs(data)
    fig = go.Figure()
    n = min(len(r["scratch"]["curve"]) for r in runs)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    fig.add_trace(go.Scatter(x=[mean([r["scratch"]["curve"][i][1] for r in runs]) for i in range(n)],
                             y=[100 * mean([r["scratch"]["curve"][i][0] for r in runs]) for i in range(n)],
                             mode="lines+markers", name="SNN from scratch", line=dict(color=COLORS["scratch"])))
    if all("pretrain_curve" in r for r in runs):
        n = min(len(r["pretrain_curve"]) for r in runs)
        fig.add_trace(go.Scatter(x=[mean([r["pretrain_curve"][i][1] for r in runs]) for i in range(n)],
                                 y=[100 * mean([r["pretrain_curve"][i][0] for r in runs]) for i in range(n)],
                                 mode="lines+markers", name="ANN twin (pretraining, ramp)",
                                 line=dict(color=COLORS["ann"], dash="dot")))
    n = min(len(r["curve"]) for r in runs)
    fig.add_trace(go.Scatter(x=[mean([r["curve"][i][1] for r in runs]) for i in range(n)],
                             y=[100 * mean([r["curve"][i][0] for r in runs]) for i in range(n)],
                             mode="lines+markers", name="pipe-S SNN: after transfer, then each fine-tuning epoch",
                             line=dict(color=COLORS["pipe"])))
    best = 100 * mean([r["scratch"]["best"] for r in runs])
    fig.add_hline(y=best, line=dict(color=COLORS["scratch"], dash="dash"),
                  annotation_text=f"scratch best {best:.2f} %", annotation_position="bottom right")
    fig.update_layout(title="pipe-S against training the SNN from scratch (mean over seeds)",
                      xaxis_title="wall time (s)", yaxis_title="test accuracy (%)", height=420, width=820,
                      template="plotly_white", legend=dict(x=0.35, y=0.05))
    return fig


def pipe_d_figure(data: dict[str, Any]) -> go.Figure:
    """Test accuracy per event epoch, from scratch and from static pretraining (mean ± std over seeds)."""
    runs = _runs(data)
    fig = go.Figure()
    for key, label, color in (("scratch_curve", "from scratch", COLORS["scratch"]),
                              ("pretrained_curve", "static pretraining, body frozen in epoch 1", COLORS["pipe"])):
        n = min(len(r[key]) for r in runs)
        stats = [_mean_std([100 * r[key][i] for r in runs]) for i in range(n)]
        fig.add_trace(go.Scatter(x=list(range(1, n + 1)), y=[m for m, _ in stats],
                                 error_y=dict(array=[s for _, s in stats]), mode="lines+markers", name=label,
                                 line=dict(color=color)))
    fig.update_layout(title="pipe-D on fashion-mnist-events (mean ± std over seeds)", xaxis_title="event epoch",
                      yaxis_title="test accuracy (%)", height=380, width=700, template="plotly_white")
    return fig


BUILDERS = {"tet-vs-sdt": tet_vs_sdt_figure, "tit-cost": tit_figure, "pipe-s": pipe_s_figure,
            "pipe-d": pipe_d_figure}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m spikelab.viz.tet_transfer OUT FOLDER``: a PNG and an SVG per reproduction found in OUT."""
    from spikelab.viz.export import save_figure

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m spikelab.viz.tet_transfer OUT FOLDER", file=sys.stderr)
        return 2
    out, folder = Path(args[0]), Path(args[1])
    folder.mkdir(parents=True, exist_ok=True)
    for name, build in BUILDERS.items():
        table = out / name / "table.json"
        if table.is_file():
            fig = build(json.loads(table.read_text())["data"])
            for ext in (".png", ".svg"):
                print(save_figure(fig, folder / f"{name}{ext}", scale=2 if ext == ".png" else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
