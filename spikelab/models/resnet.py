"""Residual SNNs: ResNet-19 (TET), Spiking-ResNet-18/34 (neuron after the residual add) and SEW-ResNet-18/34
(spike-element-wise residual, Fang et al. 2021). SPEC section 3.

Block forms, with ``s`` the block input and ``sn`` a spiking neuron:

- Spiking-ResNet / ResNet-19: ``out = sn2(bn2(conv2(sn1(bn1(conv1(s))))) + shortcut(s))``; the shortcut is the
  identity or ``bn(conv1x1(s))``. The output is binary.
- SEW-ResNet: ``a = sn2(bn2(conv2(sn1(bn1(conv1(s))))))``, ``out = g(a, shortcut(s))`` with the shortcut the
  identity or ``sn(bn(conv1x1(s)))`` (binary) and ``g`` one of ADD ``a + s``, IAND ``(1 - a) * s`` (NOT a AND s),
  AND ``a * s``, OR ``a + s - a * s``, XOR ``s * (1 - a) + a * (1 - s)`` (SPEC section 5). Every join but ADD keeps
  binary inputs binary; ADD gives spike counts.

Parameter names follow torchvision's ResNet under ``stem`` / ``body`` / ``head``, with ``.module`` for the wrapped
conv/linear layers, e.g. ``body.layer1.0.conv1.module.weight``, ``body.layer2.0.downsample.1.running_mean``.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from spikelab._checks import check_choice, check_int
from spikelab.layers import SeqToANN, TdBatchNorm
from spikelab.models._blocks import TET_NEURON, ActivationFactory, ConvBN, SpikingModel, check_int_seq, readout
from spikelab.neurons import NeuronConfig

SEW_CONNECTS = ("ADD", "IAND", "AND", "OR", "XOR")
#: the joins whose output is binary for binary inputs (the full-spike networks of SPEC section 5 use these)
SPIKE_CONNECTS = ("IAND", "AND", "OR", "XOR")
STEMS = ("cifar", "imagenet")


def sew_function(a: torch.Tensor, s: torch.Tensor, connect: str) -> torch.Tensor:
    """SEW join ``g(a, s)`` of a block's spikes ``a`` and its shortcut spikes ``s`` (same shape).

    ``"ADD"``: ``a + s``; ``"IAND"``: ``(1 - a) * s`` (NOT a AND s); ``"AND"``: ``a * s``; ``"OR"``:
    ``a + s - a * s``; ``"XOR"``: ``s * (1 - a) + a * (1 - s)``. For binary ``a`` and ``s`` every join but ADD is
    the logic gate of its name and its output is binary (SPEC section 5; Fang et al. 2021; Chen et al. 2023).
    Written as arithmetic, so the surrogate gradient flows through both inputs.

    Raises:
        ValueError: ``connect`` is not one of :data:`SEW_CONNECTS`.
    """
    check_choice(connect, "connect", SEW_CONNECTS)
    if connect == "ADD":
        return a + s
    if connect == "IAND":
        return (1.0 - a) * s
    if connect == "AND":
        return a * s
    if connect == "OR":
        return a + s - a * s
    return s * (1.0 - a) + a * (1.0 - s)


def _conv3x3(in_channels: int, out_channels: int, stride: int) -> SeqToANN:
    return SeqToANN(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False))


class _Residual(nn.Module):
    """The two-conv residual branch shared by both blocks: ``conv1, bn1, sn1, conv2, bn2, sn2`` and a shortcut."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, act: Callable[[], nn.Module], v_th: float
    ) -> None:
        super().__init__()
        check_int(in_channels, "in_channels", minimum=1)
        check_int(out_channels, "out_channels", minimum=1)
        check_int(stride, "stride", minimum=1)
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = TdBatchNorm(out_channels, v_th=v_th)
        self.sn1 = act()
        self.conv2 = _conv3x3(out_channels, out_channels, 1)
        self.bn2 = TdBatchNorm(out_channels, v_th=v_th)
        self.sn2 = act()
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                SeqToANN(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)),
                TdBatchNorm(out_channels, v_th=v_th),
            )

    def branch(self, s: torch.Tensor) -> torch.Tensor:
        """``bn2(conv2(sn1(bn1(conv1(s)))))``, before the second neuron: ``[T, B, C_out, H', W']``."""
        return self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(s)))))


