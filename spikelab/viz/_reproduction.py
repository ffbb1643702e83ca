"""A reproduction run behind a panel, without widgets: ``spikelab reproduce NAME --size SIZE`` in a child process
(its own torch threads; Stop ends it at once), its progress lines, its table, and the table set beside the one
``docs/RESULTS.md`` reports.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spikelab._checks import check_choice
from spikelab.reproduce.table import Table
from spikelab.viz._live import BackgroundTask

PROGRESS_PREFIX = "["  # the reproduction's own progress lines: "[k/N  12.3 s] message"


class ReproductionJob(BackgroundTask):
    """``python -m spikelab reproduce NAME --size SIZE --out OUT`` in a child process, read line by line.

    ``lines`` holds the reproduction's progress lines (``"[k/N  t s] ..."``), ``last`` the last line of any kind
    (a training bar included); ``on_line(job)`` runs after each line. When the process ends with status 0,
    ``result`` is its :class:`~spikelab.reproduce.Table` (read from ``OUT/NAME/table.json``); otherwise ``state``
    is ``"failed"`` with the process's last lines as ``error``, or ``"stopped"`` after :meth:`stop` (which ends
    the process at once: a reproduction has no clean stop between runs).
    """

    def __init__(self, name: str, *, size: str, out: str | os.PathLike,
                 on_line: Callable[["ReproductionJob"], None] | None = None) -> None:
        from spikelab import reproduce

        super().__init__()
        self.name = check_choice(name, "name", reproduce.names())
        self.size = check_choice(size, "size", reproduce.get(name).sizes)
        self.out = Path(out)
        self.on_line = on_line
        self.lines: list[str] = []
        self.last = ""
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "spikelab", "reproduce", self.name, "--size", self.size, "--out", str(self.out)]

    def run(self, *, on_done: Callable[[BackgroundTask], None] | None = None) -> None:
        """Start the child process in the background (``RuntimeError`` if one is running)."""
        self.lines, self.last = [], ""
        self.start(self._body, on_done=on_done)

    def _body(self, stop_event: threading.Event) -> Table | None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self._lock:
            if stop_event.is_set():
                return None
            self._proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                          env=env, bufsize=1)
        tail: list[str] = []
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:  # tqdm's "\r" updates arrive as lines too (universal newlines)
            line = raw.strip()
            if not line:
                continue
            tail = (tail + [line])[-12:]
            self.last = line
            if line.startswith(PROGRESS_PREFIX):
                self.lines.append(line)
            if self.on_line is not None:
                self.on_line(self)
        rc = self._proc.wait()
        if stop_event.is_set():
            return None
        if rc != 0:
            errors = [t for t in tail if "Error" in t or "error" in t] or tail[-3:]
            raise RuntimeError(f"spikelab reproduce {self.name} ended with status {rc}: {' | '.join(errors[-2:])}")
        return Table.load(self.out / self.name)

    def stop(self) -> None:
        """End the child process (it writes no table) and mark the job stopped."""
        super().stop()
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()


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
