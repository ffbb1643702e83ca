"""The training doctor in the playground, in headless Chromium: a student picks the "break it" network, presses
Start, and the findings list shows why it cannot learn, with advice, before training and after the first epoch."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

BREAK_IT = "break it"


def test_break_it_in_the_playground_shows_the_doctors_findings(open_dashboard):
    d = open_dashboard("playground")
    d.wait_plot("curves")
    assert "before training and after every epoch" in d.text("findings")
    d.page.select_option(".spikelab-preset select", label=BREAK_IT)
    d.press_slider("epochs", "Home")  # one epoch: the run ends by itself
    d.wait_until("() => document.querySelector('.spikelab-epochs .widget-readout').innerText.trim() === '1'")
    d.page.click("button.spikelab-start")
    silent = ".spikelab-findings .spikelab-finding[data-kind='silent'][data-layer='body.sn1']"
    d.page.wait_for_selector(silent, timeout=120_000)
    text = d.page.inner_text(silent)
    assert "found before training" in text and "x its threshold v_th = 10" in text and "Lower v_th" in text
    assert d.page.locator(".spikelab-findings .spikelab-finding[data-kind='dead_output']").count() == 1
    assert d.page.locator(".spikelab-findings code", has_text="spikelab dashboard surrogate").count() == 1
    # after the first epoch the list is redrawn from the new diagnosis: the network is still broken
    d.wait_until("() => document.querySelector('.spikelab-findings').innerText.includes('(after epoch 1)')",
                 timeout_s=120)
    assert d.page.locator(silent).count() == 1
    d.wait_until("() => !document.querySelector('button.spikelab-start').disabled", timeout_s=60)
    assert "finished" in d.text("status")
    d.assert_clean()
    d.screenshot("-break-it")
