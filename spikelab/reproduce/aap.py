"""Dual-stream training with an auxiliary accumulation pathway (Chen et al. 2023; SPEC section 5).

Claims: (1) a full-spike network (FSNN) trained with the detachable accumulation pathway (DST) is more accurate than
the same FSNN trained without it, and keeps its accumulate-only cost; (2) keeping the pathway at test time (the
dual-stream network, DSNN) adds a little accuracy for a few MACs; (3) at similar accuracy the FSNN / DSNN spend far
less energy than a SEW-ResNet (ADD joins, whose spike counts make every later layer multiply).

Measured here, for one small residual layout on the digits (the ``full`` size, cut down to fit a shared 2-core
machine; the smoke size also runs the digits as emulated events, and Fashion-MNIST fits :class:`_Data` too): the
same network (``dsnn-small``-style, IAND joins, AAP's IF neuron) trained with the pathway and without it (same seeds
and budget); the pathway-trained one evaluated as FSNN and as DSNN; a SEW-ResNet (ADD) of the same layout and
neuron. Per model: test accuracy (mean ± sd over seeds), mean firing rate, ACs, MACs and the 45 nm energy estimate
per sample (:func:`spikelab.metrics.ops_table` on the test set), beside the paper's ImageNet rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikelab import data, models
from spikelab.metrics import ops_totals
from spikelab.models import AAP_NEURON
from spikelab.reproduce import Reproduction, register
from spikelab.reproduce._figures import export_figures
from spikelab.reproduce.table import Table, mean_spread

__all__ = ["run", "figures", "imagenet_macs", "PAPER_ROWS"]

#: SPEC section 5, ImageNet 224x224, T=4: (model, ACs G, MACs G, energy mJ, top-1 %)
PAPER_ROWS = (
    ("DSNN-18", 1.69, 0.20, 2.44, 63.46),
    ("SEW-ResNet-18", 0.50, 2.75, 13.10, 63.18),
    ("Spiking-ResNet-18", 0.10, 0.14, 0.734, 62.32),
    ("ANN ResNet-18", 0.0, 1.82, 8.372, 69.76),
)


@dataclass(frozen=True)
class _Data:
    name: str
    epochs: int
    limit: int | None  # training samples (None: all)
    test_limit: int | None  # test samples (None: all)
    batch_size: int
    T: int  # time steps (event frames for event data)
    widths: tuple[int, ...]
    stages: tuple[int, ...]
    seeds: int


@dataclass(frozen=True)
class _Budget:
    datasets: tuple[_Data, ...]
    lr: float
    imagenet: tuple[int, float]  # (image size, width multiplier) of the operation-count check at ImageNet geometry


BUDGETS = {
    "smoke": _Budget(datasets=(_Data("digits", 1, 32, 32, 16, 2, (4, 8, 8), (1, 1, 1), 1),
                               _Data("digits-events", 1, 16, 16, 8, 3, (4, 8, 8), (1, 1, 1), 1)),
                     lr=1e-2, imagenet=(32, 1 / 16)),
    "full": _Budget(datasets=(_Data("digits", 2, 500, None, 32, 4, (8, 16, 32), (1, 1, 1), 2),),
                    lr=1e-2, imagenet=(224, 1.0)),
}
#: (label, how it is built and trained, the mode it is evaluated in)
VARIANTS = (
    ("FSNN trained with the pathway (DST), pathway removed", "dsnn", True, False),
    ("DSNN: the same network, pathway kept", "dsnn", True, True),
    ("FSNN trained without the pathway", "dsnn", False, False),
    ("SEW-ResNet (ADD), same layout", "sew", None, None),
)


def _build(kind: str, d: _Data, info: data.DatasetInfo, pathway: bool | None) -> torch.nn.Module:
    in_channels = info.input_shape[1] if info.is_event else info.input_shape[0]
    common = dict(num_classes=info.num_classes, in_channels=in_channels, T=d.T, widths=d.widths, stages=d.stages)
    if kind == "dsnn":
        return models.build("dsnn-small", pathway=bool(pathway), **common)
    return models.build("sew-resnet18", stem="cifar", connect="ADD", neuron=AAP_NEURON, **common)


def _measure(model: torch.nn.Module, test_loader: Any, is_event: bool) -> dict[str, float]:
    from spikelab.training import evaluate

    res = evaluate(model, test_loader, ops=True, device="cpu", sequence_input=is_event)
    tot = ops_totals(res["ops"])
    rates = list(res["firing_rates"].values())
    return dict(acc=res["acc"], rate=float(np.mean(rates)) if rates else 0.0, acs=tot["acs"], macs=tot["macs"],
                energy_pj=tot["energy_pj"])


#: the paper's rows and the registered model our count uses for each (built untrained at the paper's geometry)
_IMAGENET_MODELS = {"DSNN-18": ("dsnn-resnet18", {}), "SEW-ResNet-18": ("sew-resnet18", dict(connect="ADD")),
                    "Spiking-ResNet-18": ("spiking-resnet18", {}), "ANN ResNet-18": ("spiking-resnet18",
                                                                                       dict(spiking=False))}


def imagenet_macs(size: int = 224, width: float = 1.0, seed: int = 0) -> dict[str, float]:
    """MACs per image that our counting rules give each paper model at ImageNet geometry (``size`` x ``size``,
    1000 classes, T=4), untrained, on one random image. MACs hardly depend on the weights: they come from the
    real-valued stem, the non-spike pathway, and layers whose input is a spike count (SEW's ADD) or real (ANN)."""
    from spikelab.metrics import ops_table

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, size, size, generator=g)
    out = {}
    for paper_name, (name, kw) in _IMAGENET_MODELS.items():
        torch.manual_seed(seed)
        kw = dict(kw)
        if name != "spiking-resnet18" or kw.get("spiking", True):
            kw.setdefault("neuron", AAP_NEURON)
        model = models.build(name, num_classes=1000, in_channels=3, T=4, width=width, **kw)
        out[paper_name] = ops_totals(ops_table(model, x))["macs"]
    return out


