"""VGGSNN as used by TET on DVS-CIFAR10 (SPEC section 3):
``64C3-128C3-AP2-256C3-256C3-AP2-512C3-512C3-AP2-512C3-512C3-AP2-FC`` on 2x48x48 event frames, each C3 being
conv 3x3 + tdBN + neuron."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from spikelab._checks import check_int
from spikelab.layers import SeqToANN
from spikelab.models._blocks import TET_NEURON, ActivationFactory, ConvBN, ConvBNAct, SpikingModel, check_size2, readout
from spikelab.neurons import NeuronConfig

#: The layer list of VGGSNN: an int is a C3 layer of that many channels, ``"A"`` an average pooling by 2.
VGGSNN_CFG: tuple[int | str, ...] = (64, 128, "A", 256, 256, "A", 512, 512, "A", 512, 512, "A")


def _check_cfg(cfg: Sequence[int | str]) -> tuple[int | str, ...]:
    if isinstance(cfg, (str, bytes)) or not isinstance(cfg, Sequence) or not cfg:
        raise TypeError(f"cfg must be a non-empty sequence of ints (conv widths) and 'A'/'M' (poolings), got {cfg!r}")
    out: list[int | str] = []
    for i, item in enumerate(cfg):
        if isinstance(item, str):
            if item not in ("A", "M"):
                raise ValueError(f"cfg[{i}] must be a conv width or 'A' (avg pool 2) or 'M' (max pool 2), got {item!r}")
            out.append(item)
        else:
            out.append(check_int(item, f"cfg[{i}]", minimum=1))
    if not isinstance(out[0], int):
        raise ValueError(f"cfg must start with a conv width (the stem), got {out[0]!r}")
    return tuple(out)


class VGGSNN(SpikingModel):
    """VGG-style SNN: the stem is the first conv + tdBN; each later int in ``cfg`` is conv 3x3 + tdBN + neuron,
    ``"A"``/``"M"`` an average/max pooling by 2; the head flattens and reads out with one Linear (no neuron),
    whose input size is computed from ``input_size``.

    Args:
        in_channels: input channels (2 for ON/OFF event frames).
        num_classes: number of output logits.
        input_size: ``(H, W)`` or an int; each pooling halves it (floor), and it must stay >= 1.
        cfg: the layer list (default :data:`VGGSNN_CFG`). A CPU smoke size: ``(8, 8, "A", 16, "A")``.
        T: time steps for static input (event frames bring their own ``T``).
        neuron: default LIF decay 0.5, v_th 1, hard reset, triangle gamma 1 (TET).
        spiking, activation: ``spiking=False`` builds the ANN twin (see :class:`~spikelab.models.SpikingModel`).
    """

    def __init__(
        self,
        *,
        in_channels: int = 2,
        num_classes: int = 10,
        input_size: int | Sequence[int] = (48, 48),
        cfg: Sequence[int | str] = VGGSNN_CFG,
        T: int = 10,
        neuron: NeuronConfig | None = None,
        spiking: bool = True,
        activation: ActivationFactory | None = None,
    ) -> None:
        check_int(in_channels, "in_channels", minimum=1)
        h, w = check_size2(input_size, "input_size")
        super().__init__(
            in_shape=(in_channels, h, w), num_classes=num_classes, T=T, neuron=neuron, spiking=spiking,
            activation=activation, default_neuron=TET_NEURON,
        )
        cfg = _check_cfg(cfg)
        self.cfg = cfg
        channels = int(cfg[0])
        self.stem = ConvBN(in_channels, channels, 3, v_th=self.v_th)
        body: OrderedDict[str, nn.Module] = OrderedDict(sn1=self.make_act())
        n_conv, n_pool = 1, 0
        for item in cfg[1:]:
            if isinstance(item, str):
                n_pool += 1
                h, w = h // 2, w // 2
                if h < 1 or w < 1:
                    raise ValueError(f"input_size {input_size!r} is too small for the {n_pool} poolings in cfg")
                body[f"pool{n_pool}"] = SeqToANN(nn.AvgPool2d(2) if item == "A" else nn.MaxPool2d(2))
            else:
                n_conv += 1
                body[f"conv{n_conv}"] = ConvBNAct(channels, item, self.make_act(), 3, v_th=self.v_th)
                channels = item
        self.body = nn.Sequential(body)
        self.head = nn.Sequential(OrderedDict(
            flatten=SeqToANN(nn.Flatten()),
            fc=readout(channels * h * w, self.num_classes),
        ))
