"""The lab answer checks agree with hand-worked answers."""
from spikelab.exercises import check_spike_times, check_value, lif_spike_times


def test_spike_times_by_hand():
    # decay 0.5, I = 0.6: h = 0.6, 0.9, 1.05 -> spike at 2, reset to 0, and the cycle repeats every 3 steps
    assert lif_spike_times(0.6, 10, decay=0.5) == [2, 5, 8]
    # steady state 0.4 / (1 - 0.5) = 0.8 < 1: never fires
    assert lif_spike_times(0.4, 50, decay=0.5) == []


def test_check_spike_times_verdicts():
    assert check_spike_times([2, 5, 8], 0.6, 10, decay=0.5).correct
    wrong = check_spike_times([2, 5], 0.6, 10, decay=0.5)
    assert not wrong.correct and "1 spike(s) missing" in wrong.message
    silent = check_spike_times([3], 0.4, 20, decay=0.5)
    assert not silent.correct and "never reaches threshold" in silent.message
    assert "list of whole time steps" in check_spike_times("two", 0.6, 10, decay=0.5).message
    assert repr(check_spike_times([2, 5, 8], 0.6, 10, decay=0.5)).startswith("✅")


def test_check_value():
    assert check_value(1.2, 0.6 / (1 - 0.5)).correct
    assert "too low" in check_value(1.0, 1.2).message
    assert not check_value("x", 1.2).correct
