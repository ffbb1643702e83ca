"""Residual models: SEW joins, binary block outputs, a step-by-step reference for each block, parameter counts."""
import pytest
import torch
from _models_support import randomise_bn, smoke
from torch import nn

from spikelab import models
from spikelab.models import BasicBlock, SEWBlock, sew_function
from spikelab.neurons import NeuronConfig


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def basic_resnet_count(stages, widths, in_channels, stem_kernel, head, stem_width=None):
    """Closed form: conv weights (no bias) + 2 per BN channel + linear layers (weights and biases)."""
    c = widths[0] if stem_width is None else stem_width
    conv = in_channels * c * stem_kernel**2
    bn = 2 * c
    for i, (depth, w) in enumerate(zip(stages, widths)):
        for j in range(depth):
            conv += 9 * c * w + 9 * w * w
            bn += 2 * 2 * w
            if c != w or (i > 0 and j == 0):
                conv += c * w
                bn += 2 * w
            c = w
    fc = 0
    for n_in, n_out in zip([c, *head[:-1]], head):
        fc += n_in * n_out + n_out
    return conv + bn + fc


@pytest.mark.parametrize(
    "connect, expected", [("ADD", [0, 1, 1, 2]), ("IAND", [0, 1, 0, 0]), ("AND", [0, 0, 0, 1]), ("OR", [0, 1, 1, 1]),
                          ("XOR", [0, 1, 1, 0])]
)
def test_sew_truth_tables(connect, expected):
    a = torch.tensor([0.0, 0.0, 1.0, 1.0])  # block spikes
    s = torch.tensor([0.0, 1.0, 0.0, 1.0])  # shortcut spikes
    assert sew_function(a, s, connect).tolist() == expected


def test_sew_iand_is_not_a_and_s_not_the_reverse():
    # a fires, s silent: NOT a AND s = 0; a silent, s fires: 1
    assert sew_function(torch.tensor(1.0), torch.tensor(0.0), "IAND") == 0
    assert sew_function(torch.tensor(0.0), torch.tensor(1.0), "IAND") == 1
    with pytest.raises(ValueError, match="connect must be one of"):
        sew_function(torch.tensor(0.0), torch.tensor(1.0), "add")


