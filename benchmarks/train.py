"""Sections 2 and 3: training steps (forward, loss, backward, Adam step) and their memory.

Networks (all with the peers' neuron: LIF decay 0.5, v_th 1, hard reset, reset detached, atan; see peers.py):

- ``conv``: the small conv SNN, conv 1-32 and 32-64 with tdBN, LIF, 2x2 max pooling, 28x28 input, batch 64;
- ``resnet19``: ResNet-19 (stages 3-3-2, TET head) at 1/8 width (16-32-64 channels, head 32), 32x32x3, batch 64;
- ``mlp``: spiking MLP 784-512-512-10 with tdBN, rate-coded input (Bernoulli spikes of pixel intensities), T=32,
  batch 128.

Candidates: ``spikelab`` (fused neuron engine, native 2x2 pooling, binary saved activations bit-packed,
channels-last convolutions), ``spikelab reference`` (the readable per-step loop), ``snntorch`` and
``spikingjelly`` (the same network with their neurons, as PyTorch users write it: NCHW), and the ``ANN twin``
(ReLU instead of the neuron, same layout as spikelab; on a static input it runs one step, so the spiking step is
compared with T of its steps). Compiled (``torch.compile`` of the model) and bfloat16 (autocast) rows are the
fast modes, labelled as such. A static input runs the first conv + BN once for every library.

Before timing, each network's logits and parameter gradients are checked against spikelab's reference engine in
float64 for every candidate (same weights). Memory: bytes held for the backward after the forward, and the peak
heap growth over the whole step.
"""
from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

import common
import peers
from spikelab import models
from spikelab.losses import sdt_loss
from spikelab.neurons import NeuronConfig, fused

NEURON = NeuronConfig(kind="lif", decay=peers.DECAY, v_th=peers.V_TH, reset="hard", surrogate="atan",
                      detach_reset=True)


@dataclass(frozen=True)
class Net:
    name: str
    T: int
    batch: int
    build: Callable[[bool], nn.Module]  # spiking -> model
    input: Callable[[int, torch.Generator], torch.Tensor]  # batch -> input
    static: bool  # a static input (the ANN twin runs one step of it)


def _conv(T: int, smoke: bool) -> Net:
    ch = (4, 8) if smoke else (32, 64)
    size = 12 if smoke else 28
    return Net(f"conv T={T}", T, 4 if smoke else 64,
               lambda spiking: models.ConvSNN(in_channels=1, input_size=size, channels=ch, T=T, neuron=NEURON,
                                              spiking=spiking),
               lambda b, g: torch.rand(b, 1, size, size, generator=g), True)


def _resnet(T: int, smoke: bool) -> Net:
    widths, head, size = ((4, 8, 8), 8, 8) if smoke else ((16, 32, 64), 32, 32)
    stages = (1, 1, 1) if smoke else (3, 3, 2)
    return Net(f"resnet19/8 T={T}" if not smoke else f"resnet19 (tiny) T={T}", T, 4 if smoke else 64,
               lambda spiking: models.ResNet19(in_channels=3, num_classes=10, widths=widths, stages=stages,
                                               head_hidden=head, T=T, neuron=NEURON, spiking=spiking),
               lambda b, g: torch.rand(b, 3, size, size, generator=g), True)


def _mlp(T: int, smoke: bool) -> Net:
    d, hidden = (64, (32, 32)) if smoke else (784, (512, 512))

    def rate_coded(b: int, g: torch.Generator) -> torch.Tensor:
        intensity = torch.rand(b, d, generator=g) * 0.6  # mean 0.3, about Fashion-MNIST's
        return (torch.rand(T, b, d, generator=g) < intensity).float()  # [T, B, 784] spikes

    return Net(f"mlp T={T}", T, 8 if smoke else 128,
               lambda spiking: models.SpikingMLP(in_shape=(d,), hidden=hidden, T=T, neuron=NEURON,
                                                 spiking=spiking),
               rate_coded, False)


KINDS = ("conv", "resnet19", "mlp")


def networks(size: str, kinds: tuple[str, ...] = KINDS) -> list[Net]:
    smoke = size == "smoke"
    if smoke:
        nets = [_conv(2, True), _resnet(2, True), _mlp(4, True)]
    else:
        nets = [_conv(4, False), _conv(8, False), _resnet(4, False), _resnet(8, False), _mlp(32, False)]
    return [n for n in nets if _kind(n) in kinds]


