"""Pieces shared by every model: the model base class (input handling, ``T``, the ANN twin switch), the
activation slot (a spiking neuron or a non-spiking activation), and conv + tdBN helpers (SPEC section 3).

Every model is ``stem -> body -> head`` on time-first tensors:

- ``stem``: the first conv (or linear) + batch norm, no neuron. A static input ``[B, C, H, W]`` goes through it
  once and is repeated ``T`` times (direct encoding with :class:`~spikelab.layers.StaticStem`); a sequence
  ``[T, B, C, H, W]`` (event frames) goes through it time-distributed.
- ``body``: the first activation, then the spiking layers or blocks.
- ``head``: pooling and a non-spiking readout: the last linear layer has no neuron and gives logits ``[T, B, C]``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext

import torch
from torch import nn

from spikelab import engine
from spikelab._checks import check_int, check_positive, check_tensor
from spikelab.layers import Linear, SeqToANN, StaticStem, TdBatchNorm, repeated_steps
from spikelab.neurons import BaseNeuron, NeuronConfig

#: The neuron of the TET paper's models (SPEC section 1): LIF, decay 0.5, v_th 1, hard reset, triangle gamma 1.
TET_NEURON = NeuronConfig(kind="lif", decay=0.5, v_th=1.0, reset="hard", surrogate="triangle")
#: The default neuron of the small lab models: LIF, decay 0.5, v_th 1, hard reset, atan alpha 2.
LAB_NEURON = NeuronConfig()

ActivationFactory = Callable[[], nn.Module]


def scale_width(channels: int, width: float) -> int:
    """``max(1, round(channels * width))``: a layer width under a width multiplier."""
    check_int(channels, "channels", minimum=1)
    return max(1, int(round(channels * check_positive(width, "width"))))


def check_int_seq(values: Sequence[int], name: str, minimum: int = 1, min_len: int = 1) -> tuple[int, ...]:
    """Check that ``values`` is a sequence of at least ``min_len`` ints, each ``>= minimum``; return a tuple."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of ints, got {type(values).__name__}")
    if len(values) < min_len:
        raise ValueError(f"{name} must have at least {min_len} entries, got {len(values)}")
    return tuple(check_int(v, f"{name}[{i}]", minimum=minimum) for i, v in enumerate(values))


def check_size2(size: int | Sequence[int], name: str) -> tuple[int, int]:
    """An image size ``(H, W)`` from an int or a pair of ints (each >= 1)."""
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    values = check_int_seq(size, name, minimum=1, min_len=2)
    if len(values) != 2:
        raise ValueError(f"{name} must be an int or a pair (H, W), got {tuple(values)}")
    return values  # type: ignore[return-value]


