"""The few time-first modules a loaded NIR graph needs beyond spikelab's own layers.

Each takes and returns ``[T, B, ...]`` (or, for :class:`SumPool2d`, runs inside a
:class:`~spikelab.layers.SeqToANN` on ``[T*B, C, H, W]``), so that a loaded network is built from the same pieces
as a trained one and can be exported again.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spikelab.neurons import LIF


class SumPool2d(nn.Module):
    """NIR's ``SumPool2d`` on ``[N, C, H, W]``: the sum over each window (zero padding)."""

    def __init__(self, kernel_size: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = tuple(kernel_size), tuple(stride), tuple(padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Heaviside(nn.Module):
    """NIR's ``Threshold`` node on ``[T, B, ...]``: ``1`` where ``x > threshold`` (strictly), else ``0``.

    It carries no surrogate gradient: a loaded network runs through it but does not train through it. spikelab
    writes it only for max pooling of spikes and the spike-only joins, where inputs are whole numbers and the
    threshold sits halfway between two of them, so strict and non-strict comparison agree.
    """

    def __init__(self, threshold: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("threshold", threshold)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return (x_seq > self.threshold).to(x_seq.dtype)


class Scale(nn.Module):
    """NIR's ``Scale`` node on ``[T, B, ...]``: ``x * scale`` elementwise (``scale`` has the per-sample shape)."""

    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return x_seq * self.scale


class AffineInputLIF(LIF):
    """A hard-reset :class:`~spikelab.neurons.LIF` whose input current is ``k * I + c`` per neuron:
    ``h[t] = decay * v[t-1] + k * I[t] + c``.

    :func:`spikelab.nir.load` builds it for a NIR ``LIF``/``IF`` node whose resistance ``R`` and leak potential
    ``v_leak`` do not reduce to spikelab's plain charge (``k = R dt / tau``, ``c = v_leak dt / tau`` under Euler;
    see :mod:`spikelab.nir`). ``input_scale`` and ``input_bias`` are buffers of the per-sample shape or scalars.
    """

    def __init__(
        self, decay: float, v_th: float, *, v_reset: float, input_scale: torch.Tensor, input_bias: torch.Tensor
    ) -> None:
        super().__init__(decay, v_th, reset="hard", v_reset=v_reset)
        self.register_buffer("input_scale", input_scale)
        self.register_buffer("input_bias", input_bias)

    def run(self, x_seq: torch.Tensor, v_init: torch.Tensor | None = None):  # type: ignore[override]
        return super().run(x_seq * self.input_scale + self.input_bias, v_init)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        return super().step(x * self.input_scale + self.input_bias)
