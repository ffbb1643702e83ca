"""Labs 06, 08 and 09 in headless Chromium through Voila (as ``test_labs.py`` opens part 1): figures drawn with
data, every answer box saying "your turn", no error box, page or console error, nor request off the machine; then
a slider moved, an answer checked, and a reproduction started at the smoke size from its Start button, its
table set beside what docs/RESULTS.md reports. Screenshots go to ``artifacts/screenshots/lab-<name>.png``."""
from __future__ import annotations

import pytest
from test_labs import _answer
from test_labs import _open_clean as open_clean

from spikelab.reproduce import reported

pytestmark = pytest.mark.browser

#: the plots of each lab (their ``spikelab-<name>`` classes) that hold data as soon as the page has run
PLOTS = {
    "06_tet_vs_sdt": ["tet-loss"],
    "08_pretraining_bridge": ["ramp"],
    "09_event_data": ["event-rate", "event-bins"],
}
EXERCISES = 3


def _open_clean(open_lab, name: str):
    return open_clean(open_lab, name, PLOTS[name], EXERCISES)


def _title(d, css: str) -> str:
    return d.page.evaluate(f"() => document.querySelector('.spikelab-{css} .js-plotly-plot').layout.title.text")


def _run_reproduction(d, name: str) -> None:
    """Pick the smoke size in reproduction ``name``'s panel, press its Start, wait for its table and figure."""
    panel = f".spikelab-repro-{name}"
    d.page.select_option(f"{panel} .spikelab-repro-size select", "smoke")
    d.page.click(f"{panel} button.spikelab-repro-start")
    d.wait_until(f"() => document.querySelector('{panel} .spikelab-repro-status').innerText.startsWith('done')",
                 timeout_s=420)
    figure = f"repro-{name} .spikelab-repro-figure"  # this panel's figure (lab 06 has two panels)
    d.wait_plot(figure)
    d.wait_until("(css) => { const gd = document.querySelector(`.spikelab-${css} .js-plotly-plot`);"
                 " return gd && gd._fullData && gd._fullData.length > 0; }", figure, timeout_s=60)
    assert d.has_data(figure)
    compare = d.page.inner_text(f"{panel} .spikelab-repro-compare")
    assert "this run | docs/RESULTS.md" in compare and " | " in compare
    table = reported(name)
    shown = d.page.inner_text(f"{panel} .spikelab-repro-reported")
    if table is None:
        assert "reports no table" in shown
    else:  # the full-size numbers, as the file has them
        assert all(str(v) in shown for v in table.rows[0].values() if v)


def test_lab06_tet_against_sdt(open_lab):
    d = _open_clean(open_lab, "06_tet_vs_sdt")
    before = _title(d, "tet-loss")
    d.press_slider("tet-loss-lam", "End")
    d.wait_until("() => document.querySelector('.spikelab-tet-loss .js-plotly-plot').layout.title.text"
                 ".endsWith('lam = 1')")
    assert _title(d, "tet-loss") != before
    wrong = _answer(d, 0, "1.127")
    assert "not quite" in wrong and "Hint" in wrong
    assert "correct" in _answer(d, 0, "0.693")
    _run_reproduction(d, "tit-cost")
    d.assert_clean()
    d.screenshot()


def test_lab08_pretraining_bridge(open_lab):
    d = _open_clean(open_lab, "08_pretraining_bridge")
    assert _title(d, "ramp").startswith("epoch 0 of 100")
    d.press_slider("ramp-epoch", "ArrowRight", 40)
    d.wait_until("() => document.querySelector('.spikelab-ramp .js-plotly-plot').layout.title.text"
                 ".startsWith('epoch 40 of 100')")
    assert "correct" in _answer(d, 0, "1.667")  # the slope the figure's title now shows
    _run_reproduction(d, "pipe-s")
    d.assert_clean()
    d.screenshot()


def test_lab09_event_data(open_lab):
    d = _open_clean(open_lab, "09_event_data")
    assert "in 6 frames by time" in _title(d, "event-bins")
    d.press_slider("event-bins-T", "ArrowLeft", 3)
    d.wait_until("() => document.querySelector('.spikelab-event-bins .js-plotly-plot').layout.title.text"
                 ".includes('in 3 frames by time')")
    assert "correct" in _answer(d, 0, "12, 31, 1, 300")
    _run_reproduction(d, "pipe-d")
    d.assert_clean()
    d.screenshot()
