"""Every lab in headless Chromium through Voila, as a dashboard visitor sees it: its figures drawn and holding data,
every answer box saying "your turn" (never a failure before an answer), no error box, no page or console error and
no request to any host but the server; then one interaction per lab that a visitor would try (an answer, a
control, Start and Stop). Screenshots go to ``artifacts/screenshots/lab-<name>.png``."""
from __future__ import annotations

import json

import pytest
from conftest import PAGE_LOAD_S

pytestmark = pytest.mark.browser

#: the plots of each lab (their ``spikelab-<name>`` classes), all drawn with data once the page has run
PLOTS = {
    "01_one_neuron": ["charge-fire-reset", "three-resets", "fi-curve", "membrane", "surrogates"],
    "02_encoding": ["encoded", "counts", "tradeoff", "event-frames"],
    "03_surrogate_gradients": ["surrogates", "triangle-widths", "surrogate-curves", "gradient-flow", "flow-bn",
                               "flow-no-bn", "width-sweep"],
    "04_first_snn": ["inspect-membrane", "inspect-raster", "inspect-rates", "inspect-steps", "inspect-confusion"],
    "05_conv_snn": ["tdbn", "inspect-membrane", "inspect-raster", "inspect-rates", "inspect-steps",
                    "inspect-confusion", "energy", "ops-table"],
}
EXERCISES = 3  # answer boxes per lab in part 1


def _open_clean(open_lab, name: str, plots: list[str] | None = None, exercises: int = EXERCISES,
                hold: frozenset[str] = frozenset()):
    """Open lab ``name``, wait for its ``plots`` (default ``PLOTS[name]``), and check what every visitor sees
    first: each plot holding data (those in ``hold`` show a hint until Start), ``exercises`` answer boxes saying
    "your turn", and a clean page. Labs render progressively (:func:`spikelab.serve.voila_command`); rendered in
    one go, a lab lost its last widgets ("Error displaying widget: model not found", which
    :meth:`Dashboard.assert_clean` catches)."""
    plots = PLOTS[name] if plots is None else plots
    d = open_lab(name)
    for css in plots:
        d.wait_plot(css)
    empty = [css for css in plots if css not in hold and not d.has_data(css)]
    assert not empty, f"{name}: plots without data: {empty}"
    verdicts = d.page.locator(".spikelab-exercise .spikelab-verdict").all_inner_texts()
    assert len(verdicts) == exercises and all("your turn" in v for v in verdicts), verdicts
    assert "not quite" not in d.page.inner_text("body")
    d.assert_clean()
    return d


def _answer(d, index: int, text: str) -> str:
    """Type ``text`` into the ``index``-th answer box, press Check, and return the verdict once it has changed."""
    box = d.page.locator(".spikelab-exercise").nth(index)
    before = box.locator(".spikelab-verdict").inner_text()
    box.locator("input[type=text]").fill(text)
    box.locator("button.spikelab-check").click()
    d.wait_until("([i, before]) => document.querySelectorAll('.spikelab-exercise')[i]"
                 ".querySelector('.spikelab-verdict').innerText !== before", [index, before])
    return box.locator(".spikelab-verdict").inner_text()


def test_lab01_one_neuron(open_lab):
    d = _open_clean(open_lab, "01_one_neuron")
    resets = d.plot("three-resets")
    assert set(resets["traces"][0]["y"]) <= {0, 1, 2}  # three named rows
    assert d.page.evaluate("() => Array.from(document.querySelector('.spikelab-three-resets .js-plotly-plot')"
                           "._fullLayout.yaxis.ticktext)") == ["hard", "soft", "none"]
    assert {t["name"] for t in d.plot("fi-curve")["traces"]} == {"hard", "soft", "none"}
    wrong = _answer(d, 0, "[2, 5]")
    assert "not quite" in wrong and "Hint" in wrong
    assert "correct" in _answer(d, 0, "[2, 5, 8]")
    third = d.page.locator(".spikelab-exercise").nth(2)
    third.locator("label:has-text('soft')").click()
    third.locator("button.spikelab-check").click()
    d.wait_until("() => document.querySelectorAll('.spikelab-exercise')[2].innerText.includes('correct')")
    d.assert_clean()
    d.screenshot()


