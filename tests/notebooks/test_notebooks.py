"""Every dashboard and lab notebook, executed top to bottom on a fresh kernel in smoke mode (``SPIKELAB_SMOKE=1``).

Smoke mode keeps each run short (tiny subsets, one epoch) and calls interactive paths such as Start explicitly, so
this catches a notebook that no longer runs. Each notebook runs in its own folder, as Jupyter and Voila run it;
runs it trains go to a temporary folder.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from spikelab import dashboards

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(dashboards.HERE.glob("*.ipynb")) + sorted((ROOT / "labs").glob("*.ipynb"))
TIMEOUT_S = 300


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


@pytest.mark.notebook
@pytest.mark.timeout(TIMEOUT_S + 60)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[_id(p) for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path, tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKELAB_SMOKE", "1")  # the kernel inherits this environment
    monkeypatch.setenv("SPIKELAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors
    if path.parent == dashboards.HERE:  # a dashboard displays its panel
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[_id(p) for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    """Notebooks are committed stripped (no outputs, counts or widget state): `nbstripout --verify` agrees."""
    res = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, f"{path} carries outputs or metadata; run nbstripout on it\n{res.stdout}{res.stderr}"
