"""Panels without a browser: build one, move a control as a person would (set its value), check what is drawn."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest

from spikelab import surrogate
from spikelab.analysis import gradient_flow
from spikelab.history import History
from spikelab.viz import _explore, widgets
from spikelab.viz._live import Throttle
from spikelab.viz.widgets import NeuronExplorer, RunComparison, SurrogateExplorer, TrainingPanel, TrainSettings


def shown(panel, key):
    """The plotly JSON that the panel's output ``key`` holds now (what the browser receives)."""
    (item,) = panel.outputs[key].outputs
    return item["data"]["application/vnd.plotly.v1+json"]


def lif_spike_count(current, decay, v_th, T):
    v, n = 0.0, 0
    for _ in range(T):
        h = decay * v + current
        v, n = (0.0, n + 1) if h >= v_th else (h, n)
    return n


def test_neuron_explorer_redraws_when_the_amplitude_moves():
    p = NeuronExplorer(decay=0.5, amplitude=0.6, T=100)
    assert p.trace.count == lif_spike_count(0.6, 0.5, 1.0, 100) == 33  # h: 0.6, 0.9, 1.05 -> spike, every 3 steps
    before = np.array(p.figures["membrane"].data[1].y)
    p.controls["amplitude"].value = 1.2
    after = np.array(p.figures["membrane"].data[1].y)
    assert not np.array_equal(before, after) and p.error is None
    assert p.trace.count == lif_spike_count(1.2, 0.5, 1.0, 100)
    assert f"<b>{p.trace.count}</b> spikes in 100 steps" in p.readout.value
    assert shown(p, "membrane")["data"][0]["type"] == "scatter"


def test_neuron_explorer_reset_and_threshold_change_the_trace():
    p = NeuronExplorer(decay=0.5, amplitude=0.6)
    p.controls["reset"].value = "none"
    h = np.array(p.figures["membrane"].data[1].y)
    np.testing.assert_allclose(h[-1], 0.6 / (1 - 0.5), rtol=1e-6)  # no reset: converges to I / (1 - decay)
    p.controls["v_th"].value = 2.0
    assert p.trace.count == 0 and p.config.v_th == 2.0


def test_neuron_explorer_tau_and_decay_stay_in_sync():
    p = NeuronExplorer()
    p.controls["leak"].value = "tau"
    assert p.controls["decay"].layout.display == "none" and p.controls["tau"].layout.display is None
    p.controls["tau"].value = 10.0
    assert math.isclose(p.config.decay, math.exp(-0.1))
    p.controls["decay"].value = 0.5
    assert p.controls["tau"].value == pytest.approx(1.5)  # 1 / ln 2 = 1.44, on the 0.25 grid
    assert "tau = 1.44 steps" in p.readout.value


def test_neuron_explorer_surrogate_changes_only_the_backward_readout():
    p = NeuronExplorer(current="sine", amplitude=1.5)
    spikes, readout = p.trace.spikes.copy(), p.readout.value
    p.controls["surrogate"].value = "rectangle"
    np.testing.assert_array_equal(p.trace.spikes, spikes)
    assert "Rectangle(width=1)" in p.readout.value and p.readout.value != readout


def test_neuron_explorer_shows_a_message_instead_of_a_traceback(monkeypatch):
    p = NeuronExplorer()

    def broken(config, current):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(_explore, "simulate_neuron", broken)
    p.controls["amplitude"].value = 1.0  # the redraw fails inside the callback
    assert p.error == "drawing the neuron failed: RuntimeError: simulated failure"
    assert "spikelab-error" in p.message._dom_classes and "simulated failure" in p.message.value
    monkeypatch.undo()
    p.controls["amplitude"].value = 1.1
    assert p.error is None and p.message.value == ""