def test_lab02_encoding(open_lab):
    d = _open_clean(open_lab, "02_encoding")
    before = d.text("readout")
    d.page.click(".spikelab-code button:has-text('latency')")
    d.wait_until("() => document.querySelector('.spikelab-encoded .js-plotly-plot')"
                 ".layout.title.text.startsWith('latency code')")
    assert d.text("readout") != before and "spikes" in d.text("readout")
    assert len(d.plot("event-frames")["traces"]) == 8  # eight event frames
    d.assert_clean()
    d.screenshot()


def test_lab03_surrogate_gradients(open_lab):
    d = _open_clean(open_lab, "03_surrogate_gradients")
    assert "roughly flat" in d.text("readout")
    d.page.locator(".spikelab-bn input[type=checkbox]").click()  # batch norm off
    d.wait_until("() => document.querySelector('.spikelab-readout').innerText.includes('vanishing')")
    sweep = d.plot("width-sweep")
    assert {t["name"] for t in sweep["traces"]} == {"with batch norm", "without batch norm"}
    assert "explodes" in _answer(d, 2, "0.1")  # a triangle of gamma 0.1 is far too tall
    d.assert_clean()
    d.screenshot()


def test_lab04_first_snn_trains_and_is_inspected(open_lab):
    d = _open_clean(open_lab, "04_first_snn")
    assert d.text("inspect-readout").startswith("untrained")
    d.press_slider("epochs", "Home")
    d.press_slider("epochs", "ArrowRight", 2)  # 3 epochs: seconds, not a minute
    d.wait_until("() => document.querySelector('.spikelab-epochs .widget-readout').innerText.trim() === '3'")
    d.page.click("button.spikelab-start")
    d.wait_until("() => document.querySelector('.spikelab-inspect-readout').innerText.startsWith('trained')",
                 timeout_s=300)
    assert d.has_data("curves") and d.has_data("raster")
    acc = [y / 100 for y in d.plot("inspect-steps")["traces"][0]["y"]]
    assert max(acc) > 0.5, acc  # three epochs on digits learn something
    steps_needed = next(t + 1 for t, a in enumerate(acc) if a >= max(acc) - 0.02)
    assert "correct" in _answer(d, 1, str(steps_needed))  # the exercise reads the trained network's curve
    d.assert_clean()
    d.screenshot()


def test_lab05_conv_snn_starts_stops_and_counts_energy(open_lab):
    d = _open_clean(open_lab, "05_conv_snn")
    assert "untrained" in d.plot("energy")["title"]
    d.screenshot()  # the lab as it opens (Fashion-MNIST where installed)
    # train on the 8 x 8 digits (the 28 x 28 images keep a busy machine's browser too busy to answer clicks)
    d.page.select_option(".spikelab-dataset select", "digits")
    d.press_slider("epochs", "End")  # long enough that Stop, not the last epoch, ends the run
    d.wait_until("() => document.querySelector('.spikelab-epochs .widget-readout').innerText.trim() === '200'")
    points = ("() => { const gd = document.querySelector('.spikelab-curves .js-plotly-plot');"
              " return gd && gd._fullData ? gd._fullData[0].x.length : 0; }")
    d.page.click("button.spikelab-start")
    d.wait_until(f"() => ({points})() >= 3", timeout_s=300)
    # a click event straight to the button: while plots redraw, a starved browser may not paint the frames that
    # Playwright's click waits for (scrolling, stability)
    d.page.dispatch_event("button.spikelab-stop", "click")
    d.wait_until("() => document.querySelector('.spikelab-inspect-readout').innerText"
                 ".startsWith('trained, stopped')", timeout_s=300)
    d.wait_until("() => document.querySelector('.spikelab-energy .js-plotly-plot')"
                 ".layout.title.text.includes('trained, stopped')", timeout_s=120)
    assert d.plot("ops-table")["traces"] and "energy per sample on digits: SNN" in d.text("energy-readout")
    assert "on 450 images" in d.text("inspect-readout")  # the inspector followed the run to the digits
    d.assert_clean()
    d.screenshot("-stopped")


def test_every_lab_is_covered():
    """Every lab has its browser test: here or in another ``test_labs*.py`` beside this file (each with a PLOTS)."""
    import importlib
    from pathlib import Path

    from conftest import LABS_DIR

    covered = {}
    for f in sorted(Path(__file__).parent.glob("test_labs*.py")):
        covered.update(PLOTS if f.stem == "test_labs" else importlib.import_module(f.stem).PLOTS)
    assert sorted(p.stem for p in LABS_DIR.glob("[0-9]*.ipynb")) == sorted(covered), json.dumps(sorted(covered))
