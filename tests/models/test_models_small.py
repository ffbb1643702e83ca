"""Lab models and VGGSNN against step-by-step reference loops written with plain torch ops, and their layouts."""
import pytest
import torch
from _models_support import randomise_bn
from torch import nn
from torch.nn import functional as F

from spikelab import models
from spikelab.models import ConvSNN, SpikingMLP


def lif_loop(currents):
    """Reference LIF (decay 0.5, v_th 1, hard reset) over a list of per-step currents."""
    v, out = torch.zeros_like(currents[0]), []
    for current in currents:
        h = 0.5 * v + current
        s = (h >= 1.0).to(h.dtype)
        v = h * (1 - s)
        out.append(s)
    return out


def bn(x, layer):
    return F.batch_norm(x, layer.running_mean, layer.running_var, layer.weight, layer.bias, False, 0.0, layer.eps)


def conv_bn(x, block):
    return bn(F.conv2d(x, block.conv.module.weight, padding=1), block.bn)


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_conv_snn_matches_reference_loop(pool):
    g = torch.Generator().manual_seed(0)
    model = ConvSNN(in_channels=1, num_classes=3, input_size=(8, 8), channels=(4, 6), pool=pool, T=5)
    model = model.double().eval()
    randomise_bn(model, g)
    x = torch.rand(2, 1, 8, 8, generator=g, dtype=torch.float64)
    pool_fn = F.avg_pool2d if pool == "avg" else F.max_pool2d
    s1 = lif_loop([conv_bn(x, model.stem)] * 5)  # direct encoding: the same current at every step
    p1 = [pool_fn(s, 2) for s in s1]
    s2 = lif_loop([conv_bn(p, model.body.conv2) for p in p1])
    fc = model.head.fc.module
    expected = torch.stack([F.linear(pool_fn(s, 2).flatten(1), fc.weight, fc.bias) for s in s2])
    out = model(x)
    assert out.shape == (5, 2, 3)
    torch.testing.assert_close(out, expected)
    assert sum(s.sum() for s in s1 + s2) > 0  # the reference is not trivially silent


def test_mlp_matches_reference_loop_on_a_sequence():
    g = torch.Generator().manual_seed(1)
    model = SpikingMLP(in_shape=(1, 4, 4), num_classes=3, hidden=(10, 7), T=2).double().eval()
    randomise_bn(model, g)
    x_seq = (torch.rand(6, 2, 1, 4, 4, generator=g) < 0.5).double()  # e.g. rate-coded spikes
    s1 = lif_loop([bn(F.linear(x.flatten(1), model.stem.fc.module.weight), model.stem.bn) for x in x_seq])
    s2 = lif_loop([bn(F.linear(s, model.body.fc2.fc.module.weight), model.body.fc2.bn) for s in s1])
    fc = model.head.fc.module
    expected = torch.stack([F.linear(s, fc.weight, fc.bias) for s in s2])
    torch.testing.assert_close(model(x_seq), expected)


def test_mlp_takes_flat_features():
    model = SpikingMLP(in_shape=(64,), num_classes=10, T=3)
    assert model(torch.rand(5, 64)).shape == (3, 5, 10)
    assert model(torch.rand(4, 5, 64)).shape == (4, 5, 10)
    with pytest.raises(ValueError, match=r"\[B, 64\] or a sequence \[T, B, 64\]"):
        model(torch.rand(5, 1, 8, 8))


def test_conv_small_default_layout():
    model = models.build("conv-small", num_classes=10, in_channels=1, T=4)
    assert model.stem.conv.module.out_channels == 16
    assert model.body.conv2.conv.module.out_channels == 32
    assert model.head.fc.module.in_features == 32 * 2 * 2  # 8x8 pooled twice
    assert isinstance(model.body.pool1.module, nn.MaxPool2d)  # pooled spikes stay binary
    s = model.body.pool1(model.body.sn1(model.stem(torch.rand(1, 3, 1, 8, 8))))
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    mnist = models.build("conv-small", num_classes=10, in_channels=1, T=4, input_size=28)
    assert mnist.head.fc.module.in_features == 32 * 7 * 7
    assert mnist(torch.rand(2, 1, 28, 28)).shape == (4, 2, 10)


def test_vggsnn_full_layout_for_dvs():
    model = models.build("vggsnn", num_classes=10, in_channels=2, T=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert convs[0].in_channels == 2
    pools = [m for m in model.modules() if isinstance(m, nn.AvgPool2d)]
    assert len(pools) == 4
    assert model.head.fc.module.in_features == 512 * 3 * 3  # 48 / 2**4 = 3
    assert len(list(model.neurons())) == 8  # one neuron per C3 layer, none in the readout


def test_vggsnn_runs_event_frames():
    model = models.build("vggsnn", num_classes=10, in_channels=2, T=10, cfg=(4, "A", 8, "M"), input_size=16)
    frames = (torch.rand(6, 2, 2, 16, 16) < 0.2).float()
    assert model(frames).shape == (6, 2, 10)
    assert isinstance(model.body.pool2.module, nn.MaxPool2d)