class ConvBN(nn.Module):
    """Time-distributed ``Conv2d`` (no bias) followed by tdBN: ``bn(conv(x_seq))``, ``[T, B, C, H, W]`` in and out.

    ``padding`` defaults to ``kernel_size // 2`` (same size at stride 1). tdBN's scale starts at ``alpha * v_th``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        *,
        v_th: float = 1.0,
        alpha: float = 1.0,
    ) -> None:
        super().__init__()
        check_int(in_channels, "in_channels", minimum=1)
        check_int(out_channels, "out_channels", minimum=1)
        check_int(kernel_size, "kernel_size", minimum=1)
        check_int(stride, "stride", minimum=1)
        padding = kernel_size // 2 if padding is None else check_int(padding, "padding", minimum=0)
        self.conv = SeqToANN(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False))
        self.bn = TdBatchNorm(out_channels, v_th=v_th, alpha=alpha)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x_seq))  # [T, B, C_out, H', W']


class ConvBNAct(ConvBN):
    """:class:`ConvBN` followed by an activation slot ``sn`` (a spiking neuron or the ANN twin's activation)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        act: nn.Module,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        v_th: float = 1.0,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, v_th=v_th)
        self.sn = act

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.sn(self.bn(self.conv(x_seq)))


class SpikingModel(nn.Module):
    """Base of every model: ``stem -> body -> head`` with static/sequence input handling and the ANN twin switch.

    Subclasses call ``super().__init__`` first, then build ``self.stem``, ``self.body`` and ``self.head``, taking
    each activation slot from :meth:`make_act`.

    Args:
        in_shape: the shape of one sample, e.g. ``(C, H, W)``; ``None`` entries accept any size.
        num_classes: number of output logits.
        T: time steps a static input is repeated for (a sequence input brings its own ``T``).
        neuron: the :class:`~spikelab.neurons.NeuronConfig` of every spiking layer (``None``: ``default_neuron``);
            its ``v_th`` also sets tdBN's initial scale, in the ANN twin too.
        spiking: ``False`` builds the ANN twin: every neuron is replaced by ``activation()``; all other layers,
            and so all parameter and buffer names, are the same (except PLIF's learned ``w``, which the twin lacks).
        activation: for the ANN twin, a factory returning a stateless, parameter-free module
            (default ``nn.ReLU``); only allowed with ``spiking=False``.
    """

    stem: nn.Module
    body: nn.Module
    head: nn.Module

    def __init__(
        self,
        *,
        in_shape: tuple[int | None, ...],
        num_classes: int,
        T: int,
        neuron: NeuronConfig | None,
        spiking: bool,
        activation: ActivationFactory | None,
        default_neuron: NeuronConfig,
    ) -> None:
        super().__init__()
        self._in_shape = tuple(in_shape)
        self.num_classes = check_int(num_classes, "num_classes", minimum=1)
        self.T = T
        if neuron is None:
            neuron = default_neuron
        if not isinstance(neuron, NeuronConfig):
            raise TypeError(f"neuron must be a spikelab.neurons.NeuronConfig or None, got {type(neuron).__name__}")
        if not isinstance(spiking, bool):
            raise TypeError(f"spiking must be a bool, got {type(spiking).__name__}")
        if activation is not None:
            if spiking:
                raise ValueError("activation is only used by the ANN twin: pass it with spiking=False")
            if not callable(activation):
                raise TypeError(
                    f"activation must be a callable returning an nn.Module, got {type(activation).__name__}"
                )
        self.neuron_config = neuron
        self._spiking = spiking
        #: keep binary activations for the backward as bits while training (see :meth:`forward`)
        self.pack_binary = True
        self._activation = nn.ReLU if activation is None else activation

    @property
    def in_shape(self) -> tuple[int | None, ...]:
        """The accepted shape of one sample (``None``: any size). The channel count is read from the stem's conv,
        so replacing ``model.stem.conv`` (e.g. by a 2-channel conv for event frames) changes what is accepted."""
        conv = getattr(getattr(self, "stem", None), "conv", None)
        if isinstance(conv, SeqToANN) and isinstance(conv.module, nn.Conv2d):
            return (conv.module.in_channels, *self._in_shape[1:])
        return self._in_shape

    @property
    def T(self) -> int:
        """Time steps for a static input; may be changed after construction (e.g. time inheritance training)."""
        return self._T

    @T.setter
    def T(self, value: int) -> None:
        self._T = check_int(value, "T", minimum=1)

    @property
    def spiking(self) -> bool:
        """``True`` for the SNN, ``False`` for its ANN twin (fixed at construction)."""
        return self._spiking

    @property
    def v_th(self) -> float:
        """The neurons' threshold, also tdBN's initial scale."""
        return self.neuron_config.v_th

    def make_act(self) -> nn.Module:
        """A fresh activation slot: a neuron from ``neuron_config``, or in the ANN twin ``activation()``."""
        if self._spiking:
            return self.neuron_config.build()
        act = self._activation()
        if not isinstance(act, nn.Module):
            raise TypeError(f"activation() must return an nn.Module, got {type(act).__name__}")
        if act.state_dict():
            raise ValueError(
                "activation() must return a module without parameters or buffers, so that the ANN twin has the "
                f"same state_dict keys as the SNN; got one with {sorted(act.state_dict())}"
            )
        return act

    def neurons(self) -> Iterator[tuple[str, BaseNeuron]]:
        """Every spiking layer as ``(qualified name, neuron)``, in registration order (none in the ANN twin)."""
        for name, module in self.named_modules():
            if isinstance(module, BaseNeuron):
                yield name, module

    def _is_static(self, x: torch.Tensor) -> bool:
        """Check ``x`` against ``in_shape``; True for a static batch ``[B, *in_shape]``, False for a sequence."""
        check_tensor(x, "x")
        in_shape = self.in_shape
        n = len(in_shape)
        shape_txt = ", ".join("?" if s is None else str(s) for s in in_shape)
        if x.dim() not in (n + 1, n + 2):
            raise ValueError(
                f"x must be a static batch [B, {shape_txt}] or a sequence [T, B, {shape_txt}] "
                f"({n + 1} or {n + 2} dimensions), got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
        static = x.dim() == n + 1
        sample = x.shape[1:] if static else x.shape[2:]
        for want, got in zip(in_shape, sample):
            if want is not None and want != got:
                layout = f"[B, {shape_txt}]" if static else f"[T, B, {shape_txt}]"
                raise ValueError(f"x must have shape {layout} for this model, got {tuple(x.shape)}")
        if x.shape[0] == 0 or (not static and x.shape[1] == 0):
            raise ValueError(f"x must have a non-empty batch (and T >= 1), got shape {tuple(x.shape)}")
        return static

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[T, B, num_classes]`` for a static batch ``[B, *in_shape]`` or a sequence ``[T, B, *in_shape]``.

        Static input is direct-encoded: the stem runs once and its output is repeated ``self.T`` times. The ANN
        twin is stateless, so for a static input it runs one step and repeats the logits ``T`` times (same values
        and gradients as running all ``T`` identical steps). While training, the spiking model's binary
        activations (spikes, pooled spikes) are kept for the backward as bits (:func:`spikelab.engine.
        pack_binary_saved`; exact, about 32x smaller) unless ``model.pack_binary = False``.
        """
        static = self._is_static(x)
        pack = self._spiking and self.pack_binary and torch.is_grad_enabled()
        with engine.pack_binary_saved() if pack else nullcontext():
            if static:
                if self._spiking:
                    return self.stem_to_logits(StaticStem(self.stem, self.T)(x))  # [T, B, num_classes]
                # one step stands for T: tdBN counts T * B values, as over T steps
                with repeated_steps(self, self.T):
                    out = self.stem_to_logits(StaticStem(self.stem, 1)(x))  # [1, B, num_classes]
                return out.expand(self.T, *out.shape[1:])
            return self.stem_to_logits(self.stem(x))  # [T, B, num_classes]

    def stem_to_logits(self, y: torch.Tensor) -> torch.Tensor:
        """Logits ``[T, B, num_classes]`` from the stem's output ``y`` ``[T, B, ...]``: ``head(body(y))``."""
        return self.head(self.body(y))


def readout(in_features: int, num_classes: int) -> SeqToANN:
    """The non-spiking readout: a time-distributed ``Linear`` whose per-step outputs are the logits."""
    return SeqToANN(Linear(in_features, num_classes))  # spikelab's Linear: sums weight rows for sparse spikes