class BasicBlock(_Residual):
    """Spiking-ResNet basic block, neuron after the add: ``sn2(branch(s) + shortcut(s))`` (binary output).

    ``act`` builds each activation slot (a neuron, or the ANN twin's activation); ``v_th`` sets tdBN's scale.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, *,
        act: Callable[[], nn.Module], v_th: float = 1.0,
    ) -> None:
        super().__init__(in_channels, out_channels, stride, act, v_th)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        shortcut = s if self.downsample is None else self.downsample(s)
        return self.sn2(self.branch(s) + shortcut)  # [T, B, C_out, H', W']


class SEWBlock(_Residual):
    """SEW basic block: ``g(sn2(branch(s)), shortcut(s))``; the downsample shortcut ends in a neuron
    ``downsample_sn`` so that it is binary. ``connect`` picks ``g`` (see :func:`sew_function`)."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, *,
        act: Callable[[], nn.Module], v_th: float = 1.0, connect: str = "ADD",
    ) -> None:
        super().__init__(in_channels, out_channels, stride, act, v_th)
        self.connect = check_choice(connect, "connect", SEW_CONNECTS)
        self.downsample_sn = act() if self.downsample is not None else None

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        a, shortcut = self.branch_and_shortcut(s)
        return sew_function(a, shortcut, self.connect)  # [T, B, C_out, H', W']

    def branch_and_shortcut(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two inputs of the join: the branch's spikes ``sn2(branch(s))`` and the shortcut (``s`` itself, or
        ``downsample_sn(downsample(s))``), both ``[T, B, C_out, H', W']``."""
        a = self.sn2(self.branch(s))
        shortcut = s if self.downsample is None else self.downsample_sn(self.downsample(s))
        return a, shortcut

    def extra_repr(self) -> str:
        return f"connect={self.connect!r}"


class _ResNet(SpikingModel):
    """Stem (conv + tdBN), ``body = [sn, (maxpool), layer1..layerN]``, head ``avgpool -> [fc1 -> sn] -> fc``."""

    default_neuron: NeuronConfig = TET_NEURON  # the neuron when ``neuron=None``

    def __init__(
        self,
        *,
        block: str,
        connect: str,
        stages: Sequence[int],
        widths: Sequence[int],
        stem: str,
        head_hidden: int | None,
        in_channels: int,
        stem_width: int | None = None,
        num_classes: int,
        T: int,
        neuron: NeuronConfig | None,
        spiking: bool,
        activation: ActivationFactory | None,
    ) -> None:
        check_int(in_channels, "in_channels", minimum=1)
        super().__init__(
            in_shape=(in_channels, None, None), num_classes=num_classes, T=T, neuron=neuron, spiking=spiking,
            activation=activation, default_neuron=self.default_neuron,
        )
        stages = check_int_seq(stages, "stages")
        widths = check_int_seq(widths, "widths")
        if len(stages) != len(widths):
            raise ValueError(f"stages and widths must have the same length, got {stages} and {widths}")
        check_choice(stem, "stem", STEMS)
        stem_width = widths[0] if stem_width is None else check_int(stem_width, "stem_width", minimum=1)
        self.stages, self.widths, self.stem_kind, self.stem_width = stages, widths, stem, stem_width
        v_th = self.v_th
        if stem == "imagenet":
            self.stem = ConvBN(in_channels, stem_width, 7, 2, 3, v_th=v_th)
        else:
            self.stem = ConvBN(in_channels, stem_width, 3, 1, 1, v_th=v_th)
        body: OrderedDict[str, nn.Module] = OrderedDict(sn=self.make_act())
        if stem == "imagenet":
            body["maxpool"] = SeqToANN(nn.MaxPool2d(3, 2, 1))
        channels = stem_width
        for i, (depth, width) in enumerate(zip(stages, widths)):
            blocks = []
            for j in range(depth):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(self._make_block(block, channels, width, stride, connect))
                channels = width
            body[f"layer{i + 1}"] = nn.Sequential(*blocks)
        self.body = nn.Sequential(body)
        head: OrderedDict[str, nn.Module] = OrderedDict(pool=SeqToANN(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        if head_hidden is not None:
            check_int(head_hidden, "head_hidden", minimum=1)
            head["fc1"] = SeqToANN(nn.Linear(channels, head_hidden))
            head["sn"] = self.make_act()
            channels = head_hidden
        head["fc"] = readout(channels, self.num_classes)
        self.head = self._make_head(head, channels)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_block(self, block: str, in_channels: int, out_channels: int, stride: int, connect: str) -> nn.Module:
        """One residual block of kind ``block`` (``"sew"`` or ``"spiking"``); subclasses add their own kinds."""
        if block == "sew":
            return SEWBlock(in_channels, out_channels, stride, act=self.make_act, v_th=self.v_th, connect=connect)
        return BasicBlock(in_channels, out_channels, stride, act=self.make_act, v_th=self.v_th)

    def _make_head(self, head: OrderedDict[str, nn.Module], channels: int) -> nn.Module:  # noqa: ARG002
        """The head from its layers (``pool``, [``fc1``, ``sn``], ``fc``); ``channels``: the last stage's width."""
        return nn.Sequential(head)


