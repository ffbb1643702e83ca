"""What ``docs/RESULTS.md`` reports for a reproduction: its table, read back from the markdown.

The labs re-run a reproduction at a laptop size and set their numbers beside the full-size ones that
``docs/RESULTS.md`` reports; :func:`reported` reads those from the file rather than from a copy in the lab, so the
lab follows the file when a reproduction is re-run. A reproduction's section is the ``## `` section whose text
names its command (``spikelab reproduce NAME``); its table is the first markdown table in that section.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from spikelab.reproduce.table import Table

#: ``docs/RESULTS.md`` of a source checkout (absent from an installed wheel: :func:`reported` then returns None)
RESULTS_MD = Path(__file__).resolve().parents[2] / "docs" / "RESULTS.md"


def _cells(line: str) -> list[str]:
    """The cells of one markdown table row, ``\\|`` kept as a literal bar."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", body)]


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """``[(heading, lines)]`` of the ``## `` sections of ``text``."""
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("## "):
            out.append((line[3:].strip(), []))
        elif out:
            out[-1][1].append(line)
    return out


def reported(name: str, *, path: str | os.PathLike | None = None) -> Table | None:
    """The table ``docs/RESULTS.md`` reports for reproduction ``name``, or None if the file, the section or its
    table is missing (a reproduction not measured at full size yet).

    Returns a :class:`Table` whose ``title`` is the section heading, ``columns`` the table's header and ``rows``
    its cells as text (``"87.25 ± 0.26"``); ``meta`` holds ``source`` (the file) and ``section``; ``notes`` the
    first paragraph after the table (the section's verdict). ``path`` defaults to :data:`RESULTS_MD`.

    Raises:
        TypeError: ``name`` is not a non-empty str.
    """
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"name must be a reproduction's name (a non-empty str), got {name!r}")
    file = Path(RESULTS_MD if path is None else path)
    if not file.is_file():
        return None
    command = re.compile(rf"spikelab reproduce {re.escape(name)}(?![\w-])")
    for heading, lines in _sections(file.read_text(encoding="utf-8")):
        if not any(command.search(line) for line in lines):
            continue
        start = next((i for i in range(len(lines) - 1) if lines[i].lstrip().startswith("|")
                      and re.fullmatch(r"\|?(\s*:?-{3,}:?\s*\|)+\s*:?(-{3,}:?)?\s*", lines[i + 1].strip())), None)
        if start is None:
            return None
        columns = _cells(lines[start])
        table = Table(heading, columns, meta=dict(source=str(file), section=heading))
        end = start + 2
        while end < len(lines) and lines[end].lstrip().startswith("|"):
            cells = _cells(lines[end])
            table.rows.append(dict(zip(columns, cells + [""] * (len(columns) - len(cells)))))
            end += 1
        paragraph: list[str] = []
        for line in lines[end:]:
            if not line.strip():
                if paragraph:
                    break
                continue
            if line.startswith("!["):  # a figure between the table and the text
                continue
            paragraph.append(line.strip())
        if paragraph:
            table.notes.append(" ".join(paragraph))
        return table
    return None
