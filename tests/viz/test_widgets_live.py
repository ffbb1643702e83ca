"""The computations behind the panels, without widgets: input currents, the neuron trace, the gradient-flow probe,
the throttle, the background task and the training job."""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from spikelab import surrogate
from spikelab.neurons import NeuronConfig
from spikelab.training import load_run
from spikelab.analysis import gradient_flow
from spikelab.viz._explore import CURRENT_KINDS, input_current, simulate_neuron
from spikelab.viz._live import BackgroundTask, Throttle, TrainingJob, TrainSettings


def lif_reference(current, decay, v_th, reset):
    """Plain loop over SPEC section 1: returns (h, spikes) as lists."""
    v, hs, ss = 0.0, [], []
    for i in current:
        h = decay * v + i
        s = 1.0 if h >= v_th else 0.0
        v = {"hard": h * (1 - s), "soft": h - v_th * s, "none": h}[reset]
        hs.append(h)
        ss.append(s)
    return hs, ss


def test_input_currents_match_their_definitions():
    T, a = 50, 0.8
    assert torch.equal(input_current("constant", a, T), torch.full((T,), a, dtype=torch.float64))
    step = input_current("step", a, T)
    assert step[: T // 5].abs().sum() == 0 and torch.all(step[T // 5:] == a)
    ramp = input_current("ramp", a, T)
    assert ramp[0] == 0 and math.isclose(float(ramp[-1]), a) and torch.all(ramp.diff() > 0)
    sine = input_current("sine", a, T)
    assert math.isclose(float(sine[0]), a / 2) and float(sine.min()) >= 0 and float(sine.max()) <= a
    poisson = input_current("poisson", a, 2000, seed=3)
    assert set(poisson.unique().tolist()) == {0.0, a} and 0.25 < float((poisson > 0).double().mean()) < 0.35
    assert torch.equal(input_current("noisy", a, T, seed=1), input_current("noisy", a, T, seed=1))
    assert not torch.equal(input_current("noisy", a, T, seed=1), input_current("noisy", a, T, seed=2))


def test_input_current_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        input_current("square", 1.0, 10)
    with pytest.raises(TypeError, match="amplitude"):
        input_current("constant", "1", 10)
    with pytest.raises(ValueError, match="T must be >= 1"):
        input_current("constant", 1.0, 0)
    assert set(CURRENT_KINDS) == {"constant", "step", "ramp", "sine", "noisy", "poisson"}


@pytest.mark.parametrize("reset", ["hard", "soft", "none"])
def test_simulate_neuron_matches_the_reference_loop(reset):
    current = input_current("noisy", 0.5, 60, seed=0)
    tr = simulate_neuron(NeuronConfig(decay=0.7, v_th=1.0, reset=reset), current)
    h, s = lif_reference(current.tolist(), 0.7, 1.0, reset)
    np.testing.assert_allclose(tr.h, h, atol=1e-12)
    np.testing.assert_array_equal(tr.spikes, s)
    assert tr.count == int(sum(s))


def test_neuron_gradient_changes_with_the_surrogate_not_the_spikes():
    current = input_current("sine", 1.5, 40)
    a = simulate_neuron(NeuronConfig(surrogate="atan"), current)
    b = simulate_neuron(NeuronConfig(surrogate="triangle"), current)
    np.testing.assert_array_equal(a.spikes, b.spikes)
    assert not np.allclose(a.grad, b.grad)
    # last step: only s[T-1] depends on I[T-1], so the gradient there is sigma'(h[T-1] - v_th)
    sg = surrogate.get("atan")
    assert math.isclose(a.grad[-1], float(sg.grad(torch.tensor(a.h[-1] - 1.0))), rel_tol=1e-9)


def test_gradient_flow_last_layer_is_the_readout():
    # with one layer, dL/ds[t] is the readout vector for every sample: norm sqrt(batch) * |readout| at each step
    g = gradient_flow("atan", depth=1, width=16, T=5, batch=4, seed=7)
    gen = torch.Generator().manual_seed(7)
    torch.rand(5, 4, 16, generator=gen)  # the input spikes are drawn first
    readout = torch.randn(16, generator=gen) / 4.0
    assert g.shape == (1, 5)
    np.testing.assert_allclose(g[0], np.full(5, 2.0 * float(readout.norm())), rtol=1e-5)


def test_gradient_flow_vanishes_or_explodes_with_the_surrogate_scale():
    def ratio(sg):
        g = gradient_flow(sg, depth=8)
        per_layer = np.sqrt((g ** 2).sum(axis=1))
        return per_layer[0] / per_layer[-1]

    assert ratio(surrogate.get("atan", alpha=0.25)) < 0.01  # flat and low: vanishing
    assert ratio(surrogate.get("rectangle", width=0.1)) > 100  # narrow and tall (height 10): exploding
    assert np.array_equal(gradient_flow("triangle", seed=1), gradient_flow("triangle", seed=1))


def test_throttle_lets_one_action_through_per_interval():
    now = [0.0]
    th = Throttle(0.5, clock=lambda: now[0])
    assert th.ready() and not th.ready()
    now[0] = 0.49
    assert not th.ready() and th.ready(force=True)
    now[0] = 0.99
    assert th.ready()
    th.reset()
    assert th.ready()
    with pytest.raises(ValueError, match="interval_s"):
        Throttle(0)


def test_background_task_stops_fails_and_reports():
    task = BackgroundTask()
    ended = []

    def loop(stop):
        while not stop.wait(0.01):
            pass
        return "partial"

    task.start(loop, on_done=lambda t: ended.append(t.state))
    assert task.running
    with pytest.raises(RuntimeError, match="already running"):
        task.start(loop)
    task.stop()
    assert task.wait(2) and task.state == "stopped" and task.result == "partial" and ended == ["stopped"]

    task.start(lambda stop: 1 / 0)
    assert task.wait(2) and task.state == "failed"
    assert task.error == "ZeroDivisionError: division by zero" and "Traceback" in task.traceback

    task.start(lambda stop: 42)
    assert task.wait(2) and (task.state, task.result) == ("done", 42)


def test_train_settings_validate_with_readable_messages():
    with pytest.raises(ValueError, match=r"learning rate must be a number in \(0, 1\], got -1"):
        TrainSettings(lr=-1)
    with pytest.raises(ValueError, match=r"learning rate must be a number in \(0, 1\], got nan"):
        TrainSettings(lr=float("nan"))
    with pytest.raises(ValueError, match="model must be one of"):
        TrainSettings(model="resnet19")
    with pytest.raises(ValueError, match="lam must be in"):
        TrainSettings(lam=2.0)
    assert re.fullmatch(r"conv-small-digits-\d{8}-\d{6}", TrainSettings().run_name())  # the CLI's format


def test_train_settings_have_the_cli_defaults():
    from spikelab.cli import build_parser
    from spikelab.recipe import DEFAULTS

    s = TrainSettings()
    assert (s.model, s.dataset, s.loss, s.T, s.epochs, s.lr, s.batch_size) == tuple(
        DEFAULTS[k] for k in ("model", "dataset", "loss", "T", "epochs", "lr", "batch_size"))
    config = s.train_config()
    assert (config.optimizer, config.schedule, config.seed) == (DEFAULTS["optimizer"], DEFAULTS["schedule"], 0)
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert f"(default: {DEFAULTS['epochs']})" in text and f"(default: {DEFAULTS['lr']})" in text


def test_training_job_records_what_fit_writes(tmp_path):
    events: list[str] = []
    job = TrainingJob(TrainSettings(model="mlp", epochs=2, limit=64, batch_size=16), runs_dir=tmp_path,
                      listener=lambda e, j: events.append(e))
    job.start()
    assert job.wait(60) and job.task.state == "done", job.task.error
    assert events[0] == "start" and events[-1] == "end" and events.count("epoch") == 2
    assert events.count("step") == len(job.history.steps) == job.total_steps == 8
    assert job.epoch_end_steps == [4, 8]
    on_disk = load_run(job.run_dir)
    assert [r["loss"] for r in on_disk.steps] == [r["loss"] for r in job.history.steps]
    assert job.test_series("test_acc") == ([4, 8], [e["test_acc"] for e in on_disk.epochs])
    spikes, rates = job.take_spikes()
    assert list(spikes) == list(rates) and all(0.0 <= r <= 1.0 for r in rates.values())
    assert job.take_spikes()[1] == {}  # rates restart after each call


def test_training_jobs_started_together_get_their_own_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(TrainSettings, "run_name", lambda self: "run")  # as if started in the same second
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("someone else's")
    jobs = [TrainingJob(TrainSettings(model="mlp", epochs=1, limit=32, batch_size=16), runs_dir=tmp_path)
            for _ in range(3)]
    assert all(j.run_dir is None for j in jobs)  # claimed when the run starts
    for j in jobs:
        j.start()
    assert all(j.wait(60) and j.task.state == "done" for j in jobs), [j.task.error for j in jobs]
    assert sorted(j.run_dir.name for j in jobs) == ["run-2", "run-3", "run-4"]
    for j in jobs:  # each folder holds one whole run
        assert [e["epoch"] for e in load_run(j.run_dir).epochs] == [1]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["notes.txt"]


def test_a_dashboard_run_is_a_first_class_run(tmp_path, capsys):
    from spikelab.cli import main

    job = TrainingJob(TrainSettings(model="mlp", epochs=1, limit=64, batch_size=16), runs_dir=tmp_path)
    job.start()
    assert job.wait(60) and job.task.state == "done", job.task.error
    run = job.run_dir
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["model"], cfg["dataset"], cfg["batch_size"], cfg["optimizer"], cfg["schedule"]) == \
        ("mlp", "digits", 16, "adam", "cosine")
    assert main(["eval", str(run), "--limit", "64", "--no-progress"]) == 0
    test_acc = load_run(run).epochs[0]["test_acc"]
    assert f"accuracy {100 * test_acc:.2f} %" in capsys.readouterr().out  # same weights, same test samples
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert [e["epoch"] for e in load_run(run).epochs] == [1, 2]


