"""The papers' analysis figures (gradient ratios, power-iteration convergence, accuracy against energy), the
reproductions' figure export, and the recipe's dual-stream test: each checked against the data it was given."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from spikelab import models
from spikelab.recipe import is_dual_stream
from spikelab.reproduce._figures import export_figures
from spikelab.viz.figures import accuracy_energy_figure, convergence_figure, depth_ratio_figure


def test_depth_ratio_figure_draws_the_finite_positive_ratios_and_the_flat_band():
    x = [0.5, 1.0, 2.0, 4.0]
    ratios = {"18 layers, BN": [0.01, 0.5, 3.0, 200.0], "18 layers, no BN": [0.0, math.inf, 1e-3, float("nan")]}
    fig = depth_ratio_figure(x, ratios, band=(0.2, 5.0))
    assert [t.name for t in fig.data] == list(ratios)
    np.testing.assert_allclose(fig.data[0].x, x)
    np.testing.assert_allclose(fig.data[0].y, ratios["18 layers, BN"])
    # 0, inf and NaN have no place on a log axis: only the one finite, positive ratio is drawn
    np.testing.assert_allclose(fig.data[1].x, [2.0])
    np.testing.assert_allclose(fig.data[1].y, [1e-3])
    band = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(band) == 1 and (band[0].y0, band[0].y1) == (0.2, 5.0)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_depth_ratio_figure_errors_name_the_argument():
    with pytest.raises(ValueError, match="x must be finite and > 0"):
        depth_ratio_figure([0.0, 1.0], {"a": [1, 1]})
    with pytest.raises(ValueError, match="band must satisfy 0 < low < 1 < high"):
        depth_ratio_figure([1.0, 2.0], {"a": [1, 1]}, band=(2.0, 10.0))
    with pytest.raises(ValueError, match=r"ratios\['a'\] must have len\(x\) = 2 values, got 3"):
        depth_ratio_figure([1.0, 2.0], {"a": [1, 1, 1]})


def test_convergence_figure_plots_each_history_against_its_iteration():
    histories = {"SDT, seed 0": [3.0, 4.5, 4.9, 4.95], "TET, seed 0": [1.0, 1.2]}
    fig = convergence_figure(histories)
    assert [t.name for t in fig.data] == list(histories)
    for trace, h in zip(fig.data, histories.values()):
        np.testing.assert_array_equal(trace.x, np.arange(1, len(h) + 1))
        np.testing.assert_allclose(trace.y, h)
    assert fig.layout.xaxis.title.text == "iteration"


def test_accuracy_energy_figure_places_each_model_with_its_error_bar():
    points = {"FSNN": (0.8, 95.0, 1.5), "SEW-ResNet": (3.2, 96.0, 0.0)}
    fig = accuracy_energy_figure(points)
    for trace, (label, (e, acc, sd)) in zip(fig.data, points.items()):
        assert trace.name == label and list(trace.x) == [e] and list(trace.y) == [acc]
        assert list(trace.error_y.array) == [sd]
    assert fig.layout.xaxis.type == "log"
    with pytest.raises(ValueError, match=r"points\['x'\] energy must be > 0"):
        accuracy_energy_figure({"x": (0.0, 90.0, 1.0)})
    with pytest.raises(ValueError, match=r"points\['x'\] must be \(energy, accuracy, spread\)"):
        accuracy_energy_figure({"x": (1.0, 90.0)})


def test_export_figures_writes_each_format_and_falls_back_to_html(tmp_path, monkeypatch):
    import spikelab.viz as viz

    real_save = viz.save_figure
    calls = []

    def fake_static(fig, path, **kw):  # a static exporter that works: record and write a marker file
        calls.append((path.name, kw))
        path.write_text(fig.layout.title.text or "")
        return path

    figs = {"one": go.Figure(layout=dict(title="first")), "two": go.Figure(layout=dict(title="second"))}
    monkeypatch.setattr(viz, "save_figure", fake_static)
    written = export_figures(figs, tmp_path / "a")
    assert [p.name for p in written] == ["one.svg", "one.png", "two.svg", "two.png"]
    assert (tmp_path / "a" / "two.png").read_text() == "second"
    assert all(kw["width"] == 900 and kw["height"] == 560 for _, kw in calls)
    assert [kw["scale"] for _, kw in calls] == [1, 2, 1, 2]

    def no_browser(fig, path, **kw):  # static export needs kaleido and Chromium; HTML does not
        if path.suffix != ".html":
            raise RuntimeError("no Chromium")
        return real_save(fig, path, **kw)

    monkeypatch.setattr(viz, "save_figure", no_browser)
    written = export_figures(figs, tmp_path / "b")
    assert [p.name for p in written] == ["one.html", "two.html"]
    assert "second" in (tmp_path / "b" / "two.html").read_text()


def test_is_dual_stream_matches_the_models_with_a_pathway():
    for name in models.names():
        kwargs = dict(num_classes=10, in_channels=1, T=2)
        if name in ("mlp", "conv-small", "vggsnn"):
            kwargs["input_size"] = (32, 32)
        model = models.build(name, **kwargs)
        assert is_dual_stream(name) == hasattr(model, "pathway"), name
