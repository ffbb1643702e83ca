"""The record of a training run: what ``fit`` returns, what figures and dashboards read.

A :class:`History` is plain data (lists of dicts of numbers) so it serialises to JSON lines and back without loss.
Per-step records carry at least ``step``, ``epoch``, ``loss``, ``acc``, ``time_s``; per-epoch records carry
``epoch``, ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc`` (None without test data), ``lr``,
``time_s`` (seconds since the run started) and ``firing_rates`` (``{layer_name: rate}``, spikes per neuron per step).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class History:
    """Per-step and per-epoch records of one run, plus the run's config, name and whether it was stopped early."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    name: str = "run"
    stopped: bool = False  # True when training was stopped before its last epoch (a Stop button, Ctrl-C)

    def series(self, key: str, level: str = "epochs") -> tuple[list[float], list[float]]:
        """Return ``(x, y)`` for ``key`` over epochs (x = epoch) or steps (x = step), skipping missing values."""
        if level not in ("epochs", "steps"):
            raise ValueError(f"level must be 'epochs' or 'steps', got {level!r}")
        records = self.epochs if level == "epochs" else self.steps
        xkey = "epoch" if level == "epochs" else "step"
        pairs = [(r[xkey], r[key]) for r in records if r.get(key) is not None]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    @property
    def last(self) -> dict[str, Any]:
        """The last epoch record (empty dict before the first epoch ends)."""
        return self.epochs[-1] if self.epochs else {}

    def to_jsonl(self) -> str:
        """Serialise as JSON lines: one ``{"kind": "step"|"epoch", ...}`` object per record."""
        lines = [json.dumps({"kind": "step", **r}) for r in self.steps]
        lines += [json.dumps({"kind": "epoch", **r}) for r in self.epochs]
        return "\n".join(lines) + ("\n" if lines else "")

    @classmethod
    def from_jsonl(cls, path: str | Path, config: dict[str, Any] | None = None, name: str | None = None) -> "History":
        """Read a history written as JSON lines (see :meth:`to_jsonl`).

        Safe on a file still being written: text after the last newline (a line not yet complete) is ignored.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"history file not found: {path}")
        hist = cls(config=dict(config or {}), name=name or path.parent.name)
        lines = path.read_text().split("\n")[:-1]  # the part after the last newline is incomplete (or empty)
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not a JSON line ({e})") from None
            if not isinstance(rec, dict):
                raise ValueError(f"{path}:{lineno}: a record must be a JSON object, got {type(rec).__name__}")
            kind = rec.pop("kind", None)
            if kind not in ("step", "epoch"):
                raise ValueError(f"{path}:{lineno}: record kind must be 'step' or 'epoch', got {kind!r}")
            if not isinstance(rec.get(kind), int) or isinstance(rec.get(kind), bool):
                raise ValueError(f"{path}:{lineno}: a {kind} record needs an integer {kind!r}, got {rec.get(kind)!r}")
            (hist.steps if kind == "step" else hist.epochs).append(rec)
        return hist
