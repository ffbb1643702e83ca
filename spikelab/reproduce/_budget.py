"""Helpers shared by the TET and pretraining reproductions: per-size budgets, seeds, data, progress lines."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from spikelab import data, models
from spikelab.neurons import NeuronConfig


@dataclass(frozen=True)
class Budget:
    """How much of a dataset a reproduction trains on, with what network, for how long.

    ``limit``: samples kept per split (None: all); ``channels``: the conv widths of ``conv-small``;
    ``epochs``: the main number of epochs (each reproduction says how it uses it); ``seeds``: default seed count.
    """

    dataset: str
    limit: int | None
    channels: tuple[int, ...]
    epochs: int
    seeds: int
    batch_size: int = 64
    lr: float = 5e-3


def seed_list(seeds: int | None, budget: Budget) -> list[int]:
    """Seeds 0..n-1, n = ``seeds`` or the budget's default."""
    return list(range(seeds if seeds is not None else budget.seeds))


def loaders(budget: Budget, *, seed: int, dataset: str | None = None, T: int | None = None):
    """``make_loaders`` for the budget (shuffling seeded by ``seed``)."""
    return data.make_loaders(dataset or budget.dataset, batch_size=budget.batch_size, limit=budget.limit, seed=seed,
                             T=T)


def conv_net(budget: Budget, info: Any, *, T: int, neuron: NeuronConfig, seed: int,
             spiking: bool = True, **kwargs: Any) -> models.SpikingModel:
    """``conv-small`` at the budget's widths for the dataset ``info``, its weights drawn from ``seed``."""
    torch.manual_seed(seed)
    in_channels = info.input_shape[1] if info.is_event else info.input_shape[0]
    return models.build("conv-small", num_classes=info.num_classes, in_channels=in_channels, T=T, neuron=neuron,
                        channels=budget.channels, input_size=tuple(info.input_shape[-2:]), spiking=spiking, **kwargs)


def run_dir(out: Path, name: str) -> Path:
    """``OUT/runs/NAME``: where a reproduction writes one training run. A previous run of that name (from an
    earlier run of the reproduction) is replaced; one still training (its folder locked) is an error."""
    from spikelab.training import RunBusyError, is_running

    d = Path(out) / "runs" / name
    if d.exists():
        if is_running(d):
            raise RunBusyError(f"run folder {str(d)!r} is training in another process: wait for it, or pass "
                               "another --out")
        import shutil

        shutil.rmtree(d)
    return d


class Progress:
    """One line per finished piece of work on stderr (when enabled), with the time since the start."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total, self.done, self.t0 = enabled, total, 0, time.perf_counter()

    def __call__(self, message: str) -> None:
        self.done += 1
        if self.enabled:
            print(f"[{self.done}/{self.total} {time.perf_counter() - self.t0:7.1f} s] {message}", file=sys.stderr,
                  flush=True)


def pct(x: float | None) -> str:
    """A fraction as a percentage with two decimals (``"-"`` for None)."""
    return "-" if x is None else f"{100 * x:.2f}"


def final_acc(history: Any) -> float:
    """The last epoch's test accuracy."""
    return float(history.epochs[-1]["test_acc"])


def best_acc(history: Any) -> float:
    """The best epoch's test accuracy."""
    return float(max(e["test_acc"] for e in history.epochs))
