"""Meters and the operations / energy count (SPEC section 5), checked against hand-computed values."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikelab.layers import SeqToANN, StaticStem
from spikelab.metrics import (
    E_AC_PJ,
    E_MAC_PJ,
    OPS_KEYS,
    Accuracy,
    FiringRates,
    Mean,
    SpikeSample,
    SynapticOps,
    accuracy,
    layer_names,
    ops_table,
    ops_totals,
)
from spikelab.neurons import IF, LIF


def _tiny_net() -> nn.Sequential:
    """Linear(2->2) -> IF (v_th 1, hard reset) -> Linear(2->3); weights chosen so the spikes are known by hand."""
    fc1 = nn.Linear(2, 2, bias=False)
    fc2 = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        fc1.weight.copy_(torch.tensor([[0.5, 0.0], [0.0, 0.25]]))
        fc2.weight.fill_(1.0)
    return nn.Sequential(SeqToANN(fc1), IF(v_th=1.0), SeqToANN(fc2))


def test_ops_and_energy_of_a_tiny_network_by_hand():
    # T = 3 steps, B = 2 samples: sample 0 sees 2.0 on both inputs, sample 1 sees zeros.
    # currents of sample 0: neuron 0 gets 1.0 per step -> spikes 1,1,1; neuron 1 gets 0.5 -> 0,1,0 (4 spikes);
    # sample 1 never spikes. Per sample (divide totals by B = 2):
    #   fc1 (real input): MACs = T * out * in = 3 * 2 * 2 = 12
    #   IF: one AC per element = T * 2 = 6
    #   fc2 (binary input, rate 4 / (T*B*2) = 1/3): ops = T * 3 * 2 = 18 per sample; ACs = 18 / 3 = 6
    net = _tiny_net()
    x_seq = torch.zeros(3, 2, 2)
    x_seq[:, 0] = 2.0
    rows = ops_table(net, x_seq, batch_size=2)
    assert [r["layer"] for r in rows] == ["0", "1", "2"]
    assert [r["type"] for r in rows] == ["linear", "neuron", "linear"]
    assert all(tuple(r) == OPS_KEYS for r in rows)
    fc1, sn, fc2 = rows
    assert fc1["input_rate"] is None and fc1["acs"] == 0 and fc1["macs"] == 12
    assert sn["input_rate"] is None and sn["acs"] == 6 and sn["macs"] == 0
    assert fc2["input_rate"] == pytest.approx(1 / 3)
    assert fc2["acs"] == pytest.approx(6.0) and fc2["macs"] == 0
    assert fc1["energy_pj"] == pytest.approx(4.6 * 12)
    assert sn["energy_pj"] == pytest.approx(0.9 * 6)
    assert fc2["energy_pj"] == pytest.approx(0.9 * 6)
    totals = ops_totals(rows)
    assert totals == pytest.approx(dict(acs=12.0, macs=12.0, energy_pj=0.9 * 12 + 4.6 * 12))
    assert (E_AC_PJ, E_MAC_PJ) == (0.9, 4.6)


def test_binary_input_acs_equal_spikes_times_fan_out():
    # for a linear layer the AC count ops * rate is exact: every input spike is added to each of the out_features
    torch.manual_seed(1)
    fc = nn.Linear(20, 7)
    spikes = (torch.rand(5, 4, 20) < 0.3).float()  # [T, B, N]
    rows = ops_table(SeqToANN(fc), spikes, batch_size=4)
    assert rows[0]["acs"] == pytest.approx(spikes.sum().item() * 7 / 4)
    assert rows[0]["input_rate"] == pytest.approx(spikes.mean().item())


def test_conv_ops_count_kernel_and_groups():
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    x = torch.zeros(2, 1, 1, 4, 4)  # [T, B, C, H, W], binary with 5 ones
    x.view(-1)[[0, 3, 7, 20, 31]] = 1.0
    (row,) = ops_table(SeqToANN(conv), x, batch_size=1)
    ops = (2 * 2 * 4 * 4) * (1 * 3 * 3)  # output elements * weights per output
    assert row["type"] == "conv" and row["acs"] == pytest.approx(ops * 5 / 32) and row["macs"] == 0
    dw = nn.Conv2d(4, 4, 3, groups=4)
    (row,) = ops_table(dw, torch.full((1, 4, 5, 5), 0.5))
    assert row["macs"] == (4 * 3 * 3) * (4 // 4 * 9)


def test_static_stem_is_counted_once_and_named_without_wrappers():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = StaticStem(SeqToANN(nn.Conv2d(1, 2, 3, padding=1)), T=4)
            self.sn = LIF()

        def forward(self, x):
            return self.sn(self.stem(x))

    net = Net().train()
    rows = ops_table(net, torch.rand(3, 1, 5, 5))
    assert [r["layer"] for r in rows] == ["stem", "sn"]
    assert rows[0]["macs"] == 2 * 25 * 9  # one step's work per sample, not T steps
    assert rows[1]["acs"] == 4 * 2 * 25  # the neuron runs all T = 4 steps
    assert net.training  # ops_table restores the mode
    names = layer_names(net)
    assert names[net.stem.module.module] == "stem" and names[net] == "Net"


def test_firing_rates_meter_accumulates_over_passes():
    net = nn.Sequential(SeqToANN(nn.Linear(6, 5)), LIF(), SeqToANN(nn.Linear(5, 4)), LIF(decay=0.9))
    meter = FiringRates(net)
    x1, x2 = torch.randn(4, 3, 6) * 3, torch.randn(4, 2, 6) * 3
    with meter:
        net(x1)
        net(x2)
    net(x1)  # detached: not counted
    s1 = [net[1](net[0](x)) for x in (x1, x2)]
    s3 = [net[3](net[2](s)) for s in s1]
    rates = meter.compute()
    assert list(rates) == ["1", "3"]
    assert rates["1"] == pytest.approx(sum(s.sum().item() for s in s1) / (4 * 5 * 5))
    assert rates["3"] == pytest.approx(sum(s.sum().item() for s in s3) / (4 * 5 * 4))
    meter.reset()
    assert meter.compute() == {}


def test_spike_sample_keeps_one_sample_cut_to_max_neurons():
    net = nn.Sequential(SeqToANN(nn.Linear(3, 8)), LIF())
    meter = SpikeSample(net, sample=1, max_neurons=5)
    x = torch.randn(6, 2, 3) * 4
    with meter:
        spikes = net(x)
    got = meter.compute()["1"]
    assert got == spikes[:, 1, :5].int().tolist()
    with pytest.raises(ValueError, match="sample=3"):
        with SpikeSample(net, sample=3):
            net(x)


def test_mean_and_accuracy_meters():
    m = Mean()
    assert m.compute() is None
    m.update(2.0, n=3)
    m.update(4.0, n=1)
    assert m.compute() == pytest.approx(2.5)
    m.reset()
    assert m.compute() is None
    acc = Accuracy()
    out = torch.zeros(2, 4, 3)
    out[:, torch.arange(4), torch.tensor([0, 1, 2, 2])] = 1.0  # predictions 0, 1, 2, 2
    assert acc.update(out, torch.tensor([0, 1, 1, 2])) == pytest.approx(0.75)
    assert acc.update(out[:, :2], torch.tensor([2, 2])) == 0.0
    assert acc.compute() == pytest.approx(3 / 6)
    assert accuracy(out, torch.tensor([0, 1, 1, 2])) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="targets"):
        acc.update(out, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="integer class indices"):  # a NaN target would count as a silent miss
        acc.update(out, torch.tensor([0.0, 1.0, float("nan"), 2.0]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 2\]"):
        acc.update(out, torch.tensor([0, 1, 3, 2]))


def test_ops_meter_needs_a_sample_count_and_rejects_bad_input():
    meter = SynapticOps(_tiny_net())
    with pytest.raises(ValueError, match="update"):
        meter.compute()
    with pytest.raises(TypeError, match="model"):
        FiringRates("net")
    with pytest.raises(TypeError, match="x"):
        ops_table(_tiny_net(), [1.0, 2.0])


def test_ops_table_infers_the_batch_of_a_sequence_input():
    # ops_table(model, x_seq) without batch_size used to divide by x_seq.shape[0] = T: every per-sample figure off
    # by B / T. The oracle: a neuron does one accumulate per element and step, T * features per sample.
    T, B = 3, 5
    x_seq = torch.rand(T, B, 2)
    rows = ops_table(_tiny_net(), x_seq)
    assert rows == ops_table(_tiny_net(), x_seq, batch_size=B)
    assert rows[1]["acs"] == T * 2  # the IF layer: T steps x 2 neurons per sample
    assert rows[0]["macs"] == T * 2 * 2
    with pytest.raises(ValueError, match=r"batch_size=3, but .* carried 5 samples.*x.shape\[1\]"):
        ops_table(_tiny_net(), x_seq, batch_size=T)


def test_ops_table_of_a_model_counts_the_same_per_sample_for_any_input_layout():
    from spikelab import models

    net = models.build("conv-small", num_classes=3, in_channels=1, T=4, channels=(4, 6))
    x = torch.rand(6, 1, 8, 8)
    static = ops_table(net, x)
    sequence = ops_table(net, x.unsqueeze(0).expand(4, *x.shape))  # direct encoding written out, [T, B, ...]
    by_name = {r["layer"]: r for r in sequence}
    for row in static:
        other = by_name[row["layer"]]
        if row["layer"] == "stem.conv":  # the static shortcut computes the stem once instead of T times
            assert other["macs"] == pytest.approx(4 * row["macs"])
        else:
            assert other["acs"] == pytest.approx(row["acs"]) and other["macs"] == pytest.approx(row["macs"])
    assert by_name["body.sn1"]["acs"] == 4 * 4 * 8 * 8  # T x neurons per sample


def test_ops_meter_counts_samples_itself():
    net = _tiny_net()
    meter = SynapticOps(net)
    with meter:
        net(torch.rand(3, 4, 2))
        net(torch.rand(3, 2, 2))
    meter.update()  # 4 + 2 samples, read at the first time-first layer
    assert meter.samples == 6
    with pytest.raises(ValueError, match="no forward pass seen"):
        meter.update()
    meter.update(7)  # a count given without a forward pass to check it against is taken as is
    assert meter.samples == 13
