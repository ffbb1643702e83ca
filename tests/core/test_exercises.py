"""The lab answer checks agree with hand-worked answers, with simulations of the library they check, and with
formulas; before an answer they invite ("your turn"), never fail."""
import math

import numpy as np
import pytest
import torch

from spikelab import encoding, exercises, surrogate
from spikelab.analysis.gradient_flow import flow_ratio, gradient_flow
from spikelab.exercises import Verdict, check_spike_times, check_value, lif_spike_times
from spikelab.neurons import LIF

UNANSWERED = (None, ..., "", "   ")


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread is as fast, and far faster on a busy machine (no thread contention)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_spike_times_by_hand():
    # decay 0.5, I = 0.6: h = 0.6, 0.9, 1.05 -> spike at 2, reset to 0, and the cycle repeats every 3 steps
    assert lif_spike_times(0.6, 10, decay=0.5) == [2, 5, 8]
    # steady state 0.4 / (1 - 0.5) = 0.8 < 1: never fires
    assert lif_spike_times(0.4, 50, decay=0.5) == []


def test_check_spike_times_verdicts():
    assert check_spike_times([2, 5, 8], 0.6, 10, decay=0.5).correct
    wrong = check_spike_times([2, 5], 0.6, 10, decay=0.5)
    assert not wrong.correct and wrong.answered and "1 spike(s) missing" in wrong.message
    silent = check_spike_times([3], 0.4, 20, decay=0.5)
    assert not silent.correct and "never reaches threshold" in silent.message
    assert "list of whole time steps" in check_spike_times("two", 0.6, 10, decay=0.5).message
    assert repr(check_spike_times([2, 5, 8], 0.6, 10, decay=0.5)).startswith("✔")


def test_check_value():
    assert check_value(1.2, 0.6 / (1 - 0.5)).correct
    assert "too low" in check_value(1.0, 1.2).message
    assert not check_value("x", 1.2).correct
    assert not check_value(float("nan"), 1.2).correct and not check_value(True, 1.0).correct


@pytest.mark.parametrize("check, kwargs", [
    (exercises.check_spike_times, dict(current=0.6, T=10, decay=0.5)),
    (exercises.check_threshold_current, dict(decay=0.8)),
    (exercises.check_rate_count, dict(x=0.75, T=20)),
    (exercises.check_latency_step, dict(x=0.75, T=9)),
    (exercises.check_steps_for_precision, dict(x=0.5, tol=0.05)),
    (exercises.check_surrogate_peak, dict(name="sigmoid", alpha=8.0)),
    (exercises.check_flat_width, dict(family="triangle")),
    (exercises.check_mlp_parameters, dict(inputs=64, hidden=128, classes=10)),
    (exercises.check_rate_prediction, dict(outputs=[[1.0, 0.0]])),
    (exercises.check_steps_needed, dict(accuracies=[0.5, 0.9])),
    (exercises.check_conv_macs, dict(in_channels=16, out_channels=32, kernel=3, size=14)),
    (exercises.check_energy, dict(acs=2e6, macs=1e5)),
    (exercises.check_option, dict(options={"a": "because", "b": "no"}, correct="a")),
    (exercises.check_value, dict(expected=1.0)),
])
def test_every_check_says_your_turn_before_an_answer(check, kwargs):
    for blank in UNANSWERED:
        v = check(blank, **kwargs)
        assert isinstance(v, Verdict) and not v.answered and not v.correct and v.status == "pending"
        assert v.message.startswith("your turn") and "not quite" not in v.message
        assert repr(v).startswith("✏") and "spikelab-verdict-pending" in v._repr_html_()


def test_threshold_current_is_where_a_simulated_neuron_starts_firing():
    decay, v_th = 0.8, 1.0
    v = exercises.check_threshold_current(0.2, decay=decay, v_th=v_th)
    assert v.correct
    for current, fires in ((0.2 * 0.99, False), (0.2 * 1.01, True)):  # oracle: the neuron itself, 2000 steps
        spikes = LIF(decay, v_th)(torch.full((2000, 1), current, dtype=torch.float64))
        assert bool(spikes.sum() > 0) == fires
    wrong = exercises.check_threshold_current(0.8, decay=decay)
    assert wrong.status == "wrong" and "too high" in wrong.message and "Hint" in wrong.message


def test_rate_count_matches_a_simulated_rate_code():
    x, T, gain = 0.75, 20, 0.8
    spikes = encoding.rate(torch.full((20000,), x, dtype=torch.float64), T, gain=gain,
                           generator=torch.Generator().manual_seed(0))
    simulated = float(spikes.sum(0).mean())  # the average count over 20k pixels
    assert simulated == pytest.approx(T * gain * x, rel=0.01)
    assert exercises.check_rate_count(12, x=x, T=T, gain=gain).correct
    assert exercises.check_rate_count(15, x=x, T=T, gain=gain).status == "wrong"


def test_latency_step_by_hand():
    assert exercises.check_latency_step(2, x=0.75, T=9).correct  # round(0.25 * 8) = 2
    assert exercises.check_latency_step(0, x=1.0, T=9).correct
    assert exercises.check_latency_step(4, x=0.02, T=5).correct  # round(0.98 * 4) = 4
    late = exercises.check_latency_step(5, x=0.75, T=9)
    assert late.status == "wrong" and "too late" in late.message
    assert "whole time step" in exercises.check_latency_step(2.5, x=0.75, T=9).message
    with pytest.raises(ValueError, match="never fires"):
        exercises.check_latency_step(1, x=0.0, T=9)


