"""Section 1: one LIF layer, forward + backward (``loss = spikes.sum()``), ``[T, B, N]``.

Libraries: spikelab (the fused engine: native kernel; the portable torch backend and the reference loop for
comparison), snnTorch's ``Leaky`` loop, SpikingJelly's multi-step ``LIFNode`` and Norse's ``LIFBoxCell`` loop (see
peers.py for the settings that make them compute the same neuron). Before timing, spikes and input gradients are
checked equal to spikelab's reference in float64 (Norse against the spikelab neuron it matches).

Reported per library: median time, ratio to spikelab's, bytes held for the backward, and the memory-bound estimate:
the traffic no implementation can avoid (read x and write the spikes forward; read x again and write the input
gradient backward: 16 bytes per neuron and step in float32) at the machine's measured copy bandwidth.
"""
from __future__ import annotations

from typing import Any

import torch

import common
import peers
from spikelab.neurons import fused

SHAPES = {"smoke": [(4, 2, 64)], "full": [(8, 16, 512), (32, 16, 512), (200, 16, 512), (16, 64, 4096)]}
ROUNDS = {"smoke": 3, "full": 11}


def _spikelab(engine: str):
    lif = peers.spikelab_lif()

    def run(x: torch.Tensor) -> torch.Tensor:
        with fused.engine(engine):
            return lif(x)

    return run


def candidates() -> tuple[dict[str, Any], dict[str, str]]:
    """name -> run(x) -> spikes; and the peers that are missing, with the reason."""
    runs: dict[str, Any] = {"spikelab": _spikelab("auto"), "spikelab torch backend": _spikelab("torch"),
                            "spikelab reference loop": _spikelab("reference")}
    missing = {}
    for name in peers.LIF_LAYERS:
        why = peers.available(name)
        if why:
            missing[name] = why
            continue
        module = peers.LIF_LAYERS[name]()
        scale = peers.INPUT_SCALE[name]
        runs[name] = (lambda m, k: (lambda x: m(x * k) if k != 1.0 else m(x)))(module, scale)
    return runs, missing


def check(runs: dict[str, Any]) -> dict[str, str]:
    """Spikes and input gradients of every candidate against spikelab's reference, in float64."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(24, 4, 96, generator=g, dtype=torch.float64) * 1.2
    w = torch.rand(x.shape, generator=g, dtype=torch.float64)

    def grads(fn, module_ref=None):
        xi = x.clone().requires_grad_()
        s = fn(xi)
        (s * w).sum().backward()
        return s.detach(), xi.grad

    with fused.engine("reference"):
        ref_s, ref_g = grads(peers.spikelab_lif())
        norse_s, norse_g = grads(peers.spikelab_like_norse())
    out = {}
    for name, fn in runs.items():
        s, gx = grads(fn)
        rs, rg = (norse_s, norse_g) if name == "norse" else (ref_s, ref_g)
        if not torch.equal(s, rs):
            raise AssertionError(f"{name}: spikes differ from spikelab's reference")
        # (snnTorch rounds its surrogate's pi * alpha / 2 to float32 even in float64: 1e-7 relative)
        torch.testing.assert_close(gx, rg, rtol=1e-6, atol=1e-9, msg=lambda m: f"{name}: input gradients: {m}")
        rel = float(((gx - rg).abs() / rg.abs().clamp_min(1e-12)).max())
        out[name] = f"spikes equal; input gradients equal within {rel:.1e} relative (float64)"
    return out


def run(size: str, threads: int, bandwidth: float) -> dict[str, Any]:
    runs, missing = candidates()
    checks = check(runs)
    rows = []
    for T, B, N in SHAPES[size]:
        x0 = torch.rand(T, B, N, generator=torch.Generator().manual_seed(1)) * 1.2

        def call(fn):
            def f():
                x = x0.clone().requires_grad_()
                fn(x).sum().backward()
            return f

        timings = common.interleaved({k: call(fn) for k, fn in runs.items()}, rounds=ROUNDS[size])
        bound_s = 16 * T * B * N / bandwidth
        base = timings["spikelab"].median
        leaf = x0.clone().requires_grad_()
        for name, t in timings.items():
            # the input is made inside (leaf * 1 saves nothing itself): it counts only if the neuron keeps it
            held = common.retained_bytes(lambda: runs[name](leaf * 1.0))
            rows.append(dict(T=T, B=B, N=N, library=name, **t.to_dict(), ratio_to_spikelab=t.median / base,
                             retained_MiB=None if held is None else held / 2**20,
                             bound_ms=bound_s * 1e3, x_bound=t.median / bound_s))
    return dict(section="lif", rows=rows, checks=checks, missing=missing, threads=threads)


def render(result: dict[str, Any]) -> tuple[str, str]:
    cols = ["T, B, N", "library", "median ms", "x spikelab", "held MiB", "bound ms", "x bound"]
    rows = [[f"{r['T']}, {r['B']}, {r['N']}", r["library"], round(r["median_ms"], 3), round(r["ratio_to_spikelab"], 2),
             None if r["retained_MiB"] is None else round(r["retained_MiB"], 2), round(r["bound_ms"], 3),
             round(r["x_bound"], 1)] for r in result["rows"]]
    title = (f"1. LIF layer forward+backward (loss = spikes.sum()), float32, {result['threads']} threads; "
             "'x spikelab' = time / spikelab's time")
    return common.table(title, cols, rows), common.markdown(cols, rows)
