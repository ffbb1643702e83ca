"""Full-spike residual networks with a detachable auxiliary accumulation pathway: dual-stream training (DST,
Chen et al. 2023; official code iCGY96/AAP). SPEC section 5.

A full-spike network (FSNN) gives every conv and linear layer after the stem a binary input, so it runs on
accumulate-only hardware. Its blocks are SEW blocks (:class:`~spikelab.models.SEWBlock`) whose join ``g`` is one
of the binary gates IAND (default), AND, OR, XOR. Dual-stream training adds a second, real-valued stream ``acc``
that only reads the spikes:

```
a   = sn2(bn2(conv2(sn1(bn1(conv1(s))))))             # the block's spikes
at a stage change: s   = sn(bn(conv1x1_stride(s)))     # spike shortcut (binary)
                   acc = ReLU(bn(pointwise(depthwise3x3_stride(acc))))   # accumulation shortcut
acc = acc + a                                          # the auxiliary accumulation pathway (non-spike)
s   = g(a, s)                                          # spike-only join (binary)
```

Both streams start from the stem's spikes. One FC head is shared by both streams (``head.fc`` and ``head.fc_acc``
hold the same weight and bias); the training loss is ``L(head(s), y) + L(head(acc), y)`` (SPEC: CE for each, i.e.
SDT; TET works the same way). Information flows only from ``s`` into ``acc``, so switching the pathway off leaves
the spike stream, and so the FSNN's output, unchanged.

The switch is ``model.pathway`` (also the ``pathway=`` argument of :func:`spikelab.models.build`):

- ``True`` (default, dual-stream network, DSNN): both streams run; ``model(x)`` returns the accumulation head's
  logits (the pathway's features, the DSNN's prediction); the spike head's logits go to the loss as an auxiliary
  output (:func:`spikelab.losses.auxiliary_outputs`), so ``fit`` trains both heads with the two-term loss.
- ``False`` (FSNN): only the spike stream runs and ``model(x)`` returns the spike head's logits. Train a model
  with the pathway and evaluate it without (``model.pathway = False``) to get the deployable FSNN, or train
  without the pathway for the FSNN baseline.

Where the paper's head computes ``fc(mean_t avgpool(s))``, the spike head here applies ``fc`` at every position
of the spike map and averages the logits over space (``mean_hw fc(s) = fc(mean_hw s)``, linear); the function is
the same, but the FC then sees binary input (accumulates), as an accumulate-only chip computes it. The
accumulation head pools first (``fc_acc(avgpool(acc))``, MACs). The pathway's layers are marked with
:func:`spikelab.metrics.count_as_macs`, so :func:`spikelab.metrics.ops_table` counts them as MACs.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from spikelab._checks import check_choice, check_int
from spikelab.layers import SeqToANN, TdBatchNorm
from spikelab.metrics import count_as_macs
from spikelab.models._blocks import ActivationFactory, readout
from spikelab.models.resnet import SPIKE_CONNECTS, SEWBlock, _ResNet, sew_function
from spikelab.neurons import NeuronConfig

__all__ = ["AAP_NEURON", "DSNN_CONNECTS", "AccumulationShortcut", "DualStreamBlock", "DualStreamHead", "DSNNResNet"]

#: The official AAP neuron (SPEC section 1): IF, v_th 1, hard reset, detached reset, sigmoid surrogate alpha 4.
AAP_NEURON = NeuronConfig(kind="if", v_th=1.0, reset="hard", detach_reset=True, surrogate="sigmoid")
#: The spike-only joins of a full-spike network (binary for binary inputs); IAND is the default.
DSNN_CONNECTS = SPIKE_CONNECTS


class AccumulationShortcut(nn.Module):
    """The accumulation stream's shortcut at a stage change: ``ReLU(bn(pointwise(depthwise(acc))))``.

    ``depthwise`` is a 3x3 depthwise conv with the stage's stride (present only when ``stride > 1``, as in the
    official code); ``pointwise`` a 1x1 conv ``in_channels -> out_channels``. ``[T, B, C_in, H, W]`` in,
    ``[T, B, C_out, H', W']`` out. Its convs count as MACs (:func:`spikelab.metrics.count_as_macs`).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, *, v_th: float = 1.0) -> None:
        super().__init__()
        check_int(in_channels, "in_channels", minimum=1)
        check_int(out_channels, "out_channels", minimum=1)
        check_int(stride, "stride", minimum=1)
        self.depthwise: SeqToANN | None = None
        if stride != 1:
            self.depthwise = SeqToANN(
                nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False))
        self.pointwise = SeqToANN(nn.Conv2d(in_channels, out_channels, 1, bias=False))
        self.bn = TdBatchNorm(out_channels, v_th=v_th)
        count_as_macs(self)

    def forward(self, acc: torch.Tensor) -> torch.Tensor:
        if self.depthwise is not None:
            acc = self.depthwise(acc)
        return torch.relu(self.bn(self.pointwise(acc)))  # [T, B, C_out, H', W']


