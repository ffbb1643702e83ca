"""fit / evaluate: records, determinism, callbacks, stopping, losses, schedules, bad input."""
from __future__ import annotations

import json
import math
import threading

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from spikelab.layers import SeqToANN, StaticStem
from spikelab.losses import sdt_loss, tet_loss
from spikelab.neurons import LIF
from spikelab.training import Callback, TrainConfig, build_optimizer, evaluate, fit, lr_at

QUIET = dict(progress=False, device="cpu")


def _data(n: int = 48, features: int = 10, classes: int = 3, batch_size: int = 8, seed: int = 7):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, features, generator=g) * 2
    y = x[:, :classes].argmax(1)
    train = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    test = DataLoader(TensorDataset(x[: n // 2], y[: n // 2]), batch_size=16)
    return train, test


def _model(features: int = 10, classes: int = 3, T: int = 3, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        StaticStem(SeqToANN(nn.Linear(features, 16)), T), LIF(), SeqToANN(nn.Dropout(dropout), nn.Linear(16, classes))
    )


def _numbers(history) -> tuple[list, list]:
    """The records without wall-clock times."""
    strip = lambda r: {k: v for k, v in r.items() if k != "time_s"}  # noqa: E731
    return [strip(r) for r in history.steps], [strip(r) for r in history.epochs]


def test_history_records_and_json():
    model = _model()
    probe = torch.rand(2, 10)
    h = fit(model, _data(), epochs=2, lr=0.05, probe=probe, **QUIET)
    assert len(h.steps) == 2 * 6 and len(h.epochs) == 2 and h.stopped is False
    assert [r["step"] for r in h.steps] == list(range(1, 13))
    assert [r["epoch"] for r in h.steps] == [1] * 6 + [2] * 6
    assert set(h.steps[0]) == {"step", "epoch", "loss", "acc", "lr", "time_s"}
    e = h.epochs[-1]
    assert {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "time_s", "firing_rates",
            "test_firing_rates", "probe"} <= set(e)
    # the epoch's training loss is the sample-weighted mean of its steps (all batches hold 8 samples here)
    assert e["train_loss"] == pytest.approx(sum(r["loss"] for r in h.steps[6:]) / 6)
    assert list(e["firing_rates"]) == ["1"] and 0 <= e["firing_rates"]["1"] <= 1
    spikes = e["probe"]["spikes"]["1"]
    assert len(spikes) == 3 and len(spikes[0]) == 16 and {v for row in spikes for v in row} <= {0, 1}
    # the probe's spikes are those of the trained model on the probe's first sample
    model.eval()
    with torch.no_grad():
        expect = model[1](model[0](probe))[:, 0].int().tolist()
    assert spikes == expect
    json.loads(json.dumps({"steps": h.steps, "epochs": h.epochs}))  # plain data only
    assert h.config["loss"] == "sdt" and h.config["epochs"] == 2


def test_same_seed_same_history_and_weights():
    runs = []
    for _ in range(2):
        model = _model(dropout=0.2)
        h = fit(model, _data(), epochs=2, lr=0.05, seed=4, **QUIET)
        runs.append((_numbers(h), [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    other = fit(_model(dropout=0.2), _data(), epochs=2, lr=0.05, seed=5, **QUIET)
    assert _numbers(other) != runs[0][0]


def test_callbacks_see_every_event_in_order():
    events: list[tuple[str, object]] = []

    class Recorder(Callback):
        def on_fit_start(self, state):
            events.append(("start", state["steps_per_epoch"]))

        def on_epoch_end(self, record):
            events.append(("epoch", record["epoch"]))

        def on_fit_end(self, state):
            events.append(("end", state["stopped"]))

    plain: list[str] = []
    fit(_model(), _data(), epochs=2, callbacks=[Recorder(), lambda ev, rec: plain.append(ev)], **QUIET)
    assert events == [("start", 6), ("epoch", 1), ("epoch", 2), ("end", False)]
    assert plain == ["fit_start"] + ["step_end"] * 6 + ["epoch_end"] + ["step_end"] * 6 + ["epoch_end", "fit_end"]
    with pytest.raises(TypeError, match="callbacks"):
        fit(_model(), _data(), epochs=1, callbacks=[42], **QUIET)


def test_stop_event_is_honoured_within_one_batch():
    stop = threading.Event()
    seen: list[int] = []

    def stop_at_third(event, record):
        if event == "step_end":
            seen.append(record["step"])
            if record["step"] == 3:
                stop.set()

    h = fit(_model(), _data(), epochs=3, stop_event=stop, callbacks=stop_at_third, **QUIET)
    assert h.stopped is True
    assert seen == [1, 2, 3] and len(h.steps) == 3 and h.epochs == []
    h = fit(_model(), _data(), epochs=3, stop_event=stop, **QUIET)  # already set: nothing runs
    assert h.stopped is True and h.steps == []


def test_losses_sdt_tet_and_custom():
    calls: list[int] = []

    def custom(outputs, targets):
        calls.append(outputs.shape[1])
        return sdt_loss(outputs, targets)

    h_custom = fit(_model(), _data(), epochs=1, loss=custom, **QUIET)
    h_sdt = fit(_model(), _data(), epochs=1, **QUIET)
    assert calls[:6] == [8] * 6 and h_custom.config["loss"] == "custom"
    assert _numbers(h_custom) == _numbers(h_sdt)
    model = _model()
    h_tet = fit(model, _data(), epochs=1, loss="tet", lam=0.3, phi=0.5, **QUIET)
    assert h_tet.config["loss"] == "tet" and h_tet.config["lam"] == 0.3
    # the reported test loss is the TET loss of the final model
    x, y = _data()[1].dataset.tensors
    model.eval()
    with torch.no_grad():
        expect = tet_loss(model(x), y, lam=0.3, phi=0.5).item()
    assert h_tet.last["test_loss"] == pytest.approx(expect, rel=1e-5)


def test_schedules_follow_their_closed_forms():
    cfg = TrainConfig(epochs=4, lr=0.1, schedule="cosine", lr_min=0.01)
    assert lr_at(cfg, 0, 5) == pytest.approx(0.1)
    assert lr_at(cfg, 10, 5) == pytest.approx(0.01 + 0.09 * (1 + math.cos(math.pi / 2)) / 2)
    step = TrainConfig(epochs=9, lr=0.1, schedule="step", step_size=2, gamma=0.5)
    assert [lr_at(step, k * 3, 3) for k in range(5)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    assert lr_at(TrainConfig(schedule="none", lr=0.3), 99, 1) == 0.3
    h = fit(_model(), _data(), epochs=2, lr=0.1, schedule="cosine", **QUIET)
    assert [r["lr"] for r in h.steps] == pytest.approx(
        [0.05 * (1 + math.cos(math.pi * k / 12)) for k in range(12)])


def test_optimizers_are_built_as_asked():
    params = list(_model().parameters())
    assert isinstance(build_optimizer(params, TrainConfig(optimizer="sgd", momentum=0.8)), torch.optim.SGD)
    assert isinstance(build_optimizer(params, TrainConfig(optimizer="adam")), torch.optim.Adam)
    opt = build_optimizer(params, TrainConfig(optimizer="adamw", weight_decay=0.01))
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["weight_decay"] == 0.01
    h = fit(_model(), _data(), epochs=1, optimizer="sgd", lr=0.5, grad_clip=0.1, **QUIET)
    assert h.config["optimizer"] == "sgd" and h.config["grad_clip"] == 0.1


def test_event_batches_are_made_time_first():
    shapes: list[tuple[int, ...]] = []

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = SeqToANN(nn.Flatten(), nn.Linear(2 * 3 * 3, 4))

        def forward(self, x_seq):
            shapes.append(tuple(x_seq.shape))
            return self.fc(x_seq)

    x = torch.rand(8, 5, 2, 3, 3)  # loader layout [B, T, 2, H, W]
    loader = DataLoader(TensorDataset(x, torch.arange(8) % 4), batch_size=4)
    fit(Probe(), loader, epochs=1, **QUIET)
    assert shapes == [(5, 4, 2, 3, 3)] * 2


def test_evaluate_matches_a_hand_loop_and_restores_mode():
    model = _model().train()
    _, test = _data()
    res = evaluate(model, test, device="cpu", ops=True)
    x, y = test.dataset.tensors
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train()
    assert res["n"] == 24
    assert res["acc"] == pytest.approx((out.mean(0).argmax(1) == y).float().mean().item())
    assert res["loss"] == pytest.approx(sdt_loss(out, y).item(), rel=1e-5)
    assert res["firing_rates"]["1"] == pytest.approx(model[1](model[0](x)).mean().item())
    assert [r["layer"] for r in res["ops"]] == ["0", "1", "2.1"]
    assert model.training
    assert evaluate(model, test, device="cpu")["ops"] is None


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="unknown settings"):
        fit(_model(), _data(), epochs=1, learning_rate=0.1, **QUIET)
    with pytest.raises(TypeError, match="data"):
        fit(_model(), [1, 2, 3, 4], **QUIET)
    with pytest.raises(TypeError, match="model"):
        fit("model", _data(), **QUIET)
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="device"):
        TrainConfig(device="tpu")
    with pytest.raises(ValueError, match="run_config"):
        fit(_model(), _data(), epochs=1, run_config={"lr": 3}, **QUIET)


@pytest.mark.gpu
def test_cuda_with_mixed_precision():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    model = _model()
    h = fit(model, _data(), epochs=3, lr=0.05, progress=False)  # device "auto" -> CUDA, amp on by default
    assert next(model.parameters()).device.type == "cuda"
    assert all(math.isfinite(r["loss"]) for r in h.steps)
    ref = fit(_model(), _data(), epochs=3, lr=0.05, amp=False, progress=False)
    assert h.last["train_loss"] == pytest.approx(ref.last["train_loss"], abs=0.05)  # float16 rounding only
    res = evaluate(model, _data()[1], ops=True)
    assert res["n"] == 24 and res["ops"][0]["macs"] > 0


def test_amp_on_cpu_trains_in_bfloat16():
    # amp=True on the CPU: the forward runs under bfloat16 autocast (linear layers in bfloat16, spikes too), no
    # gradient scaler; the run trains (the loss falls) to about float32's accuracy
    model = _model()
    seen = []
    model[1].register_forward_hook(lambda m, inp, out: seen.append((inp[0].dtype, out.dtype)))
    h = fit(model, _data(), epochs=3, lr=0.05, amp=True, **QUIET)
    assert seen and all(d == (torch.bfloat16, torch.bfloat16) for d in seen[:3])
    ref = fit(_model(), _data(), epochs=3, lr=0.05, amp=False, **QUIET)
    assert h.epochs[-1]["train_loss"] < h.epochs[0]["train_loss"]
    assert abs(h.epochs[-1]["train_acc"] - ref.epochs[-1]["train_acc"]) < 0.2
