"""Run folders and checkpoints: what a run leaves on disk so that dashboards can compare runs and training resumes.

Layout of ``<root>/<name>/``:

- ``config.json``: the run's configuration (training recipe plus whatever the caller adds: model, dataset, ...);
- ``history.jsonl``: step and epoch records as JSON lines (:meth:`spikelab.history.History.to_jsonl`), appended
  at the end of every epoch so a live reader sees progress;
- ``metrics.json``: the final metrics, written when the run ends (also after a stop);
- ``checkpoint.pt``: model, optimiser and loop state at the end of the last finished epoch.

Every file except the appended history is written atomically (temporary file in the same folder, then
``os.replace``), so a reader never sees half a file. Checkpoints are loaded with ``torch.load(weights_only=True)``.
How folders are named, claimed, locked and cleaned up is in :mod:`spikelab.training.folders`.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import torch

from spikelab.history import History
from spikelab.training.folders import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    LOCK_FILE,
    METRICS_FILE,
    is_running,
    remove_dead_temporaries,
)


def atomic_write(path: Path, write: Any, mode: str = "w") -> None:
    """Write through ``write(file)`` into a temporary file beside ``path``, then rename it over ``path``.

    The temporary file is ``.<name>.<pid>.<random>.tmp``; those of ``path`` whose writer is dead (killed during a
    write) are removed first, so none is left forever.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(path)
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

    ``path`` may be a checkpoint file or a run folder holding ``checkpoint.pt``. A file that holds Python objects
    other than tensors and plain data is refused: unpickling them could run code, so spikelab never does.
    """
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_FILE
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {str(p)!r}")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as err:  # corrupt file or not a checkpoint: one clear message, without torch's advice
        raise ValueError(f"{str(p)!r} is not a readable spikelab checkpoint ({_load_failure(err)})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{str(p)!r} is not a spikelab checkpoint (no 'model' entry)")
    return state


def _load_failure(err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in our words. torch's own message advises loading with
    ``weights_only=False``, which would run whatever code the file holds: never repeat that advice."""
    text = str(err)
    if "Unsupported global" in text:
        what = text.split("Unsupported global:", 1)[1].split(" was not", 1)[0].strip().removeprefix("GLOBAL ")
        return (f"it holds Python objects ({what[:80]}) besides tensors and plain data; spikelab loads tensors only, "
                "since unpickling objects can run code")
    if "weights_only" in text or "Weights only" in text:
        return "unreadable data: corrupt, or not written by torch.save"
    return f"{type(err).__name__}: {text}".splitlines()[0][:300]


class RunWriter:
    """Writes one run folder (see the module docstring). ``enabled=False`` makes every method a no-op
    (processes other than rank 0 in a distributed run)."""

    def __init__(self, run_dir: str | os.PathLike, *, enabled: bool = True) -> None:
        self.dir = Path(run_dir)
        self.enabled = enabled

    def start(self, config: dict[str, Any], history: History, *, write_config: bool = True) -> None:
        """Create the folder, write ``config.json`` (unless ``write_config`` is False: a resumed run keeps the
        recipe it started with) and (re)write ``history.jsonl`` with ``history`` so far."""
        if not self.enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        if write_config or not (self.dir / CONFIG_FILE).is_file():
            write_json(self.dir / CONFIG_FILE, config)
        text = history.to_jsonl()
        atomic_write(self.dir / HISTORY_FILE, lambda f: f.write(text))
        stale = self.dir / METRICS_FILE  # from a run that is now being resumed
        if stale.exists():
            stale.unlink()

    def append(self, steps: list[dict[str, Any]], epochs: list[dict[str, Any]]) -> None:
        """Append records to ``history.jsonl`` in one write (a reader sees whole lines or nothing new)."""
        if not self.enabled or not (steps or epochs):
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
        """Write ``metrics.json``: the run has ended (finished, stopped, or failed with ``metrics["error"]``)."""
        if self.enabled:
            write_json(self.dir / METRICS_FILE, metrics)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{str(path)!r} is not valid JSON ({err})") from None


def load_run(path: str | os.PathLike) -> History:
    """Read a run folder into a :class:`History` (name = folder name, config from ``config.json``).

    Safe on a run still being written: a last line without its newline is ignored. A corrupt file raises
    ``ValueError`` naming it.
    """
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"run folder not found: {str(p)!r}")
    cfg_path, hist_path = p / CONFIG_FILE, p / HISTORY_FILE
    config = _read_json(cfg_path) if cfg_path.is_file() else {}
    if not isinstance(config, dict):
        raise ValueError(f"{str(cfg_path)!r} must hold a JSON object, got {type(config).__name__}")
    if not hist_path.is_file():
        raise FileNotFoundError(f"{str(p)!r} is not a run folder (no {HISTORY_FILE})")
    hist = History.from_jsonl(hist_path, config=config, name=p.name)
    metrics = load_metrics(p)
    if metrics is not None:
        hist.stopped = bool(metrics.get("stopped", False))
    return hist


def load_metrics(path: str | os.PathLike) -> dict[str, Any] | None:
    """The final metrics of a run folder, or None while the run has not ended (or was killed)."""
    m = Path(path) / METRICS_FILE
    if not m.is_file():
        return None
    metrics = _read_json(m)
    if not isinstance(metrics, dict):
        raise ValueError(f"{str(m)!r} must hold a JSON object, got {type(metrics).__name__}")
    return metrics


RUN_STATES = ("running", "finished", "stopped", "failed", "interrupted")


def run_state(path: str | os.PathLike) -> str:
    """What became of a run: ``"running"`` (a live process holds its lock), ``"finished"``, ``"stopped"`` (a stop
    cut it), ``"failed"`` (it raised, e.g. a non-finite loss: ``metrics.json`` holds the ``error``) or
    ``"interrupted"`` (its process died without ending it, e.g. ``kill -9``: resume it)."""
    p = Path(path)
    if is_running(p):
        return "running"
    metrics = load_metrics(p)
    if metrics is None:
        return "interrupted"
    return "failed" if metrics.get("error") else "stopped" if metrics.get("stopped") else "finished"


def _abandoned(d: Path) -> bool:
    """A start that never finished an epoch and whose process is gone: nothing to compare."""
    return (d / LOCK_FILE).exists() and not (d / CHECKPOINT_FILE).exists() \
        and not (d / METRICS_FILE).exists() and not is_running(d)


def list_runs(root: str | os.PathLike = "runs") -> list[Path]:
    """Run folders under ``root`` (those holding ``history.jsonl``), oldest first; ``[]`` if ``root`` is missing.

    Abandoned starts (killed before their first epoch: no checkpoint, no metrics, lock free) are left out; they
    can still be resumed or restarted by name.
    """
    r = Path(root)
    if not r.is_dir():
        return []
    runs = []
    for d in r.iterdir():
        try:
            if d.is_dir() and not d.name.startswith(".") and (d / HISTORY_FILE).is_file() and not _abandoned(d):
                runs.append((d.stat().st_mtime if not (d / CONFIG_FILE).exists()
                             else (d / CONFIG_FILE).stat().st_mtime, d.name, d))
        except OSError:
            continue  # removed while we looked, or unreadable
    return [d for *_, d in sorted(runs)]