def test_a_dashboard_run_that_fails_before_its_first_epoch_leaves_no_folder(tmp_path, monkeypatch):
    import spikelab.recipe

    def bad_model(*args, **kwargs):
        raise ValueError("no model today")

    monkeypatch.setattr(spikelab.recipe, "build_model", bad_model)
    job = TrainingJob(TrainSettings(model="mlp", limit=32), runs_dir=tmp_path)
    job.start()
    assert job.wait(60) and job.task.state == "failed" and job.task.error == "ValueError: no model today"
    assert job.run_dir is not None and list(tmp_path.iterdir()) == []


def test_training_job_stops_within_one_batch(tmp_path):
    def stop_at_step_3(event, job):  # Stop arrives while step 3 is being reported
        if event == "step" and len(job.history.steps) == 3:
            job.stop()

    job = TrainingJob(TrainSettings(model="mlp", epochs=200, batch_size=8), runs_dir=tmp_path,
                      listener=stop_at_step_3)
    job.start()
    assert job.wait(60)
    assert len(job.history.steps) == 3  # no batch runs after the Stop
    assert job.task.state == "stopped" and job.history.stopped


def test_training_job_failure_is_reported_not_raised(tmp_path, monkeypatch):
    import spikelab.data

    def no_data(*args, **kwargs):
        raise FileNotFoundError("Fashion-MNIST not found")

    monkeypatch.setattr(spikelab.data, "make_loaders", no_data)
    events: list[str] = []
    job = TrainingJob(TrainSettings(dataset="fashion-mnist"), runs_dir=tmp_path, listener=lambda e, j: events.append(e))
    job.start()
    assert job.wait(10)
    assert job.task.state == "failed" and job.task.error == "FileNotFoundError: Fashion-MNIST not found"
    assert events == ["end"]


def test_only_the_widgets_module_imports_ipywidgets():
    code = ("import sys, spikelab, spikelab.viz, spikelab.viz._live, spikelab.viz._explore, spikelab.serve, "
            "spikelab.dashboards; print('ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"



def test_simulate_neuron_takes_a_real_floating_point_current():
    for dtype in (torch.int64, torch.bool, torch.complex64):
        with pytest.raises(TypeError, match="current must be a real floating-point tensor"):
            simulate_neuron(NeuronConfig(), torch.ones(5, dtype=dtype))
