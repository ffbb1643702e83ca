"""The training doctor: each fault built into a network is found with the right kind and layer, and its healthy twin
gets no finding of that kind; the numbers are checked against independent measurements (a hook, a reference LIF
loop, a plain backward pass); the model is left bit-identical."""
from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from spikelab import data, models, surrogate
from spikelab.analysis import KINDS, Finding, Thresholds, diagnose, format_findings
from spikelab.layers import SeqToANN, StaticStem, TdBatchNorm
from spikelab.losses import sdt_loss
from spikelab.neurons import LIF, PLIF, NeuronConfig


@pytest.fixture(scope="module")
def digits():
    """A test batch of 64 digits, ``x [64, 1, 8, 8]``, ``y [64]``, and the loaders."""
    loaders = data.make_loaders("digits", batch_size=64, seed=0)
    x, y = next(iter(loaders[1]))
    return x, y, loaders


def conv_snn(seed: int = 0) -> models.SpikingModel:
    torch.manual_seed(seed)
    return models.build("conv-small", num_classes=10, in_channels=1, T=4)


def deep_mlp(sg: surrogate.Surrogate, depth: int = 8) -> models.SpikingModel:
    torch.manual_seed(0)
    return models.build("mlp", num_classes=10, in_channels=1, T=4, hidden=(64,) * depth,
                        neuron=NeuronConfig(surrogate=sg))


def of_kind(findings: list[Finding], kind: str) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


