"""Panels of labs 06, 08 and 09 without a browser: the slider figure follows its sliders, the per-step accuracy
panel measures what a loop over the steps measures, the reproduction panel shows docs/RESULTS.md's table."""
from __future__ import annotations

import html

import pytest
import torch
from torch.utils.data import DataLoader

from spikelab import data, models
from spikelab.reproduce import reported
from spikelab.viz import methods, widgets


def test_slider_figure_redraws_with_the_builders_figure():
    p = widgets.SliderFigure(methods.ramp_figure, name="ramp", sliders={"epoch": (0, 100, 1, 0)},
                             fixed={"length": 100.0})
    assert p.figure.layout.title.text == methods.ramp_figure(epoch=0, length=100.0).layout.title.text
    p.sliders["epoch"].value = 40
    assert p.values == {"epoch": 40}
    assert p.figure.layout.title.text == methods.ramp_figure(epoch=40, length=100.0).layout.title.text
    assert "spikelab-ramp" in p.outputs["ramp"]._dom_classes
    bad = widgets.SliderFigure(methods.ramp_figure, name="r2", sliders={"epoch": (-5, 5, 1, -1)})
    assert bad.error is not None and "epoch" in bad.error  # a failing build is a message, not a traceback
    with pytest.raises(ValueError, match="sliders"):
        widgets.SliderFigure(methods.ramp_figure, name="x", sliders={})


def test_step_accuracy_measures_each_steps_output():
    torch.manual_seed(0)
    net = models.build("conv-small", num_classes=10, in_channels=1, T=3, input_size=(8, 8), channels=(4, 8))
    panel = widgets.StepAccuracy(limit=64)
    panel.add(net, label="SDT, T=3", dataset="digits")
    assert panel.error is None
    test = data.load("digits", split="test", limit=64)
    x, y = next(iter(DataLoader(test, batch_size=64)))
    net.eval()
    with torch.no_grad():
        out = net(x)  # [T, B, C]
    want = [(out[t].argmax(-1) == y).float().mean().item() for t in range(3)]
    mean = [(out[: t + 1].mean(0).argmax(-1) == y).float().mean().item() for t in range(3)]
    assert panel.curves["SDT, T=3"]["step"] == pytest.approx(want)
    assert panel.curves["SDT, T=3"]["mean"] == pytest.approx(mean)
    assert len(panel.figures["step-accuracy"].data) == 2 and "SDT, T=3" in panel.readout.value


def test_reproduction_panel_shows_the_reported_table_or_says_it_is_missing():
    for name in ("tit-cost", "tet-vs-sdt", "pipe-s", "pipe-d"):
        p = widgets.ReproductionPanel(name, runs_dir="unused")
        table = reported(name)
        assert p.error is None and p.size.value == "lab" and list(p.size.options) == ["lab", "smoke", "full"]
        if table is None:
            assert "reports no table" in p.results.value
        else:
            assert all(html.escape(str(v)) in p.results.value for v in table.rows[0].values())
    assert widgets.ReproductionPanel("pipe-s", smoke=True).size.value == "smoke"
    flat = widgets.ReproductionPanel("flatness")  # no lab size: full, what docs/RESULTS.md reports
    assert list(flat.size.options) == ["smoke", "full"] and flat.size.value == "full"
    assert "spikelab reproduce flatness --size full --out runs/reproduce-full --no-progress" in flat.command.value
    with pytest.raises(ValueError, match=r"size must be one of \['smoke', 'full'\] for flatness, got 'lab'"):
        widgets.ReproductionPanel("flatness", size="lab")
    with pytest.raises(ValueError, match="nope"):
        widgets.ReproductionPanel("nope")
