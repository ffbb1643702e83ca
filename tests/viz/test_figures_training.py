"""Training figures: learning curves, confusion matrix, loss landscapes, operations table."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from spikelab.history import History
from spikelab.viz.figures import (
    confusion_figure, curves_figure, landscape_1d_figure, landscape_2d_figure, ops_table_figure,
)


def _history(name: str = "run") -> History:
    h = History(name=name)
    h.epochs = [
        dict(epoch=1, train_loss=2.0, train_acc=0.3, test_loss=2.2, test_acc=0.25),
        dict(epoch=2, train_loss=1.5, train_acc=0.5, test_loss=None, test_acc=None),  # no test this epoch
        dict(epoch=3, train_loss=1.0, train_acc=0.7, test_loss=1.4, test_acc=0.6),
    ]
    h.steps = [dict(step=i, epoch=1 + i // 4, loss=2.0 - 0.1 * i, acc=0.05 * i, time_s=0.1 * i) for i in range(10)]
    return h


def _trace(fig: go.Figure, **meta) -> go.Scatter:
    found = [t for t in fig.data if all(t.meta[k] == v for k, v in meta.items())]
    assert len(found) == 1, meta
    return found[0]


def test_curves_epochs_one_trace_per_run_split_metric():
    fig = curves_figure(_history("lif"))
    assert len(fig.data) == 1 * 2 * 2
    tl = _trace(fig, split="train", metric="loss")
    assert list(tl.x) == [1, 2, 3] and list(tl.y) == [2.0, 1.5, 1.0]
    ta = _trace(fig, split="test", metric="acc")
    assert list(ta.x) == [1, 3] and list(ta.y) == [0.25, 0.6]  # the missing test epoch is skipped
    assert ta.line.dash == "dash" and tl.line.dash == "solid"
    assert tl.name == "lif (train)" and tl.legendgroup == "lif"
    assert tl.xaxis == "x" and ta.xaxis == "x2"  # loss left, accuracy right
    assert fig.layout.xaxis.title.text == "epoch" and fig.layout.xaxis2.title.text == "epoch"
    assert fig.layout.yaxis.title.text == "loss" and fig.layout.yaxis2.title.text == "accuracy"


def test_curves_many_runs_steps_and_empty_history():
    runs = {"atan": _history(), "live": History(name="ignored")}
    fig = curves_figure(runs, level="steps", metrics=("acc",))
    assert len(fig.data) == 2  # one train line per run at step level
    atan = _trace(fig, run="atan")
    np.testing.assert_allclose(atan.y, [0.05 * i for i in range(10)])
    assert list(atan.x) == list(range(10))
    live = _trace(fig, run="live")
    assert len(live.x) == 0 and len(live.y) == 0  # present, empty, ready to be filled in place
    assert fig.layout.xaxis.title.text == "step" and fig.layout.yaxis.title.text == "accuracy"
    # colours follow the run, not the split
    fig = curves_figure([_history("a"), _history("a")])
    assert {t.meta["run"] for t in fig.data} == {"a", "a #2"}
    assert _trace(fig, run="a", split="test", metric="loss").line.color == \
        _trace(fig, run="a", split="train", metric="acc").line.color


@pytest.mark.parametrize("args, kwargs, err, word", [
    (["not a history"], {}, TypeError, "histories"),
    ([[]], {}, ValueError, "histories"),
    ([{"a": 1}], {}, TypeError, "histories"),
    ([History()], dict(metrics=("loss", "f1")), ValueError, "metrics"),
    ([History()], dict(metrics="loss"), TypeError, "metrics"),
    ([History()], dict(level="batches"), ValueError, "level"),
])
def test_curves_bad_input(args, kwargs, err, word):
    with pytest.raises(err, match=word):
        curves_figure(*args, **kwargs)


def test_confusion_counts_and_row_normalisation():
    y_true = torch.tensor([0, 0, 1, 2, 2, 2])
    y_pred = torch.tensor([0, 1, 1, 2, 2, 0])
    counts = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])  # by hand
    fig = confusion_figure(y_true, y_pred, normalize=False)
    hm = fig.data[0]
    np.testing.assert_array_equal(hm.z, counts)
    assert list(hm.x) == ["0", "1", "2"] and list(hm.y) == ["0", "1", "2"]
    assert fig.layout.xaxis.title.text == "predicted class" and fig.layout.yaxis.title.text == "true class"
    fig = confusion_figure(y_true.numpy(), [0, 1, 1, 2, 2, 0], class_names=["a", "b", "c", "d"])
    hm = fig.data[0]
    expected = np.zeros((4, 4))
    expected[:3, :3] = counts / counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(hm.z, expected)  # class "d" has no samples: its row stays 0
    np.testing.assert_array_equal(np.asarray(hm.customdata)[:3, :3], counts)
    assert list(hm.x) == ["a", "b", "c", "d"] and hm.text[2][2] == "0.67"


@pytest.mark.parametrize("y_true, y_pred, kwargs, err, word", [
    ([0, 1], [0], {}, ValueError, "y_pred"),
    (np.array([0.0, 1.0]), [0, 1], {}, TypeError, "y_true"),
    ([0, 3], [0, 1], dict(class_names=["a", "b"]), ValueError, "y_true"),
    ([], [], {}, ValueError, "class_names"),
    (np.zeros((2, 2), dtype=int), [0, 1], {}, ValueError, "y_true"),
])
def test_confusion_bad_input(y_true, y_pred, kwargs, err, word):
    with pytest.raises(err, match=word):
        confusion_figure(y_true, y_pred, **kwargs)


def test_landscape_1d_lines_and_origin():
    alphas = np.linspace(-1, 1, 5)
    fig = landscape_1d_figure(torch.tensor(alphas), {"train": alphas ** 2, "test": [1.0, 0.5, 0.2, 0.6, 1.1]})
    assert [t.name for t in fig.data] == ["train", "test"]
    np.testing.assert_allclose(fig.data[0].x, alphas)
    np.testing.assert_allclose(fig.data[0].y, alphas ** 2)
    np.testing.assert_allclose(fig.data[1].y, [1.0, 0.5, 0.2, 0.6, 1.1])
    assert [s.x0 for s in fig.layout.shapes] == [0]  # the trained weights
    assert fig.layout.xaxis.title.text.startswith("α") and fig.layout.yaxis.title.text == "loss"
    single = landscape_1d_figure([0.5, 1.0], [3.0, 4.0])
    assert single.data[0].name == "loss" and len(single.layout.shapes) == 0
    with pytest.raises(ValueError, match="losses"):
        landscape_1d_figure(alphas, {"train": [1.0, 2.0]})


def test_landscape_2d_surface_and_contour():
    alphas, betas = np.linspace(-1, 1, 4), np.linspace(-0.5, 0.5, 3)
    Z = betas[:, None] ** 2 + 2 * alphas[None, :] ** 2  # [len(betas), len(alphas)]
    fig = landscape_2d_figure(alphas, betas, torch.tensor(Z))
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Surface)
    np.testing.assert_allclose(fig.data[0].z, Z)
    np.testing.assert_allclose(fig.data[0].x, alphas)
    np.testing.assert_allclose(fig.data[0].y, betas)
    scene = fig.layout.scene
    assert (scene.xaxis.title.text, scene.yaxis.title.text, scene.zaxis.title.text) == ("α", "β", "loss")

    fig = landscape_2d_figure(alphas, betas, Z, kind="contour")
    assert [type(t) for t in fig.data] == [go.Contour, go.Scatter]
    np.testing.assert_allclose(fig.data[0].z, Z)
    assert list(fig.data[1].x) == [0.0] and list(fig.data[1].y) == [0.0]
    assert fig.layout.xaxis.title.text == "α" and fig.layout.yaxis.title.text == "β"


@pytest.mark.parametrize("Z, kwargs, err, word", [
    (np.zeros((4, 3)), {}, ValueError, "Z"),
    (np.full((3, 4), np.inf), {}, ValueError, "Z"),
    (np.zeros((3, 4)), dict(kind="heatmap"), ValueError, "kind"),
])
def test_landscape_2d_bad_input(Z, kwargs, err, word):
    with pytest.raises(err, match=word):
        landscape_2d_figure(np.linspace(-1, 1, 4), np.linspace(-1, 1, 3), Z, **kwargs)


def test_ops_table_cells_and_totals():
    rows = [
        dict(layer="conv1", type="Conv2d", input_rate=None, acs=0, macs=2.0e8, energy_pj=4.6 * 2.0e8),
        dict(layer="fc", type="Linear", input_rate=0.125, acs=1.69e9, macs=0, energy_pj=0.9 * 1.69e9, params=1234),
        dict(layer="fc2", type="Linear", input_rate=0.39004, acs=0, macs=0, energy_pj=0),
    ]
    fig = ops_table_figure(rows, title="energy")
    table = fig.data[0]
    assert isinstance(table, go.Table)
    assert list(table.header.values) == ["<b>layer</b>", "<b>type</b>", "<b>input rate</b>", "<b>ACs</b>",
                                         "<b>MACs</b>", "<b>energy</b>", "<b>params</b>"]
    cols = [list(c) for c in table.cells.values]
    assert cols[0] == ["conv1", "fc", "fc2", "<b>total</b>"]
    assert cols[2] == ["–", "0.125", "0.390", ""]  # rates to three significant digits, every row alike
    assert cols[3] == ["0", "1.69 G", "0", "<b>1.69 G</b>"]
    assert cols[4] == ["200 M", "0", "0", "<b>200 M</b>"]
    # 0.92 mJ + 1.521 mJ = 2.441 mJ = 2.44e9 pJ
    assert cols[5] == ["920 µJ", "1.52 mJ", "0 pJ", "<b>2.44 mJ</b>"]
    assert cols[6] == ["–", "1234", "–", ""]


@pytest.mark.parametrize("rows, err, word", [
    ([], TypeError, "rows"),
    ([dict(layer="a", type="b", acs=1, macs=1, energy_pj=1)], ValueError, "input_rate"),
    (["row"], TypeError, r"rows\[0\]"),
    ([dict(layer="a", type="b", input_rate=None, acs=None, macs=1, energy_pj=1)], TypeError, "acs"),
])
def test_ops_table_bad_input(rows, err, word):
    with pytest.raises(err, match=word):
        ops_table_figure(rows)