def currents_of(model: nn.Module, neuron: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input currents ``[T, B, ...]`` that ``neuron`` receives when ``model`` runs on ``x`` (an oracle hook)."""
    seen = []
    handle = neuron.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].detach()))
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen[0]


def test_threshold_100_makes_a_silent_layer(digits):
    x, y, _ = digits
    healthy, faulty = conv_snn(), conv_snn()
    faulty.body.sn1.v_th = 100.0
    assert of_kind(diagnose(healthy, x, y), "silent") == []
    found = of_kind(diagnose(faulty, x, y), "silent")
    assert found[0].layer == "body.sn1" and found[0].value == 0.0
    # the advice quotes the ratio of the RMS input current to the threshold, measured here by a hook
    rms = float(currents_of(faulty, faulty.body.sn1, x).pow(2).mean().sqrt())
    assert "x its threshold v_th = 100" in found[0].advice and f"{rms / 100:.2g} x" in found[0].advice
    assert "Lower v_th" in found[0].advice and "batch norm" in found[0].advice
    # the layer after it gets no current at all, and the advice sends the student upstream
    assert found[1].layer == "body.conv2.sn" and "body.sn1, is silent too" in found[1].advice


def lif_reference(current: torch.Tensor, *, decay: float, v_th: float, reset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and membranes before reset of a LIF layer, by a plain loop over time (SPEC section 1)."""
    v = torch.zeros_like(current[0], dtype=torch.float64)
    spikes, hs = [], []
    for i_t in current.double():
        h = decay * v + i_t
        s = (h >= v_th).double()
        v = h - v_th * s if reset == "soft" else h * (1 - s)
        spikes.append(s)
        hs.append(h)
    return torch.stack(spikes), torch.stack(hs)


def test_threshold_near_zero_with_soft_reset_saturates(digits):
    x, y, _ = digits
    healthy, faulty = conv_snn(), conv_snn()
    faulty.body.sn1.v_th, faulty.body.sn1.reset_mode = 1e-3, "soft"
    assert of_kind(diagnose(healthy, x, y), "saturated") == []
    found = of_kind(diagnose(faulty, x, y), "saturated")
    assert [f.layer for f in found] == ["body.sn1"]
    s, h = lif_reference(currents_of(faulty, faulty.body.sn1, x), decay=0.5, v_th=1e-3, reset="soft")
    over = float((h[s > 0] >= 2e-3).double().mean())
    assert over > 0.8 and found[0].value == pytest.approx(over, rel=1e-6)
    assert f"{100 * float(s.mean()):.0f} % of its neuron-steps" in found[0].advice
    assert "hard reset" in found[0].advice


def test_a_layer_driven_far_above_threshold_on_every_step_is_saturated():
    torch.manual_seed(0)
    fc = nn.Linear(6, 5)
    net = nn.Sequential(StaticStem(SeqToANN(fc), 3), LIF(), SeqToANN(nn.Linear(5, 3)))
    x = torch.rand(8, 6)
    assert of_kind(diagnose(net, x), "saturated") == []
    with torch.no_grad():
        fc.bias.fill_(4.0)  # every current is above 4 v_th: the layer fires on every step
    found = of_kind(diagnose(net, x), "saturated")
    assert [(f.layer, f.value) for f in found] == [("1", 1.0)]


def test_a_very_narrow_surrogate_at_depth_8_vanishes_and_a_tall_one_explodes(digits):
    x, y, _ = digits
    healthy = diagnose(deep_mlp(surrogate.get("atan")), x, y)
    assert of_kind(healthy, "vanishing_gradient") == [] and of_kind(healthy, "exploding_gradient") == []
    narrow = deep_mlp(surrogate.get("fast_sigmoid", slope=100.0))
    found = of_kind(diagnose(narrow, x, y), "vanishing_gradient")
    assert [f.layer for f in found] == ["body.sn1"]
    # oracle: the ratio of gradient norms at the first and last spiking layers' spikes, by a plain backward pass
    ref = copy.deepcopy(narrow)
    outs = []

    def keep(module, inputs, out):
        out.retain_grad()
        outs.append(out)

    hooks = [n.register_forward_hook(keep) for _, n in ref.neurons()]
    sdt_loss(ref(x), y).backward()
    for hk in hooks:
        hk.remove()
    assert len(outs) == 8
    assert found[0].value == pytest.approx(float(outs[0].grad.norm() / outs[-1].grad.norm()), rel=1e-4)
    assert found[0].value < 1e-2
    advice = found[0].advice
    assert "FastSigmoid(slope=100)" in advice and "atan (alpha=2)" in advice
    assert "spikelab dashboard surrogate" in advice

    tall = of_kind(diagnose(deep_mlp(surrogate.get("triangle", gamma=0.05)), x, y), "exploding_gradient")
    assert [f.layer for f in tall] == ["body.sn1"] and tall[0].value > 1e2
    assert "gamma=1" in tall[0].advice


def test_nan_input_is_non_finite_and_reported_alone(digits):
    x, y, _ = digits
    net = conv_snn()
    assert of_kind(diagnose(net, x, y), "non_finite") == []
    bad = x.clone()
    bad[3, 0, 4, 4] = float("nan")
    found = diagnose(net, bad, y)
    # the first layer to see it is the stem's conv: 3x3 kernels spread one NaN to 9 positions of 16 channels
    assert [(f.layer, f.kind, f.value) for f in found] == [("stem.conv", "non_finite", 9 * 16)]
    assert "The input batch holds 1 NaN" in found[0].advice


def test_an_inf_weight_names_its_layer_and_a_nan_loss_the_model(digits):
    x, y, _ = digits
    net = conv_snn()
    with torch.no_grad():
        net.head.fc.module.weight[2, 5] = float("inf")
    found = diagnose(net, x, y)
    assert [(f.layer, f.kind) for f in found] == [("head.fc", "non_finite")]
    assert "turns finite inputs into" in found[0].advice

    # a NaN inside a neuron never fires (NaN >= v_th is False), so the membrane itself is checked
    torch.manual_seed(0)
    plif = nn.Sequential(StaticStem(SeqToANN(nn.Linear(64, 8)), 3), PLIF(), SeqToANN(nn.Linear(8, 10)))
    with torch.no_grad():
        plif[1].w.fill_(float("nan"))
    found = diagnose(plif, x.flatten(1), y)
    assert [(f.layer, f.kind) for f in found] == [("1", "non_finite")]

    def broken_loss(out, target):
        return sdt_loss(out, target) * torch.tensor(float("nan"))

    found = diagnose(conv_snn(), x, y, loss=broken_loss)
    assert [(f.layer, f.kind) for f in found] == [("", "non_finite")]


def test_an_output_fed_by_a_silent_layer_is_dead(digits):
    x, y, _ = digits
    healthy, faulty = conv_snn(), conv_snn()
    faulty.body.conv2.sn.v_th = 100.0
    assert of_kind(diagnose(healthy, x, y), "dead_output") == []
    findings = diagnose(faulty, x, y)
    dead = of_kind(findings, "dead_output")
    assert [(f.layer, f.value) for f in dead] == [("head.fc", 0.0)]
    assert "body.conv2.sn, the last spiking layer, never fires" in dead[0].advice
    assert ("body.conv2.sn", "silent") in [f.key for f in findings]
    # the logits really are the readout's bias for every sample
    with torch.no_grad():
        out = faulty(x)
    torch.testing.assert_close(out, faulty.head.fc.module.bias.expand_as(out))


def test_a_batch_of_identical_samples_cannot_show_a_dead_output(digits):
    x, y, _ = digits
    net = conv_snn()
    net.body.conv2.sn.v_th = 100.0
    same = x[:1].expand(8, -1, -1, -1).contiguous()
    assert of_kind(diagnose(net, same, y[:1].expand(8)), "dead_output") == []


def rate_coded(x: torch.Tensor, T: int = 4) -> torch.Tensor:
    """A sequence ``[T, B, ...]`` of Bernoulli spikes with the pixel values as probabilities (SPEC section 4)."""
    gen = torch.Generator().manual_seed(0)
    return torch.bernoulli(x.unsqueeze(0).expand(T, *x.shape), generator=gen)


def test_a_sequence_batch_is_diagnosed_along_its_batch_axis(digits):
    x, y, _ = digits
    seq = rate_coded(x)  # [4, 64, 1, 8, 8]
    healthy, faulty = conv_snn(), conv_snn()
    faulty.body.sn1.v_th = 100.0
    assert diagnose(healthy, seq, y) == []
    found = diagnose(faulty, seq, y)
    assert [f.key for f in found] == [
        ("body.sn1", "silent"), ("body.conv2.sn", "silent"), ("head.fc", "dead_output")]
    # four copies of one sample over T = 4 steps: the steps differ, the samples do not, so no output can look dead
    same = seq[:, :1].expand(4, 4, -1, -1, -1).contiguous()
    assert not torch.equal(same[0], same[1])
    assert [f.key for f in diagnose(faulty, same, y[:1].expand(4))] == [
        ("body.sn1", "silent"), ("body.conv2.sn", "silent")]


def snapshot(model: nn.Module) -> dict:
    return dict(
        state={k: v.clone() for k, v in model.state_dict().items()},
        grads={n: (p.grad, None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()},
        modes={n: m.training for n, m in model.named_modules()},
        traces={n: (m.record, m.h_seq, m.v_seq) for n, m in model.named_modules() if hasattr(m, "h_seq")},
        rng=torch.get_rng_state(),
    )


def assert_same(model: nn.Module, before: dict) -> None:
    after = model.state_dict()
    assert after.keys() == before["state"].keys()
    for k, v in before["state"].items():
        assert torch.equal(after[k], v), k
    for n, p in model.named_parameters():
        obj, value = before["grads"][n]
        assert p.grad is obj and (value is None or torch.equal(p.grad, value)), n
    assert {n: m.training for n, m in model.named_modules()} == before["modes"]
    for n, m in model.named_modules():
        if n in before["traces"]:
            record, h_seq, v_seq = before["traces"][n]
            assert m.record == record and m.h_seq is h_seq and m.v_seq is v_seq, n
    assert torch.equal(torch.get_rng_state(), before["rng"])


@pytest.mark.parametrize("case", ["healthy", "silent", "nan", "eval"])
def test_the_diagnosis_leaves_the_model_bit_identical(case):
    torch.manual_seed(1)
    net = nn.Sequential(
        StaticStem(SeqToANN(nn.Linear(6, 12)), 3), TdBatchNorm(12), PLIF(record=True),
        SeqToANN(nn.Dropout(0.3), nn.Linear(12, 4)),
    )
    x, y = torch.rand(10, 6), torch.randint(0, 4, (10,))
    sdt_loss(net(x), y).backward()  # .grad and the recorded traces hold something
    net[0].module.module.weight.grad = None  # ... except one parameter
    if case == "silent":
        net[2].v_th = 100.0
    if case == "nan":
        x[0, 0] = float("nan")
    if case == "eval":
        with torch.no_grad():
            for _ in range(50):  # estimate the running statistics
                net(x)
        net.eval()
    before = snapshot(net)
    findings = diagnose(net, x, y)
    assert_same(net, before)
    assert [f.kind for f in findings] == {"healthy": [], "silent": ["silent", "dead_output"],
                                          "nan": ["non_finite"], "eval": []}[case]


def test_the_trained_default_conv_snn_on_digits_gets_no_finding(digits):
    x, y, (train, test, info) = digits
    from spikelab.training import fit

    net = conv_snn()
    assert diagnose(net, x, y) == []  # at initialisation, in training mode
    history = fit(net, (train, test, info), epochs=4, lr=1e-2, progress=False, device="cpu")
    assert history.last["test_acc"] > 0.9
    assert diagnose(net, x, y) == [] and diagnose(net, x) == []
    net.eval()
    assert diagnose(net, x, y) == []


def test_an_untrained_model_in_eval_mode_is_told_to_diagnose_in_training_mode(digits):
    x, y, _ = digits
    net = conv_snn().eval()  # running statistics never estimated: the second layer gets tiny currents
    findings = diagnose(net, x, y)
    assert findings and all("model.train()" in f.advice for f in findings)


def test_thresholds_move_the_bounds(digits):
    x, y, _ = digits
    from spikelab.metrics import FiringRates

    net = conv_snn()
    rates = FiringRates(net)
    with rates, torch.no_grad():
        net(x)
    bound = sum(rates.compute().values()) / 2  # between the two layers' rates
    expected = [name for name, r in rates.compute().items() if r < bound]
    found = of_kind(diagnose(net, x, y, thresholds=Thresholds(silent_rate=bound)), "silent")
    assert [f.layer for f in found] == expected and len(expected) == 1
    assert found[0].value == pytest.approx(rates.compute()[expected[0]], rel=1e-9)
    with pytest.raises(ValueError, match="exploding_ratio"):
        Thresholds(exploding_ratio=0.5)
    with pytest.raises(ValueError, match="silent_rate"):
        Thresholds(silent_rate=0.95)


def test_findings_are_plain_json_and_print_one_per_line():
    f = Finding("body.sn1", "silent", 0.0, "Lower v_th.")
    assert Finding.from_dict(json.loads(json.dumps(f.to_dict()))) == f
    assert f.key == ("body.sn1", "silent") and set(KINDS) >= {"silent", "dead_output", "non_finite"}
    text = format_findings([f, Finding("", "non_finite", 3, "Clean the data.").to_dict()])
    assert text.splitlines() == ["  body.sn1: silent (0). Lower v_th.", "  (model): non_finite (3). Clean the data."]
    assert format_findings([]) == ""
    with pytest.raises(ValueError, match="missing"):
        Finding.from_dict({"layer": "a"})


def test_bad_arguments_are_named(digits):
    x, y, _ = digits
    net = conv_snn()
    with pytest.raises(TypeError, match="model"):
        diagnose("net", x)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        diagnose(net, x.numpy())
    with pytest.raises(ValueError, match="loss needs targets"):
        diagnose(net, x, loss="tet")
    with pytest.raises(TypeError, match="loss"):
        diagnose(net, x, y, loss=3)
    with pytest.raises(ValueError, match=r"logits \[T, B, C\]"):
        diagnose(nn.Linear(64, 3), x.flatten(1))