def test_panels_validate_their_arguments():
    with pytest.raises(ValueError, match="decay must be in"):
        NeuronExplorer(decay=1.5)
    with pytest.raises(ValueError, match="current must be one of"):
        NeuronExplorer(current="square")
    with pytest.raises(ValueError, match="family must be one of"):
        SurrogateExplorer(family="relu")
    with pytest.raises(ValueError, match="width must be in"):
        SurrogateExplorer(family="triangle", width=100.0)
    with pytest.raises(TypeError, match="settings must be a TrainSettings"):
        TrainingPanel(settings={"lr": 1e-3})
    with pytest.raises(TypeError, match="root must be a folder path"):
        RunComparison(root=3)


def test_surrogate_explorer_draws_the_chosen_surrogate_and_its_gradient_flow():
    p = SurrogateExplorer(family="atan", depth=6)
    np.testing.assert_allclose(p.grad_norms, gradient_flow(surrogate.get("atan"), depth=6))
    before = np.array(p.figures["gradient-flow"].data[0].z)
    p.controls["width"].value = 8.0
    assert p.surrogate == surrogate.get("atan", alpha=8.0)
    np.testing.assert_allclose(p.grad_norms, gradient_flow(surrogate.get("atan", alpha=8.0), depth=6))
    assert not np.array_equal(before, np.array(p.figures["gradient-flow"].data[0].z))
    deriv = [t for t in p.figures["surrogate-curves"].data if t.name == "ATan(alpha=8)" and t.xaxis == "x2"][0]
    assert max(deriv.y) == pytest.approx(4.0)  # peak alpha / 2
    assert "default ATan(alpha=2)" in {t.name for t in p.figures["surrogate-curves"].data}


def test_surrogate_explorer_family_change_resets_width_and_bounds():
    p = SurrogateExplorer()
    p.controls["family"].value = "triangle"
    w = p.controls["width"]
    assert w.value == 1.0 and w.description == "gamma"
    assert (10 ** w.min, 10 ** w.max) == pytest.approx(_explore.WIDTH_RANGES["triangle"])
    p.controls["width"].value = 0.1  # narrow and tall: peak 10
    assert "exploding" in p.readout.value
    p.controls["family"].value = "atan"
    p.controls["width"].value = 0.25  # flat: peak 0.125
    assert "vanishing" in p.readout.value


def test_training_panel_rejects_a_bad_learning_rate():
    p = TrainingPanel()
    p.controls["lr"].value = -0.01
    assert p.start() is False and not p.running
    assert p.error == "cannot start: learning rate must be a number in (0, 1], got -0.01"
    assert "spikelab-error" in p.message._dom_classes


def test_training_panel_tet_presets_set_the_papers_lam():
    p = TrainingPanel()
    c = p.controls
    assert c["tet_preset"].value == "custom" and c["loss"].value == "sdt"
    c["tet_preset"].value = "imagenet"
    assert (c["loss"].value, c["lam"].value, c["lam"].disabled) == ("tet", 0.001, False)
    s = p.settings()
    assert (s.loss, s.lam) == ("tet", 0.001)
    c["tet_preset"].value = "cifar"
    assert p.settings().lam == 0.05
    c["lam"].value = 0.2  # moved off the preset
    assert c["tet_preset"].value == "custom" and p.settings().lam == 0.2
    c["tet_preset"].value = "dvs"
    c["loss"].value = "sdt"
    assert c["tet_preset"].value == "custom"


def test_training_panel_before_a_run_draws_empty_plots_with_readable_axes():
    raster = TrainingPanel().figures["raster"]
    assert raster.layout.yaxis.range == (0, 64) and raster.layout.yaxis.dtick == 10  # 0, 10, .. 60: not 65 labels
    assert raster.layout.xaxis.dtick == 1 and raster.layout.yaxis.tickformat == "d"


