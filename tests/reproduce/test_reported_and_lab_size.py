"""``reported`` reads a reproduction's table back from docs/RESULTS.md; reproductions offer the sizes they declare
(the labs' "lab" size among them), and the lab size is smaller than the full one."""
from __future__ import annotations

import sys

import pytest

from spikelab import reproduce
from spikelab.reproduce import Reproduction, Table, reported
from spikelab.reproduce.reported import RESULTS_MD

RESULTS = """# Results

## Claim A (Someone 2020)

**Command**: `spikelab reproduce claim-a` (run here as `spikelab reproduce claim-a --out x`).

| arm | acc (%) | note |
|---|---|---|
| scratch | 86.60 ± 0.04 | a \\| b |
| pipe | 87.1 |

![a figure](figures/a.png)

The claim reproduces
in direction.

Another paragraph.

## Claim AB (Someone 2021)

**Command**: `spikelab reproduce claim-ab`. Not measured yet.

## Claim C

| x | y |
|---|---|
| 1 | 2 |
"""


@pytest.fixture
def results(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(RESULTS)
    return path


def test_reported_reads_the_first_table_of_the_section_naming_the_command(results):
    t = reported("claim-a", path=results)
    assert t.title == "Claim A (Someone 2020)" and t.columns == ["arm", "acc (%)", "note"]
    assert t.rows == [{"arm": "scratch", "acc (%)": "86.60 ± 0.04", "note": "a | b"},
                      {"arm": "pipe", "acc (%)": "87.1", "note": ""}]  # a short row is padded
    assert t.notes == ["The claim reproduces in direction."]  # the paragraph after the table, not the figure
    assert t.meta == {"source": str(results), "section": "Claim A (Someone 2020)"}


def test_reported_is_none_without_section_table_or_file(results, tmp_path):
    assert reported("claim-ab", path=results) is None  # the section has no table yet
    assert reported("claim", path=results) is None  # a prefix of a name is not the name
    assert reported("claim-c", path=results) is None  # a table in a section that names no command
    assert reported("claim-a", path=tmp_path / "missing.md") is None
    with pytest.raises(TypeError, match="name"):
        reported("", path=results)


def test_reported_reads_the_project_results():
    """The real docs/RESULTS.md: the time-inheritance table, cell by cell as the file's own row reads."""
    line = next(l for l in RESULTS_MD.read_text().splitlines() if l.startswith("| TIT: "))
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    t = reported("tit-cost")
    assert t is not None and list(t.rows[0].values()) == cells
    assert t.columns[0] == "arm" and "test acc at T=6 (%)" in t.columns


def _toy(size, out, seeds, progress):
    t = Table("toy", ["arm", "ours"])
    t.add(arm="a", ours=size)
    return t


def test_run_refuses_a_size_the_reproduction_does_not_offer(tmp_path):
    rep = reproduce.register(Reproduction("toy-sizes", "a toy", "Nobody", "SPEC section 0", _toy))
    try:
        with pytest.raises(ValueError, match=r"size must be one of \['smoke', 'full'\].*'lab'"):
            reproduce.run("toy-sizes", size="lab", out=tmp_path, progress=False)
        assert reproduce.run("toy-sizes", size="smoke", out=tmp_path, progress=False).rows == [
            {"arm": "a", "ours": "smoke"}]
    finally:
        reproduce._REGISTRY.pop(rep.name)
    with pytest.raises(ValueError, match="sizes"):
        Reproduction("bad", "t", "p", "s", _toy, sizes=("lab",))
    with pytest.raises(ValueError, match="sizes"):
        Reproduction("bad", "t", "p", "s", _toy, sizes=("smoke", "full", "huge"))


def _budgets(value):
    """The Budget objects in a size entry (a Budget, a tuple of them, or a tuple with an epoch count)."""
    items = value if isinstance(value, tuple) else (value,)
    return [b for b in items if hasattr(b, "limit")]


@pytest.mark.parametrize("name", ["tet-vs-sdt", "tit-cost", "pipe-s", "pipe-d"])
def test_lab_size_is_declared_defined_and_smaller_than_full(name):
    rep = reproduce.get(name)
    assert rep.sizes == ("smoke", "lab", "full")
    sizes = sys.modules[rep.fn.__module__].SIZES
    assert set(rep.sizes) <= set(sizes)
    for lab, full in zip(_budgets(sizes["lab"]), _budgets(sizes["full"])):
        assert lab.seeds == 1 and lab.dataset == full.dataset
        assert (lab.limit or 10**9) <= (full.limit or 10**9) and lab.epochs <= full.epochs
        assert all(a <= b for a, b in zip(lab.channels, full.channels))
