"""Event-camera figures: frame grid, frame animation, 3-D event cloud."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from spikelab.viz.figures import event_frames_figure, events_scatter_figure

EVENT_DTYPE = [("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8)]


def _frames(T: int = 3, H: int = 4, W: int = 5) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.poisson(1.0, size=(T, 2, H, W)).astype(np.float32)


def test_frame_grid_is_signed_on_minus_off():
    f = _frames()
    fig = event_frames_figure(torch.from_numpy(f))
    assert len(fig.data) == 3 and all(isinstance(t, go.Heatmap) for t in fig.data)
    for t, tr in enumerate(fig.data):
        np.testing.assert_array_equal(tr.z, f[t, 1] - f[t, 0])  # channel 1 = ON, channel 0 = OFF
        assert tr.coloraxis == "coloraxis"
    m = np.abs(f[:, 1] - f[:, 0]).max()
    assert fig.layout.coloraxis.cmin == -m and fig.layout.coloraxis.cmax == m  # white at zero
    assert [a.text for a in fig.layout.annotations] == ["t = 0", "t = 1", "t = 2"]
    assert fig.layout.xaxis.title.text == "x (pixel)" and fig.layout.yaxis.title.text == "y (pixel)"
    assert fig.layout.yaxis.autorange == "reversed"  # image rows go down
    flipped = event_frames_figure(f, on_channel=0)
    np.testing.assert_array_equal(flipped.data[0].z, f[0, 0] - f[0, 1])


def test_frame_grid_picks_evenly_spaced_frames():
    f = _frames(T=20)
    fig = event_frames_figure(f, max_frames=4, cols=2)
    assert [a.text for a in fig.layout.annotations] == ["t = 0", "t = 6", "t = 13", "t = 19"]
    np.testing.assert_array_equal(fig.data[2].z, f[13, 1] - f[13, 0])
    assert fig.data[3].xaxis == "x4" and fig.layout.yaxis4.domain[1] < fig.layout.yaxis.domain[0]  # 2 x 2 grid


def test_frame_animation_has_all_frames_play_button_and_slider():
    f = _frames(T=6)
    fig = event_frames_figure(f, animate=True)
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Heatmap)
    np.testing.assert_array_equal(fig.data[0].z, f[0, 1] - f[0, 0])
    assert [fr.name for fr in fig.frames] == [str(t) for t in range(6)]
    np.testing.assert_array_equal(fig.frames[4].data[0].z, f[4, 1] - f[4, 0])
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.method for b in buttons] == ["animate", "animate"] and "play" in buttons[0].label
    steps = fig.layout.sliders[0].steps
    assert [list(s.args[0]) for s in steps] == [[str(t)] for t in range(6)]
    assert fig.layout.xaxis.title.text == "x (pixel)" and fig.layout.yaxis.title.text == "y (pixel)"


@pytest.mark.parametrize("frames, kwargs, err", [
    (np.zeros((3, 1, 4, 4)), {}, ValueError),
    (np.zeros((3, 4, 4)), {}, ValueError),
    (-np.ones((3, 2, 4, 4)), {}, ValueError),
    (np.full((3, 2, 4, 4), np.nan), {}, ValueError),  # NaN counts used to pass the ">= 0" check
    (np.zeros((3, 2, 4, 4)), dict(on_channel=2), ValueError),
    (np.zeros((3, 2, 4, 4)), dict(max_frames=0), ValueError),
])
def test_frames_bad_input(frames, kwargs, err):
    with pytest.raises(err, match="frames|on_channel|max_frames"):
        event_frames_figure(frames, **kwargs)


def test_events_scatter_splits_polarity():
    ev = np.zeros(6, dtype=EVENT_DTYPE)
    ev["t"] = [10, 20, 30, 40, 50, 60]
    ev["x"] = [1, 2, 3, 4, 5, 6]
    ev["y"] = [6, 5, 4, 3, 2, 1]
    ev["p"] = [1, 0, 1, 1, 0, 0]
    fig = events_scatter_figure(ev)
    on, off = fig.data
    assert isinstance(on, go.Scatter3d) and (on.name, off.name) == ("ON", "OFF")
    assert list(on.x) == [1, 3, 4] and list(on.y) == [6, 4, 3] and list(on.z) == [10, 30, 40]
    assert list(off.x) == [2, 5, 6] and list(off.z) == [20, 50, 60]
    scene = fig.layout.scene
    assert (scene.xaxis.title.text, scene.yaxis.title.text, scene.zaxis.title.text) == \
        ("x (pixel)", "y (pixel)", "t (µs)")


def test_events_scatter_subsamples_in_time_order():
    n = 5000
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["t"] = np.arange(n) * 3
    ev["x"] = np.arange(n) % 34
    ev["p"] = np.where(np.arange(n) % 3 == 0, 1, -1)  # {-1, 1} polarity also works
    fig = events_scatter_figure(ev, max_events=500, seed=1)
    on, off = fig.data
    assert len(on.z) + len(off.z) == 500
    for tr, sign in ((on, 0), (off, 1)):
        t = np.asarray(tr.z)
        assert np.all(np.diff(t) > 0) and np.all(t % 3 == 0)  # a subset of the events, kept in order
        assert np.all(((t // 3) % 3 != 0) == bool(sign))  # each landed in its polarity's trace
        np.testing.assert_array_equal(tr.x, (t // 3) % 34)
    again = events_scatter_figure(ev, max_events=500, seed=1)
    np.testing.assert_array_equal(again.data[0].z, on.z)  # seeded


def test_events_scatter_bad_input():
    with pytest.raises(TypeError, match="events"):
        events_scatter_figure(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="p"):
        events_scatter_figure(np.zeros(3, dtype=[("t", int), ("x", int), ("y", int)]))
