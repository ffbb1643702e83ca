"""A tiny data-parallel run for ``test_training_ddp.py``; started by ``torchrun`` (2 processes, gloo, CPU).

``make()`` builds the model and data used by both the distributed run and the single-process reference: a
built-in spiking MLP with tdBN in its static stem and in its body, whose statistics ``fit`` synchronises over the
processes (with per-process statistics every built-in model differed from one process by up to 5e-2).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from spikelab.models import SpikingMLP
from spikelab.training import fit, init_distributed, shutdown_distributed, world

SETTINGS = dict(epochs=3, lr=0.3, optimizer="sgd", schedule="cosine", device="cpu", seed=3)


def make() -> tuple[nn.Module, tuple[DataLoader, DataLoader]]:
    g = torch.Generator().manual_seed(123)
    x = torch.rand(64, 12, generator=g) * 3
    y = x[:, :4].argmax(1)  # 4 learnable classes
    torch.manual_seed(0)
    model = SpikingMLP(in_shape=(12,), num_classes=4, hidden=(16, 16), T=3)
    train = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)  # global batch 16 = 2 x 8
    test = DataLoader(TensorDataset(x[:30], y[:30]), batch_size=8)  # 30 samples: shards of 15, no padding
    return model, (train, test)


def main(out: str) -> None:
    torch.set_num_threads(1)
    init_distributed("cpu")
    model, data = make()
    fit(model, data, run_dir=Path(out), progress=False, **SETTINGS)
    rank, size = world()
    if rank == 0:
        torch.save({"world_size": size, "model": model.state_dict()}, Path(out) / "weights.pt")
    shutdown_distributed()


if __name__ == "__main__":
    main(sys.argv[1])