def _si(v: float) -> str:
    for factor, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= factor:
            return f"{v / factor:.3g} {unit}"
    return f"{v:.3g}"


def run(*, size: str, out: Path, seeds: int | None, progress: bool) -> Table:
    """Run the reproduction (see the module docstring) at ``size``; training runs go to ``out/runs``."""
    from spikelab.training import fit

    b = BUDGETS[size]
    table = Table(
        title="Dual-stream training with an auxiliary accumulation pathway (Chen et al. 2023)",
        columns=["dataset", "model", "test accuracy (%)", "firing rate", "ACs / sample", "MACs / sample",
                 "energy / sample", "paper: ImageNet, T=4 (ACs, MACs, mJ, top-1 %)"],
    )
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for d in b.datasets:
        per: dict[str, list[dict[str, float]]] = {label: [] for label, *_ in VARIANTS}
        n_seeds = d.seeds if seeds is None else seeds
        for seed in range(n_seeds):
            events = {"T": d.T} if d.name.endswith("-events") else {}
            train, test, info = data.make_loaders(d.name, batch_size=d.batch_size, seed=seed, limit=d.limit, **events)
            if d.test_limit != d.limit:
                test = data.make_loaders(d.name, batch_size=d.batch_size, seed=seed, limit=d.test_limit, **events)[1]
            trained: dict[tuple[str, bool | None], torch.nn.Module] = {}
            for label, kind, train_pathway, eval_pathway in VARIANTS:
                key = (kind, train_pathway)
                if key not in trained:
                    torch.manual_seed(seed)
                    model = _build(kind, d, info, train_pathway)
                    tag = {("dsnn", True): "dst", ("dsnn", False): "fsnn", ("sew", None): "sew"}[key]
                    fit(model, (train, test, info), epochs=d.epochs, lr=b.lr, seed=seed, device="cpu",
                        run_dir=out / "runs" / f"{d.name}-{tag}-seed{seed}", progress=progress,
                        run_config=dict(model=tag, dataset=d.name))
                    trained[key] = model
                model = trained[key]
                if eval_pathway is not None:
                    model.pathway = eval_pathway
                per[label].append(_measure(model, test, info.is_event))
            if progress:
                print(f"  {d.name}: seed {seed} done", flush=True)
        results[d.name] = per
        split = ("" if d.limit is None else f", {d.limit} train / {d.test_limit or 'all'} test") + f", T={d.T}"
        for label, *_ in VARIANTS:
            rs = per[label]
            table.add(dataset=f"{d.name} ({d.epochs} epochs{split}; widths {'/'.join(map(str, d.widths))})",
                      model=label, **{
                          "test accuracy (%)": mean_spread([r["acc"] for r in rs], scale=100, digits=2),
                          "firing rate": f"{np.mean([r['rate'] for r in rs]):.3f}",
                          "ACs / sample": _si(float(np.mean([r["acs"] for r in rs]))),
                          "MACs / sample": _si(float(np.mean([r["macs"] for r in rs]))),
                          "energy / sample": f"{np.mean([r['energy_pj'] for r in rs]) / 1e6:.3g} µJ",
                      })
    img, width = b.imagenet
    ours = imagenet_macs(img, width)
    for name, acs, macs, mj, top1 in PAPER_ROWS:
        table.add(dataset="ImageNet (paper)", model=name,
                  **{"MACs / sample": f"ours {_si(ours[name])} (rules check: untrained, {img}x{img}"
                                      + (f", width x{width:g}" if width != 1 else "") + ")",
                     "paper: ImageNet, T=4 (ACs, MACs, mJ, top-1 %)": f"{acs} G, {macs} G, {mj} mJ, {top1}"})
    table.data = dict(results=results, imagenet_macs=ours,
                      layouts={d.name: dict(widths=list(d.widths), stages=list(d.stages), T=d.T) for d in b.datasets})
    table.notes += [
        "Layout: 3x3 stem, one block per stage (stages 1/1/1; two stage changes, each with its accumulation "
        "shortcut), the widths in the dataset column; AAP's neuron (IF, v_th 1, hard detached reset, sigmoid "
        f"surrogate); Adam lr {b.lr:g}, cosine, batch " + ", ".join(f"{d.batch_size} ({d.name})" for d in b.datasets)
        + ", SDT loss (two-term with the pathway); "
        f"seeds: {', '.join(f'{d.name} {d.seeds if seeds is None else seeds}' for d in b.datasets)}.",
        "The DSNN predicts from the accumulation head; the FSNN from the spike head (see spikelab.models.dsnn).",
        "Operation counts per test sample (SPEC section 5): binary-input layers count ops x input firing rate ACs, "
        "the stem and the pathway count MACs, each neuron one AC per element; the paper counts at 224x224 ImageNet.",
    ]
    if size == "full":  # the figures docs/RESULTS.md shows, next to the table
        export_figures(figures(table), out / "figures")
    return table


def figures(table: Table) -> dict[str, Any]:
    """Accuracy against energy per model, one figure per dataset."""
    from spikelab.viz.figures import accuracy_energy_figure

    figs: dict[str, Any] = {}
    for dataset, per in table.data["results"].items():
        points = {}
        for label, rs in per.items():
            accs = [100 * r["acc"] for r in rs]
            short = label.split(":")[0].split(",")[0]
            points[short] = (float(np.mean([r["energy_pj"] for r in rs])) / 1e6, float(np.mean(accs)),
                             float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0)
        figs[f"aap_{dataset}"] = accuracy_energy_figure(points, title=f"{dataset}: accuracy against energy")
    return figs


register(Reproduction(
    name="aap", title="FSNN with/without the accumulation pathway, DSNN and SEW-ResNet: accuracy, ACs, MACs, energy",
    paper="Chen et al. 2023", spec="SPEC section 5", fn=run,
))
