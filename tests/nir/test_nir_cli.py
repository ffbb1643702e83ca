"""``spikelab export-nir RUN OUT.nir`` and the run panel's "Export NIR" button, on a run trained by the CLI."""
from __future__ import annotations

import pytest
import torch
from _nir_support import run_and_record

import spikelab.nir as snir
from spikelab import encoding
from spikelab.cli import main
from spikelab.training import save_checkpoint


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    args = ["train", "--out", str(root), "--name", "small", "--limit", "64", "--epochs", "1", "--no-progress",
            "--device", "cpu"]
    assert main(args) == 0
    return root / "small"


def test_export_nir_writes_a_file_that_reproduces_the_run(run, tmp_path, capsys):
    out = tmp_path / "net.nir"
    capsys.readouterr()
    assert main(["export-nir", str(run), str(out), "--discretisation", "exact", "--dt", "0.001"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"wrote {out}: 12 NIR nodes (2 spiking layers), dt=0.001, exact discretisation")
    model, cfg = snir._run.model_from_run(run)
    loaded = snir.load(out)
    assert loaded.metadata["discretisation"] == "exact" and float(loaded.metadata["dt"]) == 0.001
    x = torch.rand(8, 1, 8, 8) * 3
    y0, s0 = run_and_record(model, x)
    y1, s1 = run_and_record(loaded, encoding.direct(x, cfg["T"]), loaded.node_names)
    assert s0.keys() == s1.keys() and all(torch.equal(s0[k], s1[k]) for k in s0)
    torch.testing.assert_close(y1, y0, rtol=1e-5, atol=1e-5)


def test_export_nir_errors_are_one_line(run, tmp_path, capsys):
    assert main(["export-nir", str(tmp_path / "nope"), str(tmp_path / "x.nir")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spikelab export-nir: error: checkpoint not found") and "\n" not in err
    save_checkpoint(tmp_path / "bare.pt", {"model": {}})
    assert main(["export-nir", str(tmp_path / "bare.pt"), str(tmp_path / "x.nir")]) == 2
    assert "bare.pt': the run settings lack ['model'" in capsys.readouterr().err
    assert main(["export-nir", str(run), str(tmp_path / "x.nir"), "--dt", "0"]) == 2
    assert "dt must be a finite number > 0" in capsys.readouterr().err
    assert not (tmp_path / "x.nir").exists()


def test_run_panel_exports_the_selected_runs(run):
    pytest.importorskip("ipywidgets")
    from spikelab.viz.widgets import RunComparison

    panel = RunComparison(root=run.parent)
    panel.select.value = ()
    assert panel.export_nir() == [] and "select the runs" in panel.message.value
    panel.select.value = ("small",)
    assert "spikelab-export-nir" in panel.export_button._dom_classes
    panel.export_button.click()
    path = run / "model.nir"
    assert path.is_file() and panel.error is None and str(path) in panel.message.value
    assert len(snir.load(path).node_names) == 12
    (run.parent / "broken").mkdir()
    (run.parent / "broken" / "history.jsonl").write_text("")
    panel.refresh()
    panel.select.value = ("broken",)
    panel.export_nir()
    assert panel.error.startswith("exporting to NIR failed: FileNotFoundError: checkpoint not found")


def test_readme_export_example_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    blocks = re.findall(r"```python\n(.*?)```", (Path(__file__).parents[2] / "README.md").read_text(), re.S)
    example = next(b for b in blocks if "spikelab.nir" in b)
    assert len(example.strip().splitlines()) == 3
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)  # noqa: S102 - our README: it trains `net` one step
    exec(compile(example, "README.md", "exec"), scope)  # noqa: S102
    net, x = scope["net"].eval(), torch.rand(8, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(scope["same"](encoding.direct(x, net.T)), net(x), rtol=1e-5, atol=1e-5)
    assert (tmp_path / "net.nir").is_file()