def test_training_panel_trains_draws_and_saves(tmp_path):
    p = TrainingPanel(settings=TrainSettings(model="mlp"), runs_dir=tmp_path, smoke=True)
    assert p.controls["epochs"].value == 1
    finished = []
    p.on_finish.append(lambda panel: finished.append(panel.job.task.state))
    assert p.start() is True and p.start_button.disabled
    assert p.wait(60) and finished == ["done"], p.error
    h = p.history
    steps = widgets.SMOKE_LIMIT // TrainSettings().batch_size  # the CLI's default batch size
    assert len(h.steps) == steps and len(h.epochs) == 1
    loss = [t for t in p.figures["curves"].data if (t.meta or {}).get("key") == "loss"][0]
    assert list(loss.y) == [r["loss"] for r in h.steps]
    test = [t for t in p.figures["curves"].data if (t.meta or {}).get("key") == "test_acc"][0]
    assert list(test.y) == [h.epochs[0]["test_acc"]]
    assert p.figures["raster"].data[0].type == "scatter"  # SVG: a redrawn WebGL plot leaks contexts
    assert p.layer.options[1:] == tuple(p.figures["rates"].data[0].x)
    assert f"finished after {steps} steps" in p.status.value and not p.start_button.disabled
    assert p.stop_button.disabled
    lines = (p.job.run_dir / "history.jsonl").read_text().splitlines()
    assert [json.loads(x)["loss"] for x in lines if json.loads(x)["kind"] == "step"] == [r["loss"] for r in h.steps]


def test_training_panel_stop_halts_the_run(tmp_path):
    p = TrainingPanel(settings=TrainSettings(model="mlp", epochs=200), runs_dir=tmp_path)
    on_job = p._on_job

    def press_stop_at_step_3(event, job):  # Stop pressed while step 3 is being drawn
        on_job(event, job)
        if event == "step" and len(job.history.steps) == 3:
            p.stop()

    p._on_job = press_stop_at_step_3  # the listener the next Start hands to its job
    assert p.start()
    assert p.start() is False and "already training" in p.message.value  # a second Start is refused
    assert p.wait(60)
    assert len(p.history.steps) == 3  # no batch after the Stop
    assert p.job.task.state == "stopped" and "stopped after 3 steps" in p.status.value
    assert not p.start_button.disabled and p.stop_button.disabled


def test_after_stop_the_status_is_the_next_thing_the_page_gets(tmp_path):
    # every message to the browser waits behind those before it: once Stop is pressed, no redraw may go out
    # before "stopped" (the final redraws and the views of the trained network follow it)
    p = TrainingPanel(settings=TrainSettings(model="mlp", epochs=200), runs_dir=tmp_path)
    ticks = itertools.count()
    p._curve_throttle = Throttle(0.5, clock=lambda: next(ticks))  # every step would redraw (a clock of 1 s a call)
    p._spike_throttle = Throttle(0.5, clock=lambda: next(ticks))
    sent: list[str] = []
    draw = p._draw
    p._draw = lambda key, fig: (sent.append(f"draw {key}"), draw(key, fig))
    p.status.observe(lambda ch: sent.append(ch["new"].split()[0]), "value")
    on_job = p._on_job

    def press_stop_before_step_3_is_drawn(event, job):
        if event == "step" and len(job.history.steps) == 3:
            p.stop()
        on_job(event, job)

    p._on_job = press_stop_before_step_3_is_drawn
    assert p.start() and p.wait(60)
    assert "draw curves" in sent[sent.index("training"):sent.index("stopping...")]  # steps 1-2 were drawn
    after = sent[sent.index("stopping...") + 1:]
    assert after[0] == "stopped" and {"draw curves", "draw raster", "draw rates"} <= set(after[1:]), sent
    assert len(p.history.steps) == 3 and p.figures["curves"].data[0].x[-1] == 3  # the end drew the last step


def test_stop_as_the_run_ends_keeps_the_final_status(tmp_path):
    p = TrainingPanel(settings=TrainSettings(model="mlp"), runs_dir=tmp_path, smoke=True)
    p.on_finish.append(lambda panel: panel.stop())  # Stop pressed as the run ends: its thread is still alive
    assert p.start() and p.wait(60)
    assert p.job.task.state == "done" and "finished after" in p.status.value
    assert not p.start_button.disabled and p.stop_button.disabled


def _write_run(root, name, losses, config=None):
    folder = root / name
    folder.mkdir(parents=True)
    h = History(epochs=[dict(epoch=i + 1, train_loss=v, train_acc=0.5, test_loss=v, test_acc=0.5 + i / 10)
                        for i, v in enumerate(losses)])
    (folder / "history.jsonl").write_text(h.to_jsonl())
    (folder / "config.json").write_text(json.dumps(config or {"dataset": "digits", "model": "mlp"}))


