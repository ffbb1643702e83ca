"""Figures and panels of labs 06, 08 and 09, against the formulas they draw (SPEC sections 3 and 4) and the
package functions they wrap."""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spikelab.data.events import make_events
from spikelab.losses import per_step_accuracy
from spikelab.reproduce import Table
from spikelab.viz import methods
from spikelab.viz._reproduction import side_by_side, table_html


def _outputs():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(5, 16, 4, generator=gen) * 2, torch.randint(0, 4, (16,), generator=gen)


def test_tet_loss_figure_draws_the_formulas():
    o, y = _outputs()
    fig = methods.tet_loss_figure(o, y, lam=0.4, phi=0.5)
    bars, tet_term, sdt_line, curve, sdt_curve, marker = fig.data
    per_step = [F.cross_entropy(o[t], y).item() for t in range(5)]
    assert np.allclose(bars.y, per_step)
    assert np.allclose(tet_term.y, sum(per_step) / 5) and np.allclose(sdt_line.y, F.cross_entropy(o.mean(0), y).item())
    assert sdt_line.y[0] <= tet_term.y[0]  # Jensen
    i = int(np.argmin(np.abs(np.asarray(curve.x) - 0.5)))
    assert curve.x[i] == 0.5
    assert curve.y[i] == pytest.approx(0.5 * sum(per_step) / 5 + 0.5 * ((o - 0.5) ** 2).mean().item(), rel=1e-5)
    want = 0.6 * sum(per_step) / 5 + 0.4 * ((o - 0.5) ** 2).mean().item()
    assert marker.x == (0.4,) and marker.y[0] == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="lam"):
        methods.tet_loss_figure(o, y, lam=1.5)
    with pytest.raises(ValueError, match="lam"):
        methods.tet_loss_figure(o, y, lam=math.nan)


@pytest.mark.parametrize("epoch, length, v_th", [(0, 100, 0.5), (40, 100, 0.5), (30, 20, 1.0)])
def test_ramp_figure_is_the_clipped_ramp(epoch, length, v_th):
    fig = methods.ramp_figure(epoch=epoch, length=length, v_th=v_th)
    start, ramp, step = fig.data
    frac = min(epoch, length) / (2 * length)
    a, b = 2 * v_th * min(frac, 0.49), 2 * v_th * (1 - frac)
    x = np.asarray(ramp.x)
    assert np.allclose(ramp.y, np.clip((x - a) / (b - a), 0, 1))
    assert np.allclose(start.y, np.clip(x / (2 * v_th), 0, 1))
    assert np.array_equal(step.y, (x >= v_th).astype(float))
    assert f"a = {a:.3f}" in fig.layout.title.text


def test_binned_events_figure_counts_every_event():
    ev = make_events(t=np.array([0, 10, 20, 90, 99]), x=np.array([0, 1, 2, 3, 3]), y=np.zeros(5, int),
                     p=np.array([1, 1, 0, 1, 0]))
    fig = methods.binned_events_figure(ev, T=2, H=1, W=4)
    assert fig.layout.title.text.startswith("5 events in 2 frames by time: 2 to 3 events per frame")
    z = [np.asarray(tr.z) for tr in fig.data if tr.z is not None]
    assert len(z) == 2 and z[0].sum() == 1 and z[1].sum() == 0  # ON - OFF: frame 0 has 2 ON 1 OFF; frame 1 1 ON 1 OFF


def test_per_step_accuracy_and_its_figure():
    o, y = _outputs()
    acc = per_step_accuracy(o, y)
    assert acc == pytest.approx([sum(int(o[t, b].argmax() == y[b]) for b in range(16)) / 16 for t in range(5)])
    fig = methods.step_accuracy_figure({"SDT": {"step": acc, "mean": acc[::-1]}})
    assert np.allclose(fig.data[0].y, [100 * a for a in acc])
    assert np.allclose(fig.data[1].y, [100 * a for a in acc[::-1]])
    with pytest.raises(ValueError, match="curves"):
        methods.step_accuracy_figure({})


