"""Command lines of ``spikelab train``, ``spikelab eval`` and ``spikelab export-nir`` built from settings, and a job
that runs one in a child process with its output captured line by line (lab 11; no ipywidgets here).

The command lines are the ones a user types (``spikelab ...``, or ``torchrun --standalone --nproc_per_node=N -m
spikelab ...`` for several processes on one machine); :func:`local_argv` turns one into what this Python runs
(``python -m spikelab`` / ``python -m torch.distributed.run``), so a lab runs exactly the command it shows.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from spikelab._checks import check_int
from spikelab.viz._live import BackgroundTask

__all__ = ["train_command", "eval_command", "export_nir_command", "shell_line", "local_argv", "CommandJob",
           "parse_accuracy_vs_T", "run_folder", "reproduce_command", "reproduction_figures", "nir_round_trip", "README_FASHION_MNIST", "compare_with_reported"]


def _opt(argv: list[str], flag: str, value: Any) -> None:
    if value is not None:
        argv += [flag, *(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))]


def train_command(
    *, model: str, dataset: str, T: int, epochs: int, batch_size: int, lr: float | None = None,
    loss: str | None = None, limit: int | None = None, data_root: str | None = None, size: int | None = None,
    processes: int = 1, device: str | None = None, out: str | os.PathLike | None = None, name: str | None = None,
    progress: bool = True,
) -> list[str]:
    """The ``spikelab train`` command line (a list of arguments) for these settings.

    ``processes > 1`` launches that many data-parallel processes on this machine with ``torchrun --standalone``
    (``batch_size`` is then the global batch, split evenly: it must be divisible by ``processes``). Settings left
    None are not written (the command's defaults apply); ``progress=False`` adds ``--no-progress``.

    Raises:
        ValueError: a count below 1, or a batch that the processes cannot share evenly.
    """
    for value, arg in ((T, "T"), (epochs, "epochs"), (batch_size, "batch_size"), (processes, "processes")):
        check_int(value, arg, minimum=1)
    if limit is not None:
        check_int(limit, "limit", minimum=1)
    if batch_size % processes:
        raise ValueError(f"batch_size ({batch_size}) must be divisible by processes ({processes}): it is the global "
                         "batch, split evenly over the processes")
    head = ["spikelab"] if processes == 1 else ["torchrun", "--standalone", f"--nproc_per_node={processes}", "-m",
                                                "spikelab"]
    argv = head + ["train", "--model", model, "--dataset", str(dataset)]
    _opt(argv, "--data-root", data_root)
    _opt(argv, "--size", size)
    argv += ["-T", str(T), "--epochs", str(epochs), "--batch-size", str(batch_size)]
    _opt(argv, "--lr", lr)
    _opt(argv, "--loss", loss)
    _opt(argv, "--limit", limit)
    _opt(argv, "--device", device)
    _opt(argv, "--out", None if out is None else str(out))
    _opt(argv, "--name", name)
    if not progress:
        argv.append("--no-progress")
    return argv


def eval_command(run: str | os.PathLike, *, Ts: Sequence[int] | None = None, limit: int | None = None,
                 progress: bool = True) -> list[str]:
    """``spikelab eval RUN`` (the full report), or with ``Ts`` its table of accuracy against T (``--T 1,2,4``)."""
    argv = ["spikelab", "eval", str(run)]
    if Ts is not None:
        Ts = [check_int(t, "Ts", minimum=1) for t in Ts]
        if not Ts:
            raise ValueError("Ts must hold at least one number of time steps")
        argv += ["--T", ",".join(str(t) for t in Ts)]
    if limit is not None:
        argv += ["--limit", str(check_int(limit, "limit", minimum=1))]
    if not progress:
        argv.append("--no-progress")
    return argv


def export_nir_command(run: str | os.PathLike, out: str | os.PathLike) -> list[str]:
    """``spikelab export-nir RUN OUT`` (docs/NIR.md)."""
    return ["spikelab", "export-nir", str(run), str(out)]


def reproduce_command(name: str, *, size: str = "full", seeds: int | None = None,
                      out: str | os.PathLike | None = None, progress: bool = True) -> list[str]:
    """``spikelab reproduce NAME --size SIZE [--seeds N] [--out DIR]`` (docs/RESULTS.md's command for a claim)."""
    from spikelab.reproduce import SIZES

    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a reproduction's name, got {name!r}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    argv = ["spikelab", "reproduce", name, "--size", size]
    if seeds is not None:
        argv += ["--seeds", str(check_int(seeds, "seeds", minimum=1))]
    _opt(argv, "--out", None if out is None else str(out))
    if not progress:
        argv.append("--no-progress")
    return argv


def reproduction_figures(name: str, table: Any) -> dict[str, Any]:
    """The figures a reproduction draws from its table (its module's ``figures(table)``; ``{}`` if it has none)."""
    import importlib

    from spikelab import reproduce

    module = importlib.import_module(reproduce.get(name).fn.__module__)
    draw = getattr(module, "figures", None)
    return dict(draw(table)) if callable(draw) else {}


def shell_line(argv: Sequence[str]) -> str:
    """``argv`` as one line to paste into a shell (quoted where needed)."""
    return shlex.join([str(a) for a in argv])


def local_argv(argv: Sequence[str]) -> list[str]:
    """What this Python runs for a ``spikelab ...`` or ``torchrun ... -m spikelab ...`` command line: ``python -m
    spikelab ...`` or ``python -m torch.distributed.run ...``, with this interpreter (the active environment)."""
    argv = [str(a) for a in argv]
    if argv[:1] == ["spikelab"]:
        return [sys.executable, "-m", "spikelab", *argv[1:]]
    if argv[:1] == ["torchrun"]:
        return [sys.executable, "-m", "torch.distributed.run", *argv[1:]]
    raise ValueError(f"argv must start with 'spikelab' or 'torchrun', got {argv[:1]}")


#: runs a command (its arguments after the shim's) with SIGINT's default action
_SIGINT_SHIM = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                "os.execvp(sys.argv[1], sys.argv[1:])")


class CommandJob:
    """One command run in a child process, its output (stdout and stderr together) kept as ``lines``.

    :meth:`start` returns at once; ``on_line(line)`` is called for every line (from a reader thread) and
    ``on_done(job)`` once the process has ended. :meth:`stop` sends the process group SIGINT, which ``spikelab
    train`` takes as "stop after this batch" (the run folder keeps its last finished epoch); :meth:`wait` joins.
    ``state``: ``idle``, ``running``, then ``done`` (exit status 0), ``stopped`` (stopped by :meth:`stop`) or
    ``failed`` (any other exit status; ``error`` holds the last line of output).
    """

    MAX_LINES = 2000  # older lines are dropped (a progress bar would otherwise grow the log without end)

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.argv: list[str] = []
        self.returncode: int | None = None
        self.error: str | None = None
        self._task = BackgroundTask()
        self._proc: subprocess.Popen | None = None
        self._stopped = False

    @property
    def running(self) -> bool:
        return self._task.running

    @property
    def state(self) -> str:
        if self._task.state in ("idle", "running"):
            return self._task.state
        if self._task.state == "failed":
            return "failed"
        if self._stopped:
            return "stopped"
        return "done" if self.returncode == 0 else "failed"

    def start(self, argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None,
              on_line: Callable[[str], None] | None = None,
              on_done: Callable[["CommandJob"], None] | None = None) -> None:
        """Start ``argv`` (a list of arguments, run without a shell); ``RuntimeError`` if a job is running."""
        if isinstance(argv, str) or not argv or not all(isinstance(a, (str, os.PathLike)) for a in argv):
            raise TypeError("argv must be a non-empty list of str arguments")
        if self.running:
            raise RuntimeError("a command is already running; stop it first")
        self.argv, self.lines = [str(a) for a in argv], []
        self.returncode, self.error, self._stopped = None, None, False
        environment = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
        # a new process group: SIGINT reaches torchrun's workers too, and a Ctrl-C in the kernel does not. The
        # command is exec'd by a shim that gives SIGINT back its default action: a server started in the background
        # (`&`, nohup) passes SIGINT down as ignored, and Stop would then never reach a command without a handler
        self._proc = subprocess.Popen([sys.executable, "-c", _SIGINT_SHIM, *self.argv], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, bufsize=1, env=environment, cwd=cwd,
                                      start_new_session=True)
        proc = self._proc

        def reader() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                for line in re.split(r"[\r\n]+", raw):  # a progress bar redraws its line with \r
                    if line.strip():
                        self.lines.append(line)
                        del self.lines[:-self.MAX_LINES]
                        if on_line is not None:
                            on_line(line)

        def body(stop: threading.Event) -> int:
            read = threading.Thread(target=reader, name="spikelab-command-output", daemon=True)
            read.start()
            while proc.poll() is None:
                if stop.wait(0.2) and not self._stopped:
                    self._stopped = True
                    self._signal(signal.SIGINT)
            read.join(5)
            self.returncode = proc.returncode
            if proc.returncode != 0 and not self._stopped:
                self.error = (self.lines[-1] if self.lines else f"exit status {proc.returncode}")
            return proc.returncode

        self._task.start(body, on_done=None if on_done is None else (lambda _task: on_done(self)))

    def _signal(self, sig: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """Ask the command to stop (SIGINT to its process group: ``spikelab train`` ends after the current batch)."""
        self._task.stop()

    def kill(self) -> None:
        """End the command now (SIGKILL to its process group)."""
        self._stopped = True
        self._signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> bool:
        """True once the command has ended (or never started) within ``timeout`` seconds."""
        return self._task.wait(timeout)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


_ROW = re.compile(r"^\s*(\d+)\s+([0-9.]+)%\s+([0-9.eE+-]+|nan|inf)\s+([0-9.]+|-)\s*$")


def parse_accuracy_vs_T(text: str) -> list[dict[str, Any]]:
    """The rows of the table ``spikelab eval RUN --T ...`` prints (``T``, ``acc`` as a fraction, ``loss``,
    ``firing_rate`` or None), in order; other lines are skipped. ``ValueError`` if the text holds no row."""
    rows = []
    for line in str(text).splitlines():
        m = _ROW.match(line)
        if m:
            rows.append(dict(T=int(m.group(1)), acc=float(m.group(2)) / 100, loss=float(m.group(3)),
                             firing_rate=None if m.group(4) == "-" else float(m.group(4))))
    if not rows:
        raise ValueError("the text holds no row of an accuracy-against-T table (spikelab eval RUN --T ...)")
    return rows


def run_folder(argv: Sequence[str]) -> Path | None:
    """The run folder a ``spikelab train`` command line names with ``--out`` and ``--name`` (None without
    ``--name``; ``--out`` defaults to ``runs``)."""
    argv = [str(a) for a in argv]
    if "--name" not in argv:
        return None
    name = argv[argv.index("--name") + 1]
    out = argv[argv.index("--out") + 1] if "--out" in argv else "runs"
    return Path(out) / name


def nir_round_trip(run_dir: str | os.PathLike, nir_file: str | os.PathLike, *, n: int = 64) -> dict[str, Any]:
    """Load ``nir_file`` back (:func:`spikelab.nir.load`) and compare it with the network of ``run_dir`` on ``n``
    test images of the run's dataset, both read for the run's T with the direct code: returns ``nodes`` (the
    graph's node count), ``n`` and ``max_diff`` (the largest absolute difference of their logits ``[T, B, C]``;
    0 up to float rounding where batch norm was folded, docs/NIR.md)."""
    import torch

    from spikelab import encoding, nir, recipe, training

    check_int(n, "n", minimum=1)
    ckpt = training.load_checkpoint(Path(run_dir) / training.CHECKPOINT_FILE)
    cfg = dict(ckpt["run_config"])
    net = recipe.build_model(cfg, ckpt["model"], source=repr(str(run_dir))).eval()
    loaded = nir.load(nir_file).eval()
    _, test, info = recipe.make_data(cfg, batch_size=n, seed=0, augment=False, limit=n)
    x = next(iter(test))[0]
    seq = x if info.is_event else encoding.direct(x, cfg["T"])
    with torch.no_grad():
        diff = (net(seq) - loaded(seq)).abs().max().item()
    return dict(nodes=len(nir.read_graph(nir_file).nodes), n=int(x.shape[1] if info.is_event else x.shape[0]),
                max_diff=diff)


#: what README.md reports for ``spikelab train --dataset fashion-mnist --epochs 2 --batch-size 128`` (the
#: README's "Train from the command line" table: conv-small, T=4, 2-core CPU)
README_FASHION_MNIST = dict(command="spikelab train --dataset fashion-mnist --epochs 2 --batch-size 128",
                            dataset="fashion-mnist", model="conv-small", T=4, epochs=2, batch_size=128, limit=None,
                            test_acc=0.900, train_s=229.0)


def compare_with_reported(config: dict[str, Any], metrics: dict[str, Any] | None,
                          reported: dict[str, Any] = README_FASHION_MNIST) -> str:
    """One line comparing a finished run (its ``config.json`` recipe and ``metrics.json``) with a reported run:
    the test accuracies side by side, and which settings differ (the comparison is like for like only when none
    does)."""
    if metrics is None or metrics.get("test_acc") is None:
        return "no finished epoch yet: nothing to compare"
    ours = metrics["test_acc"]
    differ = [f"{k} {config.get(k)!r} (reported {reported[k]!r})" for k in ("model", "T", "batch_size", "limit")
              if config.get(k) != reported[k]]
    if Path(str(config.get("dataset", ""))).name != reported["dataset"]:
        differ.insert(0, f"dataset {Path(str(config.get('dataset'))).name} (reported {reported['dataset']})")
    epochs = metrics.get("epochs", config.get("epochs"))
    if epochs != reported["epochs"]:
        differ.append(f"epochs {epochs} (reported {reported['epochs']})")
    gap = 100 * (ours - reported["test_acc"])
    line = (f"this run: {100 * ours:.1f} % test accuracy; reported for `{reported['command']}`: "
            f"{100 * reported['test_acc']:.1f} % ({abs(gap):.1f} points {'above' if gap >= 0 else 'below'})")
    return line + ("; not like for like: " + ", ".join(differ) if differ else "; same recipe")