def test_run_comparison_plots_the_runs_on_disk(tmp_path):
    p = RunComparison(root=tmp_path)
    assert p.error is None and "no runs in" in p.message.value
    _write_run(tmp_path, "a", [3.0, 2.0])
    _write_run(tmp_path, "b", [1.0, 0.5, 0.25])
    p.refresh()
    assert p.select.options == ("a", "b") and set(p.select.value) == {"a", "b"}
    lines = {(t.meta["run"], t.meta["key"]): list(t.y) for t in p.figures["run-curves"].data}
    assert lines[("a", "train_loss")] == [3.0, 2.0] and lines[("b", "train_loss")] == [1.0, 0.5, 0.25]
    # written by hand: no live process holds them, and no metrics.json says how they ended
    assert "<td>b</td><td>digits</td><td>mlp</td>" in p.table.value and "interrupted" in p.table.value
    p.select.value = ("b",)
    assert {t.meta["run"] for t in p.figures["run-curves"].data} == {"b"}
    _write_run(tmp_path, "c", [0.1])
    p.refresh()  # the new run joins the selection, the old choice stays
    assert set(p.select.value) == {"b", "c"}


def test_run_comparison_reports_a_broken_run_and_draws_the_others(tmp_path):
    _write_run(tmp_path, "good", [1.0])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "history.jsonl").write_text("{not json\n")
    _write_run(tmp_path, "bad-config", [2.0])
    (tmp_path / "bad-config" / "config.json").write_text("{")
    _write_run(tmp_path, "bad-metrics", [2.0])
    (tmp_path / "bad-metrics" / "metrics.json").write_text("[1, 2]")
    (tmp_path / "bad-record").mkdir()
    (tmp_path / "bad-record" / "history.jsonl").write_text('[1, 2]\n{"kind": "epoch", "train_loss": 1}\n')
    p = RunComparison(root=tmp_path, preselect=5)
    assert set(p.select.value) == {"good", "bad", "bad-config", "bad-metrics", "bad-record"}
    assert {t.meta["run"] for t in p.figures["run-curves"].data} == {"good"}  # the readable run is drawn
    assert p.error.startswith("cannot read 4 run(s)") and "not a JSON line" in p.error
    assert "bad-config" in p.error and "bad-metrics" in p.error and "must be a JSON object" in p.error
    assert p.table.value.count("unreadable") == 4 and "<td>good</td>" in p.table.value
    (tmp_path / "bad-record" / "history.jsonl").write_text('{"kind": "epoch", "train_loss": 1}\n')
    p.refresh()
    assert "needs an integer 'epoch'" in p.error


def test_run_comparison_states_come_from_the_run_lock(tmp_path):
    from spikelab.training import claim_run

    _write_run(tmp_path, "killed", [1.0])
    with claim_run(tmp_path, "live") as run:  # what a training process holds
        (run.path / "history.jsonl").write_text(History(epochs=[dict(epoch=1, train_loss=1.0)]).to_jsonl())
        (run.path / "checkpoint.pt").write_bytes(b"")
        p = RunComparison(root=tmp_path)
        assert "<td>live</td>" in p.table.value and "running" in p.table.value
    p.refresh()
    assert "running" not in p.table.value and p.table.value.count("interrupted") == 2


def test_playground_composes_the_panels_without_figure_widgets(tmp_path):
    app = widgets.playground(runs_dir=tmp_path)
    assert {type(x) for x in (app.training, app.runs, app.neuron, app.surrogate)} == {
        TrainingPanel, RunComparison, NeuronExplorer, SurrogateExplorer}

    def walk(w):
        yield w
        for c in getattr(w, "children", ()):
            yield from walk(c)

    found = list(walk(app.widget))
    assert not any(isinstance(w, go.FigureWidget) for w in found)
    assert app.training.widget in found and app.surrogate.widget in found
    bundle = app._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == app.widget.model_id
