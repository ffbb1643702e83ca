"""Small models for the labs: a spiking MLP and a small convolutional SNN (fast on a CPU)."""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from spikelab._checks import check_choice, check_int
from spikelab.layers import Linear, MaxPool2d, SeqToANN, TdBatchNorm
from spikelab.models._blocks import (
    LAB_NEURON,
    ActivationFactory,
    ConvBN,
    ConvBNAct,
    SpikingModel,
    check_int_seq,
    check_size2,
    readout,
)
from spikelab.neurons import NeuronConfig


class LinearBN(nn.Module):
    """Time-distributed ``Linear`` (no bias) on the flattened features, then tdBN: ``[T, B, ...]`` -> ``[T, B, F]``."""

    def __init__(self, in_features: int, out_features: int, *, v_th: float = 1.0) -> None:
        super().__init__()
        self.fc = SeqToANN(Linear(in_features, out_features, bias=False))  # spikelab's: sums rows for spikes
        self.bn = TdBatchNorm(out_features, v_th=v_th)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.bn(self.fc(x_seq.flatten(2)))  # [T, B, out_features]


class SpikingMLP(SpikingModel):
    """Fully connected SNN: ``[Linear -> tdBN -> neuron] x len(hidden) -> Linear`` (readout, no neuron).

    Input: a static batch ``[B, *in_shape]`` (direct encoding over ``T`` steps) or a sequence ``[T, B, *in_shape]``
    (e.g. rate-coded spikes); features are flattened. ``stem`` is the first Linear + tdBN.

    Args:
        in_shape: the shape of one sample, e.g. ``(1, 8, 8)`` or ``(64,)``.
        num_classes: number of output logits.
        hidden: widths of the hidden layers (at least one).
        T: time steps for static input.
        neuron: neuron settings (default: LIF, decay 0.5, v_th 1, hard reset, atan).
        spiking: ``False`` builds the ANN twin (see :class:`~spikelab.models.SpikingModel`).
        activation: the ANN twin's activation factory (default ``nn.ReLU``).
    """

    def __init__(
        self,
        *,
        in_shape: Sequence[int] = (1, 8, 8),
        num_classes: int = 10,
        hidden: Sequence[int] = (128,),
        T: int = 4,
        neuron: NeuronConfig | None = None,
        spiking: bool = True,
        activation: ActivationFactory | None = None,
    ) -> None:
        in_shape = check_int_seq(in_shape, "in_shape")
        super().__init__(
            in_shape=in_shape, num_classes=num_classes, T=T, neuron=neuron, spiking=spiking,
            activation=activation, default_neuron=LAB_NEURON,
        )
        hidden = check_int_seq(hidden, "hidden")
        self.stem = LinearBN(math.prod(in_shape), hidden[0], v_th=self.v_th)
        body: OrderedDict[str, nn.Module] = OrderedDict(sn1=self.make_act())
        for i in range(1, len(hidden)):
            body[f"fc{i + 1}"] = LinearBN(hidden[i - 1], hidden[i], v_th=self.v_th)
            body[f"sn{i + 1}"] = self.make_act()
        self.body = nn.Sequential(body)
        self.head = nn.Sequential(OrderedDict(fc=readout(hidden[-1], self.num_classes)))


POOLS = ("avg", "max")


def pool2d(kind: str, kernel_size: int = 2) -> SeqToANN:
    """Time-distributed 2D pooling, ``"avg"`` or ``"max"`` (max pooling of spikes is a logical OR)."""
    check_choice(kind, "pool", POOLS)
    cls = nn.AvgPool2d if kind == "avg" else MaxPool2d  # spikelab's: the 2x2 pooling of spikes is native
    return SeqToANN(cls(kernel_size))


class ConvSNN(SpikingModel):
    """Small convolutional SNN: ``[conv3x3 -> tdBN -> neuron -> pool2] x len(channels) -> flatten -> Linear``.

    With the defaults (channels 16, 32) on 8x8 digits: conv 16 -> pool -> conv 32 -> pool -> Linear(128, 10).
    ``stem`` is the first conv + tdBN; ``head`` flattens and reads out (no neuron).

    Args:
        in_channels: input channels (1 for grey images, 2 for ON/OFF event frames).
        num_classes: number of output logits.
        input_size: ``(H, W)`` or an int; each pooling halves it (floor), and it must stay >= 1.
        channels: the conv widths, one pooling after each.
        pool: ``"max"`` (default: pooled spikes stay binary, so every conv after the stem only accumulates) or
            ``"avg"`` (pooled spikes become fractions, counted as multiply-accumulates by energy estimates).
        T, neuron, spiking, activation: as for :class:`SpikingMLP`.
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        num_classes: int = 10,
        input_size: int | Sequence[int] = (8, 8),
        channels: Sequence[int] = (16, 32),
        pool: str = "max",
        T: int = 4,
        neuron: NeuronConfig | None = None,
        spiking: bool = True,
        activation: ActivationFactory | None = None,
    ) -> None:
        check_int(in_channels, "in_channels", minimum=1)
        h, w = check_size2(input_size, "input_size")
        super().__init__(
            in_shape=(in_channels, h, w), num_classes=num_classes, T=T, neuron=neuron, spiking=spiking,
            activation=activation, default_neuron=LAB_NEURON,
        )
        channels = check_int_seq(channels, "channels")
        check_choice(pool, "pool", POOLS)
        out_h, out_w = h >> len(channels), w >> len(channels)
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"input_size {(h, w)} is too small for {len(channels)} poolings by 2 "
                f"(needs at least {2 ** len(channels)} pixels per side)"
            )
        self.stem = ConvBN(in_channels, channels[0], 3, v_th=self.v_th)
        body: OrderedDict[str, nn.Module] = OrderedDict(sn1=self.make_act(), pool1=pool2d(pool))
        for i in range(1, len(channels)):
            body[f"conv{i + 1}"] = ConvBNAct(channels[i - 1], channels[i], self.make_act(), 3, v_th=self.v_th)
            body[f"pool{i + 1}"] = pool2d(pool)
        self.body = nn.Sequential(body)
        self.head = nn.Sequential(OrderedDict(
            flatten=SeqToANN(nn.Flatten()),
            fc=readout(channels[-1] * out_h * out_w, self.num_classes),
        ))
