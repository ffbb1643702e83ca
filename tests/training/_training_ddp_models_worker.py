"""Every built-in model, one training step on 2 processes (``torchrun``, gloo, CPU) against one process on the
global batch; started by ``test_training_ddp.py``. Rank 0 writes the largest differences to a JSON file.

With tdBN synchronised (``sync_tdbn``) the logits, the gradients after DDP's averaging and the running statistics
must equal the single-process ones; without it they differ (each process normalises by its own half batch).
"""
from __future__ import annotations

import copy
import json
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from spikelab import models
from spikelab.training import init_distributed, shutdown_distributed, sync_tdbn, world

SMOKE = {  # tiny widths, 2 x 8 x 8 inputs
    "mlp": dict(hidden=(12, 8)),
    "conv-small": dict(channels=(4, 6)),
    "resnet19": dict(widths=(4, 8, 8), stages=(1, 1, 1), head_hidden=8),
    "vggsnn": dict(cfg=(4, 4, "A", 8, "A"), input_size=(8, 8)),
    "spiking-resnet18": dict(widths=(4, 4, 8, 8), stages=(1, 1, 1, 1), stem="cifar"),
    "spiking-resnet34": dict(widths=(4, 4, 8, 8), stages=(1, 2, 1, 1)),
    "sew-resnet18": dict(widths=(4, 4, 8, 8), stages=(1, 1, 1, 1), stem="cifar"),
    "sew-resnet34": dict(widths=(4, 4, 8, 8), stages=(1, 2, 1, 1)),
}
B_GLOBAL, T = 8, 3


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def one_step(name: str, sync: bool, rank: int, size: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = models.build(name, num_classes=5, in_channels=2, T=T, **SMOKE[name]).double().train()
    reference = copy.deepcopy(model)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(B_GLOBAL, 2, 8, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (B_GLOBAL,), generator=g)
    share = slice(rank * B_GLOBAL // size, (rank + 1) * B_GLOBAL // size)

    sync_tdbn(model, sync)
    ddp = nn.parallel.DistributedDataParallel(model)
    out = ddp(x[share])  # [T, B / size, 5]
    F.cross_entropy(out.mean(0), y[share]).backward()  # DDP averages the gradients over processes
    out_ref = reference(x)  # one process, the whole global batch
    F.cross_entropy(out_ref.mean(0), y).backward()

    params = [(p, q) for p, q in zip(model.parameters(), reference.parameters()) if q.grad is not None]
    buffers = [(a, b) for a, b in zip(model.buffers(), reference.buffers()) if a.is_floating_point()]
    diffs = torch.tensor([
        float((out - out_ref[:, share]).abs().max()),
        _max_diff([p.grad for p, _ in params], [q.grad for _, q in params]),
        _max_diff([a for a, _ in buffers], [b for _, b in buffers]),
    ], dtype=torch.float64)
    dist.all_reduce(diffs, op=dist.ReduceOp.MAX)
    return dict(zip(("logits", "grads", "running_stats"), diffs.tolist()))


def main(out: str) -> None:
    torch.set_num_threads(1)
    init_distributed("cpu")
    rank, size = world()
    result = {f"{name} sync={sync}": one_step(name, sync, rank, size) for name in SMOKE for sync in (True, False)}
    if rank == 0:
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
    shutdown_distributed()


if __name__ == "__main__":
    main(sys.argv[1])