class DualStreamBlock(SEWBlock):
    """A SEW block with a spike-only join (its ``forward(s)`` is the FSNN block) and the accumulation stream.

    :meth:`forward_dual` maps ``(s, acc)`` to ``(g(a, shortcut(s)), acc_shortcut(acc) + a)`` (module docstring).
    ``acc_shortcut`` is an :class:`AccumulationShortcut` where the block changes size, else None (identity).
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, *,
        act: Callable[[], nn.Module], v_th: float = 1.0, connect: str = "IAND",
    ) -> None:
        check_choice(connect, "connect", DSNN_CONNECTS)
        super().__init__(in_channels, out_channels, stride, act=act, v_th=v_th, connect=connect)
        self.acc_shortcut = (AccumulationShortcut(in_channels, out_channels, stride, v_th=v_th)
                             if self.downsample is not None else None)

    def forward_dual(self, s: torch.Tensor, acc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both streams through the block: spikes ``s`` and accumulator ``acc``, each ``[T, B, C, H, W]``."""
        a, shortcut = self.branch_and_shortcut(s)
        if self.acc_shortcut is not None:
            acc = self.acc_shortcut(acc)
        return sew_function(a, shortcut, self.connect), acc + a


class DualStreamHead(nn.Module):
    """The FC head shared by both streams: ``fc`` (spikes, per position) and ``fc_acc`` (pooled accumulator).

    ``fc_acc`` holds the very same weight and bias as ``fc`` (one shared classifier, two call sites, so that the
    operation counter can tell the spike stream's accumulates from the accumulation stream's MACs).
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = readout(channels, num_classes)
        self.pool = SeqToANN(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc_acc = readout(channels, num_classes)
        self.fc_acc.module.weight = self.fc.module.weight  # tied: one set of head parameters
        self.fc_acc.module.bias = self.fc.module.bias
        count_as_macs(self.fc_acc)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """Spike head: spikes ``[T, B, C, H, W]`` -> logits ``[T, B, K]`` = ``mean_hw fc(s[..., h, w])``."""
        return self.fc(s.movedim(2, -1)).mean(dim=(2, 3))

    def accumulator(self, acc: torch.Tensor) -> torch.Tensor:
        """Accumulation head: ``acc`` ``[T, B, C, H, W]`` -> logits ``[T, B, K]`` = ``fc(avgpool(acc))``."""
        return self.fc_acc(self.pool(acc))


class DSNNResNet(_ResNet):
    """Full-spike ResNet with the auxiliary accumulation pathway (Chen et al. 2023; SPEC section 5).

    ``stages=(2, 2, 2, 2)`` is DSNN-18, ``(3, 4, 6, 3)`` DSNN-34, with widths ``64/128/256/512`` and the ImageNet
    stem (7x7 stride 2 + max pool) or ``stem="cifar"`` (3x3 stride 1) for small inputs. Every conv and linear
    layer after the stem sees binary input while ``pathway`` is off.

    Args:
        connect: the spike-only join ``g``: ``"IAND"`` (default), ``"AND"``, ``"OR"`` or ``"XOR"``.
        pathway: the accumulation pathway on (DSNN, trained with two heads) or off (FSNN); see the module
            docstring. Can be switched at any time with ``model.pathway = ...``; the parameters are the same.
        neuron: default :data:`AAP_NEURON` (IF, v_th 1, hard detached reset, sigmoid surrogate).
        in_channels, num_classes, stages, widths, stem, T, spiking, activation: as for
            :class:`~spikelab.models.SEWResNet`.

    Raises:
        ValueError: ``connect`` is not a spike-only join (ADD gives spike counts, not spikes).
    """

    default_neuron = AAP_NEURON

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 1000,
        stages: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        connect: str = "IAND",
        stem: str = "imagenet",
        pathway: bool = True,
        T: int = 4,
        neuron: NeuronConfig | None = None,
        spiking: bool = True,
        activation: ActivationFactory | None = None,
    ) -> None:
        check_choice(connect, "connect", DSNN_CONNECTS)
        super().__init__(
            block="dsnn", connect=connect, stages=stages, widths=widths, stem=stem, head_hidden=None,
            in_channels=in_channels, num_classes=num_classes, T=T, neuron=neuron, spiking=spiking,
            activation=activation,
        )
        self.connect = connect
        self.pathway = pathway
        self.aux_sink: list[torch.Tensor] | None = None  # see spikelab.losses.auxiliary_outputs

    def _make_block(self, block: str, in_channels: int, out_channels: int, stride: int, connect: str) -> nn.Module:
        return DualStreamBlock(in_channels, out_channels, stride, act=self.make_act, v_th=self.v_th, connect=connect)

    def _make_head(self, head: OrderedDict[str, nn.Module], channels: int) -> nn.Module:  # noqa: ARG002
        return DualStreamHead(channels, self.num_classes)

    @property
    def pathway(self) -> bool:
        """Whether the auxiliary accumulation pathway runs (DSNN) or not (FSNN)."""
        return self._pathway

    @pathway.setter
    def pathway(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"pathway must be a bool, got {type(value).__name__}")
        self._pathway = value

    def blocks(self) -> Iterator[DualStreamBlock]:
        """The residual blocks in order (those of ``body.layer1``, ``body.layer2``, ...)."""
        for name, stage in self.body.named_children():
            if name.startswith("layer"):
                yield from stage  # type: ignore[misc]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[T, B, num_classes]``: of the accumulation head with the pathway on, of the spike head without.

        With the pathway on and inside :func:`spikelab.losses.auxiliary_outputs`, the spike head's logits
        ``[T, B, num_classes]`` are also appended to the collecting list (for the two-term loss).
        """
        sink = self.aux_sink
        before = len(sink) if sink is not None else 0
        out = super().forward(x)
        if sink is not None:  # the ANN twin runs one step for a static input: repeat the aux logits as well
            for i in range(before, len(sink)):
                if sink[i].shape[0] != out.shape[0]:
                    sink[i] = sink[i].expand_as(out)
        return out

    def stem_to_logits(self, y: torch.Tensor) -> torch.Tensor:
        s = self.body.sn(y)  # [T, B, C, H, W], the stem's spikes: both streams start here
        if "maxpool" in self.body._modules:
            s = self.body.maxpool(s)
        if not self._pathway:
            for block in self.blocks():
                s = block(s)
            return self.head(s)
        acc = s
        for block in self.blocks():
            s, acc = block.forward_dual(s, acc)
        if self.aux_sink is not None:
            self.aux_sink.append(self.head(s))
        return self.head.accumulator(acc)

    def extra_repr(self) -> str:
        return f"connect={self.connect!r}, pathway={self._pathway}"
