"""The doctor's panel logic without widgets: the "break it" preset breaks what the doctor then finds, and the findings
list shows each fault once with its advice and whether it went away."""
from __future__ import annotations

import pytest
import torch

from spikelab import models, surrogate
from spikelab.analysis import diagnose
from spikelab.analysis.doctor import BROKEN_V_TH, PRESETS, apply_preset
from spikelab.viz._doctor import findings_html


def build(name: str = "conv-small") -> models.SpikingModel:
    torch.manual_seed(0)
    return models.build(name, num_classes=10, in_channels=1, T=4, input_size=(8, 8))


@pytest.mark.parametrize("name", ["conv-small", "mlp"])
def test_break_it_raises_thresholds_above_the_normalised_currents_and_narrows_the_surrogate(name):
    healthy, broken = build(name), apply_preset(build(name), "break it")
    assert apply_preset(build(name), "healthy").state_dict().keys() == healthy.state_dict().keys()
    for (_, h), (_, b) in zip(healthy.neurons(), broken.neurons()):
        assert h.v_th == 1.0 and b.v_th == BROKEN_V_TH
        assert b.surrogate == surrogate.get("triangle", gamma=0.1)
    # batch norm still scales the currents to ~1 (the weights are untouched), so nothing reaches the threshold
    for k, v in healthy.state_dict().items():
        assert torch.equal(broken.state_dict()[k], v), k
    x, y = torch.rand(32, 1, 8, 8), torch.randint(0, 10, (32,))
    assert diagnose(healthy, x, y) == []
    keys = [f.key for f in diagnose(broken, x, y)]
    assert ("body.sn1", "silent") in keys and ("head.fc", "dead_output") in keys
    with pytest.raises(ValueError, match="preset"):
        apply_preset(healthy, "broken")
    assert PRESETS[0] == "healthy"


def finding(layer: str, kind: str, value: float, epoch: int, advice: str = "do this") -> dict:
    return dict(layer=layer, kind=kind, value=value, advice=advice, epoch=epoch, new=True)


def test_findings_list_shows_each_fault_once_with_advice_and_what_went_away():
    assert "before training and after every epoch" in findings_html([])
    assert "nothing found so far" in findings_html([{"epoch": 0, "findings": []}], running=True)
    log = [
        {"epoch": 0, "findings": [finding("body.sn1", "silent", 0.0, 0, "Lower v_th <now>"),
                                  finding("head.fc", "dead_output", 0.0, 0)]},
        {"epoch": 1, "findings": [finding("body.sn1", "silent", 0.0004, 1, "Lower v_th <now>")]},
    ]
    text = findings_html(log)
    assert text.count("class='spikelab-finding'") == 2
    assert "(after epoch 1)" in text
    assert "data-kind='silent'" in text and "0.0004" in text and "found before training" in text
    assert "Lower v_th &lt;now&gt;" in text  # advice is escaped
    # the dead output was not found again after epoch 1
    dead = text[text.index("data-kind='dead_output'"):]
    assert "gone after epoch 1" in dead and "gone" not in text[: text.index("data-kind='dead_output'")]
    assert "<code>spikelab dashboard surrogate</code>" in findings_html(
        [{"epoch": 0, "findings": [finding("", "vanishing_gradient", 1e-3, 0, "see `spikelab dashboard surrogate`")]}])
    with pytest.raises(TypeError, match="log"):
        findings_html("log")
