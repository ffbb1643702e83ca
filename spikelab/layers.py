"""Time-distributed layers for ``[T, B, ...]`` sequences (SPEC section 3).

- :class:`SeqToANN` runs any stateless module (conv, linear, pooling, dropout, flatten) on all steps at once by
  merging time into the batch axis.
- :class:`TdBatchNorm`: batch norm whose statistics are taken over time and batch together (the merged ``T*B``
  axis), with the scale initialised to ``alpha * v_th`` (tdBN); optionally synchronised over the processes of a
  data-parallel run.
- :class:`StaticStem`: for a static input repeated over time (direct encoding), runs the first layers once and
  repeats their output ``T`` times instead of computing the same thing ``T`` times.
- :class:`MaxPool2d`: ``nn.MaxPool2d`` whose 2x2 case pools spikes with the native kernel
  (:func:`spikelab.engine.max_pool2d_2x2`: same values and gradients, less time and saved memory).
- :class:`Linear`: ``nn.Linear`` that, on an input of sparse spikes, adds up the weight rows the spikes select
  (:func:`spikelab.engine.linear`).

Inputs are real floating-point tensors (``TypeError`` otherwise). Errors raised by a wrapped module on the merged
``[T*B, ...]`` batch are re-raised with the caller's ``[T, B, ...]`` shape.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from spikelab import engine
from spikelab._checks import check_float_tensor, check_int, check_positive, check_range, check_time_first
from spikelab.neurons import BaseNeuron

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _merge_time(x_seq: torch.Tensor) -> torch.Tensor:
    return x_seq.flatten(0, 1)  # [T, B, ...] -> [T*B, ...]


def _split_time(y: torch.Tensor, T: int) -> torch.Tensor:
    return y.view(T, y.shape[0] // T, *y.shape[1:])  # [T*B, ...] -> [T, B, ...]


def _shape(x: torch.Tensor) -> str:
    return "[" + ", ".join(str(n) for n in x.shape) + "]"


class SeqToANN(nn.Module):
    """Apply a stateless module over ``[T, B, ...]`` by merging time into batch: ``[T*B, ...]`` in, split after.

    ``SeqToANN(nn.Conv2d(1, 8, 3))`` keeps the conv's parameter names under ``module.``. Several modules are
    chained with an ``nn.Sequential``. A conv or linear first module is checked against ``x_seq`` (channels at
    dimension 2, features last) before running; any other error of the wrapped module is re-raised with
    ``x_seq``'s shape, since the module itself only saw the merged ``[T*B, ...]`` batch.
    """

    def __init__(self, *modules: nn.Module) -> None:
        super().__init__()
        if not modules:
            raise ValueError("SeqToANN needs at least one module")
        for i, m in enumerate(modules):
            if not isinstance(m, nn.Module):
                raise TypeError(f"modules[{i}] must be an nn.Module, got {type(m).__name__}")
        self.module = modules[0] if len(modules) == 1 else nn.Sequential(*modules)

    def _check_fits(self, x_seq: torch.Tensor) -> None:
        first = self.module[0] if isinstance(self.module, nn.Sequential) and len(self.module) else self.module
        if isinstance(first, _CONVS):
            space = {nn.Conv1d: "L", nn.Conv2d: "H, W", nn.Conv3d: "D, H, W"}[type(first)]
            want = first.weight.dim() + 1  # T, B, C and the spatial dimensions
            if x_seq.dim() != want:
                raise ValueError(f"x_seq must be [T, B, C, {space}] ({want} dimensions) for {first}, "
                                 f"got shape {_shape(x_seq)}")
            if x_seq.shape[2] != first.in_channels:
                raise ValueError(f"x_seq must have {first.in_channels} channels at dimension 2 ([T, B, C, ...]) "
                                 f"for {first}, got shape {_shape(x_seq)}")
        elif isinstance(first, nn.Linear) and x_seq.shape[-1] != first.in_features:
            raise ValueError(f"x_seq must have {first.in_features} features in its last dimension for {first}, "
                             f"got shape {_shape(x_seq)}")

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x_seq, "x_seq")
        check_time_first(x_seq, "x_seq")
        self._check_fits(x_seq)
        T, B = x_seq.shape[:2]
        merged = _merge_time(x_seq)  # [T*B, ...]
        try:
            y = self.module(merged)
        except (RuntimeError, ValueError) as err:
            if type(err) not in (RuntimeError, ValueError):  # e.g. out of memory: not about the input's shape
                raise
            raise type(err)(
                f"{type(self.module).__name__} inside SeqToANN failed on x_seq of shape {_shape(x_seq)} "
                f"(T = {T}, B = {B}), which it sees merged as one batch of T*B = {T * B}, shape {_shape(merged)}: "
                f"{err}"
            ) from err
        return _split_time(y, T)


class _AllReduceSum(torch.autograd.Function):
    """Sum over all processes; the gradient of a sum shared by every process is the sum of their gradients."""

    @staticmethod
    def forward(ctx: object, t: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        t = t.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(t)


class TdBatchNorm(_BatchNorm):
    """Batch norm over the merged ``T*B`` axis (tdBN) for ``[T, B, C]``, ``[T, B, C, L]`` or ``[T, B, C, H, W]``.

    ``y = weight * (x - mean) / sqrt(var + eps) + bias`` with ``mean``, ``var`` per channel over time, batch and
    space; ``weight`` starts at ``alpha * v_th``. Parameter and buffer names match ``nn.BatchNorm2d``, so an ANN
    twin's weights copy over by name. The running variance is updated with the unbiased estimate over all
    ``n = T * B * space`` values (``var * n / (n - 1)``), as PyTorch does; training needs ``n > 1``.

    Args:
        num_features: channels ``C`` (dimension 2 of the input).
        v_th, alpha: the scale starts at ``alpha * v_th`` (Zheng et al. 2021).
        eps: added to the variance. momentum: running-statistics update factor in [0, 1] (None: cumulative mean).
        sync: in training, take the statistics over the whole global batch of a ``torch.distributed`` run
            (all processes), so that every process normalises as one process on the global batch would; set it
            on a whole model with :func:`spikelab.training.distributed.sync_tdbn`. A no-op outside a distributed
            run. Every process must then run the layer equally often in training mode (a collective operation).

    :class:`StaticStem` (through :func:`repeated_steps`) tells the layers inside it that each input stands for
    ``T`` identical time steps, so a stem computed once gives the outputs and running statistics of the stem run
    on all ``T`` steps.
    """

    def __init__(
        self,
        num_features: int,
        *,
        v_th: float = 1.0,
        alpha: float = 1.0,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        sync: bool = False,
    ) -> None:
        check_int(num_features, "num_features", minimum=1)
        v_th = check_positive(v_th, "v_th")
        alpha = check_positive(alpha, "alpha")
        if momentum is not None:
            momentum = check_range(momentum, "momentum", 0.0, 1.0)
        if not isinstance(sync, bool):
            raise TypeError(f"sync must be a bool, got {type(sync).__name__}")
        super().__init__(num_features, eps=check_positive(eps, "eps"), momentum=momentum)
        self.v_th, self.alpha, self.sync = v_th, alpha, sync
        self._repeat = 1  # set by repeated_steps (StaticStem): each input stands for this many identical steps
        with torch.no_grad():
            self.weight.fill_(self.alpha * self.v_th)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3, 4):
            raise ValueError(
                f"x_seq must be [T, B, C], [T, B, C, L] or [T, B, C, H, W]; got {x.dim() + 1} dimensions"
            )

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        check_float_tensor(x_seq, "x_seq")
        check_time_first(x_seq, "x_seq", min_dim=3)
        self._check_input_dim(x_seq[0])
        if x_seq.shape[2] != self.num_features:
            raise ValueError(
                f"x_seq must have {self.num_features} channels at dimension 2, got shape {tuple(x_seq.shape)}"
            )
        T = x_seq.shape[0]
        x = _merge_time(x_seq)  # [T*B, C, ...]
        if not self.training:
            return _split_time(super().forward(x), T)
        processes = dist.get_world_size() if self.sync and dist.is_available() and dist.is_initialized() else 1
        n = x.numel() // self.num_features * self._repeat * processes  # values per channel (equal shares)
        if n <= 1:  # torch would report the merged [T*B, C] shape
            raise ValueError(
                f"TdBatchNorm needs more than one value per channel in training, got x_seq of shape "
                f"{_shape(x_seq)} (T = {T}, B = {x_seq.shape[1]}, nothing else to average over): use a batch of "
                "more than one sample or more time steps, or eval mode"
            )
        if processes == 1 and (self._repeat == 1 or x.numel() > self.num_features):
            if self._repeat == 1:
                return _split_time(super().forward(x), T)
            return _split_time(self._repeated(x), T)
        return _split_time(self._normalise(x, processes > 1), T)

    def _repeated(self, x: torch.Tensor) -> torch.Tensor:
        """One process, an input standing for ``_repeat`` identical steps: the fused batch norm normalises (the
        repeat changes neither the mean nor the biased variance) and the running statistics are updated here with
        the repeated count."""
        y = F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                dims = [0, *range(2, x.dim())]
                var, mean = torch.var_mean(x.to(torch.promote_types(x.dtype, torch.float32)), dims, correction=0)
                self._update_running(mean, var, x.numel() // self.num_features * self._repeat)
        return y

    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, n: "int | torch.Tensor") -> None:
        """Running statistics from a batch's mean and biased variance over ``n`` values (unbiased: ``n / (n-1)``)."""
        self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
        f = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.mul_(1 - f).add_(f * mean.to(self.running_mean.dtype))  # type: ignore[union-attr]
        self.running_var.mul_(1 - f).add_(f * (var * n / (n - 1)).to(self.running_var.dtype))  # type: ignore

    def _normalise(self, x: torch.Tensor, distributed: bool) -> torch.Tensor:
        """Training-mode batch norm written out: for statistics summed over processes, and for a repeated static
        input with a single value per channel (which the fused kernel refuses). Statistics are computed in at
        least float32."""
        C = self.num_features
        dims = [0, *range(2, x.dim())]
        shape = (1, C) + (1,) * (x.dim() - 2)
        xf = x.to(torch.promote_types(x.dtype, torch.float32))
        s1 = xf.sum(dims)  # [C]
        count = torch.full((1,), float(x.numel() // C), dtype=xf.dtype, device=x.device)
        if distributed:
            s1, count = _all_reduce_sum(torch.cat([s1, count])).split([C, 1])
        mean = s1 / count  # [C]
        d = xf - mean.view(shape)
        s2 = (d * d).sum(dims)
        if distributed:
            s2 = _all_reduce_sum(s2)
        var = s2 / count  # biased, used to normalise
        y = d * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self._update_running(mean.detach(), var.detach(), count * self._repeat)
        return y.to(x.dtype)


def _static_stem_content(module: nn.Module) -> None:
    for name, m in module.named_modules():
        where = f"module.{name}" if name else "module"
        if isinstance(m, BaseNeuron):
            raise TypeError(
                f"StaticStem's {where} is a spiking neuron ({type(m).__name__}): a stem computed once and repeated "
                "must be stateless over time (put the neuron after the StaticStem)"
            )
        if isinstance(m, _BatchNorm) and not isinstance(m, TdBatchNorm):
            raise TypeError(
                f"StaticStem's {where} is a {type(m).__name__}: use TdBatchNorm, whose statistics StaticStem can "
                "make equal to those over all T repeated steps"
            )


@contextmanager
def repeated_steps(module: nn.Module, T: int) -> Iterator[None]:
    """Within this context every :class:`TdBatchNorm` inside ``module`` treats each input as ``T`` identical time
    steps: the normalisation is unchanged, but the running variance counts ``T`` times the values (and a single
    value per channel is no error when ``T > 1``). For a time-invariant computation run once instead of ``T``
    times (:class:`StaticStem`, the ANN twin on a static input); nested contexts multiply, and the layers are
    restored on exit.
    """
    check_int(T, "T", minimum=1)
    norms = [m for m in module.modules() if isinstance(m, TdBatchNorm)]
    before = [bn._repeat for bn in norms]
    for bn, r in zip(norms, before):
        bn._repeat = r * T  # nested contexts multiply
    try:
        yield
    finally:
        for bn, r in zip(norms, before):
            bn._repeat = r


class StaticStem(nn.Module):
    """Run time-distributed ``module`` once on a static input and repeat the result ``T`` times.

    ``x`` is ``[B, ...]`` (no time axis); ``module`` sees ``[1, B, ...]`` and its output ``[1, B, ...]`` is
    expanded to ``[T, B, ...]``. With direct encoding this equals ``module(direct(x, T))`` at ``1/T`` of the cost:
    the outputs, the gradients (summed by the expand) and the running statistics of every :class:`TdBatchNorm`
    inside, which is told that its input stands for ``T`` identical steps (so its unbiased variance counts
    ``T * B`` values, and a batch of one sample trains wherever the sequence would).

    ``module`` must be stateless over time: a spiking neuron or another kind of batch norm inside it raises
    ``TypeError``.
    """

    def __init__(self, module: nn.Module, T: int) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
        _static_stem_content(module)
        self.module = module
        self.T = check_int(T, "T", minimum=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x, "x")
        if x.dim() < 2:
            raise ValueError(f"x must be a static batch [B, ...], got shape {tuple(x.shape)}")
        try:
            with repeated_steps(self.module, self.T):
                y = self.module(x.unsqueeze(0))  # [1, B, ...]
        except (RuntimeError, ValueError) as err:
            if type(err) not in (RuntimeError, ValueError):
                raise
            raise type(err)(f"StaticStem runs its module once on the static batch x of shape {_shape(x)}, as a "
                            f"one-step sequence [1, {_shape(x)[1:]}: {err}") from err
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
