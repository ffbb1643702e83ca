"""Surrogate width and gradient flow at depth (Ledinauskas et al. 2020; SPEC section 2).

Claim: in a deep spiking ResNet the gradient norm at initialisation grows toward the input (explodes) with a
narrow, tall surrogate and shrinks (vanishes) with a wide, flat one; one range of surrogate scales keeps it flat
across depth, and batch norm on the neurons' input currents is what makes that range exist, so that deep (up to
50-layer) ResNets train. Measured here in two parts:

1. For Spiking-ResNets of several depths (narrow widths), the ratio of the first to the last spiking layer's
   gradient norm (:func:`spikelab.analysis.depth_ratio`) on a real digits batch, over a sweep of surrogate widths
   of two families, with and without batch norm (every tdBN replaced by the identity).
2. The test accuracy after a short SGD training of an 18-layer network for a few settings (exploding, flat and
   vanishing surrogates with BN; the flat surrogate without BN; the vanishing one with Adam, whose per-parameter
   step size undoes a uniformly small gradient).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spikelab import data, models
from spikelab import surrogate as _surrogate
from spikelab._checks import check_int
from spikelab.analysis import depth_ratio, gradient_norms, norms_matrix
from spikelab.layers import TdBatchNorm
from spikelab.models import TET_NEURON
from spikelab.reproduce import Reproduction, register
from spikelab.reproduce._figures import export_figures
from spikelab.reproduce.table import Table, mean_spread

__all__ = ["deep_resnet", "stages_for_depth", "run", "figures"]

FLAT = (0.1, 10.0)  # a first/last gradient-norm ratio inside this band counts as flat


def stages_for_depth(depth: int) -> tuple[int, int, int, int]:
    """Blocks per stage of a 4-stage basic-block ResNet with ``depth`` weight layers: ``depth = 2 + 2 * blocks``
    (stem conv, two convs per block, the FC), spread evenly (18 -> (2, 2, 2, 2), 34 -> (4, 4, 4, 4), 50 ->
    (6, 6, 6, 6)). ``depth`` must be even and at least 10."""
    check_int(depth, "depth", minimum=10)
    if depth % 2:
        raise ValueError(f"depth must be even (2 + 2 per block), got {depth}")
    n = (depth - 2) // 2
    return tuple(n // 4 + (1 if i < n % 4 else 0) for i in range(4))  # type: ignore[return-value]


def deep_resnet(depth: int, width: int, *, bn: bool = True, gamma: float = 1.0, in_channels: int = 1,
                num_classes: int = 10, T: int = 4) -> nn.Module:
    """A Spiking-ResNet of ``depth`` layers, every stage ``width`` channels wide, 3x3 stem, TET's LIF neuron
    (decay 0.5, hard reset) with a triangle surrogate of width ``gamma``. ``bn=False`` replaces every tdBN (the
    batch norm on each neuron's input current) by the identity."""
    neuron = replace(TET_NEURON, surrogate=_surrogate.get("triangle", gamma=gamma))
    model = models.build("spiking-resnet18", num_classes=num_classes, in_channels=in_channels, T=T, stem="cifar",
                         widths=(width,) * 4, stages=stages_for_depth(depth), neuron=neuron)
    if not bn:
        for module in list(model.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, TdBatchNorm):
                    setattr(module, name, nn.Identity())
    return model


@dataclass(frozen=True)
class _Setting:
    label: str
    gamma: float
    bn: bool
    expect: str  # what the claim predicts
    optimizer: str = "sgd"
    lr: float = 0.1


@dataclass(frozen=True)
class _Budget:
    depths: tuple[int, ...]
    width: int
    batch: int
    sweeps: tuple[tuple[str, str, tuple[float, ...]], ...]  # (family, width parameter, values)
    seeds: int  # of the sweep (weights and batch)
    train_seeds: int
    train_depth: int
    train_width: int
    epochs: int
    limit: int | None
    settings: tuple[_Setting, ...]
    heatmap_gammas: tuple[float, ...]


_SETTINGS = (
    _Setting("narrow (gamma 0.2), BN", 0.2, True, "explodes: does not train"),
    _Setting("middle (gamma 1.5), BN", 1.5, True, "flat: trains"),
    _Setting("wide (gamma 5), BN", 5.0, True, "vanishes: does not train"),
    _Setting("middle (gamma 1.5), no BN", 1.5, False, "no BN: does not train"),
    _Setting("wide (gamma 5), BN, Adam", 5.0, True, "not in the paper (Adam rescales small gradients)",
             optimizer="adam", lr=1e-2),
)
BUDGETS = {
    "smoke": _Budget(depths=(10,), width=4, batch=16, sweeps=(("triangle", "gamma", (0.2, 1.0, 5.0)),), seeds=1,
                     train_seeds=1, train_depth=10, train_width=4, epochs=1, limit=64, settings=_SETTINGS[1:3],
                     heatmap_gammas=(0.2, 5.0)),
    "full": _Budget(depths=(18, 50), width=8, batch=32,
                    sweeps=(("triangle", "gamma", tuple(float(v) for v in np.geomspace(0.05, 10, 9))),),
                    seeds=2, train_seeds=2, train_depth=18, train_width=8, epochs=2, limit=500,
                    settings=_SETTINGS[:4],
                    heatmap_gammas=(0.2, 1.5, 5.0)),
}


def _regime(ratio: float) -> str:
    if not np.isfinite(ratio) or ratio > FLAT[1]:
        return "explodes"
    if ratio < FLAT[0]:
        return "vanishes" if ratio > 0 else "vanishes (no gradient reaches the input side)"
    return "flat"


def _batch(size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    loader, _, _ = data.make_loaders("digits", batch_size=size, seed=seed)
    return next(iter(loader))


def _sweep(b: _Budget, seeds: int, progress: bool) -> dict[str, Any]:
    """Median (over seeds) first/last ratio per depth, BN and surrogate width; heatmaps of the deepest net."""
    ratios: dict[str, dict[str, list[list[float]]]] = {}
    heatmaps: dict[str, Any] = {}
    for depth in b.depths:
        for bn in (True, False):
            for family, param, values in b.sweeps:
                key = f"{depth}|{'bn' if bn else 'nobn'}|{family}"
                per_value: list[list[float]] = [[] for _ in values]
                # the swept widths nearest to the heatmaps' (the sweep need not contain them exactly)
                near = {values[int(np.argmin([abs(np.log(v / g)) for v in values]))] for g in b.heatmap_gammas}
                for seed in range(seeds):
                    torch.manual_seed(seed)
                    model = deep_resnet(depth, b.width, bn=bn)
                    x, y = _batch(b.batch, seed)
                    for i, v in enumerate(values):
                        rows = gradient_norms(model, x, y, surrogate=_surrogate.get(family, **{param: v}),
                                              weights=False)
                        per_value[i].append(depth_ratio(rows))
                        if (seed == 0 and depth == b.depths[-1] and family == "triangle"
                                and v in near):
                            names, g = norms_matrix(rows)
                            heatmaps[f"{'BN' if bn else 'no BN'}, gamma {v:g}"] = dict(layers=names, norms=g.tolist())
                ratios.setdefault(key, {})["per_seed"] = per_value
                if progress:
                    print(f"  gradient ratios: {depth} layers, {'BN' if bn else 'no BN'}, {family} done", flush=True)
    # the sweeps' exact values and each family's peak height sigma'(0) (the common axis of the figure)
    axes = {family: dict(param=param, values=list(values),
                         peak=[_surrogate.get(family, **{param: v}).peak for v in values])
            for family, param, values in b.sweeps}
    return dict(ratios=ratios, heatmaps=heatmaps, axes=axes)


def _median(values: list[float]) -> float:
    arr = np.asarray(values, dtype=float)
    return float(np.median(np.where(np.isnan(arr), np.inf, arr)))


def run(*, size: str, out: Path, seeds: int | None, progress: bool) -> Table:
    """Run the reproduction (see the module docstring) at ``size``; training runs go to ``out/runs``."""
    from spikelab.training import fit

    b = BUDGETS[size]
    train_seeds = b.train_seeds if seeds is None else seeds
    seeds = b.seeds if seeds is None else seeds
    table = Table(
        title="Gradient flow through depth against the surrogate's width (Ledinauskas et al. 2020)",
        columns=["part", "network", "surrogate", "first/last gradient ratio at init", "regime",
                 "test accuracy (%)", "paper (qualitative, SPEC 2)"],
    )
    sweep = _sweep(b, seeds, progress)
    for key, entry in sweep["ratios"].items():
        depth, bn, family = key.split("|")
        axis = sweep["axes"][family]
        med = [_median(v) for v in entry["per_seed"]]
        entry["median"] = med
        flat = [v for v, r in zip(axis["values"], med) if FLAT[0] <= r <= FLAT[1]]
        where = (f"flat for {axis['param']} in [{min(flat):.3g}, {max(flat):.3g}]" if flat else "never flat")
        default = _surrogate.get(family)  # the family's default width (triangle gamma 1, atan alpha 2)
        i = int(np.argmin([abs(v - default.params[axis["param"]]) for v in axis["values"]]))
        table.add(part="sweep", network=f"{depth} layers, width {b.width}, {'BN' if bn == 'bn' else 'no BN'}",
                  surrogate=f"{family} ({where})",
                  **{"first/last gradient ratio at init": f"{med[i]:.3g} at {axis['param']} {axis['values'][i]:.3g}",
                     "regime": _regime(med[i]),
                     "paper (qualitative, SPEC 2)": "a flat range exists with BN" if bn == "bn" else
                     "without BN, no flat range"})
    train: dict[str, Any] = {}
    for st in b.settings:
        accs, ratios = [], []
        for seed in range(train_seeds):
            torch.manual_seed(seed)
            model = deep_resnet(b.train_depth, b.train_width, bn=st.bn, gamma=st.gamma)
            x, y = _batch(64, seed)
            ratios.append(depth_ratio(gradient_norms(model, x, y, weights=False)))
            loaders = data.make_loaders("digits", batch_size=32, seed=seed, limit=b.limit)
            name = f"{st.label}-seed{seed}".replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
            h = fit(model, loaders, epochs=b.epochs, lr=st.lr, optimizer=st.optimizer, seed=seed,
                    run_dir=out / "runs" / name, progress=progress, device="cpu",
                    run_config=dict(model=f"spiking-resnet ({b.train_depth} layers)", dataset="digits"))
            accs.append(h.last["test_acc"])
        ratio = _median(ratios)
        train[st.label] = dict(acc=accs, ratio=ratios)
        table.add(part="training", network=f"{b.train_depth} layers, width {b.train_width}, "
                                           f"{'BN' if st.bn else 'no BN'}",
                  surrogate=f"triangle gamma {st.gamma:g}; {st.optimizer.upper()} lr {st.lr:g}, {b.epochs} epochs",
                  **{"first/last gradient ratio at init": f"{ratio:.3g}", "regime": _regime(ratio),
                     "test accuracy (%)": mean_spread(accs, scale=100, digits=1),
                     "paper (qualitative, SPEC 2)": st.expect})
    table.data = dict(sweep=sweep, train=train, depths=list(b.depths), width=b.width, seeds=seeds,
                      train_seeds=train_seeds)
    table.notes += [
        f"Sweep: Spiking-ResNets (neuron after the residual add; TET's LIF, decay 0.5, hard reset) with every stage "
        f"{b.width} channels wide, T=4, on a batch of {b.batch} digits; ratio = ||dL/ds|| of the first spiking layer "
        f"over that of the last (all time steps), median over {seeds} seeds (weights and batch); flat means within "
        f"[{FLAT[0]:g}, {FLAT[1]:g}].",
        "No BN: every tdBN replaced by the identity at the same (Kaiming) initialisation.",
        f"Training: SGD momentum 0.9, cosine schedule, batch 32, SDT loss, {b.epochs} epochs on the digits "
        f"({'all 1,347 train / 450 test' if b.limit is None else f'{b.limit} train / all 450 test'})"
        + (", except the Adam row" if any(st.optimizer == "adam" for st in b.settings) else "")
        + f"; {train_seeds} seeds.",
    ]
    if size == "full":  # the figures docs/RESULTS.md shows, next to the table
        export_figures(figures(table), out / "figures")
    return table


def figures(table: Table) -> dict[str, Any]:
    """Figures from :func:`run`'s table: the ratio against the surrogate peak (one figure per family) and heatmaps
    of per-layer, per-step gradient norms of the deepest network."""
    from spikelab.viz.figures import depth_ratio_figure, gradient_heatmap

    sweep = table.data["sweep"]
    figs: dict[str, Any] = {}
    for family, axis in sweep["axes"].items():
        curves = {}
        for key, entry in sweep["ratios"].items():
            depth, bn, fam = key.split("|")
            if fam == family:
                curves[f"{depth} layers, {'BN' if bn == 'bn' else 'no BN'}"] = entry["median"]
        figs[f"gradient_ratio_{family}"] = depth_ratio_figure(
            axis["peak"], curves, x_title=f"{family} surrogate peak σ'(0) (narrow and tall to the right)",
            title=f"First/last-layer gradient norm at init, {family} surrogate")
    for label, hm in sweep["heatmaps"].items():
        name = "gradient_heatmap_" + label.replace(", ", "_").replace(" ", "")
        figs[name] = gradient_heatmap(np.asarray(hm["norms"]), layer_names=hm["layers"],
                                      title=f"{table.data['depths'][-1]} layers, {label}: ||dL/ds|| per layer and step")
    return figs


register(Reproduction(
    name="gradient-flow", title="surrogate width and gradient flow through a deep spiking ResNet, with/without BN",
    paper="Ledinauskas et al. 2020", spec="SPEC section 2", fn=run,
))
