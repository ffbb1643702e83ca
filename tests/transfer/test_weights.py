"""transfer_weights (key map, shape checks, expected one-sided keys) and event_stem (the channel mean)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from spikelab import models
from spikelab.layers import SeqToANN
from spikelab.neurons import NeuronConfig
from spikelab.transfer import event_stem, transfer_weights


def _randomised(model: nn.Module, seed: int = 1) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for v in model.state_dict().values():
            if v.is_floating_point():
                v.copy_(torch.rand(v.shape, generator=g))
            else:
                v.fill_(int(torch.randint(1, 100, (), generator=g)))
    return model


def _conv(channels=(4, 6), **kw):
    return models.build("conv-small", num_classes=10, in_channels=1, T=2, channels=channels, **kw)


def test_identity_map_copies_every_parameter_and_bn_buffer():
    src = _randomised(_conv(spiking=False))
    dst = _conv()
    copied = transfer_weights(src, dst)
    assert copied == {k: k for k in dst.state_dict()}
    assert any(k.endswith("running_var") for k in copied) and any(k.endswith("num_batches_tracked") for k in copied)
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    assert all(p.grad is None for p in dst.parameters())


def test_shape_mismatch_names_the_key_and_both_shapes_and_copies_nothing():
    src = _randomised(_conv(channels=(4, 6)))
    dst = _conv(channels=(4, 7))
    before = copy.deepcopy(dst.state_dict())
    with pytest.raises(ValueError, match=r"shape mismatch at key 'body\.conv2\.conv\.module\.weight': "
                                         r"source \(6, 4, 3, 3\), destination \(7, 4, 3, 3\)"):
        transfer_weights(src, dst)
    assert all(torch.equal(dst.state_dict()[k], v) for k, v in before.items())


def test_layers_that_do_not_correspond_are_refused_unless_expected():
    src = _randomised(_conv(channels=(4, 6)))
    dst = models.build("conv-small", num_classes=10, in_channels=1, T=2, channels=(4,), input_size=(8, 8))
    with pytest.raises(ValueError, match=r"do not correspond: 6 source key\(s\) have no destination "
                                         r"\('body\.conv2\.conv\.module\.weight'.* and 2 more\); 2 destination key\(s\) get no source"):
        transfer_weights(src, dst, src_only=["head.*"])  # head.fc shapes differ too; listed keys are skipped
    with pytest.raises(ValueError, match="shape mismatch at key 'head.fc.module.weight'"):
        transfer_weights(src, dst, src_only=["body.conv2.*"])
    with pytest.raises(ValueError, match=r"2 destination key\(s\) get no source \('head\.fc\.module\.weight', "
                                         r"'head\.fc\.module\.bias'\)"):
        transfer_weights(src, dst, src_only=["body.conv2.*", "head.*"])  # a new head: list it on both sides
    head = dst.head.fc.module.weight.clone()
    copied = transfer_weights(src, dst, src_only=["body.conv2.*", "head.*"], dst_only="head.*")
    assert set(copied) == {k for k in dst.state_dict() if not k.startswith("head.")}
    assert torch.equal(dst.head.fc.module.weight, head)


def test_key_map_renames_and_is_checked():
    src, dst = nn.Sequential(nn.Linear(3, 2)), nn.Sequential()
    dst.add_module("fc", nn.Linear(3, 2))
    copied = transfer_weights(src, dst, {"0.weight": "fc.weight", "0.bias": "fc.bias"})
    assert copied == {"fc.weight": "0.weight", "fc.bias": "0.bias"}
    assert torch.equal(dst.fc.weight, src[0].weight)
    with pytest.raises(ValueError, match=r"key_map names keys that do not exist: source \['x'\]"):
        transfer_weights(src, dst, {"x": "fc.weight"})
    with pytest.raises(ValueError, match="onto destination key 'fc.weight'"):
        transfer_weights(src, dst, {"0.weight": "fc.weight", "0.bias": "fc.weight"}, dst_only="fc.bias")
    with pytest.raises(TypeError, match="dst must be an nn.Module"):
        transfer_weights(src, {"fc.weight": 1})


def test_plif_decays_are_a_listed_destination_only_key():
    plif = NeuronConfig(kind="plif")
    src = _randomised(_conv(spiking=False, neuron=plif))
    dst = _conv(neuron=plif)
    with pytest.raises(ValueError, match=r"destination key\(s\) get no source \('body\.sn1\.w'"):
        transfer_weights(src, dst)
    assert "body.sn1.w" not in transfer_weights(src, dst, dst_only="*.w")


def test_event_stem_is_the_mean_over_input_channels():
    torch.manual_seed(0)
    rgb = nn.Conv2d(3, 5, 3, stride=2, padding=1, bias=True)
    ev = event_stem(rgb)
    assert (ev.in_channels, ev.out_channels, ev.kernel_size, ev.stride, ev.padding) == (2, 5, (3, 3), (2, 2), (1, 1))
    for o in range(5):
        mean = sum(rgb.weight[o, c] for c in range(3)) / 3  # the oracle, written as a loop
        for c in range(2):
            torch.testing.assert_close(ev.weight[o, c], mean)
    assert torch.equal(ev.bias, rgb.bias) and ev.weight.data_ptr() != rgb.weight.data_ptr()
    # ON and OFF frames that each equal a grey image g give twice the mean kernel's response to g
    g = torch.rand(1, 1, 6, 6)
    torch.testing.assert_close(ev(g.expand(1, 2, 6, 6)) - rgb.bias.view(1, 5, 1, 1),
                               2 * nn.functional.conv2d(g, rgb.weight.mean(1, keepdim=True), None, 2, 1))
    wrapped = event_stem(SeqToANN(nn.Conv2d(1, 4, 3, bias=False)))
    assert isinstance(wrapped, SeqToANN) and wrapped.module.weight.shape == (4, 2, 3, 3)
    assert wrapped.module.bias is None


def test_event_stem_errors():
    with pytest.raises(TypeError, match="conv must be an nn.Conv2d"):
        event_stem(nn.Linear(3, 4))
    with pytest.raises(ValueError, match="groups=1"):
        event_stem(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="channels must be an int >= 1"):
        event_stem(nn.Conv2d(1, 4, 3), channels=0)
