"""spikelab -> NIR file -> spikelab: the same spikes in every layer and the same logits (BN folding: float
tolerance), for briefly trained models; the parameter mapping against its formulas; exact re-export."""
from __future__ import annotations

import math

import nir
import numpy as np
import pytest
import torch
from _nir_support import run_and_record, train_briefly

import spikelab.nir as snir
from spikelab import encoding, models
from spikelab.neurons import NeuronConfig

T = 4
_CASES = {
    "conv-avg": lambda: models.build("conv-small", num_classes=10, in_channels=1, T=T, pool="avg"),
    "conv-max": lambda: models.build("conv-small", num_classes=10, in_channels=1, T=T),
    "mlp": lambda: models.build("mlp", num_classes=10, in_channels=1, T=T, hidden=(32, 16)),
    "mlp-plif": lambda: models.build("mlp", num_classes=10, in_channels=1, T=T, hidden=(32,),
                                     neuron=NeuronConfig(kind="plif", decay=0.6)),
    "mlp-if": lambda: models.build("mlp", num_classes=10, in_channels=1, T=T, hidden=(32,),
                                   neuron=NeuronConfig(kind="if", v_th=0.8)),
    "resnet19": lambda: models.build("resnet19", num_classes=10, in_channels=1, T=T, widths=(8, 16, 16),
                                     stages=(1, 1, 1), head_hidden=16),
    "sew-iand": lambda: models.build("sew-resnet18", num_classes=10, in_channels=1, T=T, widths=(8, 16),
                                     stages=(2, 1), connect="IAND", stem="imagenet"),
    "sew-add": lambda: models.build("sew-resnet18", num_classes=10, in_channels=1, T=T, widths=(8, 8, 16),
                                    stages=(2, 1, 1), connect="ADD", stem="cifar"),
}
_TRAINED: dict[str, torch.nn.Module] = {}


def trained(name: str) -> torch.nn.Module:
    if name not in _TRAINED:
        torch.manual_seed(1)
        _TRAINED[name] = train_briefly(_CASES[name]())
    return _TRAINED[name]


def _check_same(model, loaded, x, *, rates=True):
    """Per-layer spikes identical, logits equal up to the float error of batch-norm folding."""
    y0, s0 = run_and_record(model, x)
    y1, s1 = run_and_record(loaded, encoding.direct(x, model.T), loaded.node_names)
    assert set(s0) == set(s1) and s0
    for layer in s0:
        assert torch.equal(s0[layer], s1[layer]), f"spikes differ in {layer}"
        rate = s0[layer].mean().item()
        if rates:  # a test on silent or saturated layers would prove nothing
            assert 0.01 < rate < 0.99, f"{layer} fires at rate {rate}"
    torch.testing.assert_close(y1, y0, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(_CASES))
@pytest.mark.parametrize("discretisation", ["euler", "exact"])
def test_round_trip_through_a_file_keeps_spikes_and_logits(tmp_path, name, discretisation):
    model = trained(name)
    x = torch.rand(16, 1, 8, 8) * 2
    path = tmp_path / "net.nir"
    graph = snir.export(model, path, discretisation=discretisation, sample_input=x)
    assert path.is_file() and not model.training
    loaded = snir.load(path)
    assert loaded.metadata["discretisation"] == discretisation and float(loaded.metadata["dt"]) == snir.DEFAULT_DT
    assert set(graph.nodes) == set(loaded.node_names.values())
    _check_same(model, loaded, x, rates=name != "mlp-if")


