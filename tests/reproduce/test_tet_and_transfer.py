"""The smoke sizes of the TET and pretraining reproductions run end to end and write well-formed tables whose
numbers are those of the run folders they wrote (read back here)."""
from __future__ import annotations

import json

import pytest
from _support import require

from spikelab import reproduce
from spikelab.data.mnist import find_fashion_mnist
from spikelab.reproduce import Table, pipe_s
from spikelab.training import load_metrics, load_run


def _has_fashion() -> bool:
    try:
        find_fashion_mnist()
        return True
    except FileNotFoundError:
        return False


@pytest.fixture(autouse=True)
def fashion():
    require(_has_fashion(), "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")


def _mean(values):
    return sum(values) / len(values)


def _cell(text: str) -> float:
    return float(str(text).split(" ± ")[0])


def _run_and_reload(name, tmp_path) -> Table:
    table = reproduce.run(name, size="smoke", out=tmp_path, progress=False)
    saved = Table.load(tmp_path / name)
    assert saved.rows == table.rows and saved.meta["size"] == "smoke"
    assert (tmp_path / name / "table.md").read_text().startswith(f"### {table.title}")
    return table


def test_registered():
    assert {"tet-vs-sdt", "tit-cost", "pipe-s", "pipe-d"} <= set(reproduce.names())


def test_tet_vs_sdt_smoke(tmp_path):
    table = _run_and_reload("tet-vs-sdt", tmp_path)
    assert [(r["dataset"], r["T"]) for r in table.rows] == [(d, t) for d in ("digits", "fashion-mnist")
                                                          for t in (2, 4, 6)]
    runs = tmp_path / "tet-vs-sdt" / "runs"
    for row in table.rows:
        for loss, col in (("sdt", "SDT (ours)"), ("tet", "TET (ours)")):
            run = load_run(runs / f"{row['dataset']}-T{row['T']}-{loss}-seed0")
            assert run.config["loss"] == loss and run.config["T"] == row["T"]
            if loss == "tet":
                assert (run.config["lam"], run.config["phi"]) == (0.05, 1.0)
            assert _cell(row[col]) == pytest.approx(100 * run.epochs[-1]["test_acc"], abs=0.006)


def test_tit_cost_smoke(tmp_path):
    table = _run_and_reload("tit-cost", tmp_path)
    tit, scratch = table.rows
    assert (tit["epoch-steps"], scratch["epoch-steps"]) == (2 * 2 + 1 * 6, 2 * 6)
    runs = tmp_path / "tit-cost" / "runs"
    m = load_metrics(runs / "tit-seed0")
    assert m["epoch_steps"] == 10 and [p["T"] for p in m["phases"]] == [2, 6]
    run = load_run(runs / "tit-seed0")
    assert [e["phase"] for e in run.epochs] == ["T=2", "T=2", "T=6"]
    assert _cell(tit["wall time (s)"]) == pytest.approx(run.epochs[-1]["time_s"], abs=0.06)
    assert _cell(tit["test acc at T=6 (%)"]) == pytest.approx(100 * m["test_acc"], abs=0.006)
    at_T = table.data["runs"][0]["at_T"]
    assert set(at_T) == {1, 2, 4, 6, 8}


def test_pipe_s_smoke(tmp_path):
    table = _run_and_reload("pipe-s", tmp_path)
    stages = [r["arm / stage"] for r in table.rows]
    assert stages[:3] == ["scratch SNN, best of 2 epochs", "ANN twin after 2 pretraining epochs (ramp)",
                          "SNN after transfer, before fine-tuning"]
    assert stages[3:5] == ["SNN after fine-tuning epoch 1", "SNN after fine-tuning epoch 2"]
    runs = tmp_path / "pipe-s" / "runs"
    fine = load_run(runs / "finetune-seed0")
    assert [e["lr"] for e in fine.epochs] == pytest.approx([pipe_s.FINETUNE_LR] * 2)  # x 0.3 after epoch 2
    for k, e in enumerate(fine.epochs):
        assert _cell(table.rows[3 + k]["test acc (%)"]) == pytest.approx(100 * e["test_acc"], abs=0.006)
    pre = load_run(runs / "pretrain-seed0")
    assert _cell(table.rows[1]["test acc (%)"]) == pytest.approx(100 * pre.epochs[-1]["test_acc"], abs=0.006)
    rec = table.data["runs"][0]
    assert rec["curve"][0][0] == rec["before"] and len(rec["curve"]) == 3


def test_pipe_d_smoke(tmp_path):
    table = _run_and_reload("pipe-d", tmp_path)
    scratch, pretrained, diff = table.rows
    runs = tmp_path / "pipe-d" / "runs"
    run = load_run(runs / "pretrained-seed0")
    assert [e["phase"] for e in run.epochs] == ["frozen body", "unfrozen"]
    assert run.config["phases"][0]["trainable"] == ["stem.", "head.fc."]
    assert _cell(pretrained["test acc, last epoch (%)"]) == pytest.approx(100 * run.epochs[-1]["test_acc"],
                                                                          abs=0.006)
    s = load_run(runs / "scratch-seed0")
    assert s.config["dataset"] == "fashion-mnist-events" and len(s.epochs) == 2
    assert _cell(diff["test acc, last epoch (%)"]) == pytest.approx(
        100 * (run.epochs[-1]["test_acc"] - s.epochs[-1]["test_acc"]), abs=0.006)
    assert json.loads((runs / "static-pretrain-seed0" / "config.json").read_text())["dataset"] == "fashion-mnist"