def _table(rows, title="t", columns=("arm", "acc", "paper")):
    t = Table(title, list(columns))
    for r in rows:
        t.add(**r)
    return t


def test_side_by_side_matches_rows_by_label_then_position():
    ours = _table([dict(arm="scratch", acc="80.0", paper="p"), dict(arm="pipe", acc="81.0", paper="p")])
    theirs = _table([dict(arm="pipe", acc="87.1", paper="p"), dict(arm="scratch", acc="86.6", paper="p")])
    t = side_by_side(ours, theirs)
    assert t.columns == ["arm", "acc"]  # "paper" skipped
    assert t.rows == [dict(arm="scratch", acc="80.0 | 86.6"), dict(arm="pipe", acc="81.0 | 87.1")]
    other = _table([dict(arm="scratch, 6 epochs", acc="86.6"), dict(arm="pipe, 6 + 3", acc="87.1")])
    assert [r["acc"] for r in side_by_side(ours, other).rows] == ["80.0 | 86.6", "81.0 | 87.1"]  # by position
    short = _table([dict(arm="x", acc="1")])
    assert [r["acc"] for r in side_by_side(ours, short).rows] == ["80.0 | -", "81.0 | -"]
    assert [r["acc"] for r in side_by_side(ours, None).rows] == ["80.0 | -", "81.0 | -"]
    assert "80.0 | 86.6" in table_html(t) and "<script" not in table_html(_table([dict(arm="<script>", acc="1")]))
    with pytest.raises(TypeError, match="ours"):
        side_by_side({"rows": []}, None)


def _stand_in(monkeypatch, tmp_path, script: str):
    """A reproduction panel whose Start runs ``script`` (a stand-in for ``spikelab reproduce``)."""
    from spikelab.viz.widgets import ReproductionPanel, command

    monkeypatch.setattr(command, "local_argv", lambda argv: [sys.executable, "-c", script])
    return ReproductionPanel("tit-cost", runs_dir=tmp_path, size="smoke")


def test_reproduction_panel_shows_progress_then_a_failure(monkeypatch, tmp_path):
    p = _stand_in(monkeypatch, tmp_path, "print('[1/2     0.1 s] a run: test 50.00 %', flush=True)\n"
                                         "raise SystemExit('ValueError: no data here')")
    assert p.start()
    assert p.wait(60) and p.job.state == "failed"
    assert "no data here" in p.error and p.status.value.startswith("failed after") and p.table is None
    assert "[1/2     0.1 s] a run" in p.log.value


def test_reproduction_panel_stop_ends_the_run(monkeypatch, tmp_path):
    p = _stand_in(monkeypatch, tmp_path, "import time\nprint('[0/1 started]', flush=True)\ntime.sleep(60)")
    assert p.start() and not p.start()  # one run at a time
    for _ in range(400):  # the status follows the child's progress line
        if "[0/1 started]" in p.status.value:
            break
        p.job.wait(0.05)
    assert "[0/1 started]" in p.status.value
    p.stop_button.click()
    assert p.wait(20) and p.job.state == "stopped" and p.table is None
    assert p.status.value.startswith("stopped after") and not p.start_button.disabled


def test_event_rate_figure_counts_by_polarity():
    ev = make_events(t=np.array([0, 1000, 2000, 2500, 9000]), x=np.zeros(5, int), y=np.zeros(5, int),
                     p=np.array([1, 0, 1, 1, 0]))
    fig = methods.event_rate_figure(ev, bins=3)  # bins of 3 ms over 0..9 ms
    on, off = fig.data
    assert list(on.y) == [3, 0, 0] and list(off.y) == [1, 0, 1]  # 0, 2, 2.5 ms in the first bin
    assert fig.layout.title.text == "5 events over 9 ms"
    with pytest.raises(ValueError, match="at least one"):
        methods.event_rate_figure(ev[:0])
