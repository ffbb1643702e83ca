"""The training recipe (a frozen dataclass), the optimiser it builds, its learning-rate schedule and the device."""
from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.distributed as dist

from spikelab._checks import check_choice, check_int, check_positive, check_range, check_real
from spikelab.losses import LOSS_NAMES

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "cosine", "step")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser, schedule, loss, seed and device. Derive variants with ``dataclasses.replace``.

    Fields:
        epochs: passes over the training data.
        lr: peak learning rate.
        optimizer: ``"sgd"`` (with ``momentum``, Nesterov off), ``"adam"`` or ``"adamw"``.
        weight_decay: L2 penalty (decoupled for AdamW).
        momentum: SGD momentum.
        schedule: ``"none"``; ``"cosine"``: ``lr_k = lr_min + (lr - lr_min) (1 + cos(pi k / K)) / 2`` over the
            ``K = epochs * steps_per_epoch`` optimiser steps; ``"step"``: ``lr * gamma ** floor(epoch / step_size)``.
        lr_min: final learning rate of the cosine schedule.
        step_size: epochs between decays of the step schedule.
        gamma: decay factor of the step schedule.
        loss: ``"sdt"`` or ``"tet"`` (``lam``, ``phi``; see :mod:`spikelab.losses`); ``fit(loss=callable)``
            overrides it with any ``f(outputs [T, B, C], targets [B]) -> scalar``.
        lam: TET regulariser weight in [0, 1].
        phi: TET regulariser target.
        grad_clip: clip the gradient's global L2 norm to this value (None: no clipping).
        diverge_factor: stop with :class:`~spikelab.training.DivergenceError` when an epoch's median training loss
            exceeds this multiple of the first step's loss (None: no divergence check; non-finite losses and
            gradients always stop training). See :mod:`spikelab.training.guards`.
        seed: seeds shuffling, dropout and random augmentation; epoch ``e`` uses a seed derived from ``(seed, e)``
            so a resumed run repeats the uninterrupted one.
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        amp: mixed precision: float16 autocast with gradient scaling on CUDA, bfloat16 autocast on CPU (fast where
            the CPU has bfloat16 instructions, AVX512-BF16 or AMX); None: on for CUDA, off for CPU.
        compile: run the model through ``torch.compile``.
        sync_bn: take tdBN statistics over all processes of a distributed run (so it equals one process on the
            global batch); None: on when launched with more than one process (``torchrun``), else off.
    """

    epochs: int = 10
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "cosine"
    lr_min: float = 0.0
    step_size: int = 30
    gamma: float = 0.1
    loss: str = "sdt"
    lam: float = 0.05
    phi: float = 1.0
    grad_clip: float | None = None
    diverge_factor: float | None = 10.0
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None
    compile: bool = False
    sync_bn: bool | None = None

    def __post_init__(self) -> None:
        check_int(self.epochs, "epochs", minimum=1)
        check_positive(self.lr, "lr")
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        if check_real(self.weight_decay, "weight_decay") < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        check_range(self.momentum, "momentum", 0.0, 1.0)
        check_choice(self.schedule, "schedule", SCHEDULES)
        if check_real(self.lr_min, "lr_min") < 0 or self.lr_min > self.lr:
            raise ValueError(f"lr_min must be in [0, lr={self.lr}], got {self.lr_min}")
        check_int(self.step_size, "step_size", minimum=1)
        check_range(self.gamma, "gamma", 0.0, 1.0)
        check_choice(self.loss, "loss", LOSS_NAMES)
        check_range(self.lam, "lam", 0.0, 1.0)
        check_real(self.phi, "phi")
        if self.grad_clip is not None:
            check_positive(self.grad_clip, "grad_clip")
        if self.diverge_factor is not None and check_real(self.diverge_factor, "diverge_factor") <= 1:
            raise ValueError(f"diverge_factor must be > 1 or None, got {self.diverge_factor}")
        check_int(self.seed, "seed", minimum=0)
        parse_device(self.device)
        if self.amp is not None and not isinstance(self.amp, bool):
            raise TypeError(f"amp must be a bool or None, got {type(self.amp).__name__}")
        if not isinstance(self.compile, bool):
            raise TypeError(f"compile must be a bool, got {type(self.compile).__name__}")
        if self.sync_bn is not None and not isinstance(self.sync_bn, bool):
            raise TypeError(f"sync_bn must be a bool or None, got {type(self.sync_bn).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Rebuild from :meth:`to_dict` output; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {unknown}")
        return cls(**d)


def parse_device(device: str) -> str:
    """Check a device string: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    if not isinstance(device, str):
        raise TypeError(f"device must be a str, got {type(device).__name__}")
    if device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()):
        return device
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}")


def select_device(device: str = "auto") -> torch.device:
    """The device to train on: ``"auto"`` picks CUDA when available, else CPU.

    Under ``torchrun`` with CUDA, ``"auto"`` and ``"cuda"`` pick the GPU named by ``LOCAL_RANK``.
    """
    parse_device(device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available (torch {torch.__version__})")
    if device == "cuda":
        distributed = dist.is_available() and dist.is_initialized()
        local = int(os.environ.get("LOCAL_RANK", "0")) if distributed else torch.cuda.current_device()
        return torch.device("cuda", local)
    return torch.device(device)


def build_optimizer(params: Iterable[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser of ``config`` over ``params`` (those with ``requires_grad``)."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters (none with requires_grad=True)")
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_at(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Learning rate for optimiser step ``step`` (0-based) under ``config.schedule`` (see :class:`TrainConfig`).

    A closed form of the step index, so a resumed run needs only the step count to continue the schedule.
    """
    check_int(step, "step", minimum=0)
    check_int(steps_per_epoch, "steps_per_epoch", minimum=1)
    if config.schedule == "none":
        return config.lr
    if config.schedule == "step":
        return config.lr * config.gamma ** (step // steps_per_epoch // config.step_size)
    total = config.epochs * steps_per_epoch
    frac = min(step / total, 1.0)
    return config.lr_min + (config.lr - config.lr_min) * (1 + math.cos(math.pi * frac)) / 2
