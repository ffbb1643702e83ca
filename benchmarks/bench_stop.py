"""How soon the training panel says "stopped" after Stop, in the kernel (no browser), as a ratio to one training step.

The browser test of the playground no longer times Stop (a shared machine is noisy); this is where that latency is
measured. The panel trains the CLI's default model (``conv-small`` on digits) for 200 epochs, Stop is pressed after
``--after`` steps, and the script reports, over ``--rounds`` runs, the median time from ``stop()`` to the status
"stopped ..." and to the end of the views drawn after the run, each divided by the median training step, and the
number of figures sent to the page between Stop and "stopped" (every message waits behind those before it in the
browser: at most one, the one being drawn as Stop is pressed). Stop is pressed at a random moment after ``--after``
steps.

    .venv/bin/python benchmarks/bench_stop.py [--rounds 3] [--after 30]
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time

from spikelab.viz.widgets import TrainingPanel, TrainSettings


def one_round(after: int, rng: random.Random) -> tuple[float, float, float, int]:
    """(step s, stop -> "stopped" s, stop -> thread end s, figures sent between Stop and "stopped")."""
    with tempfile.TemporaryDirectory() as runs:
        p = TrainingPanel(settings=TrainSettings(epochs=200), runs_dir=runs, neuron_controls=True)
        marks: dict[str, float] = {}
        drawn: list[float] = []
        draw = p._draw
        p._draw = lambda key, fig: (drawn.append(time.perf_counter()), draw(key, fig))
        p.status.observe(lambda ch: marks.setdefault(ch["new"].split()[0], time.perf_counter()), "value")
        assert p.start()
        while len(p.history.steps) < after:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.5))  # a moment unrelated to the steps and the redraws (1.5 s: their period)
        t0 = time.perf_counter()
        p.stop()
        assert p.wait(300), "the run did not end within 300 s of Stop"
        end = time.perf_counter()
        steps = p.history.steps
        step_s = statistics.median(b["time_s"] - a["time_s"] for a, b in zip(steps[1:], steps[2:]))
        between = sum(t0 <= t < marks["stopped"] for t in drawn)
        return step_s, marks["stopped"] - t0, end - t0, between


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--after", type=int, default=30, help="steps trained before Stop")
    args = ap.parse_args()
    rng = random.Random(0)
    rows = [one_round(args.after, rng) for _ in range(args.rounds)]
    step = statistics.median(r[0] for r in rows)
    stopped = statistics.median(r[1] for r in rows)
    ended = statistics.median(r[2] for r in rows)
    print(f"median step {step * 1e3:.1f} ms over {args.rounds} rounds (Stop after {args.after} steps)")
    print(f"Stop -> 'stopped': {stopped * 1e3:.1f} ms = {stopped / step:.2f} steps")
    print(f"Stop -> run ended, views of the trained network drawn: {ended * 1e3:.1f} ms = {ended / step:.2f} steps")
    print(f"figures sent between Stop and 'stopped' (max over rounds): {max(r[3] for r in rows)}")


if __name__ == "__main__":
    main()