def test_export_keeps_the_train_mode_and_folds_batch_norm_statistics():
    model = trained("conv-avg").train()
    graph = snir.export(model, None)
    assert model.training and all(m.training for m in model.modules())
    conv = graph.nodes["stem.conv"]  # folded: W * gamma / sqrt(var + eps), (0 - mean) * scale + beta
    bn = model.stem.bn
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)  # in float64, rounded once
    w = model.stem.conv.module.weight.detach().double() * scale.view(-1, 1, 1, 1)
    b = (-bn.running_mean.double()) * scale + bn.bias.detach().double()
    np.testing.assert_allclose(conv.weight, w.float().numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(conv.bias, b.float().numpy(), rtol=0, atol=0)
    assert "batch norm folded" in conv.metadata["spikelab_layer"]
    model.eval()


@pytest.mark.parametrize("discretisation", ["euler", "exact"])
def test_neuron_parameters_follow_the_stated_discretisation(discretisation):
    model = trained("mlp-plif")
    plif = model.body.sn1
    decay = float(plif.decay.detach())  # PLIF exports as the LIF of its learned decay
    assert abs(decay - 0.6) > 1e-5, "training should have moved PLIF's decay"
    # input scale: 1, or 1/tau = 1 - decay in the published form of Fang et al. (decay_input)
    k = 1 - decay if getattr(plif, "decay_input", False) else 1.0
    dt = 1e-3
    graph = snir.export(model, None, dt=dt, discretisation=discretisation)
    lif = graph.nodes["body.sn1"]
    assert isinstance(lif, nir.LIF) and lif.tau.shape == (32,) and lif.tau.dtype == np.float64  # per neuron
    tau = dt / (1 - decay) if discretisation == "euler" else -dt / math.log(decay)
    np.testing.assert_allclose(lif.tau, tau, rtol=1e-12)
    np.testing.assert_allclose(lif.r, k / (1 - decay), rtol=1e-6)  # float32 rounding of k (PLIF's own value)
    np.testing.assert_array_equal(lif.v_leak, 0.0)
    np.testing.assert_array_equal(lif.v_threshold, 1.0)
    np.testing.assert_array_equal(lif.v_reset, 0.0)
    assert lif.metadata["spikelab_neuron"] == "PLIF" and "surrogate" in lif.metadata["dropped"]
    loaded = snir.load(graph)
    (_, neuron), = loaded.neurons()
    assert neuron.reset_mode == "hard" and np.float32(neuron.decay) == np.float32(decay)  # exact at float32
    if k == 1.0:
        assert type(neuron).__name__ == "LIF"
    else:
        assert type(neuron).__name__ == "AffineInputLIF" and float(neuron.input_scale) == pytest.approx(k, rel=1e-6)


def test_integrate_and_fire_exports_as_nir_if_with_r_over_dt():
    graph = snir.export(trained("mlp-if"), None, dt=0.5)
    node = graph.nodes["body.sn1"]
    assert isinstance(node, nir.IF)  # dv/dt = R I, Euler and exact alike: v += dt R I, so R = 1/dt
    np.testing.assert_array_equal(node.r, 2.0)
    np.testing.assert_array_equal(node.v_threshold, 0.8)
    (_, neuron), = snir.load(graph).neurons()
    assert type(neuron).__name__ == "IF" and neuron.v_th == 0.8


def test_residual_joins_are_edges_and_threshold_nodes():
    g_add = snir.export(trained("sew-add"), None, sample_input=torch.zeros(1, 1, 8, 8))
    # SEW ADD: the block output a + s is two edges into every consumer (NIR sums a node's inputs)
    assert {a for a, b in g_add.edges if b == "body.layer1.1.conv1"} == {"body.layer1.0.sn2", "body.sn"}
    assert not any(isinstance(n, (nir.Threshold, nir.Scale)) for n in g_add.nodes.values())
    g_iand = snir.export(trained("sew-iand"), None, sample_input=torch.zeros(1, 1, 8, 8))
    t = g_iand.nodes["body.layer1.0.join.iand"]  # (1 - a) s = [s - a > 0.5] on spikes
    assert isinstance(t, nir.Threshold) and np.all(t.threshold == 0.5)
    assert set(a for a, b in g_iand.edges if b == "body.layer1.0.join.iand") == \
        {"body.layer1.0.join.not", "body.maxpool.or"}
    np.testing.assert_array_equal(g_iand.nodes["body.layer1.0.join.not"].scale, -1.0)
    g_res = snir.export(trained("resnet19"), None, sample_input=torch.zeros(1, 1, 8, 8))
    assert set(a for a, b in g_res.edges if b == "body.layer1.0.sn2") == {"body.layer1.0.conv2", "body.sn"}


def test_reexport_of_a_loaded_network_gives_the_same_graph(tmp_path):
    model = trained("sew-iand")
    g1 = snir.export(model, tmp_path / "a.nir", sample_input=torch.zeros(1, 1, 8, 8))
    loaded = snir.load(tmp_path / "a.nir")
    g2 = snir.export(loaded, None)
    assert set(g1.nodes) == set(g2.nodes) and sorted(g1.edges) == sorted(g2.edges)
    for name, node in g1.nodes.items():
        other = g2.nodes[name]
        assert type(node) is type(other), name
        for field in ("weight", "bias", "tau", "r", "v_leak", "v_threshold", "v_reset", "threshold", "scale",
                      "kernel_size", "stride", "padding"):
            if hasattr(node, field):
                np.testing.assert_allclose(np.asarray(getattr(other, field), float),
                                           np.asarray(getattr(node, field), float), rtol=1e-12, atol=0,
                                           err_msg=f"{name}.{field}")


def test_load_reads_the_recorded_conventions_and_refuses_contradictions(tmp_path):
    model = trained("mlp")
    snir.export(model, tmp_path / "m.nir", dt=2e-3, discretisation="exact")
    loaded = snir.load(tmp_path / "m.nir")
    _check_same(model, loaded, torch.rand(8, 1, 8, 8) * 2)
    with pytest.raises(ValueError, match=r"dt=0.001 contradicts the dt recorded in the graph \(0.002\)"):
        snir.load(tmp_path / "m.nir", dt=1e-3)
    with pytest.raises(ValueError, match="discretisation='euler' contradicts"):
        snir.load(tmp_path / "m.nir", discretisation="euler")
    graph = snir.export(model, None, dt=2e-3, discretisation="exact")
    graph.metadata = {}  # a file from elsewhere: the caller states the convention
    _check_same(model, snir.load(graph, dt=2e-3, discretisation="exact"), torch.rand(8, 1, 8, 8) * 2)
    first = next(snir.load(graph).neurons())[1]  # read as Euler with dt = 1e-4: another decay
    assert first.decay == pytest.approx(1 - 1e-4 / (-2e-3 / math.log(0.5)), rel=1e-12)


def test_file_is_written_atomically_and_is_plain_nir(tmp_path):
    path = tmp_path / "sub" / "m.nir"
    snir.export(trained("conv-max"), path)
    assert [p.name for p in path.parent.iterdir()] == ["m.nir"]  # no temporary file left behind
    graph = nir.read(path)  # any NIR reader opens it
    assert {type(n).__name__ for n in graph.nodes.values()} == {
        "Input", "Conv2d", "LIF", "SumPool2d", "Threshold", "Flatten", "Affine", "Output"}


_SMOKE = {  # every registered spiking model of this version, at a CPU size, 8x8 inputs with 2 channels
    "mlp": dict(hidden=(12, 8)),
    "conv-small": dict(channels=(4, 6), pool="max"),
    "resnet19": dict(widths=(4, 8, 8), stages=(1, 1, 1), head_hidden=8),
    "vggsnn": dict(cfg=(4, 4, "A", 8, "M"), input_size=(8, 8)),
    "spiking-resnet18": dict(widths=(4, 4, 8, 8), stages=(1, 1, 1, 1), stem="cifar"),
    "spiking-resnet34": dict(widths=(4, 4, 8, 8), stages=(1, 2, 1, 1)),
    "sew-resnet18": dict(widths=(4, 4, 8, 8), stages=(1, 1, 1, 1), stem="cifar", connect="AND"),
    "sew-resnet34": dict(widths=(4, 4, 8, 8), stages=(1, 2, 1, 1), connect="IAND"),
}


@pytest.mark.parametrize("name", list(_SMOKE))
def test_every_model_family_exports_exactly(name):
    model = models.build(name, num_classes=5, in_channels=2, T=3, **_SMOKE[name])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # non-trivial batch-norm statistics, as after training
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(1.0 + 0.3 * torch.randn(m.num_features, generator=g))
    model.eval()
    x = torch.rand(6, 2, 8, 8, generator=g) * 3
    loaded = snir.load(snir.export(model, None, sample_input=x))
    _check_same(model, loaded, x, rates=False)