def spikes(shape, p=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def act():
    return NeuronConfig(decay=0.5, surrogate="triangle").build()


@pytest.mark.parametrize("stride, c_in, c_out", [(1, 4, 4), (2, 4, 6)])
@pytest.mark.parametrize("connect", ["IAND", "AND", "OR", "XOR", "ADD"])
def test_sew_block_output_binary_for_spike_joins(connect, stride, c_in, c_out):
    block = SEWBlock(c_in, c_out, stride, act=act, connect=connect)
    s = spikes((3, 2, c_in, 6, 6))
    out = block(s)
    assert out.shape == (3, 2, c_out, 6 // stride, 6 // stride)
    values = set(out.unique().tolist())
    if connect == "ADD":
        assert values <= {0.0, 1.0, 2.0} and 2.0 in values  # spike counts, not binary
    else:
        assert values <= {0.0, 1.0}


@pytest.mark.parametrize("stride, c_in, c_out", [(1, 4, 4), (2, 4, 6)])
def test_spiking_resnet_block_output_binary(stride, c_in, c_out):
    block = BasicBlock(c_in, c_out, stride, act=act)
    out = block(spikes((3, 2, c_in, 6, 6)))
    assert out.shape == (3, 2, c_out, 6 // stride, 6 // stride)
    assert set(out.unique().tolist()) <= {0.0, 1.0} and out.sum() > 0


def lif_loop(currents):
    """Reference LIF (decay 0.5, v_th 1, hard reset) over a list of per-step currents."""
    v, out = torch.zeros_like(currents[0]), []
    for current in currents:
        h = 0.5 * v + current
        s = (h >= 1.0).to(h.dtype)
        v = h * (1 - s)
        out.append(s)
    return out


def conv_bn(x, conv, bn):
    y = nn.functional.conv2d(x, conv.module.weight, None, conv.module.stride, conv.module.padding)
    return nn.functional.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


@pytest.mark.parametrize("kind", ["basic", "IAND", "AND", "OR", "XOR", "ADD"])
def test_block_matches_step_by_step_reference(kind):
    g = torch.Generator().manual_seed(1)
    if kind == "basic":
        block = BasicBlock(3, 5, 2, act=act)
    else:
        block = SEWBlock(3, 5, 2, act=act, connect=kind)
    block = block.double().eval()
    randomise_bn(block, g)
    s = spikes((4, 2, 3, 6, 6), p=0.5, seed=2).double()
    steps = list(s.unbind(0))
    a1 = lif_loop([conv_bn(x, block.conv1, block.bn1) for x in steps])
    branch = [conv_bn(x, block.conv2, block.bn2) for x in a1]
    short = [conv_bn(x, block.downsample[0], block.downsample[1]) for x in steps]
    if kind == "basic":
        expected = lif_loop([b + c for b, c in zip(branch, short)])
    else:
        a2, short_s = lif_loop(branch), lif_loop(short)
        expected = [sew_function(a, c, kind) for a, c in zip(a2, short_s)]
    torch.testing.assert_close(block(s), torch.stack(expected))


def test_sew_model_iand_keeps_every_block_binary():
    model = smoke("sew-resnet34", connect="IAND")
    outs = []
    for layer in ("layer1", "layer2", "layer3", "layer4"):
        for blk in getattr(model.body, layer):
            blk.register_forward_hook(lambda m, i, o: outs.append(o))
    model(torch.rand(2, 2, 8, 8))
    assert len(outs) == 5
    assert all(set(o.unique().tolist()) <= {0.0, 1.0} for o in outs)


def test_resnet19_parameter_count_full_width():
    model = models.build("resnet19", num_classes=10, in_channels=3, T=4)
    n = count(model)
    assert n == basic_resnet_count((3, 3, 2), (128, 256, 512), 3, 3, head=(256, 10))
    assert abs(n - 12.6e6) / 12.6e6 < 0.02  # SPEC: "about 12.6 M"


@pytest.mark.parametrize("name, classes, expected", [
    ("resnet19", 10, 12_697_994),  # the tdBN paper's 128-channel stem (SPEC section 3)
    ("resnet19-tet", 10, 12_630_858),  # the TET code's 64-channel stem + 1x1 downsample in the first block
    ("resnet19-tet", 100, 12_653_988),
])
def test_resnet19_layouts_exact_parameter_counts(name, classes, expected):
    model = models.build(name, num_classes=classes, in_channels=3, T=4)
    stem_width = 64 if name == "resnet19-tet" else None
    closed = basic_resnet_count((3, 3, 2), (128, 256, 512), 3, 3, head=(256, classes), stem_width=stem_width)
    assert count(model) == closed == expected


def test_resnet19_tet_layout_modules():
    model = models.build("resnet19-tet", num_classes=10, in_channels=3, T=2)
    assert model.stem.conv.module.out_channels == 64
    first = model.body.layer1[0]
    down = first.downsample[0].module
    assert (down.in_channels, down.out_channels, down.kernel_size, down.stride) == (64, 128, (1, 1), (1, 1))
    assert all(b.downsample is None for b in model.body.layer1[1:])
    assert models.build("resnet19", num_classes=10, in_channels=3, T=2).body.layer1[0].downsample is None
    assert model(torch.rand(2, 3, 8, 8)).shape == (2, 2, 10)
    with pytest.raises(ValueError, match="stem_width must be >= 1"):
        models.build("resnet19", num_classes=10, in_channels=3, T=2, stem_width=0)


@pytest.mark.parametrize("name, stages", [("spiking-resnet18", (2, 2, 2, 2)), ("sew-resnet34", (3, 4, 6, 3))])
def test_imagenet_resnet_parameter_counts(name, stages):
    model = models.build(name, num_classes=1000, in_channels=3, T=4)
    expected = basic_resnet_count(stages, (64, 128, 256, 512), 3, 7, head=(1000,))
    assert count(model) == expected
    # the well-known torchvision totals: ResNet-18 11,689,512 and ResNet-34 21,797,672
    assert expected == {"spiking-resnet18": 11_689_512, "sew-resnet34": 21_797_672}[name]


def test_stems():
    imagenet = smoke("spiking-resnet34")
    conv = imagenet.stem.conv.module
    assert (conv.kernel_size, conv.stride) == ((7, 7), (2, 2))
    assert isinstance(imagenet.body.maxpool.module, nn.MaxPool2d)
    cifar = smoke("spiking-resnet18")
    conv = cifar.stem.conv.module
    assert (conv.kernel_size, conv.stride) == ((3, 3), (1, 1))
    assert not hasattr(cifar.body, "maxpool")
    # 7x7/2 + maxpool: 32 -> 8 before layer1; strides 1, 2, 2, 2 after
    feats = imagenet.body(imagenet.stem(torch.rand(1, 2, 2, 32, 32)))
    assert feats.shape == (1, 2, 8, 1, 1)