def _kind(net: Net) -> str:
    return net.name.split()[0].split("/")[0]


def _channels_last(model: nn.Module, net: Net) -> nn.Module:
    return model.to(memory_format=torch.channels_last) if net.static else model


class Candidate:
    """One way of running a training step: its model, optimiser, input, engine and precision."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, engine: str = "auto",
                 bf16: bool = False, compile_model: bool = False) -> None:
        self.model, self.x, self.y, self.engine, self.bf16 = model, x, y, engine, bf16
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.net = _compile(model) if compile_model else model
        self.first_step_s: float | None = None

    def context(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(fused.engine(self.engine))
        if self.bf16:
            stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
        return stack

    def forward(self) -> torch.Tensor:
        with self.context():
            out = self.net(self.x)
            return sdt_loss(out.float(), self.y)

    def step(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss = self.forward()
        loss.backward()
        self.opt.step()

    def warm(self) -> None:
        t0 = time.perf_counter()
        self.step()
        self.first_step_s = time.perf_counter() - t0


def _compile(model: nn.Module) -> nn.Module:
    # static shapes: each candidate sees one input shape (dynamic shapes only add guards and, with channels-last
    # convolutions, trip an inductor bug in torch 2.13)
    return torch.compile(model, dynamic=False)


def build_candidates(net: Net, *, bf16: bool, compiled: bool, missing: dict[str, str]) -> dict[str, Candidate]:
    g = torch.Generator().manual_seed(0)
    x = net.input(net.batch, g)
    y = torch.randint(0, 10, (net.batch,), generator=g)
    torch.manual_seed(0)
    snn = net.build(True)
    ann = net.build(False)
    xs = x.contiguous(memory_format=torch.channels_last) if net.static and x.dim() == 4 else x
    ann_x = x if net.static else x[0]  # the ANN twin's step: one time step of the sequence
    out = {"spikelab": Candidate(_channels_last(copy.deepcopy(snn), net), xs, y),
           "spikelab reference": Candidate(copy.deepcopy(snn), x, y, engine="reference")}
    for peer in ("snntorch", "spikingjelly"):
        if peer in missing:
            continue
        out[peer] = Candidate(peers.with_peer_neurons(snn, peer), x, y)
    out["ANN twin (one step)"] = Candidate(_channels_last(copy.deepcopy(ann), net), ann_x, y)
    if bf16:
        out["spikelab bf16"] = Candidate(_channels_last(copy.deepcopy(snn), net), xs, y, bf16=True)
        out["ANN twin bf16 (one step)"] = Candidate(_channels_last(copy.deepcopy(ann), net), ann_x, y, bf16=True)
    if compiled:
        out["spikelab compiled"] = Candidate(_channels_last(copy.deepcopy(snn), net), xs, y, compile_model=True)
        out["ANN twin compiled (one step)"] = Candidate(_channels_last(copy.deepcopy(ann), net), ann_x, y,
                                                        compile_model=True)
    return out


def check(net: Net, missing: dict[str, str], *, compiled: bool) -> dict[str, str]:
    """Logits and every parameter gradient of each spiking candidate against spikelab's reference engine, float64,
    same weights and input (batch 4)."""
    g = torch.Generator().manual_seed(1)
    x = net.input(4, g).double()
    y = torch.randint(0, 10, (4,), generator=g)
    torch.manual_seed(0)
    snn = net.build(True).double()

    def grads(model: nn.Module, inp: torch.Tensor, engine: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        with fused.engine(engine):
            out = model(inp)
        sdt_loss(out, y).backward()
        return out.detach(), {k: p.grad for k, p in model.named_parameters() if p.grad is not None}

    ref_out, ref_g = grads(copy.deepcopy(snn), x, "reference")
    xs = x.contiguous(memory_format=torch.channels_last) if net.static and x.dim() == 4 else x
    runs = {"spikelab": (_channels_last(copy.deepcopy(snn), net), xs, "auto")}
    for peer in ("snntorch", "spikingjelly"):
        if peer not in missing:
            runs[peer] = (peers.with_peer_neurons(snn, peer), x, "auto")
    if compiled:
        runs["spikelab compiled"] = (_compile(_channels_last(copy.deepcopy(snn), net)), xs, "auto")
    result = {}
    for name, (model, inp, engine) in runs.items():
        out, gr = grads(model, inp, engine)
        torch.testing.assert_close(out, ref_out, rtol=1e-9, atol=1e-10, msg=lambda m: f"{name}: logits: {m}")
        keys = {k.replace("_orig_mod.", "") for k in gr}
        if keys != set(ref_g):
            raise AssertionError(f"{name}: gradients for {sorted(keys ^ set(ref_g))} differ in presence")
        worst = 0.0
        for k, v in gr.items():
            r = ref_g[k.replace("_orig_mod.", "")]
            # snnTorch rounds its surrogate's constant to float32 even in float64 (1e-7 relative per neuron)
            tol = dict(rtol=1e-4, atol=1e-8) if name == "snntorch" else dict(rtol=1e-8, atol=1e-11)
            torch.testing.assert_close(v, r, **tol, msg=lambda m: f"{name}: grad of {k}: {m}")
            worst = max(worst, float(((v - r).abs() / r.abs().clamp_min(1e-9)).max()))
        result[name] = f"logits equal (1e-9), parameter gradients within {worst:.1e} relative (float64)"
    return result


def run(size: str, threads: int, *, rounds: int, bf16: bool, compiled: bool,
        kinds: tuple[str, ...] = KINDS) -> dict[str, Any]:
    missing = {p: why for p in ("snntorch", "spikingjelly") if (why := peers.available(p))}
    rows, checks = [], {}
    import torch._dynamo

    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    for i, net in enumerate(networks(size, kinds)):
        compile_this = compiled and (size == "full" or i == 0)  # smoke: one compiled network (compiling is slow)
        torch._dynamo.reset()
        checks[net.name] = check(net, missing, compiled=compile_this)
        cands = build_candidates(net, bf16=bf16, compiled=compile_this, missing=missing)
        for c in cands.values():
            c.warm()
        timings = common.interleaved({k: c.step for k, c in cands.items()}, rounds=rounds, warmup=1)
        fastest_peer = min((timings[p].median for p in ("snntorch", "spikingjelly") if p in timings), default=None)
        for name, c in cands.items():
            t = timings[name]
            ann_name = next((a for a in cands if a.startswith("ANN twin") and _mode(a) == _mode(name)), None)
            per_T = net.T if ann_name and ("one step" in ann_name) else 1
            ratio_ann = None
            if ann_name and not name.startswith("ANN"):
                ratio_ann = t.median / (per_T * timings[ann_name].median)
            held = common.retained_bytes(lambda: c.forward())
            c.opt.zero_grad(set_to_none=True)
            peak = common.peak_bytes(c.step) if not name.endswith("compiled") else None
            rows.append(dict(
                network=net.name, T=net.T, batch=net.batch, candidate=name, **t.to_dict(),
                fastest_peer_over_this=None if fastest_peer is None else fastest_peer / t.median,
                over_T_ann_steps=ratio_ann, retained_MiB=None if held is None else held / 2**20,
                peak_MiB=None if peak is None else peak / 2**20, first_step_s=c.first_step_s))
    return dict(section="train", rows=rows, checks=checks, missing=missing, threads=threads)


def _mode(name: str) -> str:
    return "bf16" if "bf16" in name else "compiled" if "compiled" in name else "eager"


def render(result: dict[str, Any]) -> tuple[str, str]:
    cols = ["network", "candidate", "median ms", "peer/this", "/ T ANN", "held MiB", "peak MiB", "1st step s"]
    rows = [[r["network"], r["candidate"], round(r["median_ms"], 1), _r(r["fastest_peer_over_this"]),
             _r(r["over_T_ann_steps"]), _r(r["retained_MiB"], 1), _r(r["peak_MiB"], 1), _r(r["first_step_s"], 2)]
            for r in result["rows"]]
    title = (f"2-3. Training step (forward, loss, backward, Adam), {result['threads']} threads; 'peer/this' = "
             "fastest peer's time / this time; '/ T ANN' = this time / (T x the ANN twin's step, same mode)")
    return common.table(title, cols, rows), common.markdown(cols, rows)


def _r(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(v, nd)
