"""Neuron-level figure builders: each figure holds the traces and axes it must, with data equal to the input."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

from spikelab.viz.figures import (
    encoding_figure, firing_rate_figure, firing_rate_time_figure, gradient_heatmap, membrane_figure, raster_figure,
    surrogate_figure,
)


def _axis_title(axis) -> str | None:
    return axis.title.text


# --------------------------------------------------------------------------------------------- membrane_figure
V = np.array([[0.2, 0.1], [0.7, 0.4], [1.1, 0.8], [0.0, 1.3], [0.5, 0.0]])  # [T=5, N=2]
S = (V >= 1.0).astype(float)  # spikes at t=2 (neuron 0) and t=3 (neuron 1)


def test_membrane_traces_threshold_and_spikes():
    fig = membrane_figure(torch.tensor(V), torch.tensor(S), v_th=1.0)
    assert isinstance(fig, go.Figure)
    mem = list(fig.select_traces(row=1, col=1))
    spk = list(fig.select_traces(row=2, col=1))
    assert [tr.name for tr in mem] == ["neuron 0", "neuron 1"]
    for n, tr in enumerate(mem):
        np.testing.assert_allclose(tr.y, V[:, n])
        np.testing.assert_allclose(tr.x, np.arange(5))
    # one spike tick per spike, at the spike's time, on the neuron's row
    assert [list(tr.x) for tr in spk] == [[2.0], [3.0]]
    assert [list(tr.y) for tr in spk] == [[0.0], [1.0]]
    assert all(tr.marker.symbol == "line-ns-open" for tr in spk)
    # the threshold: one horizontal line at v_th on the membrane panel
    lines = [s for s in fig.layout.shapes if s.y0 == s.y1]
    assert len(lines) == 1 and lines[0].y0 == 1.0 and lines[0].yref == "y"
    assert _axis_title(fig.layout.yaxis) == "V<sub>m</sub> (a.u.)"
    assert _axis_title(fig.layout.yaxis2) == "spikes"
    assert list(fig.layout.yaxis2.ticktext) == ["neuron 0", "neuron 1"]  # every spike row is named
    assert _axis_title(fig.layout.xaxis2) == "time step"
    assert fig.layout.xaxis.matches == "x2" or fig.layout.xaxis2.matches == "x"  # shared time axis
    assert fig.layout.showlegend is True  # two neurons to tell apart


def test_membrane_input_current_row_dt_and_threshold_value():
    cur = V * 2
    fig = membrane_figure(V, S, v_th=0.75, input_current=cur, dt=0.5, title="LIF", template="plotly_dark")
    assert len(fig.data) == 6  # (current, membrane, spikes) x 2 neurons
    inp = list(fig.select_traces(row=1, col=1))
    np.testing.assert_allclose(inp[1].y, cur[:, 1])
    np.testing.assert_allclose(inp[1].x, np.arange(5) * 0.5)
    assert [s.y0 for s in fig.layout.shapes if s.y0 == s.y1] == [0.75]
    assert _axis_title(fig.layout.yaxis) == "I[t] (a.u.)"
    assert _axis_title(fig.layout.xaxis3) == "time (step × 0.5)"
    assert fig.layout.title.text == "LIF"
    assert fig.layout.template.layout.paper_bgcolor == pio.templates["plotly_dark"].layout.paper_bgcolor


def test_membrane_one_neuron_and_neuron_choice():
    fig = membrane_figure(V[:, 1], S[:, 1])
    assert len(fig.data) == 2
    np.testing.assert_allclose(fig.data[0].y, V[:, 1])
    assert fig.layout.showlegend is False and fig.layout.yaxis2.showticklabels is False  # no stray "neuron 0"
    named = membrane_figure(V, S, names=["fast", "slow"])
    assert [tr.name for tr in named.data] == ["fast", "fast", "slow", "slow"]  # (membrane, spikes) per neuron
    assert list(named.layout.yaxis2.ticktext) == ["fast", "slow"]
    with pytest.raises(ValueError, match="names must have 2 entries"):
        membrane_figure(V, S, names=["one"])
    many_v, many_s = np.zeros((4, 9)), np.zeros((4, 9))
    assert len(membrane_figure(many_v, many_s).data) == 2 * 5  # at most five neurons by default
    fig = membrane_figure(many_v, many_s, neurons=[7])
    assert [tr.name for tr in fig.data] == ["neuron 7", "neuron 7"]


@pytest.mark.parametrize("kwargs, err, word", [
    (dict(v_seq=V, spikes=S[:, :1]), ValueError, "spikes"),
    (dict(v_seq=V, spikes=S * 2), ValueError, "spikes"),
    (dict(v_seq=V[None], spikes=S[None]), ValueError, "v_seq"),
    (dict(v_seq=V.tolist(), spikes=S), TypeError, "v_seq"),
    (dict(v_seq=V, spikes=S, input_current=V[:3]), ValueError, "input_current"),
    (dict(v_seq=V, spikes=S, neurons=[2]), ValueError, "neurons"),
    (dict(v_seq=V, spikes=S, dt=0.0), ValueError, "dt"),
])
def test_membrane_bad_input(kwargs, err, word):
    with pytest.raises(err, match=word):
        membrane_figure(**kwargs)


# ----------------------------------------------------------------------------------------------- raster_figure
def test_raster_points_are_the_spike_coordinates():
    rng = np.random.default_rng(0)
    spikes = (rng.random((40, 30)) < 0.1)
    expected = {(t, n) for t in range(40) for n in range(30) if spikes[t, n]}
    for arg in (torch.from_numpy(spikes), spikes.astype(np.float32), torch.from_numpy(spikes).float()):
        fig = raster_figure(arg)
        assert len(fig.data) == 1
        tr = fig.data[0]
        assert isinstance(tr, go.Scatter) and tr.marker.symbol == "line-ns-open"  # few spikes: SVG
        assert set(zip(tr.x.tolist(), tr.y.tolist())) == expected and len(tr.x) == len(expected)
    assert _axis_title(fig.layout.xaxis) == "time step" and _axis_title(fig.layout.yaxis) == "neuron"


def test_raster_switches_to_count_heatmap_above_max_points():
    rng = np.random.default_rng(1)
    spikes = rng.random((40, 30)) < 0.1
    count = int(spikes.sum())
    assert isinstance(raster_figure(spikes, max_points=count).data[0], go.Scatter)
    assert isinstance(raster_figure(spikes, max_points=count, svg_points=count - 1).data[0], go.Scattergl)
    fig = raster_figure(spikes, max_points=count - 1)
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Heatmap)
    np.testing.assert_array_equal(fig.data[0].z, spikes.T.astype(int))  # bins of 1 step x 1 neuron
    assert _axis_title(fig.layout.xaxis) == "time step" and _axis_title(fig.layout.yaxis) == "neuron"


def test_raster_heatmap_bins_counts():
    rng = np.random.default_rng(2)
    spikes = rng.random((2002, 501)) < 0.01  # bins of ceil(2002/1000)=3 steps x ceil(501/500)=2 neurons
    fig = raster_figure(torch.from_numpy(spikes), max_points=0)
    padded = np.zeros((2004, 502))  # the last bins are partly empty
    padded[:2002, :501] = spikes
    oracle = padded.reshape(668, 3, 251, 2).sum(axis=(1, 3))
    hm = fig.data[0]
    np.testing.assert_array_equal(np.asarray(hm.z), oracle.T)
    assert hm.z.sum() == spikes.sum()
    np.testing.assert_allclose(hm.x[:2], [1.0, 4.0])  # bin centres
    np.testing.assert_allclose(hm.y[:2], [0.5, 2.5])


def test_raster_uses_webgl_for_200k_spikes():
    spikes = torch.rand(1000, 1000, generator=torch.Generator().manual_seed(0)) < 0.2
    fig = raster_figure(spikes)
    assert isinstance(fig.data[0], go.Scattergl) and len(fig.data[0].x) == int(spikes.sum())


def test_raster_rows_are_named_or_whole_numbers():
    spikes = np.array([[1, 0, 1], [0, 1, 1]])  # [T=2, N=3]
    fig = raster_figure(spikes, names=["hard", "soft", "none"], y_title="reset")
    assert list(fig.layout.yaxis.tickvals) == [0, 1, 2] and list(fig.layout.yaxis.ticktext) == ["hard", "soft", "none"]
    assert _axis_title(fig.layout.yaxis) == "reset" and list(fig.data[0].text) == ["hard", "none", "soft", "none"]
    plain = raster_figure(spikes)
    assert plain.layout.yaxis.dtick == 1 and plain.layout.yaxis.tickformat == "d"  # no 0.5 between neurons
    assert raster_figure(np.zeros((5, 300))).layout.yaxis.dtick == 50
    with pytest.raises(ValueError, match="names must have 3 entries"):
        raster_figure(spikes, names=["a"])


@pytest.mark.parametrize("spikes, err", [
    (np.zeros((3, 4, 5)), ValueError), (np.full((3, 4), 0.5), ValueError), ([[0, 1]], TypeError),
    (torch.full((3, 4), 2.0), ValueError),
])
def test_raster_bad_input(spikes, err):
    with pytest.raises(err, match="spikes"):
        raster_figure(spikes)


# --------------------------------------------------------------------------------------------- encoding_figure
def test_encoding_binary_heatmap_and_image():
    rng = np.random.default_rng(3)
    x_seq = (rng.random((5, 1, 2, 3)) < 0.4).astype(np.float32)
    fig = encoding_figure(torch.from_numpy(x_seq))
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Heatmap)
    np.testing.assert_array_equal(fig.data[0].z, x_seq.reshape(5, 6).T)
    assert _axis_title(fig.layout.xaxis) == "time step"
    assert _axis_title(fig.layout.yaxis) == "feature (flattened)"

    image = rng.random((1, 2, 3))
    fig = encoding_figure(x_seq, image=image, title="rate code")
    assert [type(t) for t in fig.data] == [go.Heatmap, go.Heatmap]
    np.testing.assert_allclose(fig.data[0].z, image[0])
    np.testing.assert_array_equal(fig.data[1].z, x_seq.reshape(5, 6).T)
    assert _axis_title(fig.layout.xaxis2) == "time step" and _axis_title(fig.layout.yaxis) == "y (pixel)"


def test_encoding_real_valued_has_colourbar_and_bad_shapes():
    x_seq = np.linspace(0, 1, 12).reshape(4, 3)
    fig = encoding_figure(x_seq)
    assert fig.data[0].showscale is not False and fig.data[0].colorbar.title.text == "value"
    with pytest.raises(ValueError, match="x_seq"):
        encoding_figure(np.zeros(4))
    with pytest.raises(ValueError, match="image"):
        encoding_figure(x_seq, image=np.zeros((2, 4, 4)))


# -------------------------------------------------------------------------------------------- surrogate_figure
class _Logistic:
    """A minimal stand-in surrogate: sigma(x) = logistic(k x)."""

    def __init__(self, k: float) -> None:
        self.k = k

    def primitive(self, x):
        return torch.sigmoid(self.k * x)

    def grad(self, x):
        s = torch.sigmoid(self.k * x)
        return self.k * s * (1 - s)

    def __repr__(self) -> str:
        return f"Logistic(k={self.k})"


def test_surrogate_primitive_step_and_derivative():
    fig = surrogate_figure({"narrow": _Logistic(8.0), "wide": _Logistic(2.0)}, x_range=(-1, 1), n=21)
    assert len(fig.data) == 1 + 2 * 2
    step = fig.data[0]
    assert list(step.x) == [-1, 0, 0, 1] and list(step.y) == [0, 0, 1, 1]
    x = np.linspace(-1, 1, 21)
    prim = [t for t in fig.select_traces(col=1) if t.name == "wide"][0]
    der = [t for t in fig.select_traces(col=2) if t.name == "wide"][0]
    np.testing.assert_allclose(prim.x, x, atol=1e-12)
    np.testing.assert_allclose(prim.y, 1 / (1 + np.exp(-2 * x)), rtol=1e-10)
    s = 1 / (1 + np.exp(-2 * x))
    np.testing.assert_allclose(der.y, 2 * s * (1 - s), rtol=1e-10)
    assert _axis_title(fig.layout.xaxis) == "x = V<sub>m</sub> − V<sub>th</sub>"
    assert _axis_title(fig.layout.yaxis) == "σ(x)" and _axis_title(fig.layout.yaxis2) == "σ′(x)"


def test_surrogate_from_registry_names_and_objects():
    from spikelab import surrogate

    fig = surrogate_figure(["atan", surrogate.get("triangle", gamma=0.5)])
    names = [t.name for t in fig.select_traces(col=2)]
    assert names == ["ATan(alpha=2)", "Triangle(gamma=0.5)"]
    atan_d, tri_d = fig.select_traces(col=2)
    mid = len(atan_d.x) // 2
    assert atan_d.x[mid] == 0.0
    assert atan_d.y[mid] == pytest.approx(1.0)  # peak alpha / 2
    assert tri_d.y[mid] == pytest.approx(2.0)  # peak 1 / gamma
    assert max(tri_d.y[np.abs(tri_d.x) >= 0.5]) == 0.0  # support |x| < gamma


@pytest.mark.parametrize("args, kwargs, err, word", [
    ([object()], {}, TypeError, "surrogates"),
    ([[]], {}, ValueError, "surrogates"),
    ([_Logistic(1.0)], dict(x_range=(1, -1)), ValueError, "x_range"),
    ([_Logistic(1.0)], dict(n=1), ValueError, "n"),
])
def test_surrogate_bad_input(args, kwargs, err, word):
    with pytest.raises(err, match=word):
        surrogate_figure(*args, **kwargs)


# ---------------------------------------------------------------------------------------------- firing rates
def test_firing_rate_bars():
    fig = firing_rate_figure({"conv1": 0.25, "conv2": np.float32(0.125), "fc": torch.tensor(0.5)})
    bar = fig.data[0]
    assert isinstance(bar, go.Bar) and list(bar.x) == ["conv1", "conv2", "fc"]
    np.testing.assert_allclose(bar.y, [0.25, 0.125, 0.5])
    assert _axis_title(fig.layout.xaxis) == "layer"
    assert _axis_title(fig.layout.yaxis) == "firing rate (spikes / neuron / step)"
    with pytest.raises(ValueError, match="rates"):
        firing_rate_figure({"a": -0.1})
    with pytest.raises(TypeError, match="rates"):
        firing_rate_figure([0.1])


def test_firing_rate_over_time_lines():
    rates = {"lif1": [0.0, 0.5, 0.25], "lif2": torch.tensor([0.1, 0.2])}
    fig = firing_rate_time_figure(rates)
    assert [t.name for t in fig.data] == ["lif1", "lif2"]
    np.testing.assert_allclose(fig.data[0].y, [0.0, 0.5, 0.25])
    np.testing.assert_allclose(fig.data[1].x, [0, 1])
    assert _axis_title(fig.layout.xaxis) == "time step"
    with pytest.raises(ValueError, match="lif"):
        firing_rate_time_figure({"lif": np.zeros((2, 2))})


# --------------------------------------------------------------------------------------------- gradient_heatmap
def test_gradient_heatmap_log_scale():
    g = np.array([[1e-3, 1e-2, 0.0], [1.0, 10.0, 100.0]])
    fig = gradient_heatmap(torch.tensor(g), layer_names=["conv1", "fc"])
    hm = fig.data[0]
    assert isinstance(hm, go.Heatmap) and list(hm.y) == ["conv1", "fc"]
    np.testing.assert_allclose(hm.z[0][:2], [-3.0, -2.0])
    assert np.isnan(hm.z[0][2])  # zero has no logarithm: left blank
    np.testing.assert_allclose(hm.z[1], [0.0, 1.0, 2.0])
    np.testing.assert_allclose(hm.customdata, g)  # the hover shows the raw norm
    assert list(hm.colorbar.tickvals) == [-3, -2, -1, 0, 1, 2]
    assert hm.colorbar.ticktext[0] == "10<sup>-3</sup>"
    assert _axis_title(fig.layout.xaxis) == "time step" and _axis_title(fig.layout.yaxis) == "layer"


def test_gradient_heatmap_dict_linear_and_errors():
    fig = gradient_heatmap({"l1": [1.0, 2.0], "l2": [3.0, 4.0]}, log=False)
    np.testing.assert_allclose(fig.data[0].z, [[1, 2], [3, 4]])
    assert list(fig.data[0].y) == ["l1", "l2"]
    narrow = gradient_heatmap(np.array([[2.0, 3.0]]))  # less than a decade: ticks labelled with values
    assert narrow.data[0].colorbar.ticktext[0] == "2" and narrow.data[0].colorbar.ticktext[-1] == "3"
    with pytest.raises(ValueError, match="same length"):
        gradient_heatmap({"l1": [1.0], "l2": [1.0, 2.0]})
    with pytest.raises(ValueError, match="grad_norms"):
        gradient_heatmap(np.array([[-1.0]]))
    with pytest.raises(ValueError, match="layer_names"):
        gradient_heatmap(np.ones((2, 3)), layer_names=["a"])
    with pytest.raises(ValueError, match="grad_norms"):
        gradient_heatmap(np.ones(3))


def test_text_and_complex_values_are_rejected_not_converted():
    # numpy would turn "1" into 1.0 and drop an imaginary part; a figure must refuse both
    with pytest.raises(ValueError, match="v_seq must hold real numbers"):
        membrane_figure(np.array(["0.2", "1.1"]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="v_seq must hold real numbers"):
        membrane_figure(np.array([0.2 + 1j, 1.1]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"grad_norms\['a'\] must be a rectangular sequence of real numbers"):
        gradient_heatmap({"a": ["1", "2"]})
    fig = gradient_heatmap({"a": [1, 2], "b": [3, 4]}, log=False)  # plain numbers still pass
    np.testing.assert_array_equal(fig.data[0].z, [[1, 2], [3, 4]])


def test_viz_package_does_not_import_ipywidgets():
    code = "import sys, spikelab.viz; assert 'ipywidgets' not in sys.modules, 'ipywidgets imported'"
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root)
    assert res.returncode == 0, res.stderr
