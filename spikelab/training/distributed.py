"""Data-parallel training through PyTorch's own engine (``torch.distributed``, DDP).

``torchrun --nproc_per_node=N -m spikelab train ...`` starts N processes with ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and a rendezvous address in the environment; :func:`init_distributed` joins them (NCCL on CUDA,
gloo on CPU). ``fit`` then splits every global batch of ``B`` samples into ``B / N`` per process
(:func:`shard_loader`), wraps the model in ``DistributedDataParallel`` (gradients averaged over processes) and
sums its metrics over processes. Batch norm would still see only each process's share of the batch, so ``fit``
also synchronises every :class:`~spikelab.layers.TdBatchNorm` over the processes (:func:`sync_tdbn`; on by default
in a distributed run, ``TrainConfig(sync_bn=False)`` turns it off): the statistics, and so the outputs, the
gradients and the update, then equal those of one process on the whole global batch.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler, Sampler, SequentialSampler

from spikelab.layers import TdBatchNorm


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: ``(0, 1)`` outside a distributed run."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def launched_distributed() -> bool:
    """True if this process was started by ``torchrun`` (or similar) with ``WORLD_SIZE > 1``."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: str = "auto") -> tuple[int, int]:
    """Join the process group described by the environment (``torchrun``) and return ``(rank, world_size)``.

    Uses NCCL when training on CUDA (and sets this process's GPU to ``LOCAL_RANK``), gloo otherwise.
    Does nothing (returns ``(0, 1)``) when not launched with ``WORLD_SIZE > 1``.
    """
    if not launched_distributed():
        return 0, 1
    if not dist.is_initialized():
        use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return world()


def sync_tdbn(model: nn.Module, enabled: bool | None = None) -> int:
    """Take the training statistics of every :class:`~spikelab.layers.TdBatchNorm` in ``model`` over all processes
    of the distributed run (``enabled=True``) or over each process's own share of the batch (``False``).

    ``None`` (what ``fit`` passes by default) turns it on exactly when this process belongs to a run of more than
    one process (``torchrun --nproc_per_node=N``, N > 1). Synchronised layers cost two all-reduces of ``C`` numbers
    per layer and step, forward and backward. Returns the number of layers set.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if enabled is None:
        enabled = world()[1] > 1
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool or None, got {type(enabled).__name__}")
    layers = [m for m in model.modules() if isinstance(m, TdBatchNorm)]
    for m in layers:
        m.sync = enabled
    return len(layers)


def shutdown_distributed(*, wait: bool = True) -> None:
    """Leave the process group (if any). With ``wait``, first wait until every process arrives here (a process that
    leaves while another still talks to it can abort the other); after an error, leave at once (``wait=False``)."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + N, rank + 2N, ...`` of a dataset of ``length`` samples, without padding (evaluation:
    every sample is seen exactly once over all processes)."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))


def _is_plain_shuffle(sampler: Sampler, n: int) -> bool:
    return isinstance(sampler, RandomSampler) and not sampler.replacement and sampler.num_samples == n


def shard_loader(loader: DataLoader, *, rank: int, world_size: int, seed: int, train: bool) -> DataLoader:
    """A loader over ``loader.dataset`` for process ``rank`` of ``world_size`` with ``loader.batch_size /
    world_size`` samples per batch, so one step over all processes sees one global batch.

    Training loaders (``train=True``) get a :class:`~torch.utils.data.DistributedSampler` (shuffled with
    ``seed + epoch`` if the original loader shuffled; ``set_epoch`` is called by ``fit``); with one process this
    still replaces a plain shuffle, so the sample order is a function of ``(seed, epoch)`` alone and equals that of
    a distributed run. Evaluation loaders get a :class:`ShardSampler` (no padding). A loader with another sampler
    is returned unchanged for one process and refused for several.
    """
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler) or loader.batch_size is None:
        if world_size > 1 and not isinstance(sampler, DistributedSampler):
            raise ValueError("a loader with a batch_sampler cannot be split over processes; give it a batch_size")
        return loader
    n = len(loader.dataset)  # type: ignore[arg-type]
    shuffled = _is_plain_shuffle(sampler, n)
    if not shuffled and not isinstance(sampler, SequentialSampler):
        if world_size > 1:
            raise ValueError(f"cannot split a loader with a {type(sampler).__name__} over {world_size} processes; "
                             "use shuffle=True/False or a DistributedSampler")
        return loader
    if not train and world_size == 1:
        return loader
    if loader.batch_size % world_size:
        raise ValueError(f"batch_size ({loader.batch_size}) must be divisible by the number of processes "
                         f"({world_size}): it is the global batch, split evenly over processes")
    if train:
        new_sampler: Sampler = DistributedSampler(loader.dataset, num_replicas=world_size, rank=rank,
                                                  shuffle=shuffled, seed=seed, drop_last=False)
    else:
        new_sampler = ShardSampler(n, rank, world_size)
    return _with_sampler(loader, new_sampler, loader.batch_size // world_size)


def _with_sampler(loader: DataLoader, sampler: Sampler, batch_size: int) -> DataLoader:
    """A shallow copy of ``loader`` (same class, dataset, workers, collate function and any extras a subclass
    holds, such as batch transforms) drawing its batches from ``sampler``.

    DataLoader forbids setting its sampler after construction, so the copy's fields are set directly.
    """
    new = copy.copy(loader)
    for attr, value in (("sampler", sampler), ("batch_size", batch_size), ("_iterator", None),
                        ("batch_sampler", BatchSampler(sampler, batch_size, loader.drop_last))):
        object.__setattr__(new, attr, value)
    return new
