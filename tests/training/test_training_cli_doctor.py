"""The training doctor on the command line: ``spikelab train --diagnose`` prints findings as they appear and stores
them in the run; ``spikelab eval`` prints the diagnosis of the evaluated model."""
from __future__ import annotations

import re

import pytest

from spikelab import data, recipe
from spikelab.analysis import diagnose, findings_of, format_findings
from spikelab.cli import main
from spikelab.training import load_checkpoint, load_run

SMOKE = ["--limit", "120", "--epochs", "2", "--no-progress", "--device", "cpu"]


def test_train_diagnose_prints_new_findings_once_and_stores_them(tmp_path, capsys, monkeypatch):
    build = recipe.build_model

    def broken(cfg, *args, **kwargs):
        model = build(cfg, *args, **kwargs)
        model.body.sn1.v_th = 100.0  # far above its batch-normed input currents: silent
        return model

    monkeypatch.setattr(recipe, "build_model", broken)
    assert main(["train", "--out", str(tmp_path), "--name", "sick", "--diagnose", *SMOKE]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("doctor, ")]
    assert lines[0].startswith("doctor, before training: body.sn1: silent (0). body.sn1 never fires")
    stored = findings_of(load_run(tmp_path / "sick"))
    new = [f for f in stored if f["new"]]
    assert len(lines) == len(new) and len({(f["layer"], f["kind"]) for f in new}) == len(new)
    assert ("head.fc", "dead_output") in {(f["layer"], f["kind"]) for f in stored}
    assert f"training doctor: {len(new)} different finding(s)" in out
    assert out.index("doctor, before training") < out.index("epoch   1/2")


def test_train_without_diagnose_stores_no_findings(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--name", "plain", *SMOKE]) == 0
    assert "doctor" not in capsys.readouterr().out
    assert findings_of(load_run(tmp_path / "plain")) == []


def test_eval_prints_the_diagnosis_of_the_evaluated_model(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--name", "ev", *SMOKE]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "ev"), "--limit", "120", "--no-progress", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    # oracle: diagnose() on the same weights, in eval mode, on the first test batch (all 120 samples)
    ckpt = load_checkpoint(tmp_path / "ev")
    model = recipe.build_model(ckpt["run_config"], ckpt["model"])
    x, y = next(iter(data.make_loaders("digits", batch_size=256, limit=120)[1]))
    findings = diagnose(model.eval(), x, y)
    head = re.search(r"^training doctor \(first batch of 120, eval mode\): (.*)$", out, re.M)
    assert head is not None
    if findings:
        assert head.group(1) == f"{len(findings)} finding(s)"
        assert format_findings(findings) in out
    else:
        assert head.group(1) == "nothing found"


def test_a_run_broken_on_purpose_is_rebuilt_broken():
    from spikelab.analysis.doctor import BROKEN_SURROGATE, BROKEN_V_TH

    cfg = dict(model="conv-small", T=4, num_classes=10, input_shape=[1, 8, 8], is_event=False)
    healthy, broken = recipe.build_model(cfg), recipe.build_model({**cfg, "preset": "break it"})
    assert [n.v_th for _, n in healthy.neurons()] == [1.0, 1.0]
    assert [(n.v_th, n.surrogate) for _, n in broken.neurons()] == [(BROKEN_V_TH, BROKEN_SURROGATE)] * 2
    with pytest.raises(ValueError, match="preset"):
        recipe.build_model({**cfg, "preset": "broken"})
