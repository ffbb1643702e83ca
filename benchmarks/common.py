"""The benchmark harness: interleaved timing, memory measurements, the machine description, result records.

Timing: every candidate of a comparison runs once per round, in the same process, round after round (so that a
burst of load from elsewhere hits all of them alike); the first ``warmup`` rounds are dropped; the report is the
median of the rest (at least 7), with the interquartile range. Ratios are taken within one run.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode


@dataclass
class Timing:
    """Per-call times (seconds) of one candidate."""

    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def iqr(self) -> tuple[float, float]:
        if len(self.times) < 4:
            return (min(self.times), max(self.times))
        q = statistics.quantiles(self.times, n=4)
        return (q[0], q[2])

    def to_dict(self) -> dict[str, Any]:
        return dict(median_ms=self.median * 1e3, q1_ms=self.iqr[0] * 1e3, q3_ms=self.iqr[1] * 1e3,
                    n=len(self.times))


def interleaved(candidates: dict[str, Callable[[], Any]], *, rounds: int, warmup: int = 2,
                clock: Callable[[], float] = time.perf_counter) -> dict[str, Timing]:
    """Time each zero-argument callable once per round, ``warmup + rounds`` rounds, interleaved."""
    out = {name: Timing() for name in candidates}
    for r in range(warmup + rounds):
        for name, fn in candidates.items():
            t0 = clock()
            fn()
            dt = clock() - t0
            if r >= warmup:
                out[name].times.append(dt)
    return out


# ---- memory ----------------------------------------------------------------------------------------------------

def retained_bytes(forward: Callable[[], Any]) -> int | None:
    """Bytes held for the backward: C-heap growth while the result of ``forward()`` is alive, minus the bytes of
    the tensors it returns. Counts whatever the graph keeps (saved tensors, packed bits, pooling indices),
    however it is stored. None where glibc's ``mallinfo2`` is unavailable. CPU only."""
    if _LIBC is None:
        return None
    gc.collect()
    before = heap_in_use()
    result = forward()
    grown = heap_in_use() - before
    outs = result if isinstance(result, (tuple, list)) else [result]
    own = sum(t.numel() * t.element_size() for t in outs if isinstance(t, torch.Tensor))
    del result, outs
    return max(0, grown - own)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                 "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def heap_in_use() -> int | None:
    """Bytes the C heap has handed out and not taken back (glibc ``mallinfo2``: heap plus mmapped blocks)."""
    if _LIBC is None:
        return None
    m = _LIBC.mallinfo2()
    return m.uordblks + m.hblkhd


class _PeakHeap(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.base = heap_in_use() or 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, (heap_in_use() or 0) - self.base)
        return out


def peak_bytes(run: Callable[[], Any]) -> int | None:
    """Peak C-heap growth during ``run()`` (sampled after every ATen operation, forward and backward), or None
    where glibc's ``mallinfo2`` is unavailable. CPU only."""
    if _LIBC is None:
        return None
    mode = _PeakHeap()
    with mode:
        run()
    return mode.peak


# ---- the machine ------------------------------------------------------------------------------------------------

def memory_bandwidth(size_mb: int = 256, repeats: int = 5) -> float:
    """Measured copy bandwidth in bytes/s (read + write of a ``size_mb`` MiB buffer, best of ``repeats``)."""
    n = size_mb * 2**20 // 4
    a, b = torch.ones(n), torch.empty(n)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        b.copy_(a)
        best = min(best, time.perf_counter() - t0)
    return 2 * n * 4 / best


def machine() -> dict[str, Any]:
    """CPU, cores, memory, flags that matter here, library versions, threads, load, native kernel status."""
    from spikelab import engine
    from spikelab.reproduce.table import machine_info

    info = machine_info()
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
        info["cpu_flags"] = sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "fma")))
    except OSError:
        pass
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    info["platform"] = platform.platform()
    info["torch_capability"] = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
    info["engine"] = engine.status()
    versions = {}
    for name in ("snntorch", "spikingjelly", "norse", "numpy"):
        try:
            mod = __import__(name)
            versions[name] = getattr(mod, "__version__", None) or _dist_version(name)
        except Exception as err:  # noqa: BLE001 (a peer that does not import is reported, not fatal)
            versions[name] = f"unavailable: {type(err).__name__}: {err}"
    info["versions"] = versions
    return info


def _dist_version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001
        return None


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages (other work on the machine when this ran)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}" if seconds < 0.1 else f"{seconds * 1e3:.1f}"


def table(title: str, columns: list[str], rows: list[list[Any]]) -> str:
    """An aligned text table."""
    cells = [[("-" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))) for v in r] for r in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([title, line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def markdown(columns: list[str], rows: list[list[Any]]) -> str:
    cells = [[("-" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))) for v in r] for r in rows]
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(out)
