"""The ANN twin (``spiking=False``): same state_dict keys as the SNN, a stateless activation, one step for static
input, and the direct-encoding shortcut (StaticStem) against running the whole sequence."""
import copy

import pytest
import torch
from _models_support import C_IN, CLASSES, SIZE, SMOKE, randomise_bn, smoke
from torch import nn

from spikelab import models
from spikelab.encoding import direct
from spikelab.layers import SeqToANN
from spikelab.neurons import PLIF, BaseNeuron, NeuronConfig

NAMES = list(SMOKE)


@pytest.mark.parametrize("name", NAMES)
def test_twin_has_the_same_state_dict_keys_and_shapes(name):
    snn, ann = smoke(name), smoke(name, spiking=False)
    s, a = snn.state_dict(), ann.state_dict()
    assert list(s) == list(a)
    assert all(s[k].shape == a[k].shape for k in s)
    assert any(k.endswith("running_var") for k in s)
    ann.load_state_dict(s, strict=True)  # the identity key map copies everything
    assert all(torch.equal(ann.state_dict()[k], v) for k, v in s.items())


@pytest.mark.parametrize("name", NAMES)
def test_twin_replaces_every_neuron_by_the_activation(name):
    snn, ann = smoke(name), smoke(name, spiking=False)
    assert list(ann.neurons()) == []
    relus = [n for n, m in ann.named_modules() if isinstance(m, nn.ReLU)]
    assert relus == [n for n, _ in snn.neurons()]
    assert snn.spiking and not ann.spiking


def test_plif_keys_are_the_documented_exception():
    snn = smoke("resnet19", neuron=NeuronConfig(kind="plif"))
    ann = smoke("resnet19", neuron=NeuronConfig(kind="plif"), spiking=False)
    extra = set(snn.state_dict()) - set(ann.state_dict())
    plifs = [n for n, m in snn.neurons() if isinstance(m, PLIF)]
    assert extra == {f"{n}.w" for n in plifs} and len(plifs) == 8
    assert set(ann.state_dict()) <= set(snn.state_dict())


def test_custom_activation_factory():
    ann = smoke("conv-small", spiking=False, activation=lambda: nn.Hardtanh(0.0, 1.0))
    acts = [m for m in ann.modules() if isinstance(m, nn.Hardtanh)]
    assert len(acts) == 2
    out = ann(torch.rand(2, C_IN, SIZE, SIZE))
    assert out.shape == (3, 2, CLASSES)


def test_activation_errors():
    with pytest.raises(ValueError, match="only used by the ANN twin"):
        smoke("conv-small", activation=nn.ReLU)
    with pytest.raises(ValueError, match="without parameters or buffers.*'weight'"):
        smoke("conv-small", spiking=False, activation=nn.PReLU)
    with pytest.raises(TypeError, match="must return an nn.Module"):
        smoke("conv-small", spiking=False, activation=lambda: torch.relu)
    with pytest.raises(TypeError, match="activation must be a callable"):
        smoke("conv-small", spiking=False, activation="relu")
    with pytest.raises(TypeError, match="spiking must be a bool"):
        smoke("conv-small", spiking=0)


@pytest.mark.parametrize("train, B", [(False, 3), (True, 3), (True, 1)])
@pytest.mark.parametrize("spiking", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_static_input_equals_the_direct_encoded_sequence(name, spiking, train, B):
    """StaticStem computes the stem once (the ANN twin: the whole network once); the outputs and the running
    statistics must equal running direct(x, T) through the network, for a batch of one sample too."""
    g = torch.Generator().manual_seed(3)
    model = smoke(name, T=4, spiking=spiking).double()
    randomise_bn(model, g)
    model.train(train)
    twin = copy.deepcopy(model)  # train mode updates running stats: give each path its own copy
    stem_steps = []
    model.stem.register_forward_hook(lambda m, i, o: stem_steps.append(i[0].shape[0]))
    x = torch.rand(B, C_IN, SIZE, SIZE, generator=g, dtype=torch.float64)
    out_static = model(x)
    out_seq = twin(direct(x, 4))
    assert stem_steps == [1]  # the stem ran once, on [1, B, ...]
    assert out_static.shape == out_seq.shape == (4, B, CLASSES)
    torch.testing.assert_close(out_static, out_seq)
    for (key, a), (_, b) in zip(model.state_dict().items(), twin.state_dict().items()):
        torch.testing.assert_close(a, b, msg=key)  # running statistics too (unbiased over T * B values)


@pytest.mark.parametrize("name", ["conv-small", "resnet19"])
def test_ann_twin_static_output_is_one_step_repeated(name):
    ann = smoke(name, T=5, spiking=False)
    out = ann(torch.rand(2, C_IN, SIZE, SIZE))
    assert out.shape == (5, 2, CLASSES)
    assert torch.equal(out, out[:1].expand_as(out))


def test_snn_static_output_varies_over_time():
    # the membrane carries over between steps, so the per-step logits of the SNN are not all equal
    snn = smoke("conv-small", T=4)
    out = snn(torch.rand(8, C_IN, SIZE, SIZE))
    assert not torch.allclose(out[0], out[-1])
    assert all(isinstance(m, BaseNeuron) for _, m in snn.neurons())


def test_first_conv_and_head_can_be_replaced_for_event_frames():
    """What pipe-D does: a 2-channel first conv and a new readout; the accepted input follows the new stem."""
    model = models.build("resnet19", num_classes=10, in_channels=3, T=2, **SMOKE["resnet19"])
    assert model.in_shape == (3, None, None)
    old = model.stem.conv.module
    model.stem.conv = SeqToANN(nn.Conv2d(2, old.out_channels, 3, 1, 1, bias=False))
    model.head.fc = SeqToANN(nn.Linear(model.head.fc.module.in_features, 4))
    assert model.in_shape == (2, None, None)
    assert model(torch.rand(3, 2, 2, 8, 8)).shape == (3, 2, 4)
    with pytest.raises(ValueError, match=r"\[B, 2, \?, \?\]"):
        model(torch.rand(2, 3, 8, 8))
