"""The AAP, gradient-flow and flatness reproductions at smoke size: they run end to end from the registry, their
numbers are the library's measurements of the runs they wrote, and their figures build."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from spikelab import models, reproduce
from spikelab.analysis import top_hessian_eigenvalue
from spikelab.losses import sdt_loss
from spikelab.reproduce import aap, flatness, gradient_depth
from spikelab.training import load_checkpoint


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("reproduce")


def test_registered():
    assert {"aap", "gradient-flow", "flatness"} <= set(reproduce.names())
    assert reproduce.get("aap").spec == "SPEC section 5"


def test_aap_smoke(out):
    table = reproduce.run("aap", size="smoke", out=out, progress=False)
    b = aap.BUDGETS["smoke"]
    assert len(table.rows) == len(b.datasets) * len(aap.VARIANTS) + len(aap.PAPER_ROWS)
    digits = table.data["results"]["digits"]
    dst, dsnn, fsnn, sew = (digits[label][0] for label, *_ in aap.VARIANTS)
    # digits: 1x8x8, stem 3x3 -> widths (4, 8, 8), stages (1, 1, 1); T = 2. The FSNN multiplies only in the stem
    # (run once); the DSNN adds the pathway's convs and the accumulation head, all MACs, per step
    stem = 4 * 8 * 8 * 9
    d = b.datasets[0]
    pathway = d.T * (4 * 4 * 4 * 9 + 8 * 4 * 4 * 4 + 8 * 2 * 2 * 9 + 8 * 2 * 2 * 8 + 10 * 8)
    assert fsnn["macs"] == dst["macs"] == stem
    assert dsnn["macs"] == stem + pathway
    assert dsnn["acc"] >= 0 and sew["macs"] >= stem
    # the pathway-trained FSNN row evaluates the very network the run folder holds, without its pathway
    model = models.build("dsnn-small", num_classes=10, in_channels=1, T=d.T, widths=d.widths, stages=d.stages,
                         pathway=False)
    model.load_state_dict(load_checkpoint(out / "aap" / "runs" / "digits-dst-seed0")["model"])
    assert aap._measure(model, _test_loader("digits", b), False) == dst
    assert table.rows[-len(aap.PAPER_ROWS)]["paper: ImageNet, T=4 (ACs, MACs, mJ, top-1 %)"].startswith("1.69 G")
    # the counting rules at ImageNet geometry (smoke: 32x32, widths 4/8/16/32, T=4), by hand: 7x7/2 stem to 16x16
    # (150,528 MACs, once), max pool to 8x8; DSNN: pathway convs at the 3 stage changes and the accumulation head,
    # all MACs every step; Spiking-ResNet: only the stem (layer4 is 1x1, so the head's pooled input is binary)
    stem = 4 * 16 * 16 * 3 * 49
    pathway = 4 * 4 * 4 * 9 + 8 * 4 * 4 * 4 + 8 * 2 * 2 * 9 + 16 * 2 * 2 * 8 + 16 * 9 + 32 * 16
    macs = table.data["imagenet_macs"]
    assert macs["DSNN-18"] == stem + 4 * pathway + 4 * 32 * 1000
    assert macs["Spiking-ResNet-18"] == stem
    assert macs["SEW-ResNet-18"] > stem and macs["ANN ResNet-18"] > macs["SEW-ResNet-18"]
    figs = aap.figures(table)
    assert set(figs) == {"aap_digits", "aap_digits-events"}
    assert all(isinstance(f, go.Figure) and len(f.data) == len(aap.VARIANTS) for f in figs.values())


def _test_loader(name, b):
    from spikelab import data

    d = [d for d in b.datasets if d.name == name][0]
    return data.make_loaders(name, batch_size=d.batch_size, seed=0, limit=d.limit)[1]


def test_gradient_flow_smoke(out):
    table = reproduce.run("gradient-flow", size="smoke", out=out, progress=False)
    b = gradient_depth.BUDGETS["smoke"]
    sweeps = [r for r in table.rows if r["part"] == "sweep"]
    trains = [r for r in table.rows if r["part"] == "training"]
    assert len(sweeps) == 2 * len(b.depths) * len(b.sweeps) and len(trains) == len(b.settings)
    ratios = table.data["sweep"]["ratios"]
    for key, entry in ratios.items():
        assert len(entry["median"]) == len(b.sweeps[0][2])
    # BN off at the same initialisation: the gradient vanishes for every width (the deep layers fall silent)
    assert all(r < gradient_depth.FLAT[0] for r in ratios["10|nobn|triangle"]["median"])
    bn = ratios["10|bn|triangle"]["median"]  # gamma 0.2, 1, 5: narrower is steeper
    assert bn[0] > bn[1] > bn[2]
    for row, st in zip(trains, b.settings):
        ratio = float(row["first/last gradient ratio at init"])
        assert row["regime"] == gradient_depth._regime(ratio) and row["paper (qualitative, SPEC 2)"] == st.expect
    assert gradient_depth.stages_for_depth(50) == (6, 6, 6, 6) and gradient_depth.stages_for_depth(18) == (2,) * 4
    with pytest.raises(ValueError, match="depth must be even"):
        gradient_depth.stages_for_depth(19)
    model = gradient_depth.deep_resnet(18, 4, bn=False)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    figs = gradient_depth.figures(table)
    assert "gradient_ratio_triangle" in figs and any(k.startswith("gradient_heatmap") for k in figs)


def test_flatness_smoke(out):
    table = reproduce.run("flatness", size="smoke", out=out, progress=False)
    b = flatness.BUDGETS["smoke"]
    assert [r["training loss"] for r in table.rows] == ["SDT", "TET (lam 0.05)"]
    digits = table.data["results"]["digits"]
    # the reported sharpness is the analysis function applied to the weights the run saved
    from spikelab import data

    _, test, info = data.make_loaders("digits", batch_size=32, seed=0, limit=64)
    d = b.datasets[0]
    batch = flatness._eval_batch(test, d.eval_samples)
    for loss in ("sdt", "tet"):
        model = models.build("conv-small", num_classes=10, in_channels=1, T=b.T, channels=b.channels,
                             neuron=models.TET_NEURON)
        model.load_state_dict(load_checkpoint(out / "flatness" / "runs" / f"digits-{loss}-seed0")["model"])
        res = top_hessian_eigenvalue(model, sdt_loss, batch, iters=d.iters, tol=b.tol, seed=0)
        assert res.eigenvalue == pytest.approx(digits[loss][0]["sharpness"], rel=1e-6)
        curve = np.asarray(digits[loss][0]["curve"])
        assert curve.shape == (len(b.alphas),) and np.isfinite(curve).all()
    figs = flatness.figures(table)
    assert {"flatness_1d_digits", "flatness_2d_digits_sdt", "flatness_2d_digits_tet",
            "flatness_convergence_digits"} == set(figs)
