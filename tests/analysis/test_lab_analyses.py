"""The labs' analyses against oracles: closed-form F-I curves, the binomial spread of the rate code, the latency
code's rounding bound, the causal reading of a network's outputs, and the gradient-flow ratio."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikelab import analysis, data, encoding, models, surrogate
from spikelab.analysis.gradient_flow import WIDTH_RANGES
from spikelab.losses import rate_accuracy
from spikelab.neurons import NeuronConfig


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is as fast, and far faster on a busy machine (no thread contention)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------------------ fi_curve
def _hard_reset_count(current: float, decay: float, v_th: float, T: int) -> int:
    """Closed form: from rest, fire at the first n with I (1 - decay^n) / (1 - decay) >= v_th, every n steps."""
    n = 1
    while current * (1 - decay ** n) / (1 - decay) < v_th:
        n += 1
        if n > T:
            return 0
    return T // n


@pytest.mark.parametrize("decay", [0.5, 0.8])
def test_fi_curve_hard_reset_matches_the_closed_form(decay):
    currents = [0.05, 0.19, 0.21, 0.35, 0.6, 0.9, 1.0, 1.7]
    T = 200
    rates = analysis.fi_curve(currents, NeuronConfig(decay=decay), T=T)
    want = [_hard_reset_count(i, decay, 1.0, T) / T for i in currents]
    np.testing.assert_allclose(rates, want)


def test_fi_curve_soft_if_and_no_reset():
    T = 100
    # IF neuron with soft reset: the membrane keeps every surplus, so it fires floor(T I / v_th) times
    rates = analysis.fi_curve([0.25, 0.5, 1.0], NeuronConfig(kind="if", reset="soft"), T=T)
    np.testing.assert_allclose(rates, [0.25, 0.5, 1.0])
    # no reset: from the first crossing on it fires at every step (I = 0.6, decay 0.5: first crossing at t = 2)
    rates = analysis.fi_curve([0.6, 0.4], NeuronConfig(decay=0.5, reset="none"), T=T)
    np.testing.assert_allclose(rates, [(T - 2) / T, 0.0])


def test_fi_curve_rejects_bad_input():
    with pytest.raises(ValueError, match="currents"):
        analysis.fi_curve([], T=10)
    with pytest.raises(ValueError, match="finite"):
        analysis.fi_curve([float("nan")], T=10)
    with pytest.raises(TypeError, match="config"):
        analysis.fi_curve([0.5], config="lif")


# ----------------------------------------------------------------------------------------- coding and decoders
def test_decoders_invert_the_codes():
    T = 9
    x = torch.tensor([1.0, 1 - 1 / 8, 0.5, 0.25, 0.0])  # on the latency grid 1 - k / (T - 1)
    np.testing.assert_allclose(encoding.decode_latency(encoding.latency(x, T)), x.double())
    assert float(encoding.decode_latency(encoding.latency(torch.tensor([0.7]), 1))) == 1.0  # T = 1: all at step 0
    s = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])  # [T=4, 2]
    np.testing.assert_allclose(encoding.decode_rate(s), [0.75, 0.5])
    np.testing.assert_allclose(encoding.decode_rate(s, gain=0.5), [1.5, 1.0])


def test_code_tradeoff_follows_the_binomial_and_rounding_laws():
    x = torch.rand(2000, generator=torch.Generator().manual_seed(0))
    out = analysis.code_tradeoff(x, [4, 16, 64], trials=20, seed=1)
    xd = x.double()
    for T, mse, spikes in zip(out["rate"]["T"], out["rate"]["rmse"] ** 2, out["rate"]["spikes"]):
        assert mse == pytest.approx(float((xd * (1 - xd)).mean()) / T, rel=0.05)  # E[(count/T - x)^2] = x(1-x)/T
        assert spikes == pytest.approx(float(xd.mean()) * T, rel=0.02)
    fires = float((x > 0.01).double().mean())
    for T, rmse, spikes in zip(out["latency"]["T"], out["latency"]["rmse"], out["latency"]["spikes"]):
        bound = math.sqrt(0.5 / (2 * (T - 1)) ** 2 + (1 - fires) * 0.01 ** 2)  # rounding, plus the silent inputs
        assert rmse <= max(bound, 1 / (2 * (T - 1)))
        assert spikes == pytest.approx(fires)
    assert list(out["rate"]["T"]) == [4, 16, 64]


def test_code_tradeoff_rejects_bad_input():
    with pytest.raises(ValueError, match="codes"):
        analysis.code_tradeoff(torch.rand(4), [4], codes=("morse",))
    with pytest.raises(ValueError, match="Ts"):
        analysis.code_tradeoff(torch.rand(4), [])
    with pytest.raises(TypeError, match="x"):
        analysis.code_tradeoff([0.5], [4])


# --------------------------------------------------------------------------------------- the trained network
@pytest.fixture(scope="module")
def digits_net():
    torch.manual_seed(0)
    net = models.build("mlp", num_classes=10, in_channels=1, T=4)
    train, test, _ = data.make_loaders("digits", batch_size=64, limit=200)
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    for x, y in train:  # one epoch: enough for predictions that differ from step to step
        loss = torch.nn.functional.cross_entropy(net(x).mean(0), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval(), test


def test_predict_and_accuracy_by_steps_equal_shorter_runs(digits_net):
    net, test = digits_net
    outputs, targets = analysis.predict(net, test, T=6)
    assert outputs.shape == (6, len(test.dataset), 10) and net.T == 4  # T restored
    acc = analysis.accuracy_by_steps(outputs, targets)
    x = torch.stack([test.dataset[i][0] for i in range(len(test.dataset))])
    with torch.no_grad():
        for t in range(1, 7):  # oracle: the same network run for only t steps (causal, eval-mode batch norm)
            net.T = t
            assert acc[t - 1] == pytest.approx(rate_accuracy(net(x), targets))
    net.T = 4
    limited, _ = analysis.predict(net, test, limit=10)
    assert limited.shape == (4, 10, 10)
    torch.testing.assert_close(limited, analysis.predict(net, test)[0][:, :10])


def test_record_sample_matches_the_forward_pass(digits_net):
    net, test = digits_net
    x, _ = test.dataset[3]
    rec = analysis.record_sample(net, x)
    (name, layer), = rec.layers.items()
    assert name == "body.sn1" and layer.h.shape == layer.spikes.shape == (4, 128) and layer.v_th == 1.0
    np.testing.assert_array_equal(layer.spikes, (layer.h >= 1.0).astype(layer.spikes.dtype))  # fire: h >= v_th
    with torch.no_grad():
        np.testing.assert_allclose(rec.logits, net(x[None])[:, 0].numpy(), rtol=1e-6, atol=1e-6)
    assert all(not n.record and n.h_seq is None for _, n in net.neurons())  # recording switched off again
    with pytest.raises(ValueError, match="one sample"):
        analysis.record_sample(net, x[None, None])


def test_record_sample_of_an_event_sequence():
    net = models.build("mlp", num_classes=10, in_channels=2, T=5, input_size=(12, 12)).eval()
    x = torch.rand(5, 2, 12, 12).round()  # [T, 2, H, W]
    rec = analysis.record_sample(net, x)
    assert rec.logits.shape == (5, 10) and rec.layers["body.sn1"].h.shape == (5, 128)


# ------------------------------------------------------------------------------------------------ gradient flow
def test_flow_ratio_by_hand():
    g = np.array([[3.0, 4.0], [1.0, 0.0]])  # per layer over time: 5 and 1
    assert analysis.flow_ratio(g) == 5.0
    assert analysis.flow_ratio(np.zeros((2, 3))) == 0.0
    assert analysis.flow_ratio(np.array([[1.0], [0.0]])) == math.inf
    with pytest.raises(ValueError, match="depth, T"):
        analysis.flow_ratio(np.ones(3))


def test_width_sweep_equals_single_probes_and_batch_norm_matters():
    widths = [0.5, 1.0, 2.0]
    ratios = analysis.width_sweep("triangle", widths, depth=4)
    for w, r in zip(widths, ratios):
        assert r == analysis.flow_ratio(analysis.gradient_flow(surrogate.get("triangle", gamma=w), depth=4))
    assert ratios[0] > ratios[1] > ratios[2]  # a wider triangle is lower: less gradient reaches layer 1
    # without batch norm the default-initialised currents never reach threshold in the deep layers: it vanishes
    g = analysis.gradient_flow("atan", depth=8, batch_norm=False)
    assert analysis.flow_ratio(g) < 1e-3 < analysis.flow_ratio(analysis.gradient_flow("atan", depth=8))
    with pytest.raises(TypeError, match="batch_norm"):
        analysis.gradient_flow("atan", batch_norm="no")


def test_width_sweeps_cover_every_family():
    sweeps = analysis.width_sweeps(n=2, depth=3)
    assert list(sweeps) == surrogate.names() == list(WIDTH_RANGES)
    for fam, d in sweeps.items():
        assert d["param"] == surrogate.get(fam).width_param
        np.testing.assert_allclose(d["widths"], WIDTH_RANGES[fam])
        assert set(d["ratios"]) == {"with batch norm", "without batch norm"}
        assert all(len(r) == 2 for r in d["ratios"].values())
