"""Run folders, checkpoints and resuming: 2 epochs straight equal 1 epoch + checkpoint + 1 resumed epoch."""
from __future__ import annotations

import json
import os
import threading

import pytest
import torch
from torch import nn

from spikelab import data
from spikelab.layers import SeqToANN, StaticStem, TdBatchNorm
from spikelab.neurons import PLIF
from spikelab.training import (
    Callback,
    final_metrics,
    fit,
    list_runs,
    load_checkpoint,
    load_metrics,
    load_run,
    save_checkpoint,
)

QUIET = dict(progress=False, device="cpu")


def _model() -> nn.Module:
    """Batch norm (running statistics), dropout (RNG) and a learned decay: all must survive a checkpoint."""
    torch.manual_seed(0)
    return nn.Sequential(
        StaticStem(SeqToANN(nn.Flatten(), nn.Linear(64, 24)), T=2), TdBatchNorm(24), PLIF(),
        SeqToANN(nn.Dropout(0.3), nn.Linear(24, 10)),
    )


def _loaders():
    # augmentation draws from the loader's own generator: resuming must reproduce it too
    return data.make_loaders("digits", batch_size=32, limit=160, augment=True, seed=1)


SETTINGS = dict(epochs=2, lr=0.02, optimizer="adam", schedule="cosine", seed=3)


class _StopAfterFirstEpoch(Callback):
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def on_epoch_end(self, record):
        self.stop.set()


def _numbers(h):
    strip = lambda r: {k: v for k, v in r.items() if k != "time_s"}  # noqa: E731
    return [strip(r) for r in h.steps], [strip(r) for r in h.epochs]


def test_resume_reaches_the_same_result_as_an_uninterrupted_run(tmp_path):
    straight_model = _model()
    straight = fit(straight_model, _loaders(), run_dir=tmp_path / "straight", **SETTINGS, **QUIET)

    stop = threading.Event()
    first = fit(_model(), _loaders(), run_dir=tmp_path / "cut", stop_event=stop,
                callbacks=_StopAfterFirstEpoch(stop), **SETTINGS, **QUIET)
    assert first.stopped and len(first.epochs) == 1
    assert load_metrics(tmp_path / "cut")["stopped"] is True

    torch.manual_seed(123)  # a fresh process would start from other weights and another RNG state
    resumed_model = _model()
    for p in resumed_model.parameters():
        nn.init.normal_(p)
    resumed = fit(resumed_model, _loaders(), run_dir=tmp_path / "cut", resume=tmp_path / "cut",
                  **SETTINGS, **QUIET)
    assert not resumed.stopped
    assert _numbers(resumed) == _numbers(straight)
    for (k, a), b in zip(straight_model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), k
    # the resumed run folder holds the whole history, like the straight one
    assert _numbers(load_run(tmp_path / "cut")) == _numbers(straight)


def test_run_folder_files(tmp_path):
    run = tmp_path / "runs" / "demo"
    seen_lines: list[int] = []

    def live_reader(event, record):  # what a dashboard polling the folder sees after each epoch
        if event == "epoch_end":
            seen_lines.append(len(load_run(run).epochs))

    h = fit(_model(), _loaders(), run_dir=run, run_config={"model": "tiny", "T": 2}, callbacks=live_reader,
            epochs=2, **QUIET)
    assert seen_lines == [1, 2]
    assert sorted(p.name for p in run.iterdir()) == [".run.lock", "checkpoint.pt", "config.json", "history.jsonl",
                                                 "metrics.json"]
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "tiny" and config["epochs"] == 2 and config["loss"] == "sdt"
    loaded = load_run(run)
    assert loaded.name == "demo" and loaded.config == config == h.config
    assert loaded.steps == h.steps and loaded.epochs == h.epochs
    assert json.loads((run / "metrics.json").read_text()) == final_metrics(h, False)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and state["run_config"]["model"] == "tiny"
    assert list_runs(tmp_path / "runs") == [run]
    assert list_runs(tmp_path / "nothing") == []


def test_load_run_ignores_a_half_written_last_line(tmp_path):
    run = tmp_path / "live"
    fit(_model(), _loaders(), run_dir=run, epochs=1, **QUIET)
    n = len(load_run(run).steps)
    with open(run / "history.jsonl", "a") as f:
        f.write('{"kind": "step", "step": 99, "ep')  # a writer caught mid-line
    assert len(load_run(run).steps) == n
    (run / "history.jsonl").write_text('{"kind": "nonsense"}\n')
    with pytest.raises(ValueError, match="kind"):
        load_run(run)
    with pytest.raises(FileNotFoundError):
        load_run(tmp_path / "missing")


def test_checkpoints_are_atomic_and_loaded_weights_only(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "epoch": 1})
    save_checkpoint(path, {"model": {"w": torch.zeros(2)}, "epoch": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temporary file left behind
    state = load_checkpoint(path)
    assert state["epoch"] == 2 and torch.equal(state["model"]["w"], torch.zeros(2))

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"model": {}, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="not a readable spikelab checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt")


def test_atomic_write_removes_the_temporaries_of_dead_writers(tmp_path):
    import subprocess
    import sys

    from spikelab.training import atomic_write

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # a process that has ended
    stale = tmp_path / f".table.json.{dead_pid}.0badc0de.tmp"
    live = tmp_path / f".table.json.{os.getppid()}.0badc0de.tmp"  # a writer still at work: not ours to remove
    other = tmp_path / f".other.json.{dead_pid}.0badc0de.tmp"
    for f in (stale, live, other):
        f.write_text("half")
    atomic_write(tmp_path / "table.json", lambda f: f.write("{}"))
    assert (tmp_path / "table.json").read_text() == "{}"
    assert not stale.exists() and live.exists() and other.exists()
