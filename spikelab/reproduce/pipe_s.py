"""pipe-S: pretraining the ANN twin as a bridge to the SNN, time to accuracy (Lin et al., TNNLS; SPEC section 4).

The claim: pretraining the SNN's ANN twin (one step, a clipped ramp annealed toward the spike step), copying its
weights into the SNN and fine-tuning with BPTT reaches the accuracy of direct SNN training from scratch in a
fraction of the time (1/10 on ImageNet-1K, 2/5 on ES-ImageNet). Here on Fashion-MNIST with the small conv SNN and
the official neuron (LIF decay 0.25, v_th 0.5, hard reset with detached gate, rectangle surrogate), the same SNN in
both arms: scratch trains it for E epochs at T=4 (Adam, cosine); pipe-S pretrains the twin for E epochs (Adam,
cosine, the ramp schedule's length = E), transfers, and fine-tunes (SGD momentum 0.9, lr x 0.3 every 2 epochs).
The transferred SNN is evaluated before fine-tuning and after every fine-tuning epoch, beside its ANN twin.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from spikelab.reproduce import Reproduction, register
from spikelab.reproduce._budget import (
    Budget, Progress, best_acc, conv_net, loaders, pct, run_dir, seed_list,
)
from spikelab.reproduce.table import Table, mean_spread
from spikelab.training import TrainConfig, evaluate, fit
from spikelab.transfer import PIPE_S_NEURON, RampSchedule, finetune, pretrain, ramp_twin, transfer

T = 4
FINETUNE_LR = 0.005
SIZES = {
    "smoke": (Budget("fashion-mnist", 64, (4, 8), epochs=2, seeds=1), 2),
    "full": (Budget("fashion-mnist", 4000, (16, 32), epochs=6, seeds=3), 3),
}
# lab: what lab 08 re-runs, a few minutes on a laptop (1,000 images, one seed, narrower convs)
SIZES["lab"] = (Budget("fashion-mnist", 1000, (8, 16), epochs=3, seeds=1), 2)
PAPER = "pipe-S reaches the directly trained LIF-SNN's accuracy in 1/10 of its time (ImageNet-1K), 2/5 (ES-ImageNet)"


def _reach(curve: list[tuple[float, float, int]], target: float) -> tuple[float, int] | None:
    """The first (time, epochs) of ``curve`` = [(acc, time, epochs), ...] whose accuracy reaches ``target``."""
    for acc, t, e in curve:
        if acc >= target - 1e-12:
            return t, e
    return None


def reproduce(*, size: str, out: Path, seeds: int | None, progress: bool) -> Table:
    """Scratch SNN against pipe-S (pretrain twin, transfer, fine-tune) on the same SNN, several seeds."""
    b, fine_epochs = SIZES[size]
    say = Progress(progress, 3 * len(seed_list(seeds, b)))
    runs = []
    for seed in seed_list(seeds, b):
        data = loaders(b, seed=seed)
        info = data[2]
        run_config = dict(model="conv-small", dataset=b.dataset, limit=b.limit, channels=list(b.channels), T=T)
        # scratch: the SNN trained directly
        snn = conv_net(b, info, T=T, neuron=PIPE_S_NEURON, seed=seed)
        h = fit(snn, data, TrainConfig(epochs=b.epochs, lr=b.lr, seed=seed, device="cpu"), progress=progress,
                run_dir=run_dir(out, f"scratch-seed{seed}"), run_config=run_config)
        scratch = dict(best=best_acc(h), time_s=h.epochs[-1]["time_s"],
                       curve=[(e["test_acc"], e["time_s"], e["epoch"]) for e in h.epochs])
        say(f"scratch seed {seed}: best {pct(scratch['best'])} % in {scratch['time_s']:.1f} s")
        # pipe-S: the ramp twin, pretrained with the ramp annealed over its epochs
        schedule = RampSchedule(length=b.epochs)
        torch.manual_seed(seed)  # the twin starts from the scratch SNN's initial weights
        ann = ramp_twin("conv-small", num_classes=info.num_classes, in_channels=info.input_shape[0],
                        neuron=PIPE_S_NEURON, schedule=schedule, channels=b.channels,
                        input_size=tuple(info.input_shape[-2:]))
        hp = pretrain(ann, data, TrainConfig(epochs=b.epochs, lr=b.lr, seed=seed, device="cpu"), progress=progress,
                      run_dir=run_dir(out, f"pretrain-seed{seed}"), run_config=dict(run_config, T=1))
        t_pre = hp.epochs[-1]["time_s"]
        ann_acc = hp.epochs[-1]["test_acc"]
        say(f"pretrain seed {seed}: ANN twin {pct(ann_acc)} % in {t_pre:.1f} s")
        snn = conv_net(b, info, T=T, neuron=PIPE_S_NEURON, seed=seed)
        transfer(ann, snn)
        before = evaluate(snn, data[1], device="cpu")["acc"]
        hf = finetune(snn, data, epochs=fine_epochs, lr=FINETUNE_LR, seed=seed, device="cpu", progress=progress,
                      run_dir=run_dir(out, f"finetune-seed{seed}"), run_config=run_config)
        curve = [(before, t_pre, b.epochs)] + [(e["test_acc"], t_pre + e["time_s"], b.epochs + e["epoch"])
                                               for e in hf.epochs]
        runs.append(dict(seed=seed, scratch=scratch, ann_acc=ann_acc, pretrain_time_s=t_pre, before=before,
                         pretrain_curve=[(e["test_acc"], e["time_s"], e["epoch"]) for e in hp.epochs],
                         finetune=[e["test_acc"] for e in hf.epochs], finetune_time_s=hf.epochs[-1]["time_s"],
                         curve=curve, reach=_reach(curve, scratch["best"])))
        say(f"pipe-S seed {seed}: before fine-tuning {pct(before)} %, after {pct(hf.epochs[-1]['test_acc'])} %")
    return _table(b, fine_epochs, runs)


def _table(b: Budget, fine_epochs: int, runs: list[dict]) -> Table:
    table = Table(f"pipe-S against training the SNN from scratch (Fashion-MNIST, T={T}): test accuracy (%)",
                  ["arm / stage", "test acc (%)", "wall time (s)", "training epochs", "paper"])
    ms = lambda xs, **k: mean_spread(xs, **k)  # noqa: E731
    table.add(**{"arm / stage": f"scratch SNN, best of {b.epochs} epochs",
                 "test acc (%)": ms([r["scratch"]["best"] for r in runs], scale=100),
                 "wall time (s)": ms([r["scratch"]["time_s"] for r in runs], digits=1),
                 "training epochs": b.epochs, "paper": "LIF-SNN trained directly"})
    table.add(**{"arm / stage": f"ANN twin after {b.epochs} pretraining epochs (ramp)",
                 "test acc (%)": ms([r["ann_acc"] for r in runs], scale=100),
                 "wall time (s)": ms([r["pretrain_time_s"] for r in runs], digits=1),
                 "training epochs": f"{b.epochs} (T=1)"})
    table.add(**{"arm / stage": "SNN after transfer, before fine-tuning",
                 "test acc (%)": ms([r["before"] for r in runs], scale=100),
                 "wall time (s)": ms([r["pretrain_time_s"] for r in runs], digits=1), "training epochs": b.epochs})
    for k in range(fine_epochs):
        table.add(**{"arm / stage": f"SNN after fine-tuning epoch {k + 1}",
                     "test acc (%)": ms([r["finetune"][k] for r in runs], scale=100),
                     "wall time (s)": ms([r["curve"][k + 1][1] for r in runs], digits=1),
                     "training epochs": f"{b.epochs} + {k + 1}"})
    reached = [r["reach"] for r in runs if r["reach"] is not None]
    frac = [r["reach"][0] / r["scratch"]["time_s"] for r in runs if r["reach"] is not None]
    table.add(**{"arm / stage": f"pipe-S reaches scratch's best ({len(reached)}/{len(runs)} seeds)",
                 "wall time (s)": ms([t for t, _ in reached], digits=1) if reached else "not reached",
                 "training epochs": ms([e for _, e in reached], digits=1) if reached else "-",
                 "test acc (%)": "-", "paper": PAPER})
    if frac:
        table.notes.append(f"Time for pipe-S to reach the scratch run's best test accuracy, as a fraction of the "
                           f"scratch run's time: {mean_spread(frac)} (paper: 0.1 on ImageNet-1K, 0.4 on "
                           "ES-ImageNet; arXiv version). Pretraining time counts; an ANN epoch runs one step.")
    table.notes.append(f"Fine-tuning: SGD momentum 0.9, lr {FINETUNE_LR:g} x 0.3 every 2 epochs (official step "
                       "schedule); pretraining and scratch: Adam lr {0:g}, cosine. The ramp anneals over the "
                       "pretraining epochs (schedule length = pretraining epochs).".format(b.lr))
    table.data["runs"] = runs
    table.meta["budget"] = dict(dataset=b.dataset, limit=b.limit, channels=list(b.channels), epochs=b.epochs,
                                finetune_epochs=fine_epochs, batch_size=b.batch_size, lr=b.lr, T=T)
    return table


register(Reproduction("pipe-s", "pipe-S (pretrain the ANN twin, transfer, fine-tune) against the SNN from scratch",
                      "Lin et al., TNNLS", "SPEC section 4", reproduce, sizes=("smoke", "lab", "full")))


def figures(table: Table) -> dict[str, Any]:
    """``{"pipe-s": figure}``: pipe-S against training from scratch
    (:func:`spikelab.viz.tet_transfer.pipe_s_figure`)."""
    from spikelab.viz.tet_transfer import pipe_s_figure

    return {"pipe-s": pipe_s_figure(table.data)}
