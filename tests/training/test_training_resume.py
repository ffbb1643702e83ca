"""``fit(resume=...)`` and ``spikelab train --resume`` refuse what would not continue the run (other recipe, batch
size, steps per epoch, weights), and state what a new number of epochs does to the schedule. Oracles: the
uninterrupted run, ``lr_at``, and the files the first leg wrote."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import warnings

import pytest
import torch
from torch import nn

from spikelab import data
from spikelab.cli import main
from spikelab.layers import SeqToANN, StaticStem
from spikelab.neurons import LIF
from spikelab.training import (
    Callback,
    ResumeWarning,
    RunBusyError,
    RunFolderError,
    TrainConfig,
    fit,
    load_checkpoint,
    load_run,
    lr_at,
)

QUIET = dict(progress=False, device="cpu")
SMOKE = ["--limit", "96", "--batch-size", "32", "--no-progress", "--device", "cpu"]


def _model(width: int = 24) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(StaticStem(SeqToANN(nn.Flatten(), nn.Linear(64, width)), T=2), LIF(),
                         SeqToANN(nn.Linear(width, 10)))


def _loaders(batch_size: int = 32, limit: int = 96):
    return data.make_loaders("digits", batch_size=batch_size, limit=limit, seed=1)


class _StopAfter(Callback):
    def __init__(self, stop: threading.Event, epoch: int) -> None:
        self.stop, self.epoch = stop, epoch

    def on_epoch_end(self, record):
        if record["epoch"] == self.epoch:
            self.stop.set()


def _cut_run(run, epochs_done: int = 1, **settings) -> None:
    stop = threading.Event()
    fit(_model(), _loaders(), run_dir=run, stop_event=stop, callbacks=_StopAfter(stop, epochs_done),
        **settings, **QUIET)


def _numbers(h):
    strip = lambda r: {k: v for k, v in r.items() if k != "time_s"}  # noqa: E731
    return [strip(r) for r in h.steps], [strip(r) for r in h.epochs]


SETTINGS = dict(epochs=3, lr=0.02, seed=3)


def test_fit_refuses_a_resume_with_another_recipe(tmp_path):
    run = tmp_path / "r"
    _cut_run(run, **SETTINGS, run_config={"model": "tiny"})
    on_disk = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    cases = [
        (dict(SETTINGS, seed=4), {}, _loaders(), "seed=3 (asked: 4)"),
        (dict(SETTINGS, lr=0.05, schedule="step"), {}, _loaders(), "lr=0.02 (asked: 0.05), schedule='cosine'"),
        (dict(SETTINGS), {"model": "other"}, _loaders(), "model='tiny' (asked: 'other')"),
        (dict(SETTINGS, loss="tet"), {}, _loaders(), "loss='sdt' (asked: 'tet')"),
        (dict(SETTINGS), {}, _loaders(batch_size=16), "batches of 32 with 3 steps per epoch, but the data now gives "
                                                      "batches of 16 and 6"),
        (dict(SETTINGS), {}, _loaders(limit=64), "3 steps per epoch, but the data now gives batches of 32 and 2"),
        (dict(SETTINGS, epochs=3), {}, _loaders(batch_size=31), "batches of 31"),  # same steps, other batch
    ]
    for settings, run_config, loaders, message in cases:
        with pytest.raises(ValueError, match="cannot resume") as err:
            fit(_model(), loaders, run_dir=run, resume=run, run_config=run_config, **settings, **QUIET)
        assert message in str(err.value), (message, str(err.value))
    with pytest.raises(ValueError, match=r"do not fit the model: 3 of another shape \(0\.module\.module\.1\.weight "
                                         r"is \[24, 64\] in the file but \[30, 64\] in the model\)"):
        fit(_model(width=30), _loaders(), run_dir=run, resume=run, **SETTINGS, **QUIET)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == on_disk  # nothing was touched


def test_a_new_number_of_epochs_is_stated_and_recorded(tmp_path):
    run = tmp_path / "r"
    _cut_run(run, epochs_done=2, **SETTINGS)
    original = json.loads((run / "config.json").read_text())
    seen = []
    with pytest.warns(ResumeWarning, match=r"planned 3 epochs and has trained 2; it now trains to 5\. The cosine") as w:
        h = fit(_model(), _loaders(), run_dir=run, resume=run, callbacks=lambda e, r: seen.append(r),
                **dict(SETTINGS, epochs=5), **QUIET)
    config = TrainConfig(**dict(SETTINGS, epochs=5))
    first = [r for r in seen if "step" in r and "train_loss" not in r][0]
    assert first["step"] == 7 and first["lr"] == lr_at(config, 6, 3)  # the 5-epoch cosine from step 7 on
    stated = f"the learning rate of the next step is {lr_at(config, 6, 3):.3g} (the 3-epoch schedule had " \
             f"{lr_at(TrainConfig(**SETTINGS), 6, 3):.3g})"
    assert stated in str(w[0].message)
    assert [e["epoch"] for e in h.epochs] == [1, 2, 3, 4, 5]
    recorded = json.loads((run / "config.json").read_text())
    assert recorded == {**original, "extensions": [{"after_epoch": 2, "epochs": 5}]}  # the recipe stays
    assert load_checkpoint(run)["run_config"]["extensions"] == [{"after_epoch": 2, "epochs": 5}]

    with warnings.catch_warnings():  # the same total again: a plain resume, no warning
        warnings.simplefilter("error", ResumeWarning)
        fit(_model(), _loaders(), run_dir=run, resume=run, **dict(SETTINGS, epochs=5), **QUIET)
    with pytest.raises(ValueError, match="has already trained 5 epochs"):
        fit(_model(), _loaders(), run_dir=run, resume=run, **dict(SETTINGS, epochs=4), **QUIET)


def test_extending_a_step_schedule_equals_the_longer_run(tmp_path):
    settings = dict(SETTINGS, schedule="step", step_size=1, gamma=0.7)
    _cut_run(tmp_path / "cut", epochs_done=2, **settings)
    with pytest.warns(ResumeWarning, match="does not depend on the number of epochs, so the result equals an "
                                           "uninterrupted 4-epoch run"):
        extended = fit(_model(), _loaders(), run_dir=tmp_path / "cut", resume=tmp_path / "cut",
                       **dict(settings, epochs=4), **QUIET)
    straight = fit(_model(), _loaders(), **dict(settings, epochs=4), **QUIET)
    assert _numbers(extended) == _numbers(straight)


def test_a_run_folder_holds_one_run(tmp_path):
    run = tmp_path / "r"
    fit(_model(), _loaders(), run_dir=run, epochs=1, **QUIET)
    before = (run / "history.jsonl").read_text()
    with pytest.raises(RunFolderError, match="already holds a run: pass resume="):
        fit(_model(), _loaders(), run_dir=run, epochs=1, seed=5, **QUIET)
    assert (run / "history.jsonl").read_text() == before
    stopped = tmp_path / "s"  # stopped before its first epoch ended: nothing to resume, so it may start again
    stop = threading.Event()
    stop.set()
    fit(_model(), _loaders(), run_dir=stopped, stop_event=stop, **QUIET)
    assert fit(_model(), _loaders(), run_dir=stopped, epochs=1, **QUIET).epochs


def test_fit_refuses_a_run_folder_another_process_trains(tmp_path):
    run = tmp_path / "r"
    fit(_model(), _loaders(), run_dir=run, epochs=1, **QUIET)
    code = ("import sys, time; from spikelab.training import lock_run; lock = lock_run(sys.argv[1]); "
            "print('held', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunBusyError, match=rf"is running \(pid {holder.pid} "):
            fit(_model(), _loaders(), run_dir=run, resume=run, epochs=2, **QUIET)
    finally:
        holder.kill()
        holder.wait()
    with pytest.warns(ResumeWarning, match="planned 1 epoch and"):
        assert fit(_model(), _loaders(), run_dir=run, resume=run, epochs=2, **QUIET).epochs[-1]["epoch"] == 2


def test_cli_resume_extends_with_a_note_and_keeps_the_recipe(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--name", "r", "--epochs", "1", *SMOKE]) == 0
    run = tmp_path / "r"
    original = json.loads((run / "config.json").read_text())
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("spikelab train: note: the run planned 1 epoch and has trained 1; it now trains to 2")
    assert json.loads((run / "config.json").read_text()) == {**original,
                                                             "extensions": [{"after_epoch": 1, "epochs": 2}]}
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 0
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0  # the last extension is the plan now
    assert [e["epoch"] for e in load_run(run).epochs] == [1, 2, 3]
    assert json.loads((run / "config.json").read_text())["extensions"] == [
        {"after_epoch": 1, "epochs": 2}, {"after_epoch": 2, "epochs": 3}]
