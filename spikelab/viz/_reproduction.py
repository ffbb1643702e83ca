"""A reproduction's table beside the one ``docs/RESULTS.md`` reports, as the reproduction panel shows them
(:class:`spikelab.viz.widgets.ReproductionPanel`, which runs ``spikelab reproduce`` in a child process).
"""
from __future__ import annotations

from typing import Any

from spikelab.reproduce.table import Table

PROGRESS_PREFIX = "["  # the reproduction's own progress lines: "[k/N  12.3 s] message"


def _first(table: Table) -> str:
    return table.columns[0]


def side_by_side(ours: Table, reported: Table | None, *, skip: tuple[str, ...] = ("paper",)) -> Table:
    """Our table beside the reported one: for each of our rows, each column the two tables share (but ``skip``)
    as ``"ours | RESULTS.md"``.

    Rows are matched by their first column's text; failing that (the labels name a budget, e.g. "best of 3
    epochs" against "best of 6 epochs"), by position when both tables have as many rows. A row without a match
    shows ``-`` on the reported side. ``reported=None`` (not measured at full size) gives our table's shared
    layout with ``-`` throughout.
    """
    if not isinstance(ours, Table):
        raise TypeError(f"ours must be a Table, got {type(ours).__name__}")
    if reported is not None and not isinstance(reported, Table):
        raise TypeError(f"reported must be a Table or None, got {type(reported).__name__}")
    key = _first(ours)
    shared = [c for c in ours.columns[1:] if c not in skip and (reported is None or c in reported.columns)]
    out = Table(f"{ours.title}: this run | docs/RESULTS.md", [key, *shared])
    by_key: dict[str, dict[str, Any]] = {}
    if reported is not None and _first(reported) == key:
        by_key = {str(r.get(key)): r for r in reported.rows}
    same_length = reported is not None and len(reported.rows) == len(ours.rows)
    for i, row in enumerate(ours.rows):
        match = by_key.get(str(row.get(key)))
        if match is None and same_length:
            match = reported.rows[i]  # type: ignore[union-attr]
        cells = {key: row.get(key)}
        for c in shared:
            theirs = "-" if match is None else match.get(c, "-")
            cells[c] = f"{_text(row.get(c))} | {_text(theirs)}"
        out.add(**cells)
    return out


def _text(v: Any) -> str:
    if v is None or v == "":
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def table_html(table: Table, *, css: str = "spikelab-table") -> str:
    """``table`` as a small HTML table (escaped), its notes below."""
    import html

    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px'>{html.escape(_text(r.get(c)))}</td>"
                                    for c in table.columns) + "</tr>" for r in table.rows)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in table.notes)
    return (f"<div class='{css}'><b>{html.escape(table.title)}</b><table style='border-collapse:collapse'>"
            f"<tr>{head}</tr>{body}</table>" + (f"<ul style='font-size:90%'>{notes}</ul>" if notes else "") + "</div>")
