"""The labs' panels without a browser: answer boxes, the encoding explorer, the network inspector, the energy
comparison, the training panel's neuron controls and the surrogate explorer's batch-norm switch."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spikelab import analysis, data, encoding, exercises, metrics, models, surrogate
from spikelab.neurons import NeuronConfig
from spikelab.viz import widgets
from spikelab.viz.widgets import (
    EncodingExplorer, EnergyComparison, Exercise, NetworkInspector, SurrogateExplorer, TrainingPanel, TrainSettings,
)
from spikelab.viz.widgets.exercise import parse_answer


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is as fast, and far faster on a busy machine (no thread contention)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------------------ Exercise
def test_parse_answer_reads_literals_and_keeps_words():
    assert parse_answer(" [2, 5, 8] ") == [2, 5, 8] and parse_answer("2, 5") == (2, 5)
    assert parse_answer("0.2") == 0.2 and parse_answer("soft") == "soft" and parse_answer("  ") is None
    assert parse_answer("__import__('os')") == "__import__('os')"  # never evaluated


def test_exercise_box_waits_then_judges_what_is_typed():
    ex = Exercise(exercises.check_spike_times, current=0.6, T=10, decay=0.5, placeholder="e.g. [1, 4]")
    assert ex.verdict.status == "pending" and "your turn" in ex.result.value and "not quite" not in ex.result.value
    ex.answer.value = "[2, 5]"  # Enter, or leaving the box, checks ...
    assert ex.verdict.status == "wrong"
    ex.button.click()  # ... and so does the button
    assert ex.verdict.status == "wrong" and "spikelab-verdict-wrong" in ex.result.value and "Hint" in ex.result.value
    assert ex.submit("2, 5, 8").correct and "spikelab-verdict-correct" in ex.result.value
    assert ex.submit([2, 5, 8]).correct


def test_exercise_choices_come_from_the_options():
    opts = {"hard": "throws the surplus away", "soft": "keeps it"}
    ex = Exercise(exercises.check_option, options=opts, correct="soft")
    assert list(ex.answer.options) == ["hard", "soft"] and ex.answer.value is None
    assert ex.verdict.status == "pending"
    ex.answer.value = "hard"
    ex.button.click()
    assert ex.verdict.status == "wrong" and "throws the surplus away" in ex.verdict.message
    assert ex.submit("soft").correct


def test_a_broken_check_is_shown_not_raised():
    def broken(answer):
        raise RuntimeError("boom")

    ex = Exercise(broken)
    assert ex.verdict.status == "wrong" and "the check itself failed: RuntimeError: boom" in ex.verdict.message
    assert "not a Verdict" in Exercise(lambda answer: 42).verdict.message
    with pytest.raises(TypeError, match="check must be a function"):
        Exercise("check")


def test_exercise_refresh_follows_changing_data():
    curve: list[float] | None = None
    ex = Exercise(lambda a: exercises.check_steps_needed(a, accuracies=curve))
    assert "train the network first" in ex.verdict.message
    curve = [0.5, 0.95, 0.96]
    ex.answer.value = "2"
    assert ex.refresh().correct


# ------------------------------------------------------------------------------------------- EncodingExplorer
def test_encoding_explorer_draws_the_code_it_computes():
    images = data.sample_images("digits", n=3)
    p = EncodingExplorer(images, code="rate", T=16)
    x = images[p.controls["image"].value]
    gen = torch.Generator().manual_seed(0)
    np.testing.assert_array_equal(p.spikes.numpy(), encoding.rate(x, 16, generator=gen).numpy())  # seed 0
    counts = p.figures["counts"].data[1].z
    np.testing.assert_array_equal(np.asarray(counts), p.spikes.sum(0).numpy())
    n = int(p.spikes.sum())
    t, pix = p.figures["encoded"].data[0].x, p.figures["encoded"].data[0].y
    assert len(t) == n and set(zip(t, pix)) == {tuple(ix) for ix in torch.nonzero(p.spikes.reshape(16, -1)).tolist()}
    err = float((encoding.decode_rate(p.spikes) - x.double()).pow(2).mean().sqrt())
    assert f"<b>{n}</b> spikes" in p.readout.value and f"<b>{err:.3f}</b>" in p.readout.value

    p.controls["code"].value = "latency"
    assert int(p.spikes.sum()) == int((x > 0.01).sum())  # one spike per pixel above the threshold
    assert p.controls["gain"].disabled
    p.controls["code"].value = "direct"
    assert "no spikes" in p.readout.value and p.figures["encoded"].data[0].type == "heatmap"
    p.controls["T"].value = 8
    assert p.spikes.shape == (8, 8, 8) and p.error is None


def test_encoding_explorer_rejects_bad_images():
    with pytest.raises(TypeError, match="images"):
        EncodingExplorer({})
    with pytest.raises(ValueError, match=r"images\['a'\] must be a \[H, W\] tensor"):
        EncodingExplorer({"a": torch.rand(1, 8, 8)})


# ------------------------------------------------------------------------------------------- NetworkInspector
def test_inspector_shows_what_the_analyses_compute():
    torch.manual_seed(0)
    net = models.build("mlp", num_classes=10, in_channels=1, T=4)
    p = NetworkInspector(dataset="digits", limit=100)
    p.set_model(net, label="untrained")
    assert p.error is None and p.label == "untrained"
    outputs, targets = analysis.predict(net, p.loader, T=8)
    np.testing.assert_allclose(p.accuracies, analysis.accuracy_by_steps(outputs, targets))
    np.testing.assert_allclose(np.asarray(p.figures["inspect-steps"].data[0].y), 100 * np.array(p.accuracies))
    assert list(p.layer.options) == ["body.sn1"] and list(p.figures["inspect-rates"].data[0].x) == ["body.sn1"]
    assert p.figures["inspect-confusion"].data[0].customdata.sum() == 100  # every test image counted once
    p.sample.value = 5
    x, y = p.loader.dataset[5]
    rec = analysis.record_sample(net, x)
    shown = p.figures["inspect-raster"].data[0]
    assert len(shown.x) == int(rec.layers["body.sn1"].spikes.sum())
    assert f"true class <b>{y}</b>" in p.readout.value


def test_inspector_follows_a_training_panel_and_switches_to_event_data(tmp_path):
    panel = TrainingPanel(settings=TrainSettings(dataset="digits-events", model="mlp", T=3), runs_dir=tmp_path,
                          smoke=True)
    p = NetworkInspector(dataset="digits", limit=50)
    seen = []
    p.on_change.append(lambda insp: seen.append(insp.label))
    p.follow(panel)
    assert panel.start() and panel.wait(120) and panel.error is None, panel.error
    assert p.error is None and seen == ["trained"] and p.dataset == "digits-events"
    assert p.model is panel.job.model and len(p.accuracies) == 3  # event data: one frame per step, T = 3
    assert p.loader.dataset.info.is_event


# ------------------------------------------------------------------------------------------- EnergyComparison
def test_energy_comparison_counts_the_network_and_its_twin():
    def make(spiking=True):
        return models.build("conv-small", num_classes=10, in_channels=1, T=4, spiking=spiking)

    net = make()
    p = EnergyComparison(dataset="digits", model="conv-small", n=16)
    p.set_model(net, label="untrained")
    assert p.error is None
    x = torch.stack([data.load("digits", split="test", limit=16)[i][0] for i in range(16)])
    twin = make(False)
    twin.load_state_dict(net.state_dict())
    want = {"SNN": metrics.ops_totals(metrics.ops_table(net, x, batch_size=16)),
            "ANN twin": metrics.ops_totals(metrics.ops_table(twin, x, batch_size=16))}
    energy = p.figures["energy"].data[2]
    np.testing.assert_allclose(energy.y, [want["SNN"]["energy_pj"] / 1e6, want["ANN twin"]["energy_pj"] / 1e6])
    assert want["ANN twin"]["acs"] == 0  # the twin only multiplies
    assert list(p.figures["ops-table"].data[0].cells.values[0][:-1]) == [r["layer"] for r in p.rows["SNN"]]
    p.set_model(models.build("mlp", num_classes=10, in_channels=1, T=4), model_name="conv-small")
    assert p.error is not None and "counting operations failed" in p.error  # an mlp's weights have no place


def test_energy_comparison_follows_a_run_to_event_data(tmp_path):
    panel = TrainingPanel(settings=TrainSettings(dataset="digits-events", model="mlp", T=3), runs_dir=tmp_path,
                          smoke=True)
    p = EnergyComparison(dataset="digits", model="conv-small", n=8)
    p.follow(panel)
    assert panel.start() and panel.wait(120) and panel.error is None, panel.error
    assert p.error is None and p.dataset == "digits-events" and p.model_name == "mlp"
    assert tuple(p.x.shape) == (3, 8, 2, 12, 12)  # time-first frames
    twin = p.twin(panel.job.model)
    want = metrics.ops_totals(metrics.ops_table(twin, p.x, batch_size=8))
    assert p.figures["energy"].data[2].y[1] == pytest.approx(want["energy_pj"] / 1e6)
    assert "on digits-events" in p.readout.value


# ------------------------------------------------------------------------------ TrainingPanel's Neuron box
def test_training_panel_neuron_controls_reach_the_trained_model(tmp_path):
    start = NeuronConfig(decay=0.25, v_th=0.5, reset="soft", surrogate=surrogate.get("triangle", gamma=0.5))
    p = TrainingPanel(settings=TrainSettings(model="mlp", neuron=start), runs_dir=tmp_path, smoke=True,
                      neuron_controls=True)
    n = p.neuron_controls
    assert (n["decay"].value, n["v_th"].value, n["reset"].value, n["surrogate"].value, n["width"].value) == (
        0.25, 0.5, "soft", "triangle", 0.5)
    n["surrogate"].value = "rectangle"  # a new family brings its own parameter and default
    assert n["width"].description == "width" and n["width"].value == 1.0
    n["width"].value = 2.0
    n["v_th"].value = 1.5
    cfg = p.settings().neuron
    assert cfg.v_th == 1.5 and cfg.reset == "soft" and surrogate.get(cfg.surrogate) == surrogate.get("rectangle",
                                                                                                       width=2.0)
    assert p.start() and p.wait(120) and p.error is None, p.error
    neurons = [m for _, m in p.job.model.neurons()]
    assert neurons and all(m.v_th == 1.5 and m.reset_mode == "soft" and m.surrogate == surrogate.get(
        "rectangle", width=2.0) for m in neurons)
    saved = json.loads((p.job.run_dir / "config.json").read_text())
    assert saved["neuron"]["surrogate"] == {"name": "rectangle", "width": 2.0} and saved["neuron"]["v_th"] == 1.5
    from spikelab import recipe

    rebuilt = recipe.build_model(saved)  # what `spikelab eval` and `--resume` build: the same neurons
    assert all(m.surrogate == surrogate.get("rectangle", width=2.0) and m.v_th == 1.5 for _, m in rebuilt.neurons())
    assert TrainingPanel(runs_dir=tmp_path).settings().neuron is None  # without the box: the model's default


def test_neuron_box_gives_the_recipe_the_values_its_readouts_show(tmp_path):
    p = TrainingPanel(runs_dir=tmp_path, neuron_controls=True)
    n = p.neuron_controls
    n["v_th"].value, n["decay"].value = 1.0 - 4 * 0.05, 0.1 + 0.2  # what a browser slider sends: 0.7999..., 0.3000...4
    assert (n["v_th"].value, n["decay"].value) != (0.8, 0.3)
    cfg = p.settings().neuron
    assert (cfg.v_th, cfg.decay) == (0.8, 0.3)


def test_training_panel_uses_the_settings_limit(tmp_path):
    p = TrainingPanel(settings=TrainSettings(model="mlp", limit=40, batch_size=20, epochs=1), runs_dir=tmp_path)
    assert p.settings().limit == 40
    assert p.start() and p.wait(120) and p.error is None
    assert len(p.history.steps) == 2  # 40 samples in batches of 20
    with pytest.raises(TypeError, match="neuron must be a spikelab.neurons.NeuronConfig"):
        TrainSettings(neuron="lif")


# ------------------------------------------------------------------------------------- SurrogateExplorer's BN box
def test_surrogate_explorer_batch_norm_switch():
    p = SurrogateExplorer(family="atan")
    assert "roughly flat" in p.readout.value
    p.controls["batch_norm"].value = False
    np.testing.assert_allclose(p.grad_norms, analysis.gradient_flow("atan", depth=8, batch_norm=False))
    assert "vanishing" in p.readout.value and "no batch norm" in p.figures["gradient-flow"].layout.title.text
    with pytest.raises(TypeError, match="batch_norm must be a bool"):
        SurrogateExplorer(batch_norm=1)


def test_plot_wraps_a_figure_in_an_output_widget():
    import plotly.graph_objects as go

    out = widgets.plot(go.Figure(go.Scatter(x=[0, 1], y=[1, 2])), name="demo")
    assert {"spikelab-figure", "spikelab-demo"} <= set(out._dom_classes)
    (item,) = out.outputs
    assert item["data"]["application/vnd.plotly.v1+json"]["data"][0]["y"] == [1, 2]
    with pytest.raises(TypeError, match="fig must be a plotly go.Figure"):
        widgets.plot({"data": []})


def test_membrane_neurons_are_chosen_to_tell_something():
    from spikelab.viz.widgets.inspector import _telling_neurons

    spikes = np.array([[1, 0, 1, 0, 0, 1], [1, 1, 0, 0, 0, 1], [1, 0, 0, 0, 1, 1], [1, 0, 0, 0, 0, 1]])
    h = np.arange(24, dtype=float).reshape(4, 6)
    h[:, 5] = h[:, 0]  # neuron 5 repeats neuron 0's trace
    assert _telling_neurons(h, spikes, 3) == [1, 2, 4]  # fire at some steps, not all
    assert _telling_neurons(h, spikes, 5) == [0, 1, 2, 3, 4]  # then always-firing 0 (not its twin 5), then silent 3


def test_neuron_recipe_round_trip_and_errors():
    from spikelab import recipe

    cfg = NeuronConfig(kind="lif", decay=0.25, v_th=0.5, reset="hard", surrogate=surrogate.get("sigmoid", alpha=8.0),
                       detach_reset=True)
    d = recipe.neuron_to_recipe(cfg)
    assert json.loads(json.dumps(d)) == d  # plain JSON
    back = recipe.neuron_from_recipe(d)
    assert back.decay == 0.25 and back.detach_reset and surrogate.get(back.surrogate) == surrogate.get("sigmoid",
                                                                                                        alpha=8.0)
    with pytest.raises(ValueError, match="the run setting neuron is malformed"):
        recipe.neuron_from_recipe({**d, "surrogate": {"name": "sigmoid", "gamma": 1.0}})
    with pytest.raises(ValueError, match="the run setting neuron is malformed"):
        recipe.check_model_settings(dict(model="mlp", T=2, num_classes=10, input_shape=[1, 8, 8], is_event=False,
                                         neuron={**d, "v_th": -1.0}))
