"""``fit`` stops on a non-finite loss or gradient and on a diverging loss, naming the epoch and step, with the bad
update not applied and the last good checkpoint kept; empty data is an error, never ``None`` metrics. Oracles: the
same run stopped just before the bad step, the median rule computed by hand, and the files on disk."""
from __future__ import annotations

import json
import math
import threading

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from spikelab import data
from spikelab.cli import main
from spikelab.layers import SeqToANN, StaticStem
from spikelab.losses import sdt_loss
from spikelab.neurons import LIF
from spikelab.training import (
    Callback,
    DivergenceError,
    evaluate,
    fit,
    list_runs,
    load_checkpoint,
    load_run,
    run_state,
)
from spikelab.training.guards import divergence

QUIET = dict(progress=False, device="cpu", lr=0.02, seed=1)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(StaticStem(SeqToANN(nn.Flatten(), nn.Linear(64, 24)), T=2), LIF(), SeqToANN(nn.Linear(24, 10)))


class _Digits(Dataset):
    """96 digits in a fixed order (batches of 16: sample 40 is in the third batch); ``poisoned`` puts a NaN pixel
    into sample 40."""

    def __init__(self) -> None:
        x, y = data.load("digits", limit=96).images, data.load("digits", limit=96).labels
        self.x, self.y, self.poisoned = x.float(), y, False

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        x = self.x[i].clone()
        if self.poisoned and i == 40:
            x[0, 3, 3] = float("nan")
        return x, self.y[i]


class _At(Callback):
    """Calls ``action`` after step ``step`` or epoch ``epoch``."""

    def __init__(self, action, *, step=None, epoch=None) -> None:
        self.action, self.step, self.epoch = action, step, epoch

    def on_step_end(self, record):
        if record["step"] == self.step:
            self.action()

    def on_epoch_end(self, record):
        if record["epoch"] == self.epoch:
            self.action()


def _stopped_after(step: int, epochs: int) -> nn.Module:
    """The oracle: the same run, stopped after ``step``."""
    model, stop = _model(), threading.Event()
    fit(model, DataLoader(_Digits(), batch_size=16), epochs=epochs, stop_event=stop,
        callbacks=_At(stop.set, step=step), **QUIET)
    return model


def _same_weights(a: nn.Module, b: dict) -> bool:
    return all(torch.equal(x, b[k]) for k, x in a.state_dict().items())


def test_a_nan_pixel_stops_training_at_its_step_and_applies_no_update():
    ds = _Digits()
    ds.poisoned = True
    model = _model()
    # the spike threshold swallows the NaN in the forward pass (NaN >= v_th is False), so the loss stays finite;
    # the surrogate gradient at NaN is NaN, which would turn every weight into NaN
    with pytest.raises(DivergenceError, match=r"training stopped at epoch 1, step 3: the gradient norm is nan "
                                              r"\(loss 2\.\d+\)\. The update was not applied") as err:
        fit(model, DataLoader(ds, batch_size=16), epochs=2, **QUIET)
    assert (err.value.epoch, err.value.step) == (1, 3) and len(err.value.history.steps) == 2
    assert all(torch.isfinite(p).all() for p in model.state_dict().values())
    assert _same_weights(model, _stopped_after(2, epochs=2).state_dict())


def test_a_nan_in_a_later_epoch_keeps_the_last_good_checkpoint(tmp_path):
    ds = _Digits()
    run = tmp_path / "run"
    poison = _At(lambda: setattr(ds, "poisoned", True), epoch=1)
    with pytest.raises(DivergenceError, match="epoch 2, step 9"):
        fit(_model(), DataLoader(ds, batch_size=16), epochs=3, run_dir=run, callbacks=poison, **QUIET)
    ckpt = load_checkpoint(run)
    assert ckpt["epoch"] == 1 and _same_weights(_stopped_after(6, epochs=3), ckpt["model"])
    h = load_run(run)
    assert [e["epoch"] for e in h.epochs] == [1] and [s["step"] for s in h.steps] == list(range(1, 9))
    metrics = json.loads((run / "metrics.json").read_text())
    assert "epoch 2, step 9" in metrics["error"] and run_state(run) == "failed"


def test_a_non_finite_gradient_with_a_finite_loss_stops_training():
    def loss_with_a_bad_gradient(out, y):  # sqrt(|u|) at u = 0: value 0, derivative inf * sign(0) = nan
        return sdt_loss(out, y) + (out - out.detach()).abs().sum().sqrt()

    with pytest.raises(DivergenceError, match=r"epoch 1, step 1: the gradient norm is nan \(loss 2\.\d+\)"):
        fit(_model(), DataLoader(_Digits(), batch_size=16), loss=loss_with_a_bad_gradient, epochs=1, **QUIET)


def test_the_divergence_rule_is_the_median_against_the_first_loss():
    assert divergence([30.0, 25.0, 0.1], first_loss=2.3, factor=10) == 25.0  # most of the epoch above 23
    assert divergence([1e9, 1.0, 0.9], first_loss=2.3, factor=10) is None  # one bad batch is not divergence
    assert divergence([30.0, 30.0], first_loss=2.3, factor=None) is None
    assert divergence([30.0, 30.0], first_loss=-1.0, factor=10) is None  # a loss of another scale: no rule


def test_a_huge_learning_rate_diverges_instead_of_finishing():
    loaders = data.make_loaders("digits", batch_size=32, limit=96)
    with pytest.raises(DivergenceError, match=r"training diverged in epoch 1 \(step 3\): the median training loss "
                                              r"of the epoch, [0-9.e+]+, is more than 10 times the loss at the "
                                              r"first step, 2\.\d+\. The peak learning rate \(1e\+09\) is probably too high"):
        fit(_model(), loaders, epochs=2, device="cpu", progress=False, lr=1e9)
    h = fit(_model(), loaders, epochs=1, device="cpu", progress=False, lr=1e9, diverge_factor=None)
    assert h.epochs[0]["train_loss"] > 1e3  # what the check is there for


def test_cli_divergence_is_one_line_without_done(tmp_path, capsys):
    assert main(["train", "--lr", "1e9", "--epochs", "2", "--limit", "96", "--out", str(tmp_path), "--no-progress",
                 "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spikelab train: error: training diverged in epoch 1"), lines
    assert "done" not in captured.out and "Traceback" not in captured.err
    assert list_runs(tmp_path) == [] and list(tmp_path.iterdir()) == []  # it never finished an epoch


def test_empty_data_is_an_error_not_none_metrics():
    x, y = torch.rand(20, 1, 8, 8), torch.randint(0, 10, (20,))
    train = DataLoader(TensorDataset(x, y), batch_size=4)
    empty = DataLoader(TensorDataset(x[:0], y[:0]), batch_size=4)
    with pytest.raises(ValueError, match="the test data yields no batch"):
        fit(_model(), (train, empty), epochs=1, **QUIET)
    with pytest.raises(ValueError, match="the training data yields no batch"):
        fit(_model(), (empty, train), epochs=1, **QUIET)
    with pytest.raises(ValueError, match="the evaluation data yields no sample"):
        evaluate(_model(), empty, device="cpu")
    assert math.isfinite(evaluate(_model(), train, device="cpu")["loss"])
