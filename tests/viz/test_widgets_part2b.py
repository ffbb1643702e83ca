"""Panels of labs 07 and 10 and the reproduction panel, driven as a notebook drives them: the landscape explorer
shows coinciding curves along filter-normalised directions and stretched ones along raw directions (oracle:
rescale_before_norm's invariance, tested in tests/analysis); the full-spike comparison counts four networks and
follows a trained DSNN; the reproduction panel runs a real reproduction and shows the table it wrote."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("ipywidgets")

from spikelab import models  # noqa: E402
from spikelab.reproduce import Table  # noqa: E402
from spikelab.reproduce.tit_cost import figures as tit_figures  # noqa: E402
from spikelab.viz._reproduction import side_by_side, table_html  # noqa: E402
from spikelab.viz.widgets import FullSpikeComparison, LandscapeExplorer, ReproductionPanel  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_landscape_explorer_shows_the_scale_invariance():
    e = LandscapeExplorer(n=16, points=5)
    assert e.error is None and e.gap < 1e-4 and "coincide" in e.readout.value
    assert len(e.figures["landscape-scale"].data) == 2
    e.normalised.value = False
    assert e.error is None and e.gap > 1e-3 and "move 2x less per step" in e.readout.value
    e.scale.value = 1.0
    assert e.gap < 1e-6 and "the same network" in e.readout.value
    e.set_model(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)))  # no batch norm: a message
    assert e.error is not None and "nothing to rescale" in e.error


def test_full_spike_comparison_counts_four_networks_and_follows_a_dsnn():
    p = FullSpikeComparison(n=8, T=2)
    assert p.error is None and list(p.rows) == ["FSNN", "DSNN", "SEW-ResNet (ADD)", "ANN"]
    assert "untrained" in p.figures["network-energy"].layout.title.text
    p.view.value = "ANN"
    assert p.figures["layer-ops"].layout.title.text.startswith("ANN")
    torch.manual_seed(1)
    trained = models.build("dsnn-small", num_classes=10, in_channels=1, T=3, connect="OR")
    p.set_model(trained)
    assert (p.join.value, p.T.value) == ("OR", 3) and p.error is None
    title = p.figures["network-energy"].layout.title.text
    assert "trained" in title and "untrained" not in title and "join OR" in title
    p.set_model(torch.nn.Linear(2, 2))
    assert p.trained is trained and "not a dual-stream" in p.message.value


@pytest.mark.timeout(600)
def test_reproduction_panel_runs_a_reproduction_and_shows_its_table(tmp_path):
    p = ReproductionPanel("tit-cost", runs_dir=tmp_path, size="smoke", seeds=1)
    out = tmp_path / "reproduce-smoke"
    assert f"spikelab reproduce tit-cost --size smoke --seeds 1 --out {out}" in p.command.value
    assert p.start(), p.error
    assert p.wait(500) and p.job.state == "done", p.job.output[-3000:]
    want = Table.load(out / "tit-cost")  # what the command wrote
    assert p.table.rows == want.rows and p.ours.value == table_html(want)
    assert p.compare.value == table_html(side_by_side(want, p.reported))
    assert list(p.figures_drawn) == ["tit-cost"] and p.figure.value == "tit-cost"
    assert p.figures["repro-figure"].to_dict()["data"] == tit_figures(want)["tit-cost"].to_dict()["data"]
    assert p.status.value.startswith("done in") and "done: tit-cost at size smoke" in p.message.value
