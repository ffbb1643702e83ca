"""The result of a reproduction: a small table of our numbers beside the paper's, with the machine it ran on."""
from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikelab.training.runs import atomic_write


def mean_spread(values: Sequence[float], *, scale: float = 1.0, digits: int = 2) -> str:
    """``"mean ± std"`` of ``values`` times ``scale`` (sample standard deviation; ``"mean"`` alone for one value).

    ``mean_spread([0.97, 0.98], scale=100)`` gives ``"97.50 ± 0.71"``. Raises ``ValueError`` on an empty or
    non-finite input.
    """
    vals = [float(v) * scale for v in values]
    if not vals:
        raise ValueError("values must hold at least one number")
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"values must be finite, got {vals}")
    mean = sum(vals) / len(vals)
    if len(vals) == 1:
        return f"{mean:.{digits}f}"
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def machine_info() -> dict[str, Any]:
    """Where a result was measured: CPU model, cores, torch version and threads, CUDA device if used."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = dict(cpu=cpu, cores=os.cpu_count(), torch=torch.__version__,
                                threads=torch.get_num_threads(), python=platform.python_version())
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


@dataclass
class Table:
    """Rows of named columns (plain strings and numbers), with notes and metadata; prints as aligned text.

    ``rows`` are dicts keyed by ``columns``; a missing entry prints as ``-``. ``notes`` are sentences printed under
    the table (e.g. where a claim does not reproduce at this scale and why). ``meta`` is free JSON data
    (:func:`spikelab.reproduce.run` adds the machine, size and wall time). ``data`` holds raw per-seed numbers
    for plots and tests.
    """

    title: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.columns or len(set(self.columns)) != len(self.columns):
            raise ValueError(f"columns must be distinct and at least one, got {self.columns}")

    def add(self, **row: Any) -> None:
        """Append a row; keys must be column names."""
        unknown = sorted(set(row) - set(self.columns))
        if unknown:
            raise ValueError(f"row has keys {unknown} that are not columns {self.columns}")
        self.rows.append(row)

    def _cells(self) -> list[list[str]]:
        def fmt(v: Any) -> str:
            if v is None:
                return "-"
            if isinstance(v, float):
                return f"{v:.4g}"
            return str(v)
        return [[fmt(r.get(c)) for c in self.columns] for r in self.rows]

    def to_markdown(self) -> str:
        """A GitHub markdown table with the notes below it."""
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in self._cells()]
        return "\n".join(lines + [""] + [f"- {n}" for n in self.notes]).rstrip() + "\n"

    def __str__(self) -> str:
        cells = self._cells()
        widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c)
                  for i, c in enumerate(self.columns)]
        line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
        out = [self.title, line(self.columns), line(["-" * w for w in widths])] + [line(r) for r in cells]
        return "\n".join(out + [f"* {n}" for n in self.notes])

    def to_dict(self) -> dict[str, Any]:
        return dict(title=self.title, columns=self.columns, rows=self.rows, notes=self.notes, meta=self.meta,
                    data=self.data)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Table":
        return cls(title=d["title"], columns=list(d["columns"]), rows=list(d.get("rows", [])),
                   notes=list(d.get("notes", [])), meta=dict(d.get("meta", {})), data=dict(d.get("data", {})))

    def save(self, folder: str | os.PathLike) -> None:
        """Write ``table.json`` and ``table.md`` into ``folder`` (atomically)."""
        folder = Path(folder)
        text_json = json.dumps(self.to_dict(), indent=2)
        atomic_write(folder / "table.json", lambda f: f.write(text_json))
        md = f"### {self.title}\n\n{self.to_markdown()}"
        atomic_write(folder / "table.md", lambda f: f.write(md))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Table":
        """Read ``table.json`` written by :meth:`save`."""
        return cls.from_dict(json.loads((Path(folder) / "table.json").read_text()))
