"""The benchmark suite at smoke size: every benchmarked path runs and passes its correctness checks (spikes and
gradients against spikelab's reference in float64); no timing is asserted (speed lives in benchmarks/results)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _support import require

ROOT = Path(__file__).resolve().parents[1]


def _importable(name: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True).returncode == 0


@pytest.mark.peer
@pytest.mark.timeout(1560)  # the subprocess's own limit (1500 s) is the one that should fire on a loaded machine
def test_benchmark_suite_smoke(tmp_path):
    for peer in ("snntorch", "spikingjelly", "norse"):
        require(_importable(peer), f"{peer} (a benchmark peer; `make venv` installs it)")
    out = tmp_path / "smoke.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--size", "smoke", "--out", str(out)],
                         capture_output=True, text=True, timeout=1500, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    record = json.loads(out.read_text())
    assert (tmp_path / "smoke.md").is_file()
    assert set(record["sections"]) == {"lif", "train", "latency", "e2e"}
    assert record["machine"]["cores"] >= 1 and record["machine"]["torch"]
    assert record["machine"]["engine"]["native"]["available"], record["machine"]["engine"]["native"]

    lif = record["sections"]["lif"]
    libraries = {r["library"] for r in lif["rows"]}
    assert {"spikelab", "snntorch", "spikingjelly", "norse"} <= libraries and not lif["missing"]
    assert set(lif["checks"]) == libraries  # every timed library was checked first

    train = record["sections"]["train"]
    for network, checks in train["checks"].items():
        timed = {r["candidate"] for r in train["rows"] if r["network"] == network}
        spiking = {c for c in timed if not c.startswith(("ANN", "spikelab reference", "spikelab bf16"))}
        assert spiking <= set(checks), (network, spiking - set(checks))
    assert any(r["candidate"] == "spikelab compiled" for r in train["rows"])
    assert any(r["candidate"] == "spikelab bf16" for r in train["rows"])

    lat = record["sections"]["latency"]
    assert lat["start"]["auto settled"]["first_start_s"] > 0
    assert all(s > 0 for s in lat["start"]["auto settled"]["stop_all_s"])
    e2e = record["sections"]["e2e"]["results"]
    assert e2e["auto"]["runs"][0]["best_test_acc"] is not None
