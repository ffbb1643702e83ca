"""Every dashboard and lab notebook, executed top to bottom on a fresh kernel in smoke mode (``SPIKELAB_SMOKE=1``).

Smoke mode keeps each run short (tiny subsets, one epoch) and calls interactive paths such as Start explicitly, so
this catches a notebook that no longer runs. Each notebook runs in its own folder, as Jupyter and Voila run it;
runs it trains go to a temporary folder.

For a lab, one more cell is run at the end: it checks that every exercise (each an answer box named ``ex1``,
``ex2``, ... in order) still said "your turn" after the lab ran, accepts the right answer of :data:`ANSWERS` (worked
out by hand here, the key a teacher would use) and rejects a wrong one.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from spikelab import dashboards

ROOT = Path(__file__).resolve().parents[2]
LABS = sorted((ROOT / "labs").glob("*.ipynb"))
NOTEBOOKS = sorted(dashboards.HERE.glob("*.ipynb")) + LABS
TIMEOUT_S = 300
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# lab -> {exercise variable: (right answer, wrong answer)}, as a learner would type them. An answer starting with
# "=" is Python evaluated in the lab's kernel (lab 04's depends on the run it trained).
_STEPS_NEEDED = "next(t + 1 for t, a in enumerate(inspector.accuracies) if a >= max(inspector.accuracies) - 0.02)"
ANSWERS: dict[str, dict[str, tuple[str, str]]] = {
    "01_one_neuron": {"ex1": ("[2, 5, 8]", "[2, 5]"),        # h = 0.6, 0.9, 1.05: fires every third step
                      "ex2": ("0.2", "0.8"),                  # v_th (1 - decay) = 1 - 0.8
                      "ex3": ("soft", "hard")},
    "02_encoding": {"ex1": ("15", "20"),                      # T x = 20 * 0.75
                    "ex2": ("2", "6"),                        # round((1 - 0.75) * 8)
                    "ex3": ("100", "10")},                    # 0.5 * 0.5 / 0.05^2
    "03_surrogate_gradients": {"ex1": ("2", "8"),             # alpha / 4
                               "ex2": ("the deep layers never reach threshold, so σ' is taken far from its peak",
                                       "the surrogate is too narrow"),
                               "ex3": ("1", "0.1")},          # TET's gamma = 1 keeps 8 layers flat
    "04_first_snn": {"ex1": ("9738", "9728"),                 # 64*128 + 2*128 + 128*10 + 10
                     "ex2": ("=" + _STEPS_NEEDED, f"=({_STEPS_NEEDED}) % len(inspector.accuracies) + 1"),
                     "ex3": ("0", "1")},                      # means 1.83, 0.83, 1.17: class 0
    "05_conv_snn": {"ex1": ("so that normalised currents are on the scale of the threshold",
                            "to make training deterministic"),
                    "ex2": ("903168", "112896"),              # 14 * 14 * 32 * 16 * 9
                    "ex3": ("2260000", "2000000")},           # 0.9 * 2e6 + 4.6 * 1e5
}


def _more_answers() -> None:
    """Add the answer keys of ``answers_*.py`` beside this file (one per part of the series written apart, each
    defining an ``ANSWERS`` dict of the same shape), so that adding labs does not edit this file."""
    import importlib.util

    for f in sorted(Path(__file__).parent.glob("answers_*.py")):
        spec = importlib.util.spec_from_file_location(f"_spikelab_{f.stem}", f)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        clash = set(module.ANSWERS) & set(ANSWERS)
        assert not clash, f"{f.name} repeats the answer keys of {sorted(clash)}"
        ANSWERS.update(module.ANSWERS)


_more_answers()

ANSWER_CELL = '''
from spikelab.viz.widgets import Exercise as _Exercise

_answers = json.loads({answers!r})
_found = [name for name, value in list(globals().items()) if isinstance(value, _Exercise) and not name.startswith("_")]
assert _found == list(_answers), f"the lab's exercises are {{_found}}, the answer key has {{list(_answers)}}"
for _name, (_right, _wrong) in _answers.items():
    _ex = globals()[_name]
    assert _ex.verdict.status == "pending", (_name, _ex.verdict)  # a visitor sees "your turn", not a failure
    _right, _wrong = (str(eval(a[1:])) if a.startswith("=") else a for a in (_right, _wrong))
    _v = _ex.submit(_right)
    assert _v.correct, (_name, _right, _v)
    _v = _ex.submit(_wrong)
    assert _v.status == "wrong" and "not quite" in _v.message, (_name, _wrong, _v)
print("answers checked:", ", ".join(_answers))
'''


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
    is_lab = path.parent != dashboards.HERE
    if is_lab:
        assert path.stem in ANSWERS, f"add the answers of {path.stem}'s exercises to ANSWERS"
        answers = json.dumps(ANSWERS[path.stem])
        nb.cells.append(nbformat.v4.new_code_cell("import json\n" + ANSWER_CELL.format(answers=answers)))
    client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors
    assert any(WIDGET_MIME in o.get("data", {}) for o in outputs)
    # a figure as a bare cell result breaks in Voila ("setData is not a function"): figures go through widgets
    bare = [c.source.splitlines()[-1] for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if PLOTLY_MIME in o.get("data", {})]
    assert not bare, f"show these figures with spikelab.viz.widgets.plot(fig): {bare}"
    # Voila renders labs progressively (spikelab.serve.voila_command): it shows a cell's outputs up to the first
    # widget whose model has not reached the page yet, then only that widget once it has; what follows is lost
    lost = [c.source.splitlines()[-1] for c in nb.cells if c.cell_type == "code"
            if any(WIDGET_MIME in o.get("data", {}) for o in c.get("outputs", [])[:-1])]
    assert not lost, f"a widget must be its cell's last output (put several in one ipywidgets.VBox): {lost}"
    if is_lab:
        assert "answers checked" in "".join(o.get("text", "") for o in nb.cells[-1].outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[_id(p) for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    """Notebooks are committed stripped (no outputs, counts or widget state): `nbstripout --verify` agrees."""
    res = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, f"{path} carries outputs or metadata; run nbstripout on it\n{res.stdout}{res.stderr}"


@pytest.mark.parametrize("path", LABS, ids=[_id(p) for p in LABS])
def test_lab_follows_the_series_conventions(path):
    """The shape labs/README.md describes: title and what/needs/time, the smoke switch, prose before code, an
    answer box per exercise, and a "Next" that names a lab (or the README) that exists."""
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# Lab {path.stem[:2]} · ")
    for part in ("**What you will learn**", "**What you need first:**", "**Time:**"):
        assert part in first.source, f"{path.stem}: the opening cell lacks {part}"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].metadata.get("tags") == ["parameters"] and code[0].source == "SMOKE = False"
    assert 'SMOKE = SMOKE or os.environ.get("SPIKELAB_SMOKE") == "1"' in code[1].source
    exercises = [c.source for c in code if "widgets.Exercise(" in c.source]
    assert len(exercises) >= 2 and len(exercises) == len(ANSWERS[path.stem])
    assert sum("**Think.**" in c.source for c in nb.cells if c.cell_type == "markdown") >= 1
    last = nb.cells[-1].source
    assert "**Next:**" in last
    for target in [t for t in _links(last) if t.endswith((".ipynb", ".md"))]:
        assert (path.parent / target).is_file(), f"{path.stem} links to {target}, which does not exist"


def _links(markdown: str) -> list[str]:
    import re

    return re.findall(r"\]\(([^)]+)\)", markdown)
