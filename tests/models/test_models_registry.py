"""Every registered model: output shapes for static and sequence input, gradients, the registry and its errors."""
import pytest
import torch
from _models_support import C_IN, CLASSES, SIZE, SMOKE, first_weight, smoke
from torch import nn

from spikelab import models
from spikelab.layers import SeqToANN
from spikelab.neurons import IF, LIF, NeuronConfig

NAMES = ["mlp", "conv-small", "resnet19", "resnet19-tet", "vggsnn", "spiking-resnet18", "spiking-resnet34",
         "sew-resnet18", "sew-resnet34", "dsnn-resnet18", "dsnn-resnet34", "dsnn-small"]


def test_names_lists_every_model():
    assert models.names() == NAMES
    assert set(SMOKE) == set(NAMES)


@pytest.mark.parametrize("spiking", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_output_shapes_static_and_sequence(name, spiking):
    model = smoke(name, T=3, spiking=spiking)
    out = model(torch.rand(2, C_IN, SIZE, SIZE))
    assert out.shape == (3, 2, CLASSES)
    out_seq = model(torch.rand(5, 2, C_IN, SIZE, SIZE))  # a sequence brings its own T
    assert out_seq.shape == (5, 2, CLASSES)
    assert torch.isfinite(out).all() and torch.isfinite(out_seq).all()


@pytest.mark.parametrize("spiking", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_gradient_reaches_first_layer(name, spiking):
    model = smoke(name, T=2, spiking=spiking)
    x = torch.rand(4, C_IN, SIZE, SIZE)
    loss = nn.functional.cross_entropy(model(x).mean(0), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    grad = first_weight(model).grad
    assert grad is not None and grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.head.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_every_conv_and_linear_is_time_distributed_and_found_by_walking(name):
    model = smoke(name)
    modules = dict(model.named_modules())
    layers = [n for n, m in modules.items() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers
    for n in layers:
        parent = modules[n.rsplit(".", 1)[0]]
        assert isinstance(parent, SeqToANN), n
    found = dict(model.neurons())
    assert found == {n: m for n, m in modules.items() if isinstance(m, LIF)}
    assert len(found) >= 2


def test_neuron_count_of_resnet19_smoke():
    # stem neuron + 2 per block (3 blocks) + head neuron
    assert len(list(smoke("resnet19").neurons())) == 1 + 2 * 3 + 1
    # SEW blocks with a downsample add one neuron on the shortcut (layers 2, 3, 4 change size)
    assert len(list(smoke("sew-resnet18").neurons())) == 1 + 2 * 4 + 3


def test_change_T_after_construction():
    model = smoke("conv-small", T=2)
    model.T = 6
    assert model(torch.rand(3, C_IN, SIZE, SIZE)).shape == (6, 3, CLASSES)
    with pytest.raises(ValueError, match="T must be >= 1"):
        model.T = 0
    with pytest.raises(TypeError, match="T must be an int"):
        model.T = 2.0


def test_default_neurons_per_model():
    tet = [m for _, m in smoke("resnet19").neurons()]
    assert all(type(m) is LIF and m.decay == 0.5 and m.v_th == 1.0 and m.reset_mode == "hard" for m in tet)
    assert all(m.surrogate.name == "triangle" and m.surrogate.gamma == 1.0 for m in tet)
    lab = [m for _, m in smoke("conv-small").neurons()]
    assert all(m.surrogate.name == "atan" for m in lab)


def test_neuron_config_is_used_everywhere_and_sets_bn_scale():
    cfg = NeuronConfig(kind="if", v_th=0.5, surrogate="rectangle", detach_reset=True)
    model = smoke("sew-resnet34", neuron=cfg)
    neurons = [m for _, m in model.neurons()]
    assert neurons and all(isinstance(m, IF) and m.v_th == 0.5 and m.detach_reset for m in neurons)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert bns and all(torch.all(m.weight == 0.5) for m in bns)


def test_width_multiplier_scales_paper_layout():
    model = models.build("resnet19", num_classes=10, in_channels=3, T=2, width=1 / 16, stages=(1, 1, 1))
    assert model.widths == (8, 16, 32)
    assert model.stem.conv.module.out_channels == 8
    assert model.head.fc1.module.out_features == 16
    vgg = models.build("vggsnn", num_classes=10, in_channels=2, T=2, width=0.125)
    assert vgg.cfg == (8, 16, "A", 32, 32, "A", 64, 64, "A", 64, 64, "A")
    mlp = models.build("mlp", num_classes=10, in_channels=1, T=2, width=0.5)
    assert mlp.stem.fc.module.out_features == 64


def test_unknown_name_lists_the_registered_ones():
    with pytest.raises(ValueError, match="name must be one of.*'resnet19'.*'sew-resnet34'"):
        models.build("resnet50", num_classes=10, in_channels=3, T=4)


def test_bad_arguments_give_clear_errors():
    with pytest.raises(TypeError, match="unknown arguments \\['stagez'\\].*stages"):
        models.build("resnet19", num_classes=10, in_channels=3, T=4, stagez=(1, 1, 1))
    with pytest.raises(ValueError, match="widths= or width="):
        models.build("resnet19", num_classes=10, in_channels=3, T=4, width=0.5, widths=(8, 16, 32))
    with pytest.raises(ValueError, match="width must be > 0"):
        models.build("resnet19", num_classes=10, in_channels=3, T=4, width=0)
    with pytest.raises(ValueError, match="connect must be one of 'ADD', 'IAND', 'AND', 'OR', 'XOR'"):
        smoke("sew-resnet18", connect="NAND")
    with pytest.raises(ValueError, match="stem must be one of 'cifar', 'imagenet'"):
        smoke("spiking-resnet18", stem="tiny")
    with pytest.raises(ValueError, match="stages and widths must have the same length"):
        smoke("resnet19", stages=(1, 1))
    with pytest.raises(TypeError, match="neuron must be a spikelab.neurons.NeuronConfig"):
        smoke("conv-small", neuron="lif")
    with pytest.raises(ValueError, match="T must be >= 1"):
        smoke("conv-small", T=0)
    with pytest.raises(ValueError, match="too small for 3 poolings"):
        smoke("conv-small", channels=(4, 4, 4), input_size=(4, 4))
    with pytest.raises(ValueError, match="too small"):
        models.build("vggsnn", num_classes=10, in_channels=2, T=2, input_size=8)
    with pytest.raises(ValueError, match="cfg\\[1\\] must be a conv width or 'A'"):
        smoke("vggsnn", cfg=(4, "B"))
    with pytest.raises(ValueError, match="in_channels must be >= 1"):
        models.build("mlp", num_classes=10, in_channels=0, T=4)


@pytest.mark.parametrize("name", ["conv-small", "resnet19", "mlp"])
def test_bad_inputs_are_rejected(name):
    model = smoke(name)
    with pytest.raises(ValueError, match="static batch \\[B, 2, .*\\] or a sequence \\[T, B, 2"):
        model(torch.rand(C_IN, SIZE, SIZE))
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.rand(2, C_IN + 1, SIZE, SIZE))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.ones(2, C_IN, SIZE, SIZE, dtype=torch.long))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        model([[0.0]])


def test_fixed_size_models_check_the_spatial_size():
    with pytest.raises(ValueError, match=r"\[T, B, 2, 8, 8\]"):
        smoke("vggsnn")(torch.rand(3, 2, C_IN, 16, 16))
    # models ending in global pooling take any size
    assert smoke("spiking-resnet18")(torch.rand(2, C_IN, 12, 12)).shape == (3, 2, CLASSES)