def test_steps_for_precision_matches_the_binomial_spread():
    assert exercises.check_steps_for_precision(100, x=0.5, tol=0.05).correct  # 0.25 / 0.0025
    assert exercises.check_steps_for_precision(99, x=0.5, tol=0.05).status == "wrong"
    assert "more than needed" in exercises.check_steps_for_precision(400, x=0.5, tol=0.05).message
    # oracle: the spread of count / T over many simulated rate codes at T = 100
    est = encoding.rate(torch.full((20000,), 0.5, dtype=torch.float64), 100,
                        generator=torch.Generator().manual_seed(1)).mean(0)
    assert float(est.std()) == pytest.approx(0.05, rel=0.03)


def test_surrogate_peak_matches_autograd_of_the_primitive():
    x = torch.zeros((), dtype=torch.float64, requires_grad=True)
    surrogate.get("sigmoid", alpha=8.0).primitive(x).backward()
    assert float(x.grad) == pytest.approx(2.0)  # alpha / 4
    assert exercises.check_surrogate_peak(2.0, name="sigmoid", alpha=8.0).correct
    assert exercises.check_surrogate_peak(4.0, name="sigmoid", alpha=8.0).status == "wrong"


def test_flat_width_runs_the_gradient_flow_and_points_the_right_way(one_thread):
    ratio = flow_ratio(gradient_flow(surrogate.get("triangle", gamma=1.0), depth=8))
    assert 0.1 <= ratio <= 10
    assert exercises.check_flat_width(1.0, family="triangle").correct
    tall = exercises.check_flat_width(0.1, family="triangle")  # peak 10: explodes; a larger gamma is lower
    assert tall.status == "wrong" and "explodes" in tall.message and "larger gamma" in tall.message
    flat = exercises.check_flat_width(4.0, family="triangle")  # peak 0.25: vanishes
    assert "vanishes" in flat.message and "smaller gamma" in flat.message
    narrow = exercises.check_flat_width(0.25, family="atan")  # alpha 0.25: peak 0.125, vanishes
    assert "vanishes" in narrow.message and "larger alpha" in narrow.message
    assert "positive number" in exercises.check_flat_width(-1, family="atan").message


def test_mlp_parameters_by_hand():
    by_hand = 64 * 128 + 2 * 128 + 128 * 10 + 10  # W1 (no bias), tdBN scale and shift, readout with bias
    assert exercises.check_mlp_parameters(by_hand, inputs=64, hidden=128, classes=10).correct
    off = exercises.check_mlp_parameters(by_hand + 128, inputs=64, hidden=128, classes=10)
    assert off.status == "wrong" and "too high" in off.message


def test_rate_prediction_averages_over_time():
    table = [[3.0, 0.0, 1.0], [2.5, 0.5, 1.0], [0.0, 2.0, 1.5]]  # means 1.83, 0.83, 1.17; last step's winner: 1
    assert exercises.check_rate_prediction(0, outputs=table).correct
    trap = exercises.check_rate_prediction(1, outputs=table)
    assert trap.status == "wrong" and "last step's winner" in trap.message
    assert "class index" in exercises.check_rate_prediction(7, outputs=table).message


def test_steps_needed_reads_the_curve():
    acc = [0.80, 0.93, 0.955, 0.96, 0.96]
    assert exercises.check_steps_needed(3, accuracies=acc, within=0.02).correct  # 0.955 >= 0.96 - 0.02
    assert exercises.check_steps_needed(2, accuracies=acc, within=0.02).status == "wrong"
    assert exercises.check_steps_needed(2, accuracies=acc, within=0.05).correct
    waiting = exercises.check_steps_needed(3, accuracies=None)
    assert waiting.status == "pending" and "train" in waiting.message


def test_conv_macs_and_energy_by_hand():
    assert exercises.check_conv_macs(14 * 14 * 32 * 16 * 9, in_channels=16, out_channels=32, kernel=3,
                                     size=14).correct
    assert exercises.check_conv_macs(28 * 28 * 16 * 9, in_channels=1, out_channels=16, kernel=3, size=28).correct
    assert exercises.check_conv_macs(1000, in_channels=1, out_channels=16, kernel=3, size=28).status == "wrong"
    assert exercises.check_energy(0.9 * 2e6 + 4.6 * 1e5, acs=2e6, macs=1e5).correct
    assert exercises.check_energy(2e6, acs=2e6, macs=1e5).status == "wrong"


def test_option_check_explains_every_choice():
    opts = {"soft": "keeps the surplus", "hard": "throws it away"}
    right = exercises.check_option("soft", options=opts, correct="soft")
    assert right.correct and "keeps the surplus" in right.message
    wrong = exercises.check_option("hard", options=opts, correct="soft")
    assert wrong.status == "wrong" and "throws it away" in wrong.message
    assert "pick one of" in exercises.check_option("none", options=opts, correct="soft").message
    with pytest.raises(ValueError, match="correct must be one of"):
        exercises.check_option("soft", options=opts, correct="neither")


def test_verdict_statuses_and_html():
    assert Verdict(True, "x").status == "correct" and Verdict(False, "x").status == "wrong"
    html = Verdict(False, "not quite: <b>").__repr__(), Verdict(False, "not quite: <b>")._repr_html_()
    assert "&lt;b&gt;" in html[1] and "spikelab-verdict-wrong" in html[1] and html[0].startswith("✘")
    assert math.isfinite(np.float64(1.0))  # numpy scalars are numbers to the checks
    assert check_value(np.float64(1.2), 1.2).correct
