"""Run folders and checkpoints: what a run leaves on disk so that dashboards can compare runs and training resumes.

Layout of ``<root>/<name>/``:

- ``config.json``: the run's configuration (training recipe plus whatever the caller adds: model, dataset, ...);
- ``history.jsonl``: step and epoch records as JSON lines (:meth:`spikelab.history.History.to_jsonl`), appended
  at the end of every epoch so a live reader sees progress;
- ``metrics.json``: the final metrics, written when the run ends (also after a stop);
- ``checkpoint.pt``: model, optimiser and loop state at the end of the last finished epoch.

Every file except the appended history is written atomically (temporary file in the same folder, then
``os.replace``), so a reader never sees half a file. Checkpoints are loaded with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import torch

from spikelab.history import History

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.jsonl"
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pt"


def atomic_write(path: Path, write: Any, mode: str = "w") -> None:
    """Write through ``write(file)`` into a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, mode.replace("w", "x")) as f:  # "x": never reuse a file; permissions follow the umask
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write(Path(path), lambda f: json.dump(data, f, indent=2, sort_keys=False))


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save a checkpoint dict (tensors, numbers, strings, lists, dicts) atomically with ``torch.save``."""
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    atomic_write(Path(path), lambda f: torch.save(state, f), mode="wb")


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint saved by :func:`save_checkpoint` (``weights_only=True``: no code is unpickled).

    ``path`` may be a checkpoint file or a run folder holding ``checkpoint.pt``.
    """
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_FILE
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {str(p)!r}")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as err:  # corrupt file or not a checkpoint: one clear message
        reason = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        raise ValueError(f"{str(p)!r} is not a readable spikelab checkpoint ({reason})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{str(p)!r} is not a spikelab checkpoint (no 'model' entry)")
    return state


class RunWriter:
    """Writes one run folder (see the module docstring). ``enabled=False`` makes every method a no-op
    (processes other than rank 0 in a distributed run)."""

    def __init__(self, run_dir: str | os.PathLike, *, enabled: bool = True) -> None:
        self.dir = Path(run_dir)
        self.enabled = enabled

    def start(self, config: dict[str, Any], history: History) -> None:
        """Create the folder, write ``config.json`` and (re)write ``history.jsonl`` with ``history`` so far."""
        if not self.enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json(self.dir / CONFIG_FILE, config)
        text = history.to_jsonl()
        atomic_write(self.dir / HISTORY_FILE, lambda f: f.write(text))
        stale = self.dir / METRICS_FILE  # from a run that is now being resumed
        if stale.exists():
            stale.unlink()

    def append(self, steps: list[dict[str, Any]], epochs: list[dict[str, Any]]) -> None:
        """Append records to ``history.jsonl`` in one write (a reader sees whole lines or nothing new)."""
        if not self.enabled:
            return
        text = History(steps=steps, epochs=epochs).to_jsonl()
        with open(self.dir / HISTORY_FILE, "a") as f:
            f.write(text)
            f.flush()

    def checkpoint(self, state: dict[str, Any]) -> None:
        """Replace ``checkpoint.pt`` with ``state`` (atomically)."""
        if self.enabled:
            save_checkpoint(self.dir / CHECKPOINT_FILE, state)

    def finish(self, metrics: dict[str, Any]) -> None:
        """Write ``metrics.json``: the run has ended (finished or stopped)."""
        if self.enabled:
            write_json(self.dir / METRICS_FILE, metrics)


def load_run(path: str | os.PathLike) -> History:
    """Read a run folder into a :class:`History` (name = folder name, config from ``config.json``).

    Safe on a run still being written: a last line without its newline is ignored.
    """
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"run folder not found: {str(p)!r}")
    cfg_path, hist_path = p / CONFIG_FILE, p / HISTORY_FILE
    config = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    if not hist_path.is_file():
        raise FileNotFoundError(f"{str(p)!r} is not a run folder (no {HISTORY_FILE})")
    hist = History.from_jsonl(hist_path, config=config, name=p.name)
    metrics_path = p / METRICS_FILE
    if metrics_path.is_file():
        hist.stopped = bool(json.loads(metrics_path.read_text()).get("stopped", False))
    return hist


def load_metrics(path: str | os.PathLike) -> dict[str, Any] | None:
    """The final metrics of a run folder, or None while the run has not finished."""
    m = Path(path) / METRICS_FILE
    return json.loads(m.read_text()) if m.is_file() else None


def list_runs(root: str | os.PathLike = "runs") -> list[Path]:
    """Run folders under ``root`` (those holding ``history.jsonl``), oldest first; ``[]`` if ``root`` is missing."""
    r = Path(root)
    if not r.is_dir():
        return []
    runs = [d for d in r.iterdir() if d.is_dir() and (d / HISTORY_FILE).is_file()]
    return sorted(runs, key=lambda d: ((d / CONFIG_FILE).stat().st_mtime if (d / CONFIG_FILE).exists() else 0, d.name))
