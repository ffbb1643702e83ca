"""spikelab's benchmark suite: one command, tables on the terminal, a JSON record with the machine.

    python benchmarks/run.py                       # every section at full size (about 30-60 min on 2 cores)
    python benchmarks/run.py --size smoke          # seconds: every benchmarked path runs and is checked
    python benchmarks/run.py --sections lif,train  # some sections
    python benchmarks/run.py --out benchmarks/results/cpu-2core.json

Sections: 1 ``lif`` (one LIF layer against snnTorch, SpikingJelly, Norse), 2-3 ``train`` (training steps of a conv
SNN, ResNet-19 and an MLP against the peers and the ANN twin, with memory), 4 ``latency`` (the neuron explorer's
recompute, the playground's Start to first plotted point), 5 ``e2e`` (``spikelab train`` to 98.5 % on the digits).
Every candidate is checked (spikes and gradients against spikelab's reference in float64) before it is timed; a
check that fails stops the run with an error. Threads: ``--threads`` (default 2) for every library alike.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SECTIONS = ("lif", "train", "latency", "e2e")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=("smoke", "full"), default="full")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {', '.join(SECTIONS)} (default: all)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for every library (default 2)")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds per candidate (default: 7 full, 2 smoke)")
    p.add_argument("--networks", default="conv,resnet19,mlp",
                   help="comma-separated subset of the training section's networks: conv, resnet19, mlp (default: all)")
    p.add_argument("--samples", type=int, default=None,
                   help="fresh-process samples per latency/e2e candidate (default: 7 and 3 full, 1 smoke)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    p.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 rows")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="JSON file to write (default: benchmarks/results/<size>-<date>.json)")
    a = p.parse_args(argv)
    sections = [s.strip() for s in a.sections.split(",") if s.strip()]
    bad = sorted(set(sections) - set(SECTIONS))
    if bad:
        p.error(f"unknown sections {bad}; choose from {', '.join(SECTIONS)}")
    if a.threads < 1:
        p.error("--threads must be >= 1")
    kinds = tuple(k.strip() for k in a.networks.split(",") if k.strip())
    if not kinds or set(kinds) - {"conv", "resnet19", "mlp"}:
        p.error(f"--networks takes a comma-separated subset of conv, resnet19, mlp (got {a.networks!r})")
    if a.samples is not None and a.samples < 1:
        p.error("--samples must be >= 1")

    import torch

    import common

    torch.set_num_threads(a.threads)
    from spikelab import engine

    engine.tune_allocator()  # for every library alike: large tensors are not page-faulted in again each step
    rounds = a.rounds or (2 if a.size == "smoke" else 7)
    record = dict(date=datetime.now(timezone.utc).isoformat(timespec="seconds"), size=a.size, threads=a.threads,
                  load_before=common.load(), machine=common.machine(), sections={})
    bandwidth = common.memory_bandwidth(64 if a.size == "smoke" else 256)
    record["machine"]["copy_bandwidth_GBps"] = round(bandwidth / 1e9, 1)
    markdown = []
    t_start = time.perf_counter()
    for name in sections:
        t0 = time.perf_counter()
        if name == "lif":
            import lif

            result = lif.run(a.size, a.threads, bandwidth)
            text, md = lif.render(result)
        elif name == "train":
            import train

            result = train.run(a.size, a.threads, rounds=rounds, bf16=not a.no_bf16, compiled=not a.no_compile,
                               kinds=kinds)
            text, md = train.render(result)
        elif name == "latency":
            import latency

            result = latency.run(a.size, rounds=max(rounds, 7), samples=a.samples)
            text, md = latency.render(result)
        else:
            import e2e

            result = e2e.run(a.size, samples=a.samples)
            text, md = e2e.render(result)
        result["wall_s"] = round(time.perf_counter() - t0, 1)
        result["load_after"] = common.load()
        record["sections"][name] = result
        print(text)
        for k, v in result.get("checks", {}).items():
            print(f"  check {k}: {v}")
        for k, v in result.get("missing", {}).items():
            print(f"  not measured: {k}: {v}")
        print(f"  ({result['wall_s']} s, load after {result['load_after']})\n", flush=True)
        markdown.append(md)
    record["wall_s"] = round(time.perf_counter() - t_start, 1)
    record["load_after"] = common.load()
    out = Path(a.out) if a.out else HERE / "results" / f"{a.size}-{datetime.now():%Y%m%d-%H%M}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, out)
    md_path = out.with_suffix(".md")
    tmp = md_path.with_name(f".{md_path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"# Benchmark {a.size}, {record['date']}\n\nMachine: {_machine_line(record)}\n\n"
                   + "\n\n".join(markdown) + "\n")
    os.replace(tmp, md_path)
    print(f"wrote {out} and {md_path}")
    return 0


def _machine_line(record: dict) -> str:
    m = record["machine"]
    return (f"{m.get('cpu')}, {m.get('cores')} cores, torch {m.get('torch')}, {record['threads']} threads, "
            f"copy bandwidth {m.get('copy_bandwidth_GBps')} GB/s, load before {record['load_before']} / after "
            f"{record.get('load_after')}")


if __name__ == "__main__":
    sys.exit(main())
