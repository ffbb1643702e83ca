"""Figures about training runs: learning curves, confusion matrix, loss landscapes, operations / energy table.

Re-exported by :mod:`spikelab.viz.figures`; see there for the conventions shared by all builders.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from spikelab._checks import check_choice, check_range
from spikelab.history import History
from spikelab.viz._common import as_array, check_mapping, color, finish, real

METRIC_LABELS = {"loss": "loss", "acc": "accuracy"}
OPS_COLUMNS = ("layer", "type", "input_rate", "acs", "macs", "energy_pj")
OPS_HEADERS = ("layer", "type", "input rate", "ACs", "MACs", "energy")


def _runs(histories: Any) -> dict[str, History]:
    """Normalise one History, a list of them or ``{name: History}`` to ``{name: History}``."""
    if isinstance(histories, History):
        return {histories.name: histories}
    if isinstance(histories, Mapping):
        check_mapping(dict(histories), "histories")
        for k, h in histories.items():
            if not isinstance(h, History):
                raise TypeError(f"histories[{k!r}] must be a spikelab.history.History, got {type(h).__name__}")
        return {str(k): h for k, h in histories.items()}
    if isinstance(histories, (list, tuple)):
        if not histories:
            raise ValueError("histories must not be empty")
        runs: dict[str, History] = {}
        for i, h in enumerate(histories):
            if not isinstance(h, History):
                raise TypeError(f"histories[{i}] must be a spikelab.history.History, got {type(h).__name__}")
            name, k = h.name, 2
            while name in runs:  # two runs with the same name keep apart: "run", "run #2"
                name, k = f"{h.name} #{k}", k + 1
            runs[name] = h
        return runs
    raise TypeError(f"histories must be a History, a list of them or a dict of them, got {type(histories).__name__}")


def smooth_ema(values: Sequence[float], weight: float) -> np.ndarray:
    """Exponential moving average with bias correction (as TensorBoard smooths curves): ``m_k = w m_{k-1} + (1 - w)
    x_k`` from ``m_0 = 0``, reported as ``m_k / (1 - w^k)``, so the first value is ``x_1`` and a constant stays
    constant. ``weight`` in [0, 1): 0 returns the values; 0.9 averages over about ten steps."""
    w = check_range(weight, "weight", 0.0, 1.0)
    if w >= 1.0:
        raise ValueError(f"weight must be < 1 (1 would never move), got {weight}")
    x = as_array(list(values), "values", (1,), allow_sequence=True)
    out, m = np.empty_like(x), 0.0
    for k, v in enumerate(x, start=1):
        m = w * m + (1 - w) * v
        out[k - 1] = m / (1 - w ** k)
    return out


def curves_figure(
    histories: Any,
    *,
    metrics: Sequence[str] = ("loss", "acc"),
    level: str = "epochs",
    smooth: float | None = None,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Learning curves of one or many runs: one panel per metric, one line per run and split.

    At ``level="epochs"`` each run gets a solid ``train`` line (``train_loss`` / ``train_acc``) and a dashed ``test``
    line (``test_loss`` / ``test_acc``); at ``level="steps"`` one ``train`` line per run (``loss`` / ``acc`` of each
    optimiser step). Every (run, split, metric) line exists even while a History is empty or partly filled, so a
    dashboard can update the data in place; each trace's ``meta`` holds ``{"run", "split", "metric", "key",
    "level", "smoothed"}`` to find it. The accuracy axis always spans [0, 1].

    Args:
        histories: a :class:`~spikelab.history.History`, a list of them (named by ``History.name``) or
            ``{run_name: History}``.
        metrics: any of ``"loss"``, ``"acc"``, in panel order.
        level: ``"epochs"`` or ``"steps"``.
        smooth: at ``level="steps"``, also draw each curve smoothed (:func:`smooth_ema` with this weight) over the
            raw one, which turns faint; the raw trace comes first. One step's loss is the mean over one batch, so
            the raw curve is noisy.
    """
    runs = _runs(histories)
    if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)) or not metrics:
        raise TypeError(f"metrics must be a non-empty tuple of names from {tuple(METRIC_LABELS)}, got {metrics!r}")
    for m in metrics:
        check_choice(m, "metrics[i]", METRIC_LABELS)
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"metrics must not repeat a name, got {metrics!r}")
    check_choice(level, "level", ("epochs", "steps"))
    if smooth is not None:
        if level != "steps":
            raise ValueError("smooth applies to level='steps' (per-epoch values are already averages)")
        smooth_ema([], smooth)  # checks the weight
    splits = ("train", "test") if level == "epochs" else ("train",)
    fig = make_subplots(rows=1, cols=len(metrics), horizontal_spacing=0.1,
                        subplot_titles=[METRIC_LABELS[m] for m in metrics])
    for r, (name, hist) in enumerate(runs.items()):
        for split in splits:
            for col, metric in enumerate(metrics, start=1):
                key = f"{split}_{metric}" if level == "epochs" else metric
                x, y = hist.series(key, level)
                fig.add_trace(go.Scatter(
                    x=x, y=y, mode="lines+markers" if level == "epochs" else "lines", name=f"{name} ({split})",
                    legendgroup=name, showlegend=col == 1 and smooth is None, opacity=0.3 if smooth else 1.0,
                    line=dict(color=color(r), dash="solid" if split == "train" else "dash"),
                    meta=dict(run=name, split=split, metric=metric, key=key, level=level, smoothed=False),
                ), row=1, col=col)
                if smooth is not None:
                    fig.add_trace(go.Scatter(
                        x=x, y=smooth_ema(y, smooth), mode="lines", name=f"{name} ({split}, smoothed)",
                        legendgroup=name, showlegend=col == 1, line=dict(color=color(r), width=2.5),
                        meta=dict(run=name, split=split, metric=metric, key=key, level=level, smoothed=True),
                    ), row=1, col=col)
    fig.update_xaxes(title_text="epoch" if level == "epochs" else "step")
    for col, metric in enumerate(metrics, start=1):
        fig.update_yaxes(title_text=METRIC_LABELS[metric], row=1, col=col)
        if metric == "acc":
            fig.update_yaxes(range=[0, 1.02], row=1, col=col)
        else:
            fig.update_yaxes(rangemode="tozero", row=1, col=col)
    return finish(fig, title, template)


