"""spikelab's native CPU kernels: C source compiled once per machine with the system C compiler, cached, and
loaded with :mod:`ctypes`.

There is nothing to install: the first call of :func:`load` compiles ``kernels.c`` (about a second) into
``$SPIKELAB_CACHE_DIR`` (default ``$XDG_CACHE_HOME/spikelab`` or ``~/.cache/spikelab``), keyed by the source, the
compiler and the CPU, so a shared home folder never loads a build made for another CPU. ``make venv`` builds it
ahead (``python -m spikelab._native``). Where no compiler works (or ``SPIKELAB_NATIVE=0``), :func:`load` returns
``None`` with the reason in :func:`status`, and callers use their portable PyTorch path: results are the same,
only slower.

Compiler: ``$CC``, else the first of ``cc``, ``gcc``, ``clang`` on ``PATH``; flags ``-O3 -march=native
-ffp-contract=off`` (no fused multiply-adds, so the kernels round exactly like the PyTorch reference) and
``-fopenmp`` where available (the kernels then share PyTorch's OpenMP runtime and thread count); each optional
flag is dropped if the compiler refuses it.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ABI_VERSION = 6
_SOURCES = ("kernels.c", "kernels_lif.h")
_BASE_FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared", "-std=gnu99"]
_OPTIONAL_FLAGS = (["-march=native", "-fopenmp"], ["-fopenmp"], ["-march=native"], [])

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False
_status: dict[str, Any] = {"available": False, "reason": "not loaded yet"}


class LIFParams(ctypes.Structure):
    """Mirror of ``lif_params`` in kernels.c."""

    _fields_ = [
        ("T", ctypes.c_int64), ("N", ctypes.c_int64),
        ("decay", ctypes.c_double), ("v_th", ctypes.c_double), ("v_reset", ctypes.c_double),
        ("reset_mode", ctypes.c_int), ("detach_reset", ctypes.c_int), ("surrogate", ctypes.c_int),
        ("sg_param", ctypes.c_double), ("v_init", ctypes.c_double), ("nthreads", ctypes.c_int),
    ]


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$SPIKELAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/spikelab`` or
    ``~/.cache/spikelab``."""
    if os.environ.get("SPIKELAB_CACHE_DIR"):
        return Path(os.environ["SPIKELAB_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spikelab"


def _compiler() -> str | None:
    cc = os.environ.get("CC")
    if cc:
        return shutil.which(cc) or (cc if os.path.isfile(cc) else None)
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _cpu_signature() -> str:
    """The CPU's model and feature flags (what ``-march=native`` compiles for)."""
    parts = [platform.machine(), platform.system()]
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "model name", "Features", "CPU part")):
                    parts.append(line.strip())
                    if len(parts) > 6:
                        break
    except OSError:
        parts.append(platform.processor())
    return "\n".join(parts)


def _key(cc: str) -> str:
    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = cc
    h.update(version.encode())
    h.update(_cpu_signature().encode())
    h.update(" ".join(_BASE_FLAGS).encode())
    return h.hexdigest()[:16]


def _build(cc: str, target: Path) -> list[str]:
    """Compile into ``target`` (atomically); return the optional flags that were accepted."""
    src = Path(__file__).parent / "kernels.c"
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for extra in _OPTIONAL_FLAGS:
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            out = Path(tmp) / target.name
            cmd = [cc, *_BASE_FLAGS, *extra, "-o", str(out), str(src), "-lm"]
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            except (OSError, subprocess.SubprocessError) as err:
                errors.append(f"{' '.join(cmd)}: {err}")
                continue
            if res.returncode == 0 and out.is_file():
                os.replace(out, target)
                return extra
            errors.append(f"{' '.join(cmd)}: {res.stderr.strip()[-400:]}")
    raise RuntimeError("the C compiler failed: " + " | ".join(errors))


