"""Run folders on disk: their names, claiming one atomically, the lock a run holds for its life, and cleanup.

The lifecycle of ``<root>/<name>/`` (what ``spikelab train``, the training panel and ``fit(run_dir=...)`` share):

- **name**: one path component (:func:`check_run_name`: no ``/``, not empty, not ``.`` or ``..``, no leading dot);
  the default is ``<model>-<dataset>-<YYYYmmdd-HHMMSS>`` (:func:`spikelab.recipe.run_name`), with ``-2``, ``-3``,
  ... appended when that name is taken.
- **claim** (:func:`claim_run`): a new run folder is built as a hidden ``.claim-*`` folder holding its locked lock
  file and then renamed to its name. ``rename`` refuses a non-empty target, so two processes that choose the same
  name at the same moment never share a folder: one gets it, the other the next name (or an error, for an explicit
  name).
- **lock**: while a run trains, its process holds an exclusive ``flock`` on ``<run>/.run.lock``. The kernel drops
  the lock when the process ends, however it ends (``kill -9`` included; DataLoader worker processes forked from
  it hold it until they notice and exit, within seconds). A second process that wants the folder (another
  ``--resume`` of the same run, the same ``--name``) is refused with :class:`RunBusyError`, which names the holder's
  pid. :func:`is_running` tests the lock without keeping it.
- **abandoned starts**: a folder without ``checkpoint.pt`` whose lock is free never finished an epoch (its process
  was killed, or failed, first). Claiming its name again restarts it (its spikelab files are removed first);
  :func:`spikelab.training.list_runs` does not list it. A run that fails with an exception before its first
  epoch removes its own folder (:meth:`RunLock.discard`).
- **cleanup**: every claim first removes, under ``root``, the temporary files (``.*.tmp``) that dead writers left in
  run folders whose lock is free (a kill during an atomic write), and ``.claim-*`` folders of claims that died.

Locks are POSIX ``flock`` locks: on a system without ``fcntl`` (Windows) claiming stays atomic but a run's lock
is not enforced. Network file systems may not honour ``flock``.
"""
from __future__ import annotations

import errno
import glob
import os
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".run.lock"
CLAIM_PREFIX = ".claim-"
CONFIG_FILE = "config.json"  # the files a run writes (see spikelab.training.runs)
HISTORY_FILE = "history.jsonl"
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pt"
RUN_FILES = (CONFIG_FILE, HISTORY_FILE, METRICS_FILE, CHECKPOINT_FILE)
STALE_CLAIM_S = 60.0  # a .claim-* folder this old whose lock is free belongs to a dead claim
BUSY_WAIT_S = 1.0  # how long an acquirer retries a taken lock (a probe by is_running holds it for microseconds)
MAX_NAME = 200


class RunFolderError(ValueError):
    """A run folder cannot be used as asked: its name is invalid, it holds another run, or it is not a run folder."""


class RunBusyError(RunFolderError):
    """The run folder is locked by a live process: the run is training."""


def check_run_name(name: Any) -> str:
    """Check a run folder name: one non-empty path component, no leading dot, at most 200 characters."""
    if not isinstance(name, str):
        raise TypeError(f"run name must be a str, got {type(name).__name__}")
    if not name.strip():
        raise RunFolderError(f"run name must not be empty, got {name!r}")
    if name != name.strip():
        raise RunFolderError(f"run name must not start or end with spaces, got {name!r}")
    if "/" in name or "\\" in name or os.sep in name or (os.altsep and os.altsep in name):
        raise RunFolderError(f"run name must be a folder name without '/' (runs live under the --out folder), "
                             f"got {name!r}")
    if name.startswith("."):
        raise RunFolderError(f"run name must not start with '.', got {name!r}")
    if any(ord(c) < 32 for c in name):
        raise RunFolderError(f"run name must not hold control characters, got {name!r}")
    if len(name) > MAX_NAME:
        raise RunFolderError(f"run name is too long ({len(name)} characters; at most {MAX_NAME})")
    return name


def _lock_fd(path: Path, *, create: bool) -> int | None:
    flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0) | (os.O_CREAT if create else 0)
    try:
        return os.open(path, flags, 0o644)
    except FileNotFoundError:
        if create:
            raise
        return None


def _holder(run_dir: Path) -> str:
    try:
        text = (run_dir / LOCK_FILE).read_text().split()
    except OSError:
        return "another process"
    return f"pid {text[0]} on {text[1]}" if len(text) >= 2 else "another process"


_HELD: dict[tuple[str, int], "RunLock"] = {}  # (real path, thread) -> the lock this thread holds
_HELD_GUARD = threading.Lock()


