"""Labs 07, 10 and 11 (part 2 of the series) in headless Chromium through Voila, as test_labs.py checks part 1: the
plots drawn, every answer box saying "your turn", no error box, no page or console error and no request off the
machine; then what a visitor would do on each (Start, a control, an answer). Screenshots go to
``artifacts/screenshots/lab-<name>.png``."""
from __future__ import annotations

import pytest
from test_labs import _answer
from test_labs import _open_clean as open_clean

pytestmark = pytest.mark.browser

#: the plots of each lab (their ``spikelab-<name>`` classes), drawn once the page has run; those in HOLD_HINTS show
#: a hint (no data) until the visitor presses Start
PLOTS = {
    "07_loss_landscapes": ["landscape-scale", "repro-figure"],
    "10_full_spike": ["joins", "network-energy", "layer-ops", "repro-figure"],
    "11_full_scale": ["command-curves", "accuracy-vs-T"],
}
HOLD_HINTS = {"command-curves", "accuracy-vs-T", "repro-figure"}
EXERCISES = {"07_loss_landscapes": 3, "10_full_spike": 3, "11_full_scale": 3}


def _open_clean(open_lab, name: str):
    return open_clean(open_lab, name, PLOTS[name], EXERCISES[name], hold=HOLD_HINTS)


def _wait_data(d, css: str, timeout_s: float = 120) -> None:
    """Wait until the plot in ``spikelab-<css>`` holds data (see ``Dashboard.has_data``)."""
    d.wait_until("""(css) => { const gd = document.querySelector(`.spikelab-${css} .js-plotly-plot`);
        return gd && gd._fullData && gd._fullData.some((t) => (t.x && t.x.length) || (t.y && t.y.length)); }""",
                 css, timeout_s=timeout_s)


def test_lab11_full_scale_trains_evaluates_and_compares(open_lab):
    d = _open_clean(open_lab, "11_full_scale")
    line = d.text("train-command-line")
    assert "$ spikelab train --model conv-small" in line and "--no-progress" in line
    d.screenshot()  # the lab as it opens (the README's Fashion-MNIST command where it is installed)
    # the command follows the controls: several processes go through torchrun
    d.press_slider("cmd-processes", "ArrowRight", 1)
    d.wait_until("() => document.querySelector('.spikelab-train-command-line').innerText"
                 ".includes('torchrun --standalone --nproc_per_node=2')")
    d.press_slider("cmd-processes", "Home")
    # a short run on the digits (the full Fashion-MNIST run takes minutes)
    d.page.select_option(".spikelab-cmd-dataset select", "digits")
    d.page.select_option(".spikelab-cmd-limit select", label="256")
    d.press_slider("cmd-epochs", "Home")
    d.wait_until("() => { const t = document.querySelector('.spikelab-train-command-line').innerText;"
                 " return t.includes('--epochs 1 ') && t.includes('--limit 256') && t.includes('--dataset digits')"
                 " && !t.includes('torchrun'); }")
    d.page.click("button.spikelab-train-command-start")
    d.wait_until("() => document.querySelector('.spikelab-train-command-compare').innerText.includes('this run:')",
                 timeout_s=300)
    assert "not like for like" in d.text("train-command-compare")  # the digits are not the README's run
    assert d.has_data("command-curves")
    _wait_data(d, "run-curves")  # the run comparison refreshes once the run has ended
    d.wait_until("() => document.querySelector('.spikelab-run-table').innerText.includes('finished')")
    # accuracy against T of the run just trained, beside RESULTS.md's numbers
    d.page.click("button.spikelab-run-tools-start")
    d.wait_until("() => document.querySelector('.spikelab-accuracy-vs-T .js-plotly-plot')"
                 " && document.querySelector('.spikelab-accuracy-vs-T .js-plotly-plot').data.length >= 2",
                 timeout_s=300)
    ours, reported = d.plot("accuracy-vs-T")["traces"][:2]
    assert ours["x"] == [1, 2, 4, 6, 8] and all(0 <= y <= 100 for y in ours["y"])
    assert reported["name"].startswith("RESULTS.md") and reported["y"][0] == pytest.approx(85.47)
    assert "correct" in _answer(d, 1, "64")
    d.assert_clean()
    d.screenshot("-trained")


def test_lab07_loss_landscapes_rescaling_and_answers(open_lab):
    d = _open_clean(open_lab, "07_loss_landscapes")
    assert len(d.plot("landscape-scale")["traces"]) == 2 and "coincide" in d.text("ls-readout")
    assert "spikelab reproduce flatness --size full" in d.text("repro-line")
    d.page.locator(".spikelab-ls-normalised input[type=checkbox]").click()  # the raw direction
    d.wait_until("() => document.querySelector('.spikelab-ls-readout').innerText.includes('the curves differ')",
                 timeout_s=120)
    d.wait_until("() => document.querySelector('.spikelab-landscape-scale .js-plotly-plot')"
                 ".layout.title.text.includes('raw')", timeout_s=120)
    wrong = _answer(d, 2, "3")
    assert "not quite" in wrong and "Hint" in wrong
    assert "correct" in _answer(d, 2, "1.5")
    d.assert_clean()
    d.screenshot()


def test_lab10_full_spike_joins_training_and_energy(open_lab):
    d = _open_clean(open_lab, "10_full_spike")
    joins = d.plot("joins")["traces"]
    assert [t["name"] for t in joins] == ["ADD", "IAND", "AND", "OR", "XOR"] and joins[0]["z"] == [[0, 1], [1, 2]]
    assert {t["x"][i] for t in d.plot("network-energy")["traces"][:1] for i in range(4)} == {
        "FSNN", "DSNN", "SEW-ResNet (ADD)", "ANN"}
    assert "correct" in _answer(d, 0, "[0, 1, 1, 0]")
    d.page.select_option(".spikelab-fs-join select", "XOR")
    d.wait_until("() => document.querySelector('.spikelab-network-energy .js-plotly-plot')"
                 ".layout.title.text.includes('join XOR')", timeout_s=120)
    # one epoch of dual-stream training; the comparison then counts the trained network (its join, IAND)
    d.press_slider("epochs", "Home")
    d.wait_until("() => document.querySelector('.spikelab-epochs .widget-readout').innerText.trim() === '1'")
    d.page.click("button.spikelab-start")
    d.wait_until("() => document.querySelector('.spikelab-network-energy .js-plotly-plot')"
                 ".layout.title.text.includes('(trained')", timeout_s=300)
    assert "full-spike network alone" in d.page.inner_text("body")
    d.assert_clean()
    d.screenshot()
