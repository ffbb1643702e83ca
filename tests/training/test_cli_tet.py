"""``spikelab train --tet-preset / --tit`` and ``spikelab eval --T`` (SPEC section 3), in-process."""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from spikelab import models
from spikelab.cli import main
from spikelab.training import evaluate, load_checkpoint, load_metrics, load_run

SMOKE = ["--limit", "96", "--no-progress", "--device", "cpu"]


def _train(tmp_path: Path, name: str, *extra: str) -> Path:
    assert main(["train", "--out", str(tmp_path), "--name", name, *SMOKE, *extra]) == 0
    return tmp_path / name


def test_tit_trains_each_phase_into_one_run(tmp_path, capsys):
    run = _train(tmp_path, "tit", "--tit", "1:2", "-T", "3", "--epochs", "1")
    out = capsys.readouterr().out
    assert re.search(r"^epoch +2/3 .*\[T=1\]$", out, re.M) and re.search(r"^epoch +3/3 .*\[T=3\]$", out, re.M)
    h = load_run(run)
    assert [(e["epoch"], e["phase"], e["T"]) for e in h.epochs] == [(1, "T=1", 1), (2, "T=1", 1), (3, "T=3", 3)]
    m = load_metrics(run)
    assert m["epoch_steps"] == 2 * 1 + 1 * 3 and [p["epochs"] for p in m["phases"]] == [2, 1]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["T"] == 3 and cfg["epochs"] == 3  # the run's model is evaluated at the target T


def test_tet_preset_sets_the_papers_lam_and_phi(tmp_path, capsys):
    run = _train(tmp_path, "preset", "--tet-preset", "imagenet", "--epochs", "1")
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["loss"], cfg["lam"], cfg["phi"]) == ("tet", 0.001, 1.0)  # phi = v_th of conv-small's LIF
    assert "TET loss" in capsys.readouterr().out


def test_eval_at_other_T_matches_evaluate(tmp_path, capsys):
    run = _train(tmp_path, "r", "--epochs", "1", "-T", "2")
    capsys.readouterr()
    assert main(["eval", str(run), "--T", "1,2,5", "--no-progress", "--device", "cpu", "--limit", "64"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^ +(\d+) +([0-9.]+)% +([0-9.]+) +([0-9.]+)$", out, re.M)
    assert [int(r[0]) for r in rows] == [1, 2, 5] and "trained at T=2" in out
    # the oracle: the model of the checkpoint, evaluated at T = 5 directly
    from spikelab import data

    ckpt = load_checkpoint(run)
    net = models.build("conv-small", num_classes=10, in_channels=1, T=5)
    net.load_state_dict(ckpt["model"])
    ref = evaluate(net, data.make_loaders("digits", batch_size=256, limit=64)[1], device="cpu")
    assert float(rows[2][1]) == round(100 * ref["acc"], 2)
    assert torch.isclose(torch.tensor(float(rows[2][2])), torch.tensor(ref["loss"]), atol=1e-4)


def test_errors_are_one_line(tmp_path, capsys):
    run = _train(tmp_path, "tit", "--tit", "1:1", "-T", "2", "--epochs", "1")
    capsys.readouterr()
    cases = [
        (["train", "--resume", str(run)], "was trained in phases (--tit) and cannot be resumed"),
        (["train", "--tit", "1:1", "--resume", str(run)], "--tit starts a new run in phases"),
        (["train", "--tet-preset", "cifar", "--lam", "0.1", *SMOKE], "--tet-preset cifar sets the loss, lam and "
                                                                     "phi; drop --lam"),
        (["train", "--tet-preset", "dvs", "--loss", "sdt", *SMOKE], "drop --loss sdt"),
        (["train", "--tit", "2", *SMOKE], "--tit must be T:EPOCHS pairs"),
        (["train", "--tit", "0:3", *SMOKE], "--tit needs T >= 1 and EPOCHS >= 1"),
        (["train", "--tit", "1:1", "--dataset", "digits-events", "--out", str(tmp_path), *SMOKE],
         "holds event frames"),
        (["eval", str(run), "--T", "2,x"], "--T must be a comma-separated list of integers"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (argv, err)