class RunLock:
    """The lock of one run folder, held by this thread while the run trains (see the module docstring).

    Use as a context manager or call :meth:`release`. Acquiring a folder this thread already holds returns the same
    lock (counted), so ``fit(run_dir=...)`` inside ``spikelab train`` shares the command's lock.

    Attributes:
        path: the run folder.
        restarted: True when the claim took over an abandoned start of the same name.
    """

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self.restarted = False
        self._fd = fd
        self._count = 1
        self._key = (os.path.realpath(path), threading.get_ident())

    @property
    def held(self) -> bool:
        """True until the last :meth:`release`."""
        return self._count > 0

    def _register(self) -> "RunLock":
        with _HELD_GUARD:
            _HELD[self._key] = self
        if self._fd is not None:  # who holds it, for the message another process gets
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        return self

    def release(self) -> None:
        """Release one hold; the lock itself goes with the last one."""
        if self._count <= 0:
            return
        self._count -= 1
        if self._count == 0:
            with _HELD_GUARD:
                if _HELD.get(self._key) is self:
                    del _HELD[self._key]
            if self._fd is not None:
                os.close(self._fd)  # closing the descriptor drops the flock
                self._fd = None

    def discard(self) -> None:
        """Remove the run's files and, if nothing else is left, its folder; then release.

        For a run that ended before its first epoch: there is nothing to resume or compare.
        """
        remove_run_files(self.path)
        (self.path / LOCK_FILE).unlink(missing_ok=True)
        try:
            self.path.rmdir()
        except OSError:
            pass  # other files (the user's) stay
        self._count = 1
        self.release()

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and self._count == 1 and not (self.path / CHECKPOINT_FILE).exists():
            self.discard()  # failed (or aborted) before its first epoch: leave no run behind
        else:
            self.release()


def _forget_locks_in_child() -> None:
    """In a process forked from a training process (a DataLoader worker), close the inherited lock descriptors: the
    lock then belongs to the training process alone and goes the moment it dies, not when its workers notice."""
    for lock in list(_HELD.values()):
        if lock._fd is not None:
            try:
                os.close(lock._fd)
            except OSError:
                pass
            lock._fd, lock._count = None, 0
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_locks_in_child)


def _flock(fd: int, shared: bool = False) -> bool:
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _held_here(run_dir: Path) -> RunLock | None:
    with _HELD_GUARD:
        return _HELD.get((os.path.realpath(run_dir), threading.get_ident()))


def lock_run(run_dir: str | os.PathLike, *, wait_s: float = BUSY_WAIT_S) -> RunLock:
    """Take the lock of an existing run folder; :class:`RunBusyError` if a live process holds it.

    A lock this thread already holds is shared (counted). Another thread of this process counts as another holder.
    Taking the lock removes the temporary files (``.*.tmp``) a dead writer left in the folder.
    """
    run_dir = Path(run_dir)
    mine = _held_here(run_dir)
    if mine is not None:
        mine._count += 1
        return mine
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder not found: {str(run_dir)!r}")
    deadline = time.monotonic() + wait_s
    while True:
        fd = _lock_fd(run_dir / LOCK_FILE, create=True)
        if not _flock(fd):
            os.close(fd)
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise RunBusyError(f"run {str(run_dir)!r} is running ({_holder(run_dir)}): wait for it to end, "
                               "or stop it first")
        try:  # a run that discarded its folder meanwhile unlinked this file: lock the current one instead
            same = os.stat(run_dir / LOCK_FILE).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # no other process writes here now: temporaries left in the folder are a dead writer's
            for tmp in run_dir.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
            return RunLock(run_dir, fd)._register()
        os.close(fd)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"run folder {str(run_dir)!r} was removed")


def is_running(run_dir: str | os.PathLike) -> bool:
    """Whether a live process (this one included) holds the run folder's lock."""
    run_dir = Path(run_dir)
    if _held_here(run_dir) is not None:
        return True
    fd = _lock_fd(run_dir / LOCK_FILE, create=False)
    if fd is None:
        return False
    try:
        if fcntl is None:  # pragma: no cover
            return False
        if not _flock(fd, shared=True):
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def remove_run_files(run_dir: Path) -> None:
    """Remove what a run writes into its folder (and stale temporaries); other files and the lock file stay."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for tmp in run_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _tmp_pid(name: str) -> int | None:
    parts = name.split(".")  # ".<file>.<pid>.<hex>.tmp" (runs.atomic_write)
    try:
        return int(parts[-3])
    except (IndexError, ValueError):
        return None


def remove_dead_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files of ``path`` (``.<name>.<pid>.<random>.tmp``) whose writing process is dead."""
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = _tmp_pid(tmp.name)
        if pid is not None and pid != os.getpid() and not _pid_alive(pid):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def clean_stale(root: str | os.PathLike) -> list[Path]:
    """Remove what dead writers left under ``root``: ``.*.tmp`` files in run folders whose lock is free (a process
    killed during an atomic write) and ``.claim-*`` folders of dead claims. Returns the paths removed."""
    root = Path(root)
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for d in entries:
        try:
            if not d.is_dir():
                continue
            if d.name.startswith(CLAIM_PREFIX):
                if time.time() - d.stat().st_mtime > STALE_CLAIM_S and not is_running(d):
                    shutil.rmtree(d, ignore_errors=True)
                    removed.append(d)
                continue
            tmps = [t for t in d.glob(".*.tmp") if t.is_file()]
            if not tmps or not (d / LOCK_FILE).exists() or is_running(d):
                continue
            for t in tmps:
                pid = _tmp_pid(t.name)
                if pid is None or pid == os.getpid() or not _pid_alive(pid):
                    t.unlink(missing_ok=True)
                    removed.append(t)
        except OSError:
            continue  # a folder removed or unreadable meanwhile: not ours to clean
    return removed


