"""Training in phases (time inheritance, frozen layers), evaluation at other T, and the TET presets (SPEC section 3)."""
from __future__ import annotations

import copy
import json
import threading

import pytest
import torch

from spikelab import data, models
from spikelab.losses import TET_PRESETS, tet_preset
from spikelab.training import (
    Phase,
    TrainConfig,
    evaluate,
    evaluate_at_T,
    fit,
    fit_phases,
    fit_tit,
    load_checkpoint,
    load_run,
    tit_phases,
)

QUIET = dict(progress=False, device="cpu")


@pytest.fixture(scope="module")
def digits():
    return data.make_loaders("digits", batch_size=32, limit=96, seed=0)


def _net(T=2):
    torch.manual_seed(0)
    return models.build("conv-small", num_classes=10, in_channels=1, T=T, channels=(4, 6))


def _numbers(records):
    return [{k: v for k, v in r.items() if k not in ("time_s", "phase", "T")} for r in records]


def test_tit_equals_two_plain_fits_from_the_same_weights(digits, tmp_path):
    """The oracle: fit at T=2, then fit at T=3 from those weights; TIT must give the same weights and records."""
    config = TrainConfig(epochs=99, lr=0.01, seed=3)
    ref = _net()
    h1 = fit(ref, digits, config, epochs=2, **QUIET)
    ref.T = 3
    h2 = fit(ref, digits, config, epochs=1, lr=0.005, **QUIET)

    net = _net()
    h = fit_tit(net, digits, config, T=(2, 3), epochs=(2, 1), lr=(None, 0.005), run_dir=tmp_path / "tit", **QUIET)
    assert net.T == 3
    for k, v in ref.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k
    # records numbered over the whole run, tagged with phase and T
    assert [e["epoch"] for e in h.epochs] == [1, 2, 3]
    assert [(e["phase"], e["T"]) for e in h.epochs] == [("T=2", 2), ("T=2", 2), ("T=3", 3)]
    n1 = len(h1.steps)
    assert [s["step"] for s in h.steps] == list(range(1, n1 + len(h2.steps) + 1))
    shifted = [dict(r, epoch=r["epoch"] + 2, step=r["step"] + n1) for r in _numbers(h2.steps)]
    assert _numbers(h.steps) == _numbers(h1.steps) + shifted
    assert [e["test_acc"] for e in h.epochs] == [e["test_acc"] for e in h1.epochs + h2.epochs]
    times = [s["time_s"] for s in h.steps]
    assert times == sorted(times)
    # one run folder holding every phase
    run = load_run(tmp_path / "tit")
    assert _numbers(run.steps) == _numbers(h.steps) and [e["phase"] for e in run.epochs] == ["T=2", "T=2", "T=3"]
    assert run.config["epochs"] == 3 and [p["T"] for p in run.config["phases"]] == [2, 3]
    metrics = json.loads((tmp_path / "tit" / "metrics.json").read_text())
    assert metrics["epoch_steps"] == 2 * 2 + 1 * 3
    assert [(p["epochs"], p["epoch_steps"], p["lr"]) for p in metrics["phases"]] == [(2, 4, 0.01), (1, 3, 0.005)]
    assert metrics["best_test_acc"] == max(e["test_acc"] for e in h.epochs)
    ckpt = load_checkpoint(tmp_path / "tit")
    assert ckpt["epoch"] == 3 and ckpt["phase"] == "T=3"
    assert all(torch.equal(ckpt["model"][k], v) for k, v in net.state_dict().items())


def test_callbacks_see_one_run(digits):
    events = []
    fit_tit(_net(), digits, T=(1, 2), epochs=(1, 1), callbacks=lambda ev, r: events.append((ev, r)), **QUIET)
    kinds = [ev for ev, _ in events]
    assert kinds[0] == "fit_start" and kinds[-1] == "fit_end"
    assert kinds.count("fit_start") == 1 and kinds.count("fit_end") == 1 and kinds.count("epoch_end") == 2
    assert events[0][1]["epochs"] == 2
    assert [r["epoch"] for ev, r in events if ev == "epoch_end"] == [1, 2]
    steps = [r["step"] for ev, r in events if ev == "step_end"]
    assert steps == list(range(1, len(steps) + 1))


def test_frozen_phase_trains_only_the_listed_parameters(digits):
    net = _net()
    net.head.fc.module.bias.requires_grad_(False)  # frozen by the user: stays frozen in every phase
    before = copy.deepcopy(net.state_dict())
    seen = {}

    def spy(event, record):
        if event == "epoch_end" and record["epoch"] == 1:
            seen.update({k: v.clone() for k, v in net.state_dict().items()})

    h = fit_phases(net, digits, [Phase(1, trainable=("stem.", "head.fc.module.weight"), name="frozen"),
                                 Phase(1, name="all")], lr=0.05, callbacks=spy, **QUIET)
    assert [e["phase"] for e in h.epochs] == ["frozen", "all"]
    params = dict(net.named_parameters())
    for k in params:
        moved_1 = not torch.equal(seen[k], before[k])
        trainable_1 = k.startswith("stem.") or k == "head.fc.module.weight"
        assert moved_1 == trainable_1, k
    assert not torch.equal(net.state_dict()["body.conv2.conv.module.weight"], seen["body.conv2.conv.module.weight"])
    assert torch.equal(net.head.fc.module.bias, before["head.fc.module.bias"])
    assert not net.head.fc.module.bias.requires_grad  # the flags are back as they were
    assert all(p.requires_grad for k, p in params.items() if k != "head.fc.module.bias")