def _declare(lib: ctypes.CDLL) -> None:
    p, i64, i32, dbl = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_double
    for sfx, scalar in (("f32", ctypes.c_float), ("f64", ctypes.c_double), ("bf16", ctypes.c_float)):
        fwd = getattr(lib, f"lif_forward_{sfx}")
        fwd.argtypes = [ctypes.POINTER(LIFParams), p, i64, p, scalar, p, p, p, p]
        fwd.restype = None
        bwd = getattr(lib, f"lif_backward_{sfx}")
        bwd.argtypes = [ctypes.POINTER(LIFParams), p, i64, p, i64, p, p, scalar, p, p, p, p]
        bwd.restype = i32
        sg = getattr(lib, f"surrogate_grad_{sfx}")
        sg.argtypes = [i32, dbl, p, p, i64]
        sg.restype = None
        if sfx == "bf16":
            continue
        pack = getattr(lib, f"pack_bits_{sfx}")
        pack.argtypes = [p, i64, p, i32]
        pack.restype = i32
        unpack = getattr(lib, f"unpack_bits_{sfx}")
        unpack.argtypes = [p, i64, p, i32]
        unpack.restype = None
        for layout, dims in (("nchw", [i64, i64, i64]), ("nhwc", [i64, i64, i64, i64])):
            pool = getattr(lib, f"maxpool2_binary_{layout}_{sfx}")
            pool.argtypes = [p, *dims, p, p, i32]
            pool.restype = i32
            unpool = getattr(lib, f"maxpool2_binary_backward_{layout}_{sfx}")
            unpool.argtypes = [p, p, *dims, p, i32]
            unpool.restype = None
        rows = getattr(lib, f"spike_rows_{sfx}")
        rows.argtypes, rows.restype = [p, i64, i64, p, p, i32], i32
        gather = getattr(lib, f"row_gather_{sfx}")
        gather.argtypes, gather.restype = [p, p, i64, p, i64, i64, p, p, i32], i32
    lib.spike_csr.argtypes, lib.spike_csr.restype = [p, i64, i64, p, p, i32], None
    lib.csr_transpose.argtypes, lib.csr_transpose.restype = [p, p, i64, i64, p, p], i32
    lib.spikelab_abi_version.restype = i32


def load() -> ctypes.CDLL | None:
    """The kernel library, compiling it on first use; ``None`` where it cannot be built (see :func:`status`)."""
    global _lib, _tried, _status
    if _tried:
        return _lib
    with _lock:
        if _tried:
            return _lib
        try:
            _lib, _status = _load()
        except Exception as err:  # any failure means: use the portable path
            _lib, _status = None, {"available": False, "reason": f"{type(err).__name__}: {err}"}
        _tried = True
    return _lib


def _load() -> tuple[ctypes.CDLL | None, dict[str, Any]]:
    if os.environ.get("SPIKELAB_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None, {"available": False, "reason": "disabled by SPIKELAB_NATIVE=0"}
    if sys.platform == "win32":
        return None, {"available": False, "reason": "native kernels are built on Linux and macOS only"}
    import torch  # noqa: F401  (loaded first, so that the kernels bind to PyTorch's OpenMP runtime)

    cc = _compiler()
    if cc is None:
        return None, {"available": False, "reason": "no C compiler found (set CC, or install gcc or clang)"}
    key = _key(cc)
    target = cache_dir() / f"native-{key}" / "libspikelab_kernels.so"
    flags_file = target.with_suffix(".flags")
    built = False
    if not target.is_file():
        extra = _build(cc, target)
        flags_file.write_text(" ".join(extra))
        built = True
    lib = ctypes.CDLL(str(target))
    if lib.spikelab_abi_version() != ABI_VERSION:
        raise RuntimeError(f"{target} has ABI {lib.spikelab_abi_version()}, expected {ABI_VERSION}")
    _declare(lib)
    flags = flags_file.read_text().split() if flags_file.is_file() else []
    return lib, {"available": True, "reason": "", "path": str(target), "compiler": cc, "flags": flags,
                 "openmp": "-fopenmp" in flags, "built_now": built}


def status() -> dict[str, Any]:
    """Whether the kernels are loaded, and why not: ``{"available", "reason", "path", "compiler", "flags", ...}``.
    Calls :func:`load` first."""
    load()
    return dict(_status)


def reset() -> None:
    """Forget the loaded library so that the next :func:`load` tries again (tests use it with ``SPIKELAB_NATIVE``
    or ``CC`` changed). A library already loaded stays mapped in the process."""
    global _lib, _tried, _status
    with _lock:
        _lib, _tried, _status = None, False, {"available": False, "reason": "not loaded yet"}


def num_threads() -> int:
    """Threads for a kernel call: PyTorch's intra-op thread count."""
    import torch

    return max(1, torch.get_num_threads())