def _try_new(target: Path) -> RunLock | None:
    """Create ``target`` holding a locked lock file, atomically; None if the name is taken."""
    tmp = target.parent / f"{CLAIM_PREFIX}{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    fd = _lock_fd(tmp / LOCK_FILE, create=True)
    _flock(fd)
    try:
        os.rename(tmp, target)  # replaces at most an empty folder; fails on a run folder, which holds its lock file
    except OSError as err:
        os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)
        if err.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            return None
        raise
    return RunLock(target, fd)._register()


def _foreign(run_dir: Path) -> list[str]:
    known = set(RUN_FILES) | {LOCK_FILE}
    return sorted(p.name for p in run_dir.iterdir() if p.name not in known and not p.name.endswith(".tmp"))


def claim_run(root: str | os.PathLike, name: str | None = None, *, base: str | None = None) -> RunLock:
    """Claim a run folder under ``root`` and return its held :class:`RunLock`.

    With ``name``: ``root/name``, which must be new, empty, or an abandoned start (no finished epoch, lock free;
    it is restarted: its spikelab files are removed and ``restarted`` is set). A folder holding a run with a
    checkpoint raises :class:`RunFolderError` (resume it instead), one being trained :class:`RunBusyError`.
    Without ``name``: ``root/base``, else the first free ``root/base-2``, ``root/base-3``, ...

    ``root`` is created if needed; an unwritable ``root`` raises ``OSError`` before anything else happens. Stale
    temporaries under ``root`` are cleaned first (:func:`clean_stale`).
    """
    if (name is None) == (base is None):
        raise TypeError("claim_run needs exactly one of name and base")
    check_run_name(name if name is not None else base)
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    if not os.access(root, os.W_OK | os.X_OK):
        raise PermissionError(f"runs folder {str(root)!r} is not writable")
    clean_stale(root)
    if name is None:
        k = 1
        while True:
            lock = _try_new(root / (base if k == 1 else f"{base}-{k}"))
            if lock is not None:
                return lock
            k += 1
    target = root / name
    lock = _try_new(target)
    if lock is not None:
        return lock
    if not target.is_dir():
        raise RunFolderError(f"{str(target)!r} exists and is not a folder: choose another --name")
    lock = lock_run(target)
    try:
        if (target / CHECKPOINT_FILE).exists():
            raise RunFolderError(f"run folder {str(target)!r} already holds a run: continue it with --resume "
                                 f"{target} or choose another --name")
        foreign = _foreign(target)
        if foreign:
            raise RunFolderError(f"{str(target)!r} is not a spikelab run folder (it holds {foreign[:3]}): choose "
                                 "another --name")
    except BaseException:
        lock.release()
        raise
    lock.restarted = (target / CONFIG_FILE).exists()
    remove_run_files(target)
    return lock


def open_run(run_dir: str | os.PathLike, *, resume: bool) -> RunLock:
    """The lock ``fit(run_dir=...)`` holds: this thread's own (shared) if it claimed the folder already, else a new
    folder claimed atomically, else the existing folder locked. Without ``resume``, a folder that holds a finished
    epoch is refused (:class:`RunFolderError`) and an abandoned start is cleared; other files in it stay."""
    run_dir = Path(run_dir).expanduser()
    mine = _held_here(run_dir)
    if mine is not None:
        mine._count += 1
        return mine
    if not run_dir.exists():
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        lock = _try_new(run_dir)
        if lock is not None:
            return lock
    lock = lock_run(run_dir)
    if not resume:
        if (run_dir / CHECKPOINT_FILE).exists():
            lock.release()
            raise RunFolderError(f"run folder {str(run_dir)!r} already holds a run: pass resume={str(run_dir)!r} "
                                 "to continue it, or choose another run_dir")
        lock.restarted = (run_dir / CONFIG_FILE).exists()
        remove_run_files(run_dir)
    return lock
