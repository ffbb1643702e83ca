"""Figures of the TET and pretraining reproductions: the traces hold the means and spreads of the runs given."""
from __future__ import annotations

import pytest

from spikelab.viz import tet_transfer as figs


def test_tet_vs_sdt_means_and_spreads():
    runs = [dict(dataset=d, T=T, loss=loss, seed=s, final=0.5 + 0.1 * s + (0.05 if loss == "tet" else 0))
            for d in ("digits", "fashion-mnist") for T in (2, 4, 6) for loss in ("sdt", "tet") for s in (0, 1)]
    fig = figs.tet_vs_sdt_figure(dict(runs=runs))
    assert [t.name for t in fig.data] == ["SDT", "TET"] * 2
    assert list(fig.data[1].y) == pytest.approx([60.0] * 3)  # TET: mean of 55 and 65
    assert list(fig.data[0].error_y.array) == pytest.approx([7.0710678] * 3)  # sample std of (50, 60)


def test_tit_pipe_s_pipe_d_figures():
    epochs = lambda accs: [dict(epoch=i + 1, test_acc=a, time_s=10.0 * (i + 1)) for i, a in enumerate(accs)]  # noqa
    tit = [dict(arm=a, seed=0, at_T={"1": 0.5, "2": 0.6}, epochs=epochs([0.7, 0.8])) for a in ("tit", "scratch")]
    fig = figs.tit_figure(dict(runs=tit))
    assert list(fig.data[0].y) == pytest.approx([70.0, 80.0]) and list(fig.data[1].x) == [1, 2]
    curve = [(0.8, 5.0, 2), (0.9, 9.0, 3)]
    pipe = [dict(scratch=dict(best=0.85, curve=[(0.7, 10.0, 1), (0.85, 20.0, 2)]), curve=curve,
                 pretrain_curve=[(0.6, 2.0, 1), (0.82, 5.0, 2)])]
    fig = figs.pipe_s_figure(dict(runs=pipe))
    for trace, want in zip(fig.data, ([70.0, 85.0], [60.0, 82.0], [80.0, 90.0])):  # scratch, ANN twin, pipe-S
        assert list(trace.y) == pytest.approx(want)
    d = [dict(scratch_curve=[0.5, 0.6], pretrained_curve=[0.7, 0.8]), dict(scratch_curve=[0.7, 0.8],
                                                                        pretrained_curve=[0.7, 0.8])]
    fig = figs.pipe_d_figure(dict(runs=d))
    assert list(fig.data[0].y) == pytest.approx([60.0, 70.0]) and list(fig.data[1].y) == pytest.approx([70.0, 80.0])
    with pytest.raises(ValueError, match="non-empty 'runs'"):
        figs.pipe_d_figure({})
