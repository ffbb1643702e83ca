"""The doctor in the training panel, without a browser: "break it" trains a broken network and the findings list
shows what the doctor found (the same findings as the run's history); a healthy network gets an all-clear."""
from __future__ import annotations

import re

import pytest

from spikelab.analysis import findings_of
from spikelab.cli import main
from spikelab.training import load_checkpoint
from spikelab.history import History
from spikelab.analysis.doctor import PRESETS
from spikelab.viz.widgets import TrainingPanel, TrainSettings


def test_break_it_shows_the_findings_with_their_advice(tmp_path, capsys):
    p = TrainingPanel(settings=TrainSettings(model="mlp"), runs_dir=tmp_path, smoke=True)
    assert p.controls["preset"].value == "healthy" and set(dict(p.controls["preset"].options).values()) == set(PRESETS)
    assert "before training and after every epoch" in p.findings.value
    p.controls["preset"].value = "break it"
    assert p.start() and p.wait(60) and p.job.task.state == "done", p.error
    log = p.job.doctor_log
    assert [e["epoch"] for e in log] == [0, 1]
    keys = {(f["layer"], f["kind"]) for e in log for f in e["findings"]}
    assert ("body.sn1", "silent") in keys and ("head.fc", "dead_output") in keys
    shown = p.findings.value
    assert shown.count("class='spikelab-finding'") == len(keys)
    assert "data-kind='silent' data-layer='body.sn1'" in shown and "Lower v_th" in shown
    # what the panel shows is what the run folder keeps
    stored = findings_of(History.from_jsonl(p.job.run_dir / "history.jsonl"))
    assert stored == [f for e in log for f in e["findings"]]
    assert load_checkpoint(p.job.run_dir)["run_config"]["preset"] == "break it"
    # the run keeps its preset, so spikelab eval rebuilds the broken network, not a healthy one
    capsys.readouterr()
    assert main(["eval", str(p.job.run_dir), "--no-progress", "--device", "cpu"]) == 0
    assert re.search(r"^  body\.sn1: silent \(0\)\.", capsys.readouterr().out, re.M)


def test_a_healthy_network_gets_an_all_clear(tmp_path):
    p = TrainingPanel(settings=TrainSettings(model="mlp"), runs_dir=tmp_path, smoke=True)
    assert p.start() and p.wait(60) and p.job.task.state == "done", p.error
    assert [e["findings"] for e in p.job.doctor_log] == [[], []]
    assert "nothing found, the network looks healthy" in p.findings.value


def test_a_bad_preset_is_refused():
    with pytest.raises(ValueError, match="preset"):
        TrainSettings(preset="broken")