def _labels(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    elif isinstance(x, (list, tuple)):
        x = np.asarray(x)
    elif not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor, numpy array or list of class indices, got {type(x).__name__}")
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D [B] class indices, got shape {tuple(x.shape)}")
    if x.size and x.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class indices, got dtype {x.dtype}")
    return x.astype(np.int64)


def confusion_figure(
    y_true: Any,
    y_pred: Any,
    *,
    class_names: Sequence[str] | None = None,
    normalize: bool = True,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Confusion matrix ``M[i, j]`` = number of samples of true class i predicted as class j.

    With ``normalize`` each row is divided by its total (the fraction of class i predicted as j; the diagonal is
    the per-class recall; rows without samples stay 0); the hover always shows the raw count.

    Args:
        y_true: true class indices ``[B]``.
        y_pred: predicted class indices ``[B]`` (e.g. ``spikelab.losses.rate_predict(outputs)``).
        class_names: names of the C classes (default ``0 .. max label``).
        normalize: show row fractions instead of counts.
    """
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_pred must have the same length as y_true ({t.size}), got {p.size}")
    if class_names is not None:
        names = [str(c) for c in class_names]
    elif t.size:
        names = [str(c) for c in range(int(max(t.max(), p.max())) + 1)]
    else:
        raise ValueError("y_true is empty: give class_names so the matrix has a size")
    c = len(names)
    for arr, nm in ((t, "y_true"), (p, "y_pred")):
        if arr.size and (arr.min() < 0 or arr.max() >= c):
            raise ValueError(f"{nm} must hold class indices in [0, {c - 1}], got {arr.min()}..{arr.max()}")
    counts = np.bincount(t * c + p, minlength=c * c).reshape(c, c)
    if normalize:
        totals = counts.sum(axis=1, keepdims=True)
        z = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
        text, cbar = [[f"{v:.2f}" for v in row] for row in z], "fraction of<br>true class"
    else:
        z, text, cbar = counts, [[str(v) for v in row] for row in counts], "samples"
    fig = go.Figure(go.Heatmap(
        z=z, x=names, y=names, customdata=counts, colorscale="Blues", zmin=0, zmax=1 if normalize else None,
        text=text if c <= 20 else None, texttemplate="%{text}" if c <= 20 else None, name="confusion",
        colorbar=dict(title=dict(text=cbar)),
        hovertemplate="true %{y}, predicted %{x}: %{customdata} samples<extra></extra>"))
    fig.update_xaxes(title_text="predicted class", type="category")
    fig.update_yaxes(title_text="true class", type="category", autorange="reversed")
    return finish(fig, title, template)


def landscape_1d_figure(
    alphas: Any,
    losses: Any,
    *,
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Loss along one direction in weight space, ``L(θ + α d)``, one line per curve (e.g. train / test, or runs).

    A dotted vertical line marks ``α = 0``, the trained weights, when it is inside the range.

    Args:
        alphas: step sizes ``[K]``.
        losses: ``{label: [K] losses}``, or one ``[K]`` sequence (labelled ``"loss"``).
    """
    a = as_array(alphas, "alphas", (1,), allow_sequence=True)
    curves = losses if isinstance(losses, Mapping) else {"loss": losses}
    check_mapping(dict(curves), "losses")
    fig = go.Figure()
    for k, (label, seq) in enumerate(curves.items()):
        y = as_array(seq, f"losses[{label!r}]", (1,), allow_sequence=True)
        if y.size != a.size:
            raise ValueError(f"losses[{label!r}] must have len(alphas) = {a.size} values, got {y.size}")
        fig.add_trace(go.Scatter(x=a, y=y, mode="lines+markers", name=str(label), line=dict(color=color(k))))
    if a.size and a.min() <= 0 <= a.max():
        fig.add_vline(x=0, line=dict(dash="dot", color="grey"), annotation_text="trained weights")
    fig.update_xaxes(title_text="α (step along the direction)")
    fig.update_yaxes(title_text="loss")
    return finish(fig, title, template)


def landscape_2d_figure(
    alphas: Any,
    betas: Any,
    Z: Any,
    *,
    kind: str = "surface",
    title: str | None = None,
    template: str | None = None,
) -> go.Figure:
    """Loss over a plane in weight space, ``Z[j, i] = L(θ + α_i d_1 + β_j d_2)``, as a 3-D surface or a contour map.

    The contour map marks the trained weights (α = β = 0) when they are inside the grid.

    Args:
        alphas: steps along the first direction ``[A]``.
        betas: steps along the second direction ``[B]``.
        Z: losses ``[B, A]`` (rows follow ``betas``).
        kind: ``"surface"`` or ``"contour"``.
    """
    a = as_array(alphas, "alphas", (1,), allow_sequence=True)
    b = as_array(betas, "betas", (1,), allow_sequence=True)
    z = as_array(Z, "Z", (2,), allow_sequence=True)
    if z.shape != (b.size, a.size):
        raise ValueError(f"Z must be [len(betas), len(alphas)] = {(b.size, a.size)}, got {tuple(z.shape)}")
    if np.isinf(z).any():
        raise ValueError("Z must not hold inf (a diverged loss); clip it or mark it NaN")
    check_choice(kind, "kind", ("surface", "contour"))
    bar = dict(title=dict(text="loss"))
    if kind == "surface":
        fig = go.Figure(go.Surface(x=a, y=b, z=z, colorscale="Viridis", colorbar=bar, name="loss"))
        fig.update_layout(scene=dict(xaxis_title="α", yaxis_title="β", zaxis_title="loss"))
    else:
        fig = go.Figure(go.Contour(x=a, y=b, z=z, colorscale="Viridis", colorbar=bar, name="loss",
                                   contours=dict(showlabels=True)))
        if a.min() <= 0 <= a.max() and b.min() <= 0 <= b.max():
            fig.add_trace(go.Scatter(x=[0.0], y=[0.0], mode="markers", name="trained weights",
                                     marker=dict(symbol="x", size=12, color="red")))
        fig.update_xaxes(title_text="α")
        fig.update_yaxes(title_text="β", scaleanchor="x")
    return finish(fig, title, template)


def _si(v: float) -> str:
    """A count with an SI prefix: 1_690_000_000 -> '1.69 G'."""
    if v == 0:
        return "0"
    k = min(max(int(math.floor(math.log10(abs(v)) / 3)), 0), 5)
    return f"{v / 10 ** (3 * k):.3g}{('', ' k', ' M', ' G', ' T', ' P')[k]}"


def _energy(pj: float) -> str:
    """Energy given in pJ, written in the largest fitting unit: 2.441e9 -> '2.44 mJ'."""
    for factor, unit in ((1e12, "J"), (1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ")):
        if abs(pj) >= factor:
            return f"{pj / factor:.3g} {unit}"
    return f"{pj:.3g} pJ"


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
        return f"{float(v):.4g}"
    return str(v)


def _rate(v: Any, name: str) -> str:
    """A firing rate to three significant digits, trailing zeros kept so that every row reads alike (``0.390``,
    ``0.588``); ``None`` as ``–``."""
    return "–" if v is None else f"{real(v, name):#.3g}"


def ops_table_figure(
    rows: Sequence[Mapping[str, Any]], *, title: str | None = None, template: str | None = None
) -> go.Figure:
    """Synaptic operations and energy per layer as a table, with a totals row.

    Energy (45 nm): ``E = 0.9 pJ · #AC + 4.6 pJ · #MAC``, computed upstream (``spikelab.metrics``); this builder only
    formats: counts with SI prefixes (``1.69 G``), energy in the largest fitting unit (``2.44 mJ``), ``None`` as
    ``–``. The totals row sums ACs, MACs and energy.

    Args:
        rows: one dict per layer with keys ``layer``, ``type``, ``input_rate`` (None if the input is not binary),
            ``acs``, ``macs``, ``energy_pj``; further keys become extra columns.
    """
    if not isinstance(rows, (list, tuple)) or not rows:
        raise TypeError(f"rows must be a non-empty list of dicts, got {rows!r}"[:200])
    extras: list[str] = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"rows[{i}] must be a dict, got {type(row).__name__}")
        missing = [k for k in OPS_COLUMNS if k not in row]
        if missing:
            raise ValueError(f"rows[{i}] lacks keys {missing}; each row needs {list(OPS_COLUMNS)}")
        extras += [k for k in row if k not in OPS_COLUMNS and k not in extras]
    totals = {k: sum(real(row[k], f"rows[{i}][{k!r}]") for i, row in enumerate(rows))
              for k in ("acs", "macs", "energy_pj")}
    columns = [
        [str(r["layer"]) for r in rows] + ["<b>total</b>"],
        [str(r["type"]) for r in rows] + [""],
        [_rate(r["input_rate"], f"rows[{i}]['input_rate']") for i, r in enumerate(rows)] + [""],
        [_si(real(r["acs"], "acs")) for r in rows] + [f"<b>{_si(totals['acs'])}</b>"],
        [_si(real(r["macs"], "macs")) for r in rows] + [f"<b>{_si(totals['macs'])}</b>"],
        [_energy(real(r["energy_pj"], "energy_pj")) for r in rows] + [f"<b>{_energy(totals['energy_pj'])}</b>"],
    ] + [[_cell(r.get(k)) for r in rows] + [""] for k in extras]
    headers = list(OPS_HEADERS) + extras
    fig = go.Figure(go.Table(
        header=dict(values=[f"<b>{h}</b>" for h in headers], align="left"),
        cells=dict(values=columns, align=["left", "left"] + ["right"] * (len(headers) - 2)),
    ))
    fig.update_layout(height=min(900, 120 + 28 * (len(rows) + 2)))
    return finish(fig, title, template)
