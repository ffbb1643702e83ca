"""Section 5: end to end, ``spikelab train`` with its defaults (conv SNN on the embedded digits).

Wall time of the whole command (a fresh process: imports, data, training, evaluation, writing the run folder),
the best test accuracy, and the training time at which the test accuracy first reached 98.5 % (read from the run's
``history.jsonl``). Also with the reference engine (``SPIKELAB_ENGINE=reference``), for the ratio. Target: 98.5 %
in under 10 s wall.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common  # noqa: F401  (sys.path set by run.py)
from spikelab.history import History

TARGET = 0.985


def one_run(engine: str, extra: list[str]) -> dict[str, Any]:
    env = dict(os.environ, SPIKELAB_ENGINE=engine)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "spikelab", "train", "--out", out, "--name", "run",
                              "--no-progress", *extra], capture_output=True, text=True, timeout=1800, env=env)
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            raise RuntimeError(f"spikelab train failed: {res.stderr[-2000:]}")
        epochs = [e for e in History.from_jsonl(Path(out) / "run" / "history.jsonl").epochs
                  if e.get("test_acc") is not None]
    reached = next((e for e in epochs if e["test_acc"] >= TARGET), None)
    return dict(wall_s=wall, train_s=epochs[-1]["time_s"] if epochs else None,
                best_test_acc=max((e["test_acc"] for e in epochs), default=None),
                final_test_acc=epochs[-1]["test_acc"] if epochs else None,
                epoch_reached=None if reached is None else reached["epoch"],
                train_s_to_target=None if reached is None else reached["time_s"])


def run(size: str, samples: int | None = None) -> dict[str, Any]:
    extra = ["--epochs", "1", "--limit", "200"] if size == "smoke" else []
    samples = samples or (1 if size == "smoke" else 3)
    out = {}
    for engine in ("auto", "reference"):
        runs = [one_run(engine, extra) for _ in range(samples)]
        out[engine] = dict(runs=runs, wall_s=statistics.median(r["wall_s"] for r in runs))
    return dict(section="e2e", command="spikelab train" + (" " + " ".join(extra) if extra else ""), results=out)


def render(result: dict[str, Any]) -> tuple[str, str]:
    cols = ["command", "engine", "wall s (median)", "train s", "best test acc", "reached 98.5 % at train s"]
    rows = []
    for engine, v in result["results"].items():
        r = v["runs"][0]
        rows.append([result["command"], "fused" if engine == "auto" else engine, round(v["wall_s"], 2),
                     None if r["train_s"] is None else round(r["train_s"], 2), r["best_test_acc"],
                     None if r["train_s_to_target"] is None else round(r["train_s_to_target"], 2)])
    return common.table("5. End to end", cols, rows), common.markdown(cols, rows)
