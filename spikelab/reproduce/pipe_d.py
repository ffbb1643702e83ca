"""pipe-D: static pretraining as a bridge to event data (Lin et al., TNNLS; SPEC section 4).

The claim: an SNN for event-camera data trained from a network pretrained on static images beats the same SNN
trained from scratch on the events at the same budget (ES-ImageNet, ResNet-18 LIF: 39.89 % from scratch, 43.74 %
with ImageNet pretraining). Here: Fashion-MNIST's static images for pretraining and its emulated saccade events
(``fashion-mnist-events``, 2 x 34 x 34 frames) for the task, the small conv SNN with the official neuron. The
pretrained arm trains the ANN twin on the static images (pipe-S's ramp, annealed over its epochs), copies it into
the event SNN (:func:`~spikelab.transfer.to_event_model`: the stem conv's ON/OFF kernels the mean of the
pretrained kernels, a new head), then trains on the events with the body frozen for the first epochs and unfrozen
after. The scratch arm trains the same event SNN from the same initial weights for the same number of event epochs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from spikelab.reproduce import Reproduction, register
from spikelab.reproduce._budget import (
    Budget, Progress, best_acc, conv_net, final_acc, loaders, pct, run_dir, seed_list,
)
from spikelab.reproduce.table import Table, mean_spread
from spikelab.training import TrainConfig, fit
from spikelab.transfer import PIPE_S_NEURON, RampSchedule, finetune_events, pretrain, ramp_twin, to_event_model

T_EVENTS = 6  # frames per event sample
# (static pretraining budget, event budget, frozen epochs)
SIZES = {
    "smoke": (Budget("fashion-mnist", 64, (4, 8), epochs=1, seeds=1),
              Budget("fashion-mnist-events", 64, (4, 8), epochs=2, seeds=1), 1),
    # full: 600 event samples per split x 3 epochs, about 30 min per seed on 2 cores shared by ~8 jobs (3,000 x 4
    # took 30 min for the scratch arm alone at load 13-17)
    "full": (Budget("fashion-mnist", 4000, (16, 32), epochs=4, seeds=3),
             Budget("fashion-mnist-events", 600, (16, 32), epochs=3, seeds=3), 1),
}
PAPER = {"scratch": "ES-ImageNet, ResNet-18 LIF from scratch: 39.89",
         "pretrained": "with ImageNet pretraining: 43.74 (+3.85)"}
# lab: what lab 09 re-runs, a few minutes on a laptop (one seed, narrower convs, 300 event samples per split)
SIZES["lab"] = (Budget("fashion-mnist", 1000, (8, 16), epochs=2, seeds=1),
                Budget("fashion-mnist-events", 300, (8, 16), epochs=3, seeds=1), 1)


def reproduce(*, size: str, out: Path, seeds: int | None, progress: bool) -> Table:
    """Event SNN from scratch against the same SNN from static pretraining, same event budget, several seeds."""
    sb, eb, frozen = SIZES[size]
    seeds_ = seed_list(seeds, eb)
    say = Progress(progress, 3 * len(seeds_))
    runs = []
    for seed in seeds_:
        static, events = loaders(sb, seed=seed), loaders(eb, seed=seed, T=T_EVENTS)
        ev_info = events[2]
        run_config = dict(model="conv-small", dataset=eb.dataset, limit=eb.limit, channels=list(eb.channels),
                          T=T_EVENTS)
        config = TrainConfig(epochs=eb.epochs, lr=eb.lr, seed=seed, device="cpu")
        scratch = conv_net(eb, ev_info, T=T_EVENTS, neuron=PIPE_S_NEURON, seed=seed)
        h_scratch = fit(scratch, events, config, progress=progress, run_dir=run_dir(out, f"scratch-seed{seed}"),
                        run_config=run_config)
        say(f"scratch seed {seed}: {pct(final_acc(h_scratch))} %")
        torch.manual_seed(seed)
        ann = ramp_twin("conv-small", num_classes=10, in_channels=1, neuron=PIPE_S_NEURON,
                        schedule=RampSchedule(length=sb.epochs), channels=sb.channels,
                        input_size=tuple(static[2].input_shape[-2:]))
        h_pre = pretrain(ann, static, TrainConfig(epochs=sb.epochs, lr=sb.lr, seed=seed, device="cpu"),
                         progress=progress, run_dir=run_dir(out, f"static-pretrain-seed{seed}"),
                         run_config=dict(run_config, dataset=sb.dataset, limit=sb.limit, T=1))
        say(f"static pretraining seed {seed}: ANN twin {pct(final_acc(h_pre))} % on static images")
        model = conv_net(eb, ev_info, T=T_EVENTS, neuron=PIPE_S_NEURON, seed=seed)  # the scratch arm's init
        to_event_model(ann, model)
        h_tr = finetune_events(model, events, config, frozen_epochs=frozen, unfrozen_epochs=eb.epochs - frozen,
                               progress=progress, run_dir=run_dir(out, f"pretrained-seed{seed}"),
                               run_config=run_config)
        say(f"pretrained seed {seed}: {pct(final_acc(h_tr))} %")
        runs.append(dict(seed=seed, scratch=final_acc(h_scratch), scratch_best=best_acc(h_scratch),
                         pretrained=final_acc(h_tr), pretrained_best=best_acc(h_tr),
                         static_ann=final_acc(h_pre), pretrain_time_s=h_pre.epochs[-1]["time_s"],
                         scratch_time_s=h_scratch.epochs[-1]["time_s"], pretrained_time_s=h_tr.epochs[-1]["time_s"],
                         scratch_curve=[e["test_acc"] for e in h_scratch.epochs],
                         pretrained_curve=[e["test_acc"] for e in h_tr.epochs]))

    table = Table(f"pipe-D: event SNN from scratch against static pretraining, {eb.epochs} epochs on "
                  f"fashion-mnist-events (T={T_EVENTS}): test accuracy (%)",
                  ["arm", "test acc, last epoch (%)", "best epoch (%)", "event training time (s)", "paper"])
    table.add(arm=f"scratch: {eb.epochs} event epochs", **{
        "test acc, last epoch (%)": mean_spread([r["scratch"] for r in runs], scale=100),
        "best epoch (%)": mean_spread([r["scratch_best"] for r in runs], scale=100),
        "event training time (s)": mean_spread([r["scratch_time_s"] for r in runs], digits=1),
        "paper": PAPER["scratch"]})
    table.add(arm=f"static pretraining ({sb.epochs} epochs, ANN twin), then {frozen} frozen + "
                  f"{eb.epochs - frozen} unfrozen event epochs", **{
        "test acc, last epoch (%)": mean_spread([r["pretrained"] for r in runs], scale=100),
        "best epoch (%)": mean_spread([r["pretrained_best"] for r in runs], scale=100),
        "event training time (s)": mean_spread([r["pretrained_time_s"] for r in runs], digits=1),
        "paper": PAPER["pretrained"]})
    table.add(arm="difference (pretrained - scratch), paired by seed", **{
        "test acc, last epoch (%)": mean_spread([r["pretrained"] - r["scratch"] for r in runs], scale=100),
        "best epoch (%)": mean_spread([r["pretrained_best"] - r["scratch_best"] for r in runs], scale=100),
        "paper": "+3.85"})
    table.notes.append(f"Static pretraining: the ANN twin on {sb.limit or 'all'} static Fashion-MNIST images, "
                       f"{sb.epochs} epochs, {mean_spread([r['pretrain_time_s'] for r in runs], digits=1)} s, "
                       f"reaching {mean_spread([r['static_ann'] for r in runs], scale=100)} % on static test "
                       "images; its time is not part of the event budget (as ImageNet pretraining is not in the "
                       "paper's).")
    table.notes.append("Both arms: the official neuron, Adam with a cosine schedule (restarted when the body is "
                       "unfrozen), the same initial weights for the layers that are not transferred.")
    table.data["runs"] = runs
    table.meta["budget"] = dict(static=dict(limit=sb.limit, epochs=sb.epochs), events=dict(
        limit=eb.limit, epochs=eb.epochs, frozen_epochs=frozen, T=T_EVENTS), channels=list(eb.channels),
        batch_size=eb.batch_size, lr=eb.lr)
    return table


register(Reproduction("pipe-d", "pipe-D (static pretraining, event stem, frozen body) against events from scratch",
                      "Lin et al., TNNLS", "SPEC section 4", reproduce, sizes=("smoke", "lab", "full")))


def figures(table: Table) -> dict[str, Any]:
    """``{"pipe-d": figure}``: pipe-D against training from scratch on events
    (:func:`spikelab.viz.tet_transfer.pipe_d_figure`)."""
    from spikelab.viz.tet_transfer import pipe_d_figure

    return {"pipe-d": pipe_d_figure(table.data)}
