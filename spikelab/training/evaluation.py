"""``evaluate``: loss, accuracy, firing rates and operations of a model on a data loader (no gradients), and the
input, loss and precision helpers that ``fit`` shares with it."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from spikelab._checks import check_tensor
from spikelab.losses import auxiliary_outputs, get_loss, multi_head_loss, rate_predict
from spikelab.metrics import FiringRates, SpikeSample, SynapticOps, _all_reduce
from spikelab.training.config import TrainConfig, select_device
from spikelab.training.distributed import shard_loader, world

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _as_model_input(x: torch.Tensor, sequence_input: bool | None) -> torch.Tensor:
    """Loader layout -> model layout: event batches ``[B, T, ...]`` become ``[T, B, ...]``; static ``[B, ...]``
    stays (the model encodes it). ``sequence_input=None`` treats 5-D batches ``[B, T, C, H, W]`` as events."""
    check_tensor(x, "x")
    if sequence_input is None:
        sequence_input = x.dim() == 5
    if sequence_input:
        if x.dim() < 3:
            raise ValueError(f"an event batch must be [B, T, ...] with at least 3 dimensions, got {tuple(x.shape)}")
        return x.transpose(0, 1).contiguous()  # [T, B, ...]
    return x


def _resolve_loss(loss: str | LossFn | None, config: TrainConfig) -> tuple[LossFn, str]:
    if loss is None:
        return get_loss(config.loss, lam=config.lam, phi=config.phi), config.loss
    if isinstance(loss, str):
        return get_loss(loss, lam=config.lam, phi=config.phi), loss
    if callable(loss):
        return loss, getattr(loss, "__name__", type(loss).__name__)
    raise TypeError(f"loss must be 'sdt', 'tet' or a function f(outputs, targets), got {type(loss).__name__}")


def _autocast(device: torch.device, amp: bool):
    """Mixed precision: float16 on CUDA (with gradient scaling in ``fit``), bfloat16 on CPU (no scaling needed)."""
    if not amp:
        return nullcontext()
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _resolve_amp(amp: bool | None, device: torch.device) -> bool:
    if amp is None:
        return device.type == "cuda"
    if amp and device.type not in ("cuda", "cpu"):
        raise ValueError(f"amp=True needs a CUDA device or the CPU, but training runs on {device}")
    return amp


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm  # imported late: in a notebook it loads the widget front end

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def _evaluate(net: nn.Module, raw: nn.Module, loader: DataLoader, loss_fn: LossFn, device: torch.device, amp: bool,
              sequence_input: bool | None, ops: bool, progress: bool) -> dict[str, Any]:
    was_training = raw.training
    net.eval()
    rates = FiringRates(raw)
    ops_meter = SynapticOps(raw) if ops else None
    totals = [0.0, 0.0, 0.0]  # loss * n, correct, n
    bar = _progress(progress, len(loader), "eval")
    try:
        with torch.no_grad(), rates, (ops_meter or nullcontext()):
            for x, y in loader:
                x, y = _as_model_input(x.to(device), sequence_input), y.to(device)
                with _autocast(device, amp), auxiliary_outputs(raw) as aux:
                    out = net(x)  # [T, B, C]
                    loss = multi_head_loss(loss_fn, out, aux, y)  # the training objective, every head
                n = y.shape[0]
                totals[0] += float(loss) * n
                totals[1] += float((rate_predict(out) == y).sum())
                totals[2] += n
                if ops_meter is not None:
                    ops_meter.update(n)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        net.train(was_training)
    loss_sum, correct, n = _all_reduce(totals)
    if n == 0:
        raise ValueError("the evaluation data yields no sample (an empty loader or test split): there is nothing "
                         "to measure")
    rates.sync()
    if ops_meter is not None:
        ops_meter.sync()
    return dict(
        loss=loss_sum / n, acc=correct / n, n=int(n),
        firing_rates=rates.compute(), ops=ops_meter.compute() if ops_meter is not None else None,
    )


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    *,
    loss: str | LossFn = "sdt",
    lam: float = 0.05,
    phi: float = 1.0,
    device: str | torch.device = "auto",
    amp: bool | None = None,
    ops: bool = False,
    progress: bool = False,
    sequence_input: bool | None = None,
) -> dict[str, Any]:
    """Loss, accuracy and firing rates of ``model`` on ``loader`` (no gradients, eval mode; the mode is restored).

    Returns ``{"loss", "acc", "n", "firing_rates": {layer: rate}, "ops"}`` where ``ops`` is the per-layer
    synaptic-operation and energy table of :class:`spikelab.metrics.SynapticOps` (per sample) if ``ops=True``,
    else None. In a distributed run each process evaluates its share and the numbers are summed over processes.
    A loader without any sample raises ``ValueError`` (never ``None`` metrics).

    Args:
        model: returns logits ``[T, B, C]`` for a batch.
        loader: yields ``(x, y)``: ``x`` static ``[B, ...]`` or events ``[B, T, ...]``, ``y`` ``[B]``.
        loss: ``"sdt"``, ``"tet"`` (with ``lam``, ``phi``) or a function ``f(outputs, targets)``.
        device: ``"auto"``, a device string or a ``torch.device``; the model is moved there.
        amp: float16 autocast (CUDA only); None: on for CUDA.
        sequence_input: whether ``x`` is an event batch ``[B, T, ...]`` (None: 5-D batches are).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(loader, DataLoader):
        raise TypeError(f"loader must be a DataLoader, got {type(loader).__name__}")
    dev = device if isinstance(device, torch.device) else select_device(device)
    amp_on = _resolve_amp(amp, dev)
    loss_fn, _ = _resolve_loss(loss, TrainConfig(lam=lam, phi=phi))
    rank, size = world()
    loader = shard_loader(loader, rank=rank, world_size=size, seed=0, train=False)
    model.to(dev)
    return _evaluate(model, model, loader, loss_fn, dev, amp_on, sequence_input, ops, progress and rank == 0)


def _run_probe(raw: nn.Module, probe: torch.Tensor, device: torch.device, amp: bool,
               sequence_input: bool | None) -> dict[str, Any]:
    was_training = raw.training
    raw.eval()
    sample, rates = SpikeSample(raw, sample=0), FiringRates(raw)
    try:
        with torch.no_grad(), sample, rates, _autocast(device, amp):
            raw(_as_model_input(probe.to(device), sequence_input))
    finally:
        raw.train(was_training)
    return dict(spikes=sample.compute(), rates=rates.compute())
