"""Shared pieces of the data package: the format error, path checks and a fixed stratified split."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from .._checks import check_int, check_range


class DataFormatError(ValueError):
    """A file exists but is not in the expected format: wrong magic number, wrong size, truncated or corrupt."""


def check_file(path: str | os.PathLike, name: str = "path") -> Path:
    """Return ``path`` as a :class:`Path` if it is an existing file, else raise ``FileNotFoundError`` naming it."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{name}: no such file: {str(p)!r}")
    if not p.is_file():
        raise FileNotFoundError(f"{name}: {str(p)!r} is not a file")
    return p


def check_dir(path: str | os.PathLike, name: str = "root") -> Path:
    """Return ``path`` as a :class:`Path` if it is an existing directory, else raise ``FileNotFoundError``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{name}: no such directory: {str(p)!r}")
    if not p.is_dir():
        raise FileNotFoundError(f"{name}: {str(p)!r} is not a directory")
    return p


def read_maybe_gzip(path: Path) -> bytes:
    """Read a whole file, gunzipping it when it starts with the gzip magic bytes ``1f 8b`` (not by extension)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, gzip.BadGzipFile) as err:
        raise DataFormatError(f"{str(path)!r}: truncated or corrupt gzip stream ({err})") from err


def stratified_split(labels: np.ndarray, test_fraction: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into ``(train_idx, test_idx)`` class by class, deterministically.

    For each class c with n_c samples, ``round(n_c * test_fraction)`` of them (chosen by a permutation drawn from
    ``numpy.random.default_rng(seed)``) go to the test set; both index arrays are returned sorted.
    """
    check_range(test_fraction, "test_fraction", 0.0, 1.0)
    check_int(seed, "seed", minimum=0)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[rng.permutation(len(idx))[:n_test]])
    test_idx = np.sort(np.concatenate(test)) if test else np.zeros(0, dtype=np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[test_idx] = False
    return np.flatnonzero(mask), test_idx
