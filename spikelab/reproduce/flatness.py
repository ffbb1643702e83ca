"""TET's flatness claim (Deng et al., ICLR 2022; SPEC section 3): networks trained with TET converge to flatter
minima than SDT-trained ones (the paper shows loss-landscape plots).

Measured here with SDT- and TET-trained twins (same model, seed, data order and budget; several seeds): the top
Hessian eigenvalue at the trained weights (:func:`spikelab.analysis.top_hessian_eigenvalue`, power iteration on a
fixed test batch, BN in eval mode), 1-D loss curves along a filter-normalised random direction (the same random
seed for both twins) and a 2-D landscape for the first seed. Every landscape and the main sharpness number use
the same yardstick for both twins, the cross-entropy of the time-averaged output (the SDT loss); the sharpness of
each twin's own training loss is reported beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikelab import data, models
from spikelab.analysis import loss_landscape_1d, loss_landscape_2d, random_direction, top_hessian_eigenvalue
from spikelab.losses import get_loss, sdt_loss
from spikelab.models import TET_NEURON
from spikelab.reproduce import Reproduction, register
from spikelab.reproduce._figures import export_figures
from spikelab.reproduce.table import Table, mean_spread

__all__ = ["run", "figures"]

LAM = 0.05  # TET's lam on CIFAR (SPEC section 3)


@dataclass(frozen=True)
class _Data:
    name: str
    epochs: int
    limit: int | None  # samples per split (None: all)
    batch_size: int
    seeds: int
    eval_samples: int  # test samples for the landscapes and the sharpness batch
    iters: int  # power iterations at most
    grid: int  # points per axis of the 2-D landscape


@dataclass(frozen=True)
class _Budget:
    datasets: tuple[_Data, ...]
    channels: tuple[int, ...]
    T: int
    lr: float
    alphas: tuple[float, ...]
    tol: float  # power iteration's relative tolerance


BUDGETS = {
    "smoke": _Budget(datasets=(_Data("digits", 1, 64, 32, 1, 32, 5, 3),), channels=(4, 8), T=2, lr=1e-2,
                     alphas=(-0.5, 0.0, 0.5), tol=1e-3),
    "full": _Budget(datasets=(_Data("digits", 3, 600, 32, 2, 128, 20, 9),),
                    channels=(16, 32), T=4, lr=1e-2, alphas=tuple(float(a) for a in np.linspace(-1, 1, 13)),
                    tol=1e-3),
}


def _eval_batch(test: Any, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys, got = [], [], 0
    for x, y in test:
        xs.append(x)
        ys.append(y)
        got += len(y)
        if got >= n:
            break
    return torch.cat(xs)[:n], torch.cat(ys)[:n]


def _increase(alphas: np.ndarray, losses: np.ndarray, step: float) -> float:
    """Mean loss increase over the centre at ``alpha = -step`` and ``+step``."""
    centre = losses[int(np.argmin(np.abs(alphas)))]
    at = [losses[int(np.argmin(np.abs(alphas - s)))] for s in (-step, step)]
    return float(np.mean(at) - centre)


def run(*, size: str, out: Path, seeds: int | None, progress: bool) -> Table:
    """Run the reproduction (see the module docstring) at ``size``; training runs go to ``out/runs``."""
    from spikelab.training import fit

    b = BUDGETS[size]
    table = Table(
        title="TET against SDT: sharpness and loss landscapes of the trained twins (Deng et al. 2022)",
        columns=["dataset", "training loss", "test accuracy (%)", "SDT loss at the minimum",
                 "sharpness: top Hessian eigenvalue (SDT loss)", "sharpness (own training loss)",
                 "loss rise at |alpha| = 0.5", "loss rise at |alpha| = 1", "paper (qualitative)"],
    )
    alphas = np.asarray(b.alphas)
    results: dict[str, Any] = {}
    for d in b.datasets:
        per: dict[str, list[dict[str, Any]]] = {"sdt": [], "tet": []}
        grid = np.linspace(-1, 1, d.grid) if size == "full" else np.linspace(-0.5, 0.5, d.grid)
        for seed in range(d.seeds if seeds is None else seeds):
            train, test, info = data.make_loaders(d.name, batch_size=d.batch_size, seed=seed, limit=d.limit)
            batch = _eval_batch(test, d.eval_samples)
            for loss in ("sdt", "tet"):
                torch.manual_seed(seed)
                model = models.build("conv-small", num_classes=info.num_classes, in_channels=info.input_shape[0],
                                     T=b.T, channels=b.channels, input_size=tuple(info.input_shape[-2:]),
                                     neuron=TET_NEURON)
                h = fit(model, (train, test, info), epochs=d.epochs, lr=b.lr, loss=loss, lam=LAM, seed=seed,
                        device="cpu", run_dir=out / "runs" / f"{d.name}-{loss}-seed{seed}", progress=progress,
                        run_config=dict(model="conv-small", dataset=d.name))
                own = get_loss(loss, lam=LAM)
                sharp = top_hessian_eigenvalue(model, sdt_loss, batch, iters=d.iters, tol=b.tol, seed=seed)
                sharp_own = top_hessian_eigenvalue(model, own, batch, iters=d.iters, tol=b.tol, seed=seed)
                direction = random_direction(model, seed=1000 + seed)  # the same random seed for both twins
                curve = loss_landscape_1d(model, sdt_loss, [batch], alphas, direction=direction)
                entry: dict[str, Any] = dict(
                    acc=h.last["test_acc"], centre=float(curve[int(np.argmin(np.abs(alphas)))]),
                    sharpness=sharp.eigenvalue, sharpness_history=list(sharp.history), converged=sharp.converged,
                    sharpness_own=sharp_own.eigenvalue, curve=curve.tolist(),
                    rise_half=_increase(alphas, curve, 0.5), rise_one=_increase(alphas, curve, 1.0))
                if seed == 0:
                    dirs = (random_direction(model, seed=2000), random_direction(model, seed=2001))
                    entry["surface"] = loss_landscape_2d(model, sdt_loss, [batch], grid, grid,
                                                         directions=dirs).tolist()
                    entry["grid"] = grid.tolist()
                per[loss].append(entry)
            if progress:
                print(f"  {d.name}: seed {seed} done", flush=True)
        results[d.name] = per
        for loss in ("sdt", "tet"):
            rs = per[loss]
            table.add(dataset=f"{d.name} ({d.epochs} epochs{'' if d.limit is None else f', {d.limit} per split'})",
                      **{"training loss": "TET (lam 0.05)" if loss == "tet" else "SDT",
                         "test accuracy (%)": mean_spread([r["acc"] for r in rs], scale=100, digits=2),
                         "SDT loss at the minimum": mean_spread([r["centre"] for r in rs], digits=3),
                         "sharpness: top Hessian eigenvalue (SDT loss)": mean_spread([r["sharpness"] for r in rs],
                                                                                     digits=3),
                         "sharpness (own training loss)": mean_spread([r["sharpness_own"] for r in rs], digits=3),
                         "loss rise at |alpha| = 0.5": mean_spread([r["rise_half"] for r in rs], digits=3),
                         "loss rise at |alpha| = 1": mean_spread([r["rise_one"] for r in rs], digits=3),
                         "paper (qualitative)": "TET: flatter minimum" if loss == "tet" else "SDT: sharper"})
    table.data = dict(results=results, alphas=list(b.alphas))
    table.notes += [
        f"Twins: conv-small (channels {b.channels}) with TET's neuron (LIF decay 0.5, hard reset, triangle "
        f"surrogate gamma 1), T={b.T}, Adam lr {b.lr:g}, cosine; same seed, data order and epochs; TET with lam "
        f"{LAM} (phi 1). Seeds: " + ", ".join(f"{d.name} {d.seeds if seeds is None else seeds}"
                                             for d in b.datasets) + ".",
        "Landscapes and sharpness on the first test samples (" + ", ".join(f"{d.name} {d.eval_samples}"
                                                                          for d in b.datasets)
        + "), batch norm in eval mode; directions filter-normalised (Li et al. 2018). Sharpness: power iteration on "
        f"Hessian-vector products of the surrogate gradient, until two estimates agree within {b.tol:g} "
        "(relative) or at most " + ", ".join(f"{d.iters}" for d in b.datasets) + " iterations.",
    ]
    if size == "full":  # the figures docs/RESULTS.md shows, next to the table
        export_figures(figures(table), out / "figures")
    return table


def figures(table: Table) -> dict[str, Any]:
    """1-D landscapes (SDT against TET, every seed), the 2-D landscapes of seed 0 and the power-iteration
    convergence, per dataset."""
    from spikelab.viz.figures import convergence_figure, landscape_1d_figure, landscape_2d_figure

    figs: dict[str, Any] = {}
    alphas = table.data["alphas"]
    for dataset, per in table.data["results"].items():
        curves = {f"{loss.upper()}, seed {i}": r["curve"] for loss in ("sdt", "tet") for i, r in enumerate(per[loss])}
        figs[f"flatness_1d_{dataset}"] = landscape_1d_figure(
            alphas, curves, title=f"{dataset}: SDT loss along a random direction, SDT- and TET-trained twins")
        for loss in ("sdt", "tet"):
            if per[loss] and "surface" in per[loss][0]:
                grid = per[loss][0]["grid"]
                figs[f"flatness_2d_{dataset}_{loss}"] = landscape_2d_figure(
                    grid, grid, per[loss][0]["surface"], kind="contour",
                    title=f"{dataset}: SDT loss around the {loss.upper()}-trained minimum (seed 0)")
        figs[f"flatness_convergence_{dataset}"] = convergence_figure(
            {f"{loss.upper()}, seed {i}": r["sharpness_history"] for loss in ("sdt", "tet")
             for i, r in enumerate(per[loss])},
            title=f"{dataset}: power iteration for the top Hessian eigenvalue (SDT loss)")
    return figs


register(Reproduction(
    name="flatness", title="TET's flatter minima: sharpness and 1-D/2-D loss landscapes of SDT/TET twins",
    paper="Deng et al., ICLR 2022", spec="SPEC section 3", fn=run,
))
