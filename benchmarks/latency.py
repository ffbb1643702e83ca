"""Section 4: interactive latency.

- The neuron explorer's recompute for a 1,000-step current: simulating the neuron and its surrogate gradient
  (``spikelab.viz._explore.simulate_neuron``, what every slider move runs) and building the figure, with the fused
  engine and with the reference loop. Target: under 20 ms.
- The playground's Start: from pressing Start on a fresh training panel (default settings: conv SNN on the
  embedded digits) to the first plotted point of the loss curve. Each sample runs in a fresh Python process in
  which the panel has been built (as in a dashboard kernel), so imports that Start triggers are counted: once with
  Start pressed the moment the panel exists, once after the imports the panel starts in the background
  (``spikelab.viz._live.prewarm``) have finished, as when a user first reads the page; the second Start in the same
  process is reported too.
- The playground's Stop: from ``stop()`` while training (just after the first plotted point) to the panel's status
  reading "stopped ..." (the run has ended its batch, saved its folder and redrawn), over every Stop above.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import common
from spikelab.neurons import NeuronConfig, fused

START_SCRIPT = r"""
import json, sys, time, threading
from spikelab.neurons import fused
from spikelab.viz import _live
from spikelab.viz.widgets import TrainingPanel
fused.set_engine(sys.argv[2])
panel = TrainingPanel(runs_dir=sys.argv[1])
if sys.argv[3] == "settled":  # the user reads the page first: what the panel loads in the background is ready
    _live.prewarm().join()
out = []
for attempt in range(2):
    first = threading.Event()
    draw = panel._draw
    def spy(key, fig, draw=draw):
        draw(key, fig)
        if key == "curves" and panel.job is not None and panel.job.history.steps:
            first.set()
    panel._draw = spy
    t0 = time.perf_counter()
    assert panel.start(), panel.error
    ok = first.wait(300)
    started = time.perf_counter() - t0 if ok else None
    stopped = threading.Event()
    def on_status(change):
        if str(change["new"]).startswith("stopped"):
            stopped.set()
    panel.status.observe(on_status, "value")
    t0 = time.perf_counter()
    panel.stop()
    ok = stopped.wait(300)
    out.append([started, time.perf_counter() - t0 if ok else None])
    panel.status.unobserve(on_status, "value")
    panel.wait(300)
    panel._draw = draw
print(json.dumps(out))
"""


def explorer(rounds: int) -> dict[str, Any]:
    from spikelab.viz import _explore
    from spikelab.viz.figures import membrane_figure

    cfg = NeuronConfig()
    current = _explore.input_current("noisy", 1.2, 1000)

    def recompute(engine: str):
        def f():
            with fused.engine(engine):
                tr = _explore.simulate_neuron(cfg, current)
            return tr
        return f

    def with_figure(engine: str):
        def f():
            tr = recompute(engine)()
            membrane_figure(tr.h, tr.spikes, v_th=cfg.v_th, input_current=tr.current)
        return f

    with fused.engine("reference"):
        ref = _explore.simulate_neuron(cfg, current)
    fast = recompute("auto")()
    if not ((fast.spikes == ref.spikes).all() and (fast.grad == ref.grad).all() and (fast.h == ref.h).all()):
        raise AssertionError("explorer: fused engine's trace differs from the reference")
    t = common.interleaved({"simulate (fused)": recompute("auto"), "simulate (reference)": recompute("reference"),
                            "simulate + figure (fused)": with_figure("auto"),
                            "simulate + figure (reference)": with_figure("reference")}, rounds=rounds)
    return {k: v.to_dict() for k, v in t.items()}


def start_latency(samples: int, engine: str, when: str) -> dict[str, Any]:
    firsts, seconds, stops = [], [], []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    for _ in range(samples):
        with tempfile.TemporaryDirectory() as runs:
            res = subprocess.run([sys.executable, "-c", START_SCRIPT, runs, engine, when], capture_output=True,
                                 text=True, timeout=900, env=env)
        if res.returncode != 0:
            raise RuntimeError(f"playground start failed: {res.stderr[-2000:]}")
        (first, stop1), (second, stop2) = json.loads(res.stdout.strip().splitlines()[-1])
        if first is None or second is None:
            raise RuntimeError("playground start: no point was plotted within 300 s")
        if stop1 is None or stop2 is None:
            raise RuntimeError("playground stop: the status did not read 'stopped' within 300 s")
        firsts.append(first)
        seconds.append(second)
        stops += [stop1, stop2]
    return dict(first_start_s=statistics.median(firsts), first_start_all_s=firsts,
                second_start_s=statistics.median(seconds), second_start_all_s=seconds,
                stop_s=statistics.median(stops), stop_all_s=stops)


def run(size: str, rounds: int, samples: int | None = None) -> dict[str, Any]:
    samples = samples or (1 if size == "smoke" else 7)
    return dict(section="latency", explorer_1000_steps=explorer(rounds),
                start={f"{e} {w}": start_latency(samples, e, w) for e in ("auto", "reference")
                       for w in ("at once", "settled")},
                checks={"explorer": "fused trace (h, spikes, gradient) equal to the reference loop's"})


def render(result: dict[str, Any]) -> tuple[str, str]:
    cols = ["what", "engine", "median ms"]
    rows = []
    for k, v in result["explorer_1000_steps"].items():
        what, engine = k.split(" (")
        rows.append([f"explorer, 1,000 steps: {what}", engine.rstrip(")"), round(v["median_ms"], 2)])
    for key, v in result["start"].items():
        engine, when = key.split(" ", 1)
        name = "fused" if engine == "auto" else engine
        rows.append([f"playground Start -> first point (fresh kernel, Start {when})", name,
                     round(v["first_start_s"] * 1e3)])
        if when == "settled":
            rows.append(["playground Start -> first point (second Start)", name, round(v["second_start_s"] * 1e3)])
            rows.append(["playground Stop -> status 'stopped' (every Stop)", name, round(v["stop_s"] * 1e3)])
    return common.table("4. Interactive latency", cols, rows), common.markdown(cols, rows)
