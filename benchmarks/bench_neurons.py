"""LIF neuron speed and memory, side by side with snnTorch and SpikingJelly, reported as ratios.

Each library runs the same multi-step LIF (decay 0.5, v_th 1, hard reset, atan surrogate) forward and backward on
the same input, interleaved round by round so that machine noise hits all of them alike; the report is the median
time of each and its ratio to spikelab's. Peak memory is the autograd graph's saved-tensor bytes.

    python benchmarks/bench_neurons.py              # T=16, B=64, N=4096, 15 rounds
    python benchmarks/bench_neurons.py --quick      # a few seconds
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def spikelab_runner(decay: float):
    from spikelab.neurons import LIF

    lif = LIF(decay, 1.0, "hard", "atan", detach_reset=True)
    return lambda x: lif(x)


def snntorch_runner(decay: float):
    import snntorch as snn

    leaky = snn.Leaky(beta=decay, reset_mechanism="zero")

    def run(x):
        mem = leaky.init_leaky()
        out = []
        for xt in x.unbind(0):
            s, mem = leaky(xt, mem)
            out.append(s)
        return torch.stack(out)

    return run


def spikingjelly_runner(decay: float):
    from spikingjelly.activation_based import functional, neuron, surrogate

    node = neuron.LIFNode(tau=1.0 / (1.0 - decay), decay_input=False, v_reset=0.0, detach_reset=True,
                          surrogate_function=surrogate.ATan(alpha=2.0), step_mode="m")

    def run(x):
        functional.reset_net(node)
        return node(x)

    return run


def saved_bytes(fn, x) -> int:
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--neurons", type=int, default=4096)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="small sizes, 5 rounds")
    a = p.parse_args()
    if a.quick:
        a.T, a.batch, a.neurons, a.rounds = 8, 16, 1024, 5
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    decay = 0.5
    runners = {"spikelab": spikelab_runner(decay)}
    for name, make in (("snntorch", snntorch_runner), ("spikingjelly", spikingjelly_runner)):
        try:
            runners[name] = make(decay)
        except ImportError as e:
            print(f"{name}: not installed ({e}); skipped")
    x0 = torch.rand(a.T, a.batch, a.neurons) * 1.2
    # same spikes everywhere, or the timing compares different work (checked in float64: in float32 the libraries'
    # different order of operations can flip a spike whose membrane lands within rounding of the threshold)
    x64 = x0[:, :8].double()
    ref = runners["spikelab"](x64)
    for name, fn in runners.items():
        assert torch.equal(fn(x64), ref), f"{name} gives different spikes"
    times = {n: [] for n in runners}
    for _ in range(a.rounds):
        for name, fn in runners.items():
            x = x0.clone().requires_grad_()
            t0 = time.perf_counter()
            fn(x).sum().backward()
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["spikelab"])
    print(f"LIF forward+backward, T={a.T} B={a.batch} N={a.neurons}, {a.rounds} rounds, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'library':<14}{'median ms':>10}{'ratio':>8}{'saved MiB':>11}")
    for name, ts in times.items():
        med = statistics.median(ts)
        mem = saved_bytes(runners[name], x0.clone().requires_grad_()) / 2**20
        print(f"{name:<14}{med * 1e3:>10.1f}{med / base:>8.2f}{mem:>11.1f}")


if __name__ == "__main__":
    main()
