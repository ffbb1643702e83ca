"""The doctor as a fit callback: diagnoses before training and after each epoch, records findings in the history as
plain JSON, warns once per new finding, and leaves training exactly as it would be without it."""
from __future__ import annotations

import json
import warnings

import pytest
import torch

from spikelab import data, models
from spikelab.analysis import DoctorCallback, TrainingDoctorWarning, diagnose, findings_of
from spikelab.history import History
from spikelab.training import fit, load_checkpoint

QUIET = dict(progress=False, device="cpu", epochs=2, lr=1e-2)


@pytest.fixture(scope="module")
def loaders():
    return data.make_loaders("digits", batch_size=64, seed=0, limit=192)


def conv_snn(v_th_first: float | None = None) -> models.SpikingModel:
    torch.manual_seed(0)
    net = models.build("conv-small", num_classes=10, in_channels=1, T=4)
    if v_th_first is not None:
        net.body.sn1.v_th = v_th_first
    return net


def probe(loaders):
    return next(iter(loaders[1]))


def test_a_silent_network_is_diagnosed_before_and_after_each_epoch(loaders, tmp_path):
    net = conv_snn(v_th_first=100.0)
    x, y = probe(loaders)
    seen = []
    doctor = DoctorCallback(net, x, y, on_finding=lambda f, epoch: seen.append((f.key, epoch)))
    with pytest.warns(TrainingDoctorWarning) as caught:
        history = fit(net, loaders, callbacks=[doctor], run_dir=tmp_path / "run", **QUIET)
    # before training the model is what diagnose() says of an identical fresh model
    fresh = [f.to_dict() for f in diagnose(conv_snn(v_th_first=100.0), x, y)]
    assert [{k: f[k] for k in ("layer", "kind", "value", "advice")} for f in doctor.log[0]["findings"]] == fresh
    assert [e["epoch"] for e in doctor.log] == [0, 1, 2]
    keys = [(f["layer"], f["kind"]) for f in doctor.log[0]["findings"]]
    assert ("body.sn1", "silent") in keys and ("head.fc", "dead_output") in keys
    # each (layer, kind) is announced once, at the epoch it first appears
    new = [((f["layer"], f["kind"]), e["epoch"]) for e in doctor.log for f in e["findings"] if f["new"]]
    assert seen == new and len(set(k for k, _ in seen)) == len(seen)
    assert len([w for w in caught if issubclass(w.category, TrainingDoctorWarning)]) == len(seen)
    assert "before training" in str(caught[0].message) and "body.sn1" in str(caught[0].message)
    # the history holds them all, in order, and survives JSON
    logged = [f for e in doctor.log for f in e["findings"]]
    assert findings_of(history) == logged
    assert [f["epoch"] for f in history.epochs[0]["findings"]][0] == 0
    again = History(epochs=[json.loads(json.dumps(r)) for r in history.epochs])
    assert findings_of(again) == logged
    # ... and so does the run folder, written as the epochs end
    assert findings_of(History.from_jsonl(tmp_path / "run" / "history.jsonl")) == logged
    assert findings_of(load_checkpoint(tmp_path / "run")["history"]["epochs"]) == logged


def test_a_healthy_network_gets_no_warning_and_trains_exactly_as_without_the_doctor(loaders):
    x, y = probe(loaders)
    plain = fit(conv_snn(), loaders, **QUIET)
    net = conv_snn()
    doctor = DoctorCallback(net, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingDoctorWarning)
        checked = fit(net, loaders, callbacks=[doctor], **QUIET)
    assert findings_of(checked) == [] and [e["findings"] for e in doctor.log] == [[], [], []]
    strip = lambda r: {k: v for k, v in r.items() if k not in ("time_s", "findings")}  # noqa: E731
    assert [strip(r) for r in checked.steps] == [strip(r) for r in plain.steps]
    assert [strip(r) for r in checked.epochs] == [strip(r) for r in plain.epochs]


def test_bad_arguments_are_named():
    net = conv_snn()
    with pytest.raises(TypeError, match="model"):
        DoctorCallback("net", torch.rand(2, 1, 8, 8))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        DoctorCallback(net, [1, 2])
    with pytest.raises(TypeError, match="on_finding"):
        DoctorCallback(net, torch.rand(2, 1, 8, 8), on_finding=3)
    with pytest.raises(TypeError, match="history"):
        findings_of(3)
