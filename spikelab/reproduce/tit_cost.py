"""The cost of time inheritance training (Deng et al., ICLR 2022; SPEC section 3).

The claim: training many epochs at a small T and fine-tuning a few at the target T costs far less than training at
the target T from scratch (their example: 300 epochs at T=2 + 50 at T=6 = 900 epoch-steps, against 1800 for 300
epochs at T=6) for about the same accuracy. Here, at the paper's proportions scaled down (E epochs at T=2 + E/6 at
T=6, against E at T=6), on Fashion-MNIST with the small conv SNN, TET's neuron and the TET loss. Both arms of every
seed run in one process one after the other (their order alternating between seeds), so their wall times are
measured under the same load. The TIT-trained and the scratch models are then evaluated at T = 1, 2, 4, 6, 8.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from spikelab.losses import tet_preset
from spikelab.models import TET_NEURON
from spikelab.reproduce import Reproduction, register
from spikelab.reproduce._budget import Budget, Progress, conv_net, final_acc, loaders, pct, run_dir, seed_list
from spikelab.reproduce.table import Table, mean_spread
from spikelab.training import TrainConfig, evaluate_at_T, fit, fit_tit

T_SMALL, T_TARGET = 2, 6
EVAL_TS = (1, 2, 4, 6, 8)
FINETUNE_LR = 0.1  # the fine-tuning phase's peak learning rate, as a fraction of the first phase's
SIZES = {
    "smoke": Budget("fashion-mnist", 64, (4, 8), epochs=2, seeds=1),
    "full": Budget("fashion-mnist", 4000, (16, 32), epochs=6, seeds=3),
}
# lab: what lab 06 re-runs, a few minutes on a laptop (1,000 images, one seed, narrower convs)
SIZES["lab"] = Budget("fashion-mnist", 1000, (8, 16), epochs=6, seeds=1)


def reproduce(*, size: str, out: Path, seeds: int | None, progress: bool) -> Table:
    """TIT (E epochs at T=2, then E/6 at T=6) against E epochs at T=6 from scratch, same seeds and data."""
    b = SIZES[size]
    fine = max(1, round(b.epochs / 6))
    cost_tit, cost_scratch = b.epochs * T_SMALL + fine * T_TARGET, b.epochs * T_TARGET
    say = Progress(progress, 2 * len(seed_list(seeds, b)))
    arms: dict[str, dict[str, list]] = {a: {"acc": [], "time": [], "at_T": []} for a in ("tit", "scratch")}
    runs = []
    for seed in seed_list(seeds, b):
        data = loaders(b, seed=seed)
        config = TrainConfig(epochs=b.epochs, lr=b.lr, seed=seed, device="cpu",
                             **tet_preset("cifar", v_th=TET_NEURON.v_th))
        run_config = dict(model="conv-small", dataset=b.dataset, limit=b.limit, channels=list(b.channels))
        order = ("tit", "scratch") if seed % 2 == 0 else ("scratch", "tit")
        for arm in order:
            net = conv_net(b, data[2], T=T_SMALL if arm == "tit" else T_TARGET, neuron=TET_NEURON, seed=seed)
            name = f"{arm}-seed{seed}"
            if arm == "tit":
                h = fit_tit(net, data, config, T=(T_SMALL, T_TARGET), epochs=(b.epochs, fine),
                            lr=(b.lr, FINETUNE_LR * b.lr), run_dir=run_dir(out, name), progress=progress,
                            run_config=dict(run_config, T=T_TARGET))
            else:
                h = fit(net, data, config, run_dir=run_dir(out, name), progress=progress,
                        run_config=dict(run_config, T=T_TARGET))
            wall = h.epochs[-1]["time_s"]
            rows = evaluate_at_T(net, data[1], EVAL_TS)
            arms[arm]["acc"].append(final_acc(h))
            arms[arm]["time"].append(wall)
            arms[arm]["at_T"].append([r["acc"] for r in rows])
            runs.append(dict(arm=arm, seed=seed, final=final_acc(h), time_s=wall,
                             at_T={r["T"]: r["acc"] for r in rows},
                             epochs=[dict(epoch=e["epoch"], T=e.get("T", T_TARGET), test_acc=e["test_acc"],
                                          time_s=e["time_s"]) for e in h.epochs]))
            say(f"{name}: test {pct(final_acc(h))} % at T={T_TARGET}, {wall:.1f} s")

    table = Table(f"Time inheritance training: {b.epochs} epochs at T={T_SMALL} + {fine} at T={T_TARGET}, against "
                  f"{b.epochs} at T={T_TARGET} from scratch (Fashion-MNIST)",
                  ["arm", "epoch-steps", "wall time (s)", f"test acc at T={T_TARGET} (%)",
                   *[f"acc at T={t} (%)" for t in EVAL_TS], "paper"])
    labels = {"tit": f"TIT: T={T_SMALL} x {b.epochs} + T={T_TARGET} x {fine}",
              "scratch": f"scratch: T={T_TARGET} x {b.epochs}"}
    paper = {"tit": "T=2 x 300 + T=6 x 50: 900 epoch-steps", "scratch": "T=6 x 300: 1800 epoch-steps"}
    for arm, cost in (("tit", cost_tit), ("scratch", cost_scratch)):
        a = arms[arm]
        at_T = {f"acc at T={t} (%)": mean_spread([r[i] for r in a["at_T"]], scale=100) for i, t in enumerate(EVAL_TS)}
        table.add(arm=labels[arm], **{"epoch-steps": cost, "wall time (s)": mean_spread(a["time"], digits=1),
                                      f"test acc at T={T_TARGET} (%)": mean_spread(a["acc"], scale=100),
                                      "paper": paper[arm]}, **at_T)
    ratio = [t / s for t, s in zip(arms["tit"]["time"], arms["scratch"]["time"])]
    table.notes.append(f"Epoch-steps (epochs x T) of TIT / scratch: {cost_tit}/{cost_scratch} = "
                       f"{cost_tit / cost_scratch:.2f} (paper 900/1800 = 0.50); measured wall-time ratio "
                       f"{mean_spread(ratio)} (per seed, same process and load; wall time includes each epoch's "
                       f"test evaluation at the run's T).")
    table.notes.append(f"TET loss (lam 0.05, phi 1), TET's neuron, Adam with a cosine schedule per phase; the "
                       f"fine-tuning phase starts a fresh optimiser at {FINETUNE_LR:g} x the first phase's lr.")
    table.data["runs"] = runs
    table.meta["budget"] = dict(dataset=b.dataset, limit=b.limit, channels=list(b.channels), epochs=b.epochs,
                                finetune_epochs=fine, batch_size=b.batch_size, lr=b.lr)
    return table


register(Reproduction("tit-cost", "time inheritance training (T=2 then T=6) against T=6 from scratch: cost",
                      "Deng et al., ICLR 2022", "SPEC section 3", reproduce, sizes=("smoke", "lab", "full")))


def figures(table: Table) -> dict[str, Any]:
    """``{"tit-cost": figure}``: TIT and scratch accuracy against wall time, and at other T
    (:func:`spikelab.viz.tet_transfer.tit_figure`)."""
    from spikelab.viz.tet_transfer import tit_figure

    return {"tit-cost": tit_figure(table.data)}