class ResNet19(_ResNet):
    """ResNet-19 as used by TET (SPEC section 3): 3x3 stem, BasicBlock stages ``[3, 3, 2]`` of widths
    ``128/256/512`` (strides 1, 2, 2; neuron after the add), head ``avgpool -> FC 256 -> neuron -> FC classes``.
    A CPU smoke size: ``widths=(8, 16, 32), stages=(1, 1, 1), head_hidden=16``.

    Two stems are in use (SPEC section 3): the tdBN paper's, whose stem conv has ``widths[0] = 128`` channels
    (``stem_width=None``; 12,697,994 parameters for 10 classes; registered as ``"resnet19"``), and the TET code's,
    a 64-channel stem conv followed by a 1x1 conv + tdBN downsample on the first block's shortcut (64 -> 128)
    (``stem_width=64``; 12,630,858 parameters for 10 classes, 12,653,988 for 100; registered as
    ``"resnet19-tet"``). A reproduction of TET's numbers uses the latter.

    Args:
        in_channels, num_classes: input channels and output logits.
        stages, widths: blocks per stage and channels per stage.
        stem_width: channels of the stem conv (``None``: ``widths[0]``); when it differs from ``widths[0]`` the
            first block gets a 1x1 downsample shortcut.
        head_hidden: width of the hidden FC in the head (``None``: no hidden FC).
        stem: ``"cifar"`` (3x3, stride 1) or ``"imagenet"`` (7x7 stride 2 + max pool).
        T: time steps for static input.
        neuron: default LIF decay 0.5, v_th 1, hard reset, triangle gamma 1 (TET).
        spiking, activation: ``spiking=False`` builds the ANN twin (see :class:`~spikelab.models.SpikingModel`).
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        stages: Sequence[int] = (3, 3, 2),
        widths: Sequence[int] = (128, 256, 512),
        stem_width: int | None = None,
        head_hidden: int | None = 256,
        stem: str = "cifar",
        T: int = 4,
        neuron: NeuronConfig | None = None,
        spiking: bool = True,
        activation: ActivationFactory | None = None,
    ) -> None:
        super().__init__(
            block="spiking", connect="ADD", stages=stages, widths=widths, stem=stem, head_hidden=head_hidden,
            in_channels=in_channels, num_classes=num_classes, T=T, neuron=neuron, spiking=spiking,
            activation=activation, stem_width=stem_width,
        )


class SpikingResNet(_ResNet):
    """Spiking-ResNet: the ImageNet ResNet layout with the neuron after the residual add (binary block outputs).

    ``stages=(2, 2, 2, 2)`` is Spiking-ResNet-18, ``(3, 4, 6, 3)`` is -34; widths ``64/128/256/512``; head
    ``avgpool -> FC classes``. ``stem="imagenet"`` (7x7 stride 2 + max pool) or ``"cifar"`` (3x3 stride 1, for
    small inputs). Other arguments as for :class:`ResNet19`.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 1000,
        stages: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        stem: str = "imagenet",
        T: int = 4,
        neuron: NeuronConfig | None = None,
        spiking: bool = True,
        activation: ActivationFactory | None = None,
    ) -> None:
        super().__init__(
            block="spiking", connect="ADD", stages=stages, widths=widths, stem=stem, head_hidden=None,
            in_channels=in_channels, num_classes=num_classes, T=T, neuron=neuron, spiking=spiking,
            activation=activation,
        )


class SEWResNet(_ResNet):
    """SEW-ResNet (Fang et al. 2021): spike-element-wise residual blocks (:class:`SEWBlock`), joined by
    ``connect`` = ``"ADD"`` | ``"IAND"`` | ``"AND"`` | ``"OR"`` | ``"XOR"`` (see :func:`sew_function`). Layout, stems
    and head as for :class:`SpikingResNet` (``stages=(2, 2, 2, 2)``: SEW-ResNet-18; ``(3, 4, 6, 3)``: -34)."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 1000,
        stages: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        connect: str = "ADD",
        stem: str = "imagenet",
        T: int = 4,
        neuron: NeuronConfig | None = None,
        spiking: bool = True,
        activation: ActivationFactory | None = None,
    ) -> None:
        check_choice(connect, "connect", SEW_CONNECTS)
        super().__init__(
            block="sew", connect=connect, stages=stages, widths=widths, stem=stem, head_hidden=None,
            in_channels=in_channels, num_classes=num_classes, T=T, neuron=neuron, spiking=spiking,
            activation=activation,
        )
        self.connect = connect