def test_a_stop_ends_the_whole_run(digits, tmp_path):
    stop = threading.Event()
    h = fit_tit(_net(), digits, T=(1, 2), epochs=(2, 2), run_dir=tmp_path / "r", stop_event=stop,
                callbacks=lambda ev, r: stop.set() if ev == "epoch_end" else None, **QUIET)
    assert h.stopped and [e["epoch"] for e in h.epochs] == [1]
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["stopped"] and [p["name"] for p in metrics["phases"]] == ["T=1"]


def test_phase_errors(digits):
    net = _net()
    with pytest.raises(TypeError, match="non-empty list of Phase"):
        fit_phases(net, digits, [], **QUIET)
    with pytest.raises(ValueError, match="trainable entry 'nope.' matches no parameter"):
        fit_phases(net, digits, [Phase(1, trainable=("nope.",))], **QUIET)
    with pytest.raises(ValueError, match="phase names must be distinct"):
        fit_phases(net, digits, [Phase(1, T=2), Phase(1, T=2)], **QUIET)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        Phase(0)
    with pytest.raises(ValueError, match="same length, at least 2"):
        tit_phases((2,), (3,))
    events = data.make_loaders("digits-events", batch_size=32, limit=32, T=2)
    ev_net = models.build("conv-small", num_classes=10, in_channels=2, T=2, input_size=(12, 12), channels=(4, 6))
    with pytest.raises(ValueError, match="event sequences .* bring their own T"):
        fit_tit(ev_net, events, T=(2, 4), epochs=(1, 1), **QUIET)
    with pytest.raises(ValueError, match="fixed by the frames"):
        evaluate_at_T(ev_net, events[1], [1, 2])


def test_evaluate_at_T_equals_evaluate_at_each_T(digits):
    net = _net(T=2)
    fit(net, digits, epochs=1, lr=0.05, **QUIET)
    rows = evaluate_at_T(net, digits[1], [1, 3, 6])
    assert net.T == 2 and [r["T"] for r in rows] == [1, 3, 6]
    for r in rows:
        net.T = r["T"]
        ref = evaluate(net, digits[1])
        assert (r["acc"], r["loss"], r["n"]) == (ref["acc"], ref["loss"], ref["n"])
        rates = list(ref["firing_rates"].values())
        assert r["firing_rate"] == pytest.approx(sum(rates) / len(rates))
    net.T = 2
    with pytest.raises(ValueError, match="T must be a non-empty sequence"):
        evaluate_at_T(net, digits[1], [])
    with pytest.raises(ValueError, match=r"T\[1\] must be >= 1"):
        evaluate_at_T(net, digits[1], [2, 0])


def test_tet_presets_are_the_papers_settings(digits):
    assert TET_PRESETS == {"cifar": 0.05, "imagenet": 0.001, "dvs": 0.001}  # SPEC section 3
    assert tet_preset("cifar") == {"loss": "tet", "lam": 0.05, "phi": 1.0}
    assert tet_preset("dvs", v_th=0.5) == {"loss": "tet", "lam": 0.001, "phi": 0.5}  # phi = v_th
    with pytest.raises(ValueError, match="preset must be one of"):
        tet_preset("mnist")
    with pytest.raises(ValueError, match="v_th must be"):
        tet_preset("cifar", v_th=0.0)
    # usable from fit and TrainConfig: the same run as spelling the settings out
    a = fit(_net(), digits, epochs=1, **tet_preset("imagenet"), **QUIET)
    b = fit(_net(), digits, TrainConfig(epochs=1, loss="tet", lam=0.001, phi=1.0), **QUIET)
    c = fit(_net(), digits, TrainConfig(epochs=1, **tet_preset("imagenet")), **QUIET)
    assert _numbers(a.steps) == _numbers(b.steps) == _numbers(c.steps)
    assert (a.config["loss"], a.config["lam"], a.config["phi"]) == ("tet", 0.001, 1.0)


def test_a_phased_run_is_one_locked_folder_and_is_not_resumed(digits, tmp_path):
    run_dir = tmp_path / "tit"
    fit_tit(_net(), digits, T=(1, 2), epochs=(1, 1), run_dir=run_dir, **QUIET)
    with pytest.raises(ValueError, match="already holds a run"):  # the folder is a finished run, as after fit
        fit_tit(_net(), digits, T=(1, 2), epochs=(1, 1), run_dir=run_dir, **QUIET)
    with pytest.raises(ValueError, match="trained in phases .* no optimiser state"):
        fit(_net(T=2), digits, epochs=3, resume=run_dir, **QUIET)
