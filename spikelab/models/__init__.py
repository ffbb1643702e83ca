"""Models built from the spiking core (SPEC section 3), each with an ANN twin (``spiking=False``).

Every model maps a static batch ``[B, C, H, W]`` (direct encoding over ``T`` steps) or a sequence
``[T, B, C, H, W]`` (event frames) to logits ``[T, B, num_classes]`` from a non-spiking readout, and exposes
``stem`` (first conv/linear + tdBN), ``body`` and ``head``. The ANN twin has the same parameter and buffer names,
so weights copy over by an identity key map (PLIF's learned decay ``w`` is the one key the twin lacks).

``build(name, ...)`` makes any registered model at a chosen width; ``names()`` lists them.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

from torch import nn

from spikelab._checks import check_choice, check_int, check_positive
from spikelab.models._blocks import (
    LAB_NEURON,
    TET_NEURON,
    ActivationFactory,
    ConvBN,
    ConvBNAct,
    SpikingModel,
    check_size2,
    scale_width,
)
from spikelab.models.dsnn import AAP_NEURON, DSNN_CONNECTS, DSNNResNet, DualStreamBlock
from spikelab.models.resnet import (
    SEW_CONNECTS,
    BasicBlock,
    ResNet19,
    SEWBlock,
    SEWResNet,
    SpikingResNet,
    sew_function,
)
from spikelab.models.small import ConvSNN, LinearBN, SpikingMLP
from spikelab.models.vgg import VGGSNN, VGGSNN_CFG
from spikelab.neurons import NeuronConfig

__all__ = [
    "build", "names", "SpikingModel", "SpikingMLP", "ConvSNN", "ResNet19", "VGGSNN", "SpikingResNet", "SEWResNet",
    "BasicBlock", "SEWBlock", "ConvBN", "ConvBNAct", "LinearBN", "sew_function", "SEW_CONNECTS", "VGGSNN_CFG",
    "TET_NEURON", "LAB_NEURON", "count_parameters", "DSNNResNet", "DualStreamBlock", "DSNN_CONNECTS", "AAP_NEURON",
]


@dataclass(frozen=True)
class _Spec:
    cls: type[SpikingModel]
    scaled: tuple[tuple[str, object], ...] = ()  # (argument, value at width 1), scaled by `width`
    fixed: tuple[tuple[str, object], ...] = ()  # defaults that differ from the class's own


_IMAGENET_WIDTHS = (("widths", (64, 128, 256, 512)),)
_DEPTH18, _DEPTH34 = (("stages", (2, 2, 2, 2)),), (("stages", (3, 4, 6, 3)),)
_REGISTRY: dict[str, _Spec] = {
    "mlp": _Spec(SpikingMLP, scaled=(("hidden", (128,)),)),
    "conv-small": _Spec(ConvSNN, scaled=(("channels", (16, 32)),)),
    "resnet19": _Spec(ResNet19, scaled=(("widths", (128, 256, 512)), ("head_hidden", 256))),
    "resnet19-tet": _Spec(ResNet19, scaled=(("widths", (128, 256, 512)), ("head_hidden", 256), ("stem_width", 64))),
    "vggsnn": _Spec(VGGSNN, scaled=(("cfg", VGGSNN_CFG),)),
    "spiking-resnet18": _Spec(SpikingResNet, scaled=_IMAGENET_WIDTHS, fixed=_DEPTH18),
    "spiking-resnet34": _Spec(SpikingResNet, scaled=_IMAGENET_WIDTHS, fixed=_DEPTH34),
    "sew-resnet18": _Spec(SEWResNet, scaled=_IMAGENET_WIDTHS, fixed=_DEPTH18),
    "sew-resnet34": _Spec(SEWResNet, scaled=_IMAGENET_WIDTHS, fixed=_DEPTH34),
    "dsnn-resnet18": _Spec(DSNNResNet, scaled=_IMAGENET_WIDTHS, fixed=_DEPTH18),
    "dsnn-resnet34": _Spec(DSNNResNet, scaled=_IMAGENET_WIDTHS, fixed=_DEPTH34),
    # a small DSNN for 8x8 digits and 28x28 images: 3x3 stem, one block per stage, two stage changes
    "dsnn-small": _Spec(DSNNResNet, scaled=(("widths", (16, 32, 64)),),
                        fixed=(("stages", (1, 1, 1)), ("stem", "cifar"))),
}


def names() -> list[str]:
    """The registered model names, for :func:`build`."""
    return list(_REGISTRY)


def _scaled(value: object, width: float) -> object:
    if isinstance(value, tuple):
        return tuple(scale_width(v, width) if isinstance(v, int) else v for v in value)
    return scale_width(value, width)  # type: ignore[arg-type]


def _accepted(name: str) -> list[str]:
    params = list(inspect.signature(_REGISTRY[name].cls.__init__).parameters)[1:]
    common = {"in_channels", "num_classes", "T", "neuron", "spiking", "activation"}
    extra = [p for p in params if p not in common]
    if name == "mlp":
        extra = ["input_size" if p == "in_shape" else p for p in extra]
    return extra


def build(
    name: str,
    *,
    num_classes: int,
    in_channels: int,
    T: int,
    neuron: NeuronConfig | None = None,
    spiking: bool = True,
    activation: ActivationFactory | None = None,
    width: float = 1.0,
    **kwargs: object,
) -> SpikingModel:
    """Build the registered model ``name`` (see :func:`names`) for ``in_channels`` inputs and ``num_classes``.

    ``width`` multiplies every layer width of the paper's layout (``round(width * channels)``, at least 1); give
    explicit widths (``hidden``, ``channels``, ``widths``, ``cfg``) in ``kwargs`` instead, not both. Other
    ``kwargs`` go to the model class: e.g. ``stages=(1, 1, 1)``, ``stem="cifar"``, ``connect="IAND"``,
    ``pathway=False`` (the ``dsnn-*`` models: see :mod:`spikelab.models.dsnn`),
    ``input_size=(28, 28)`` (needed by ``mlp`` (default 8x8), ``conv-small`` (8x8) and ``vggsnn`` (48x48)).
    ``neuron=None`` takes the model's default (TET's LIF for the paper models, atan LIF for the lab models);
    ``spiking=False`` builds the ANN twin with ``activation`` (default ReLU).

    Returns:
        the model; ``model(x)`` maps ``[B, C, H, W]`` or ``[T, B, C, H, W]`` to logits ``[T, B, num_classes]``.
    """
    check_choice(name, "name", names())
    check_int(in_channels, "in_channels", minimum=1)
    width = check_positive(width, "width")
    spec = _REGISTRY[name]
    accepted = _accepted(name)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"model {name!r} got unknown arguments {unknown}; it accepts {accepted}")
    args: dict[str, object] = dict(spec.fixed)
    for key, base in spec.scaled:
        if key in kwargs:
            if width != 1.0:
                raise ValueError(f"give either {key}= or width=, not both (got {key}={kwargs[key]!r}, width={width})")
        else:
            args[key] = _scaled(base, width)
    args.update(kwargs)
    if name == "mlp":
        size = check_size2(args.pop("input_size", (8, 8)), "input_size")  # type: ignore[arg-type]
        args["in_shape"] = (in_channels, *size)
    else:
        args["in_channels"] = in_channels
    return spec.cls(num_classes=num_classes, T=T, neuron=neuron, spiking=spiking, activation=activation, **args)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameter elements of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
