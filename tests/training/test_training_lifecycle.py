"""The run lifecycle with real processes: two runs started together never share a folder, a running run cannot be
resumed twice, and a run killed with SIGKILL (in its first epoch, or while writing its checkpoint) can be resumed
or restarted and leaves no temporary file behind. Oracle: the files on disk, and the same run trained in one go."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

from spikelab.cli import main
from spikelab.training import is_running, list_runs, load_checkpoint, load_run, run_state

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SMOKE = ["--limit", "96", "--batch-size", "32", "--no-progress", "--device", "cpu"]  # 3 steps per epoch
STAMP = "20250101-000000"
BASE = f"conv-small-digits-{STAMP}"


@pytest.fixture(autouse=True)
def _one_thread():
    """Runs trained here are compared bit for bit with epochs trained by the one-thread processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _Proc:
    """One ``spikelab train`` process (see _train_process.py for the pause and time hooks)."""

    def __init__(self, cwd: Path, *args: str, pause: str | None = None, stamp: str | None = None) -> None:
        self.marker = cwd / f".marker-{uuid.uuid4().hex}"
        self.go = cwd / f".go-{uuid.uuid4().hex}"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "SPIKELAB_TEST_MARKER": str(self.marker),
               "SPIKELAB_TEST_GO": str(self.go)}
        env.pop("SPIKELAB_DEBUG", None)
        if pause:
            env["SPIKELAB_TEST_PAUSE"] = pause
        if stamp:
            env["SPIKELAB_TEST_TIME"] = stamp
        self.proc = subprocess.Popen([sys.executable, str(HERE / "_train_process.py"), *args, *SMOKE], cwd=cwd,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)

    def paused(self, timeout: float = 120) -> "_Proc":
        """Wait until the process reached its pause point."""
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            if self.proc.poll() is not None:
                pytest.fail(f"the process ended before its pause point: {self.proc.communicate()[1][-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail("the process never reached its pause point")
            time.sleep(0.05)
        return self

    def resume(self) -> None:
        self.go.write_text("go")

    def kill(self, group: bool = True) -> None:
        """SIGKILL, as a crash or an out-of-memory kill would; ``group=False`` leaves its child processes alive."""
        if group:
            os.killpg(self.proc.pid, signal.SIGKILL)
        else:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def kill_children(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def finish(self, timeout: float = 180) -> tuple[int, str, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        return self.proc.returncode, out, err


def _numbers(h):
    strip = lambda r: {k: v for k, v in r.items() if k != "time_s"}  # noqa: E731
    return [strip(r) for r in h.steps], [strip(r) for r in h.epochs]


def _one_run(folder: Path, epochs: int) -> None:
    """The folder holds exactly one whole run: one record per epoch, and the files agree with each other."""
    h, ckpt = load_run(folder), load_checkpoint(folder)
    assert [e["epoch"] for e in h.epochs] == list(range(1, epochs + 1))
    assert [s["step"] for s in h.steps] == list(range(1, 3 * epochs + 1))
    assert ckpt["epoch"] == epochs and ckpt["history"]["epochs"] == h.epochs and ckpt["history"]["steps"] == h.steps
    assert ckpt["train_config"]["seed"] == h.config["seed"]


def test_two_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    a = _Proc(tmp_path, "--epochs", "2", "--seed", "1", stamp=STAMP)
    b = _Proc(tmp_path, "--epochs", "2", "--seed", "2", stamp=STAMP)
    results = [a.finish(), b.finish()]
    assert [rc for rc, _, _ in results] == [0, 0], [err[-1500:] for _, _, err in results]
    runs = tmp_path / "runs"
    assert sorted(p.name for p in runs.iterdir()) == [BASE, f"{BASE}-2"]
    seeds = set()
    for folder in runs.iterdir():
        _one_run(folder, 2)
        seeds.add(load_run(folder).config["seed"])
    assert seeds == {1, 2}
    for (_, out, _), seed in zip(results, (1, 2)):  # each process reports the folder it trained into
        folder = out.strip().splitlines()[-1].split("run folder ")[-1]
        assert load_run(tmp_path / folder).config["seed"] == seed


def test_a_running_run_keeps_its_folder_name_and_resume(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = _Proc(tmp_path, "--name", "r", "--epochs", "2", pause="step:4").paused()  # in epoch 2, holding r
    assert run_state(tmp_path / "runs" / "r") == "running" and is_running(tmp_path / "runs" / "r")
    same_name = _Proc(tmp_path, "--name", "r", "--epochs", "1")
    auto_name = _Proc(tmp_path, "--epochs", "1", stamp=STAMP)
    resume = _Proc(tmp_path, "--resume", "runs/r", "--epochs", "3")
    for proc in (same_name, resume):
        rc, out, err = proc.finish()
        assert rc == 2 and "Traceback" not in err, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and f"is running (pid {first.proc.pid} " in lines[0], lines
        assert "training" not in out
    assert auto_name.finish()[0] == 0
    first.resume()
    assert first.finish()[0] == 0
    _one_run(tmp_path / "runs" / "r", 2)  # the refused processes left no trace in it
    _one_run(tmp_path / "runs" / BASE, 1)
    assert main(["train", "--name", "r", "--epochs", "1", *SMOKE]) == 2  # finished: it is not restarted by name


def test_a_run_killed_in_its_first_epoch_can_be_resumed_or_restarted(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recipe = ["--epochs", "2", "--seed", "1", "--lr", "0.02", "-T", "2"]
    killed = _Proc(tmp_path, "--name", "r", *recipe, pause="step:2").paused()
    other = _Proc(tmp_path, "--name", "q", *recipe, "--num-workers", "1", pause="step:1").paused()
    killed.kill()
    other.kill(group=False)  # its DataLoader worker lives on for a while: it must not keep the lock
    run = tmp_path / "runs" / "r"
    assert (run / "config.json").is_file() and not (run / "checkpoint.pt").exists()
    assert run_state(run) == "interrupted" and not is_running(run)  # the kernel dropped the lock with the process
    assert not is_running(tmp_path / "runs" / "q")
    other.kill_children()
    assert list_runs(tmp_path / "runs") == []  # nothing to compare yet
    recipe_on_disk = (run / "config.json").read_bytes()

    assert main(["train", "--resume", "runs/r", *SMOKE]) == 0  # every setting from the run
    assert main(["train", "--name", "straight", *recipe, *SMOKE]) == 0
    assert _numbers(load_run(run)) == _numbers(load_run(tmp_path / "runs" / "straight"))
    assert (run / "config.json").read_bytes() == recipe_on_disk
    capsys.readouterr()

    assert main(["train", "--name", "q", "--epochs", "1", *SMOKE]) == 0  # restarted by name, with a new recipe
    assert "q ended before its first epoch: starting it again" in capsys.readouterr().err
    assert [e["epoch"] for e in load_run(tmp_path / "runs" / "q").epochs] == [1]
    assert json.loads((tmp_path / "runs" / "q" / "config.json").read_text())["seed"] == 0


def test_a_kill_during_the_checkpoint_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = ["--epochs", "3", "--seed", "2"]
    killed = _Proc(tmp_path, "--name", "k", *recipe, pause="checkpoint:2").paused()
    killed.kill()
    run = tmp_path / "runs" / "k"
    tmp = list(run.glob(".checkpoint.pt.*.tmp"))
    assert len(tmp) == 1 and tmp[0].read_bytes() == b"half a checkpoint"
    assert load_checkpoint(run)["epoch"] == 1 and run_state(run) == "interrupted"

    assert main(["train", "--name", "straight", *recipe, *SMOKE]) == 0  # any start under runs/ cleans up
    assert not tmp[0].exists() and sorted(p.name for p in run.iterdir() if p.name.endswith(".tmp")) == []
    assert main(["train", "--resume", str(run), *SMOKE]) == 0
    assert _numbers(load_run(run)) == _numbers(load_run(tmp_path / "runs" / "straight"))
    for a, b in zip(load_checkpoint(run)["model"].values(), load_checkpoint(tmp_path / "runs" / "straight")["model"].values()):
        assert torch.equal(a, b)


def test_a_killed_run_is_resumed_with_its_own_recipe(tmp_path, monkeypatch, capsys):
    """The issue's example: --epochs 30 -T 16 --seed 1, killed after epoch 5, resumed with no flags (scaled down)."""
    monkeypatch.chdir(tmp_path)
    recipe = ["--epochs", "4", "-T", "3", "--seed", "1", "--lr", "0.03", "--schedule", "step", "--step-size", "1",
              "--gamma", "0.5", "--loss", "tet", "--augment"]
    _Proc(tmp_path, "--name", "r", *recipe, pause="step:7").paused().kill()  # in epoch 3
    run = tmp_path / "runs" / "r"
    assert load_checkpoint(run)["epoch"] == 2
    before = {p.name: p.read_bytes() for p in (run / "config.json", run / "history.jsonl")}

    for flags, named in ((["--seed", "0"], "--seed 0 (the run has 1)"), (["-T", "4"], "-T 4 (the run has 3)"),
                         (["--batch-size", "16"], "--batch-size 16 (the run has 32)"),
                         (["--lr", "0.01", "--loss", "sdt"], "--lr 0.01 (the run has 0.03), --loss 'sdt'"),
                         (["--epochs", "1"], "already trained 2 epochs"), (["--name", "x"], "--name and --out"),
                         (["--limit", "200"], "--limit 200 (the run has 96)")):
        args = ["train", "--resume", "runs/r", *flags, "--no-progress", "--device", "cpu"]
        assert main(args) == 2, flags
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and named in err[0], err
    assert {p: (run / p).read_bytes() for p in before} == before  # refused: nothing touched

    assert main(["train", "--resume", "runs/r", "--no-progress", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "resuming runs/r after epoch 2" in out and "epoch   3/4" in out
    assert main(["train", "--name", "straight", *recipe, *SMOKE]) == 0
    assert _numbers(load_run(run)) == _numbers(load_run(tmp_path / "runs" / "straight"))
    assert (run / "config.json").read_bytes() == before["config.json"]  # the recipe is not rewritten
