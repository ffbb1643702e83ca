"""Time-distributed layers for ``[T, B, ...]`` sequences (SPEC section 3).

- :class:`SeqToANN` runs any stateless module (conv, linear, pooling, dropout, flatten) on all steps at once by
  merging time into the batch axis.
- :class:`TdBatchNorm`: batch norm whose statistics are taken over time and batch together (the merged ``T*B``
  axis), with the scale initialised to ``alpha * v_th`` (tdBN).
- :class:`StaticStem`: for a static input repeated over time (direct encoding), runs the first layers once and
  repeats their output ``T`` times instead of computing the same thing ``T`` times.
- :class:`MaxPool2d`: ``nn.MaxPool2d`` whose 2x2 case pools spikes with the native kernel
  (:func:`spikelab.engine.max_pool2d_2x2`: same values and gradients, less time and saved memory).
- :class:`Linear`: ``nn.Linear`` that, on an input of sparse spikes, adds up the weight rows the spikes select
  (:func:`spikelab.engine.linear`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from spikelab import engine
from spikelab._checks import check_int, check_positive, check_tensor, check_time_first


def _merge_time(x_seq: torch.Tensor) -> torch.Tensor:
    return x_seq.flatten(0, 1)  # [T, B, ...] -> [T*B, ...]


def _split_time(y: torch.Tensor, T: int) -> torch.Tensor:
    return y.view(T, y.shape[0] // T, *y.shape[1:])  # [T*B, ...] -> [T, B, ...]


class SeqToANN(nn.Module):
    """Apply a stateless module over ``[T, B, ...]`` by merging time into batch: ``[T*B, ...]`` in, split after.

    ``SeqToANN(nn.Conv2d(1, 8, 3))`` keeps the conv's parameter names under ``module.``. Several modules are
    chained with an ``nn.Sequential``.
    """

    def __init__(self, *modules: nn.Module) -> None:
        super().__init__()
        if not modules:
            raise ValueError("SeqToANN needs at least one module")
        for i, m in enumerate(modules):
            if not isinstance(m, nn.Module):
                raise TypeError(f"modules[{i}] must be an nn.Module, got {type(m).__name__}")
        self.module = modules[0] if len(modules) == 1 else nn.Sequential(*modules)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        check_time_first(x_seq, "x_seq")
        T = x_seq.shape[0]
        return _split_time(self.module(_merge_time(x_seq)), T)


class TdBatchNorm(_BatchNorm):
    """Batch norm over the merged ``T*B`` axis (tdBN) for ``[T, B, C]``, ``[T, B, C, L]`` or ``[T, B, C, H, W]``.

    ``y = weight * (x - mean) / sqrt(var + eps) + bias`` with ``mean``, ``var`` per channel over time, batch and
    space; ``weight`` starts at ``alpha * v_th``. Parameter and buffer names match ``nn.BatchNorm2d``, so an ANN
    twin's weights copy over by name.
    """

    def __init__(
        self,
        num_features: int,
        *,
        v_th: float = 1.0,
        alpha: float = 1.0,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ) -> None:
        check_int(num_features, "num_features", minimum=1)
        v_th = check_positive(v_th, "v_th")
        alpha = check_positive(alpha, "alpha")
        super().__init__(num_features, eps=check_positive(eps, "eps"), momentum=momentum)
        self.v_th, self.alpha = v_th, alpha
        with torch.no_grad():
            self.weight.fill_(self.alpha * self.v_th)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3, 4):
            raise ValueError(
                f"x_seq must be [T, B, C], [T, B, C, L] or [T, B, C, H, W]; got {x.dim() + 1} dimensions"
            )

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        check_time_first(x_seq, "x_seq", min_dim=3)
        if x_seq.shape[2] != self.num_features:
            raise ValueError(
                f"x_seq must have {self.num_features} channels at dimension 2, got shape {tuple(x_seq.shape)}"
            )
        return _split_time(super().forward(_merge_time(x_seq)), x_seq.shape[0])


class StaticStem(nn.Module):
    """Run time-distributed ``module`` once on a static input and repeat the result ``T`` times.

    ``x`` is ``[B, ...]`` (no time axis); ``module`` sees ``[1, B, ...]`` and its output ``[1, B, ...]`` is
    expanded to ``[T, B, ...]``. With direct encoding this equals ``module(direct(x, T))`` (batch norm sees the
    same mean and variance) at ``1/T`` of the cost; gradients from all steps are summed by the expand.
    """

    def __init__(self, module: nn.Module, T: int) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
        self.module = module
        self.T = check_int(T, "T", minimum=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x")
        if x.dim() < 2:
            raise ValueError(f"x must be a static batch [B, ...], got shape {tuple(x.shape)}")
        y = self.module(x.unsqueeze(0))  # [1, B, ...]
        return y.expand(self.T, *y.shape[1:])


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` (same arguments, values and gradients) whose ``kernel_size=2, stride=2`` case runs
    :func:`spikelab.engine.max_pool2d_2x2`: on spikes a logical OR that saves one byte per output for the
    backward instead of the float input and int64 indices. Other settings are ``nn.MaxPool2d`` unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (_pair(self.kernel_size) == (2, 2) and _pair(self.stride) == (2, 2) and _pair(self.padding) == (0, 0)
                and _pair(self.dilation) == (1, 1) and not self.ceil_mode and not self.return_indices):
            return engine.max_pool2d_2x2(x)
        return super().forward(x)


def _pair(v: int | tuple[int, ...]) -> tuple[int, ...]:
    return (v, v) if isinstance(v, int) else tuple(v)


class Linear(nn.Linear):
    """``nn.Linear`` (same arguments and parameters) that runs :func:`spikelab.engine.linear`: on an input of
    spikes (at most a quarter of them 1s) it sums the weight rows the spikes select instead of multiplying by
    zeros, and saves the spikes as bits; any other input is ``F.linear``. Same values and gradients up to the
    order of the additions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return engine.linear(x, self.weight, self.bias)
