"""The reproduction registry, its table and ``spikelab reproduce`` (each paper's reproduction has its own test)."""
from __future__ import annotations

import json
import math

import pytest

from spikelab import reproduce
from spikelab.cli import main
from spikelab.reproduce import Reproduction, Table, mean_spread


def test_mean_spread_is_mean_and_sample_std():
    assert mean_spread([0.97, 0.98], scale=100) == "97.50 ± 0.71"  # std of (97, 98) with n-1 = 0.7071
    assert mean_spread([3.0]) == "3.00"
    with pytest.raises(ValueError, match="at least one"):
        mean_spread([])
    with pytest.raises(ValueError, match="finite"):
        mean_spread([1.0, math.nan])


def _toy(size, out, seeds, progress):
    n = seeds or (1 if size == "smoke" else 3)
    values = [float(s) for s in range(n)]  # the "accuracy" of seed s is s
    (out / "runs").mkdir(exist_ok=True)
    t = Table("toy claim", ["arm", "ours", "paper"])
    t.add(arm="a", ours=mean_spread(values), paper="1.00")
    t.data["values"] = values
    return t


@pytest.fixture
def toy():
    rep = reproduce.register(Reproduction("toy", "a toy claim", "Nobody 2026", "SPEC section 0", _toy))
    yield rep
    reproduce._REGISTRY.pop("toy")


def test_run_writes_table_with_machine_and_size(toy, tmp_path):
    table = reproduce.run("toy", size="full", out=tmp_path, progress=False)
    assert table.data["values"] == [0.0, 1.0, 2.0]
    assert table.rows == [dict(arm="a", ours="1.00 ± 1.00", paper="1.00")]
    saved = json.loads((tmp_path / "toy" / "table.json").read_text())
    assert saved["meta"]["size"] == "full" and saved["meta"]["machine"]["cores"] >= 1
    assert Table.load(tmp_path / "toy").rows == table.rows
    md = (tmp_path / "toy" / "table.md").read_text()
    assert "| arm | ours | paper |" in md and "| a | 1.00 ± 1.00 | 1.00 |" in md


def test_bad_arguments_name_what_was_expected(toy, tmp_path):
    with pytest.raises(ValueError, match="name must be one of .*'toy'"):
        reproduce.run("nope", out=tmp_path)
    with pytest.raises(ValueError, match="size must be one of"):
        reproduce.run("toy", size="huge", out=tmp_path)
    with pytest.raises(ValueError, match="seeds must be"):
        reproduce.run("toy", seeds=0, out=tmp_path)
    with pytest.raises(ValueError, match="not columns"):
        Table("t", ["a"]).add(b=1)
    with pytest.raises(ValueError, match="already registered"):
        reproduce.register(Reproduction("toy", "other", "x", "y", _toy))


def test_cli_lists_and_runs(toy, tmp_path, capsys):
    assert main(["reproduce"]) == 0
    assert "toy" in capsys.readouterr().out
    assert main(["reproduce", "toy", "--size", "smoke", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "toy claim" in out and "0.00" in out
    assert (tmp_path / "toy" / "table.md").is_file()
    assert main(["reproduce", "nope", "--out", str(tmp_path)]) == 2
    assert "spikelab reproduce: error: name must be one of" in capsys.readouterr().err
