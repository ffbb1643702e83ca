"""Interoperability with snnTorch's NIR importer and exporter (snnTorch 0.9+/1.0 with nirtorch 2.6).

Conventions under which the spikes agree: Euler with dt = 1e-4 (snnTorch's importer assumes it), snnTorch's
``Leaky(reset_mechanism="zero", reset_delay=False)`` (what its importer builds), inputs repeated at every step,
and no membrane landing exactly on the threshold (spikelab fires at ``v >= v_th``, snnTorch and NIR at ``v > v_th``;
the last test shows where it matters). The peer bugs met on the way are shown by tests here, not worked around
silently.
"""
from __future__ import annotations

import contextlib
import io

import nir
import pytest
import torch
from _nir_support import run_and_record, train_briefly
from torch import nn

import spikelab.nir as snir
from spikelab import encoding, models
from spikelab.layers import SeqToANN
from spikelab.neurons import LIF, NeuronConfig

snn = pytest.importorskip("snntorch")
pytest.importorskip("nirtorch")
from snntorch import utils as snn_utils  # noqa: E402
from snntorch.export_nir import export_to_nir  # noqa: E402
from snntorch.import_nir import import_from_nir  # noqa: E402

pytestmark = [pytest.mark.peer, pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph:DeprecationWarning")]


def _import(path) -> nn.Module:
    with contextlib.redirect_stdout(io.StringIO()):  # the importer prints progress
        return import_from_nir(nir.read(path))


def _run_snntorch(net: nn.Module, x_seq: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Step an snnTorch network over ``x_seq`` ``[T, B, ...]``; outputs and each Leaky's spikes. An imported
    graph returns ``(output, state)`` per step, a plain ``nn.Sequential`` the output."""
    spikes: dict[str, list[torch.Tensor]] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, n=n: spikes.setdefault(n, []).append(o.detach()))
             for n, m in net.named_modules() if isinstance(m, snn.Leaky)]
    snn_utils.reset(net)
    try:
        with torch.no_grad():
            outs = [net(x) for x in x_seq]
            out = torch.stack([o[0] if isinstance(o, tuple) else o for o in outs])
    finally:
        for h in hooks:
            h.remove()
    return out, {n: torch.stack(v) for n, v in spikes.items()}


def _leaky(n: int, beta: float, **kw) -> "snn.Leaky":
    # per-neuron tensors: with scalars, snnTorch's exporter writes shape-() parameters that NIR rejects (below)
    return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.ones(n), init_hidden=True,
                     reset_delay=False, **{"reset_mechanism": "zero", **kw})


def test_spikelab_mlp_runs_in_snntorch_with_the_same_spikes(tmp_path):
    torch.manual_seed(2)
    model = train_briefly(models.SpikingMLP(in_shape=(64,), num_classes=10, hidden=(32, 16), T=6))
    snir.export(model, tmp_path / "mlp.nir")  # default: Euler, dt = 1e-4
    peer = _import(tmp_path / "mlp.nir")
    x = torch.rand(16, 64) * 3
    ours, our_spikes = run_and_record(model, x)
    theirs, their_spikes = _run_snntorch(peer, encoding.direct(x, 6))
    assert set(their_spikes) == {"body_sn1", "body_sn2"}
    for name in ("body.sn1", "body.sn2"):
        s = our_spikes[name]
        assert 0.01 < s.mean() < 0.99 and torch.equal(their_spikes[name.replace(".", "_")], s), name
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)
    leaky = dict(peer.named_modules())["body_sn1"]
    assert leaky.reset_mechanism == "zero" and float(leaky.beta[0]) == 0.5  # decay 0.5 comes back exactly


def test_spikelab_conv_snn_runs_in_snntorch_one_sample_at_a_time(tmp_path):
    torch.manual_seed(3)
    model = train_briefly(models.build("conv-small", num_classes=10, in_channels=1, T=4, pool="avg"))
    snir.export(model, tmp_path / "conv.nir")
    peer = _import(tmp_path / "conv.nir")
    x = torch.rand(3, 1, 8, 8) * 3
    ours, our_spikes = run_and_record(model, x)
    for b in range(3):
        theirs, their_spikes = _run_snntorch(peer, encoding.direct(x[b:b + 1], 4))
        torch.testing.assert_close(theirs.reshape(4, 1, 10), ours[:, b:b + 1], rtol=1e-5, atol=1e-5)
        for name in ("body.sn1", "body.conv2.sn"):
            assert torch.equal(their_spikes[name.replace(".", "_")].reshape(our_spikes[name][:, b].shape),
                               our_spikes[name][:, b])
    # snnTorch's importer bug: it applies NIR's Flatten dims (which exclude the batch) to batched tensors, so
    # nn.Flatten(0, -1) merges the batch into the features and a batch of more than one sample fails
    assert isinstance(dict(peer.named_modules())["head_flatten"], nn.Flatten)
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        _run_snntorch(peer, encoding.direct(x, 4))


def test_snntorch_imports_integrate_and_fire_as_a_leaky_neuron(tmp_path):
    torch.manual_seed(4)
    model = train_briefly(models.build("mlp", num_classes=10, in_channels=1, T=4, hidden=(16,),
                                       neuron=NeuronConfig(kind="if")))
    snir.export(model, tmp_path / "if.nir")  # NIR IF: dv/dt = R I, so R = 1/dt = 1e4
    with pytest.raises(AssertionError, match="r != 1 not supported"):
        _import(tmp_path / "if.nir")
    snir.export(model, tmp_path / "if1.nir", dt=1.0)  # R = 1: accepted, but built as Leaky(beta=0.9), subtract reset
    leaky = dict(_import(tmp_path / "if1.nir").named_modules())["body_sn1"]
    assert float(leaky.beta) == pytest.approx(0.9) and leaky.reset_mechanism == "subtract"


def test_snntorch_network_loads_in_spikelab_with_the_same_spikes(tmp_path):
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(20, 30), _leaky(30, 0.8), nn.Linear(30, 10), _leaky(10, 0.6))
    with torch.no_grad():
        net[2].weight.mul_(4)  # enough drive for the output layer to fire
    graph = export_to_nir(net, torch.randn(1, 20), ignore_dims=[0])  # NIR shapes have no batch axis
    nir.write(tmp_path / "peer.nir", graph)
    ours = snir.load(tmp_path / "peer.nir")  # no dt in the file: snnTorch's 1e-4 and Euler
    x = torch.randn(40, 8, 20) * 3
    theirs, their_spikes = _run_snntorch(net, x)
    out, spikes = run_and_record(ours, x, ours.node_names)
    assert {type(m).__name__ for _, m in ours.neurons()} == {"LIF"}
    for ours_name, their_name in (("1", "1"), ("3", "3")):
        assert 0.01 < spikes[ours_name].mean() < 0.99
        assert torch.equal(spikes[ours_name], their_spikes[their_name])
    assert torch.equal(out, theirs)


def test_snntorch_exporter_bugs_shown():
    # per-layer scalars are written with shape (), which NIR's own type check rejects
    scalar = nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism="zero"))
    with pytest.raises(ValueError, match="type mismatch"):
        export_to_nir(scalar, torch.randn(1, 4), ignore_dims=[0])
    # its default subtract reset (one step late, outside the decay) is written as NIR's reset to zero, unannounced
    torch.manual_seed(6)
    sub = nn.Sequential(nn.Linear(6, 5), _leaky(5, 0.9, reset_mechanism="subtract"))
    graph = export_to_nir(sub, torch.randn(1, 6), ignore_dims=[0])
    assert (graph.nodes["1"].v_reset == 0).all()
    x = torch.rand(30, 4, 6) * 2
    theirs, _ = _run_snntorch(sub, x)
    ours = snir.load(graph)(x)
    assert not torch.equal(ours, theirs)  # the network came back with other dynamics


def test_firing_exactly_at_threshold_is_where_the_conventions_differ(tmp_path):
    lin = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    net = nn.Sequential(SeqToANN(lin), LIF(decay=0.5, v_th=1.0))
    x = torch.tensor([1.0, 0.25, 1.0, 0.0]).view(4, 1, 1)  # the membrane lands on 1.0 exactly at t = 0
    snir.export(net, tmp_path / "edge.nir", sample_input=x)
    ours = snir.load(tmp_path / "edge.nir")(x).flatten().tolist()
    theirs = _run_snntorch(_import(tmp_path / "edge.nir"), x)[0].flatten().tolist()
    # spikelab fires at v >= v_th: 1.0 spikes and resets; then 0.25, then 0.125 + 1.0 spikes again
    assert net(x).flatten().tolist() == ours == [1.0, 0.0, 1.0, 0.0]
    # NIR and snnTorch fire at v > v_th: 1.0 does not; then 0.5 + 0.25 = 0.75, then 0.375 + 1.0 spikes
    assert theirs == [0.0, 0.0, 1.0, 0.0]
