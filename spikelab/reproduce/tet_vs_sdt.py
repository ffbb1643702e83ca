"""TET against SDT at T = 2, 4 and 6 (Deng et al., ICLR 2022; SPEC section 3).

The claim: with the same network, seeds and budget, the temporal efficient training loss (the mean over time steps
of the per-step cross-entropy, plus ``lam`` times an MSE pulling the outputs toward ``phi = v_th``) reaches a higher
test accuracy than standard direct training (cross-entropy of the time-averaged output). The paper measures it on
CIFAR and ImageNet with ResNets on GPUs; here the same comparison runs on the embedded 8x8 digits and on
Fashion-MNIST (Debian's dataset-fashion-mnist) with the small conv SNN and TET's neuron (LIF, decay 0.5, v_th 1,
hard reset, triangle surrogate), TET's CIFAR preset (lam 0.05, phi 1), Adam with a cosine schedule.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from spikelab.losses import tet_preset
from spikelab.models import TET_NEURON
from spikelab.reproduce import Reproduction, register
from spikelab.reproduce._budget import Budget, Progress, best_acc, conv_net, final_acc, loaders, run_dir, seed_list
from spikelab.reproduce.table import Table, mean_spread
from spikelab.training import TrainConfig, fit

TS = (2, 4, 6)
SIZES: dict[str, tuple[Budget, ...]] = {
    "smoke": (Budget("digits", 96, (4, 8), epochs=1, seeds=1),
              Budget("fashion-mnist", 64, (4, 8), epochs=1, seeds=1)),
    # full: sized to about 30 min on 2 shared cores (18 runs per dataset)
    "full": (Budget("digits", None, (16, 32), epochs=10, seeds=3),
             Budget("fashion-mnist", 1000, (16, 32), epochs=3, seeds=3)),
}
# SPEC section 3 (ResNet-19; the paper's baseline is tdBN, i.e. SDT; CIFAR-100's ablation is SDT vs TET)
PAPER = {
    2: "CIFAR-10: tdBN 92.34 -> TET 94.16 (unverified)",
    4: "CIFAR-10: tdBN 92.92 -> TET 94.44; CIFAR-100: TET +3.25 over SDT",
    6: "-",
}
# lab: what lab 06 re-runs, a few minutes on a laptop (digits only, one seed, narrower convs)
SIZES["lab"] = (Budget("digits", None, (8, 16), epochs=5, seeds=1),)


def reproduce(*, size: str, out: Path, seeds: int | None, progress: bool) -> Table:
    """Train the same conv SNN with SDT and with TET at each T, on each dataset, over several seeds."""
    budgets = SIZES[size]
    table = Table("TET against SDT: test accuracy (%) after the last epoch, same network, seeds and budget",
                  ["dataset", "T", "SDT (ours)", "TET (ours)", "TET - SDT (ours)", "paper (ResNet-19, GPUs)"])
    runs: list[dict] = []
    total = sum(len(seed_list(seeds, b)) * len(TS) * 2 for b in budgets)
    say = Progress(progress, total)
    for b in budgets:
        for T in TS:
            acc: dict[str, list[float]] = {"sdt": [], "tet": []}
            for seed in seed_list(seeds, b):
                data = loaders(b, seed=seed)
                for loss in ("sdt", "tet"):
                    settings = tet_preset("cifar", v_th=TET_NEURON.v_th) if loss == "tet" else {"loss": "sdt"}
                    config = TrainConfig(epochs=b.epochs, lr=b.lr, seed=seed, device="cpu", **settings)
                    net = conv_net(b, data[2], T=T, neuron=TET_NEURON, seed=seed)
                    name = f"{b.dataset}-T{T}-{loss}-seed{seed}"
                    h = fit(net, data, config, run_dir=run_dir(out, name), progress=progress,
                            run_config=dict(model="conv-small", dataset=b.dataset, T=T, limit=b.limit,
                                            channels=list(b.channels)))
                    acc[loss].append(final_acc(h))
                    runs.append(dict(dataset=b.dataset, T=T, loss=loss, seed=seed, final=final_acc(h),
                                     best=best_acc(h), time_s=h.epochs[-1]["time_s"]))
                    say(f"{name}: test {100 * final_acc(h):.2f} %")
            diff = [t - s for s, t in zip(acc["sdt"], acc["tet"])]
            table.add(dataset=b.dataset, T=T, **{
                "SDT (ours)": mean_spread(acc["sdt"], scale=100), "TET (ours)": mean_spread(acc["tet"], scale=100),
                "TET - SDT (ours)": mean_spread(diff, scale=100), "paper (ResNet-19, GPUs)": PAPER[T]})
    table.data["runs"] = runs
    table.meta["budgets"] = [dict(dataset=b.dataset, limit=b.limit, channels=list(b.channels), epochs=b.epochs,
                                  batch_size=b.batch_size, lr=b.lr) for b in budgets]
    table.notes.append("Model conv-small (conv3x3-tdBN-LIF-maxpool x2, linear readout) with TET's neuron; "
                       "Adam, cosine schedule; TET with the CIFAR preset lam = 0.05, phi = v_th = 1. "
                       "Each difference is paired by seed (same initial weights and batches).")
    return table


register(Reproduction("tet-vs-sdt", "TET against SDT at T = 2, 4, 6 on digits and Fashion-MNIST",
                      "Deng et al., ICLR 2022", "SPEC section 3", reproduce, sizes=("smoke", "lab", "full")))


def figures(table: Table) -> dict[str, Any]:
    """``{"tet-vs-sdt": figure}``: test accuracy against T, SDT and TET, a panel per dataset
    (:func:`spikelab.viz.tet_transfer.tet_vs_sdt_figure`)."""
    from spikelab.viz.tet_transfer import tet_vs_sdt_figure

    return {"tet-vs-sdt": tet_vs_sdt_figure(table.data)}
