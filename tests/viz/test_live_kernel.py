"""A training panel's run when its kernel goes away: a kernel asked to shut down (a closed dashboard page culled by
the server, the server stopped) stops the training thread, and the run folder reads "stopped"; a kernel killed
outright leaves a run that reads "interrupted". Never "running" once the kernel is gone.

Real kernels (ipykernel, started by jupyter_client as Voila starts them), each importing torch: about 10-30 s each.
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

pytest.importorskip("jupyter_client")

from spikelab.training import run_state  # noqa: E402

START_TRAINING = """
from spikelab.viz._live import TrainingJob, TrainSettings
job = TrainingJob(TrainSettings(model="mlp", epochs=200), runs_dir={runs!r})
job.start()
"""


def _wait_for(condition, what, timeout_s=300):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


def _training_kernel(runs: Path):
    """A kernel training an MLP on the digits for 200 epochs, returned once its first epoch is saved."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    reply = kc.execute_interactive(START_TRAINING.format(runs=str(runs)), timeout=300)
    assert reply["content"]["status"] == "ok", reply["content"]
    _wait_for(lambda: any(runs.glob("*/checkpoint.pt")), "the first epoch's checkpoint")
    run = next(runs.glob("*/checkpoint.pt")).parent
    assert run_state(run) == "running"
    return km, kc, run


def test_a_kernel_shut_down_stops_its_training_and_the_run_reads_stopped(tmp_path):
    km, kc, run = _training_kernel(tmp_path / "runs")
    pid = km.provisioner.process.pid
    kc.stop_channels()
    km.shutdown_kernel(now=False)  # what the server does to a culled kernel, and to every kernel when it stops
    assert not _alive(pid)
    assert run_state(run) == "stopped"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["stopped"] is True and 1 <= metrics["epochs"] < 200


def test_a_killed_kernel_leaves_an_interrupted_run_not_a_running_one(tmp_path):
    km, kc, run = _training_kernel(tmp_path / "runs")
    pid = km.provisioner.process.pid
    kc.stop_channels()
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not _alive(pid), "the kernel to die")
    km.shutdown_kernel(now=True)
    assert run_state(run) == "interrupted"  # its lock went with the process: resume it
    assert not (run / "metrics.json").exists()
