"""The labs' analysis figures: each holds exactly the data it was given, with titled axes (units included) and
named lines, and rejects malformed input with a message naming the argument."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from spikelab.viz.figures import (
    accuracy_by_steps_figure, code_tradeoff_figure, energy_compare_figure, fi_curve_figure, per_step_figure,
    spike_count_figure, width_sweep_figure,
)


def _title(axis) -> str:
    return axis.title.text


def test_fi_curve_lines_and_threshold_marker():
    i = np.linspace(0, 1.5, 7)
    rates = {"hard": np.linspace(0, 0.5, 7), "soft": np.linspace(0, 0.6, 7)}
    fig = fi_curve_figure(torch.from_numpy(i), rates, threshold_current=0.5, title="F-I")
    assert [t.name for t in fig.data] == ["hard", "soft"]
    np.testing.assert_allclose(fig.data[1].y, rates["soft"])
    np.testing.assert_allclose(fig.data[0].x, i)
    assert [s.x0 for s in fig.layout.shapes] == [0.5]
    assert _title(fig.layout.xaxis) == "constant input current I (a.u.)"
    assert _title(fig.layout.yaxis) == "firing rate (spikes / step)"
    with pytest.raises(ValueError, match=r"rates\['hard'\] must have 7 values"):
        fi_curve_figure(i, {"hard": [0.1, 0.2]})


def test_code_tradeoff_two_panels_per_code():
    tr = {"rate": {"T": [1, 4, 16], "rmse": [0.4, 0.2, 0.1], "spikes": [0.5, 2, 8]},
          "latency": {"T": [1, 4, 16], "rmse": [0.5, 0.1, 0.03], "spikes": [0.9, 0.9, 0.9]}}
    fig = code_tradeoff_figure(tr)
    assert len(fig.data) == 4 and [t.name for t in fig.data] == ["rate code"] * 2 + ["latency code"] * 2
    np.testing.assert_allclose(fig.data[3].y, [0.9, 0.9, 0.9])
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == [1, 4, 16]
    assert _title(fig.layout.yaxis) == "RMS error (intensity, 0-1)" and _title(fig.layout.yaxis2) == "spikes per input"
    with pytest.raises(ValueError, match="keys 'T', 'rmse' and 'spikes'"):
        code_tradeoff_figure({"rate": {"T": [1]}})
    with pytest.raises(ValueError, match="must have 3 values"):
        code_tradeoff_figure({"rate": {"T": [1, 2, 3], "rmse": [1, 2], "spikes": [1, 2, 3]}})


def test_spike_count_shows_image_and_counts():
    img = np.random.default_rng(0).random((4, 5))
    counts = np.arange(20).reshape(4, 5)
    fig = spike_count_figure(img[None], counts)
    np.testing.assert_allclose(fig.data[0].z, img)
    np.testing.assert_allclose(fig.data[1].z, counts)
    assert fig.data[1].colorbar.title.text == "spikes" and _title(fig.layout.xaxis) == "x (pixel)"
    with pytest.raises(ValueError, match="counts must have the image's shape"):
        spike_count_figure(img, counts[:3])


def test_width_sweep_one_panel_per_family_zero_at_the_floor():
    sweeps = {"atan": {"param": "alpha", "widths": [0.5, 2, 8], "ratios": {"with batch norm": [0.01, 1.0, 100.0],
                                                                           "without batch norm": [0.0, 1e-9, 0.0]}},
              "triangle": {"param": "gamma", "widths": [0.5, 1], "ratios": {"with batch norm": [10.0, 1.0]}}}
    fig = width_sweep_figure(sweeps)
    assert len(fig.data) == 3 and [t.name for t in fig.data] == ["with batch norm", "without batch norm",
                                                                  "with batch norm"]
    np.testing.assert_allclose(fig.data[1].y, [1e-12, 1e-9, 1e-12])  # zero drawn at the floor ...
    np.testing.assert_allclose(fig.data[1].customdata, [0.0, 1e-9, 0.0])  # ... its hover says 0
    assert fig.data[2].legendgroup == "with batch norm" and fig.data[2].showlegend is False
    assert _title(fig.layout.xaxis) == "alpha" and _title(fig.layout.xaxis2) == "gamma"
    # whole numbers on the log axes, not plotly's bare mantissas ("5, 1, 2, 5" for 0.5 .. 5)
    assert list(fig.layout.xaxis.ticktext) == ["0.5", "1", "2", "5"] and list(fig.layout.xaxis.tickvals) == [
        0.5, 1, 2, 5]
    assert list(fig.layout.xaxis2.ticktext) == ["0.5", "1"]
    assert len(fig.layout.shapes) == 2 and fig.layout.shapes[0].y0 == 0.1 and fig.layout.shapes[0].y1 == 10.0
    with pytest.raises(ValueError, match="keys 'param', 'widths' and 'ratios'"):
        width_sweep_figure({"atan": {"widths": [1]}})


def test_accuracy_by_steps_in_percent_with_training_marker():
    fig = accuracy_by_steps_figure(np.array([0.5, 0.9, 0.95]), trained_T=2)
    np.testing.assert_allclose(fig.data[0].x, [1, 2, 3])
    np.testing.assert_allclose(fig.data[0].y, [50, 90, 95])
    assert [s.x0 for s in fig.layout.shapes] == [2] and fig.layout.showlegend is False
    assert _title(fig.layout.yaxis) == "test accuracy (%)" and _title(fig.layout.xaxis) == "time steps read (t)"
    two = accuracy_by_steps_figure({"direct": [0.9, 0.9], "events": [0.5, 0.8, 0.9]})
    assert [t.name for t in two.data] == ["direct", "events"] and two.layout.showlegend is True


def test_per_step_series():
    fig = per_step_figure({"input": torch.tensor([0.0, 1.0]), "tdBN": [-1.0, 1.0]}, y_title="mean (a.u.)")
    assert [t.name for t in fig.data] == ["input", "tdBN"] and list(fig.data[1].y) == [-1.0, 1.0]
    assert _title(fig.layout.yaxis) == "mean (a.u.)" and _title(fig.layout.xaxis) == "time step"
    with pytest.raises(ValueError, match="same length"):
        per_step_figure({"a": [1.0], "b": [1.0, 2.0]}, y_title="x")


def test_energy_compare_bars_in_millions_and_microjoules():
    totals = {"SNN": {"acs": 2e6, "macs": 1e5, "energy_pj": 0.9 * 2e6 + 4.6 * 1e5},
              "ANN twin": {"acs": 0.0, "macs": 1e6, "energy_pj": 4.6e6}}
    fig = energy_compare_figure(totals)
    acs, macs, energy = fig.data
    assert isinstance(energy, go.Bar) and list(acs.x) == ["SNN", "ANN twin"]
    np.testing.assert_allclose(acs.y, [2.0, 0.0])
    np.testing.assert_allclose(macs.y, [0.1, 1.0])
    np.testing.assert_allclose(energy.y, [2.26, 4.6])
    assert list(energy.text) == ["2.26 µJ", "4.6 µJ"]
    assert _title(fig.layout.yaxis) == "operations (millions)" and _title(fig.layout.yaxis2) == "energy (µJ)"
    with pytest.raises(ValueError, match="keys 'acs', 'macs' and 'energy_pj'"):
        energy_compare_figure({"SNN": {"acs": 1.0}})


def test_log_ticks_are_the_1_2_5_values_inside_the_range():
    from spikelab.viz._common import log_ticks

    assert log_ticks(0.1, 5.0) == dict(tickvals=[0.1, 0.2, 0.5, 1, 2, 5],
                                       ticktext=["0.1", "0.2", "0.5", "1", "2", "5"])
    assert log_ticks(1.0, 100.0)["ticktext"] == ["1", "2", "5", "10", "20", "50", "100"]
    assert log_ticks(0.3, 0.4)["tickvals"] == [0.3, 0.4]  # no 1-2-5 value inside: the two ends
    for lo, hi in ((0.0, 1.0), (2.0, 1.0), (float("nan"), 1.0)):
        with pytest.raises(ValueError, match="0 < lo <= hi"):
            log_ticks(lo, hi)
