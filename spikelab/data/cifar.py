"""Reader for the CIFAR-10 / CIFAR-100 "python version" batches (pickled dicts of numpy arrays).

Each batch is a pickle of ``{"data": uint8 [N, 3072], "labels": [N]}`` (CIFAR-10) or ``"fine_labels"`` /
``"coarse_labels"`` (CIFAR-100); row i holds 1024 red, then 1024 green, then 1024 blue values of a 32x32 image in
row-major order. Unpickling is restricted to numpy arrays and plain containers, so a batch file cannot run code.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_choice
from ._common import DataFormatError, check_dir, check_file

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_DIR, CIFAR100_DIR = "cifar-10-batches-py", "cifar-100-python"

_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"), ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except what numpy arrays need."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle global {module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):  # NumPy 2 moved it: no deprecation warning
            module = "numpy._core." + module.split(".", 2)[2]
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise DataFormatError(
            f"{str(path)!r}: not a readable CIFAR pickle batch ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(obj, dict):
        raise DataFormatError(f"{str(path)!r}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_cifar_batch(path: str | os.PathLike, label_key: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR python batch.

    Args:
        path: e.g. ``cifar-10-batches-py/data_batch_1`` or ``cifar-100-python/train``.
        label_key: ``"labels"``, ``"fine_labels"`` or ``"coarse_labels"``; default: ``labels`` if present, else
            ``fine_labels``.

    Returns:
        ``(images uint8 [N, 3, 32, 32], labels int64 [N])``.
    """
    p = check_file(path)
    batch = _unpickle(p)
    if label_key is None:
        label_key = "labels" if "labels" in batch else "fine_labels"
    check_choice(label_key, "label_key", ("labels", "fine_labels", "coarse_labels"))
    if "data" not in batch or label_key not in batch:
        raise DataFormatError(f"{str(p)!r}: CIFAR batch needs keys 'data' and {label_key!r}; has {sorted(batch)}")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataFormatError(f"{str(p)!r}: 'data' must be uint8 [N, 3072], got {data.dtype} {data.shape}")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataFormatError(
            f"{str(p)!r}: {label_key!r} must be {len(data)} integers, got {labels.dtype} {labels.shape}"
        )
    return data.reshape(-1, 3, 32, 32).copy(), labels.astype(np.int64)


def _meta_names(path: Path, key: str) -> tuple[str, ...] | None:
    if not path.is_file():
        return None
    names = _unpickle(path).get(key)
    return None if names is None else tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def _cifar_dir(root: Path, sub: str) -> Path:
    return root / sub if (root / sub).is_dir() else root


def detect_cifar(root: Path) -> str | None:
    """Return ``"cifar10"``, ``"cifar100"`` or None for a folder (used to auto-detect a path)."""
    if (_cifar_dir(root, CIFAR10_DIR) / "data_batch_1").is_file():
        return "cifar10"
    d = _cifar_dir(root, CIFAR100_DIR)
    if (d / "train").is_file() and (d / "meta").is_file():
        return "cifar100"
    return None


def load_cifar_split(root: str | os.PathLike, split: str = "train",
                     num_classes: int = 10) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Load CIFAR-10 (``data_batch_1..5`` / ``test_batch``) or CIFAR-100 (``train`` / ``test``, fine labels).

    Args:
        root: the extracted ``cifar-10-batches-py`` / ``cifar-100-python`` folder, or its parent.
        split: ``"train"`` or ``"test"``.
        num_classes: 10 or 100.

    Returns:
        ``(images uint8 [N, 3, 32, 32], labels int64 [N], class_names)``.
    """
    root = check_dir(root)
    check_choice(split, "split", ("train", "test"))
    if num_classes not in (10, 100):
        raise ValueError(f"num_classes must be 10 or 100, got {num_classes!r}")
    if num_classes == 10:
        d = _cifar_dir(root, CIFAR10_DIR)
        files = [d / f"data_batch_{i}" for i in range(1, 6)] if split == "train" else [d / "test_batch"]
        names = _meta_names(d / "batches.meta", "label_names") or CIFAR10_CLASSES
        key = "labels"
    else:
        d = _cifar_dir(root, CIFAR100_DIR)
        files = [d / split]
        names = _meta_names(d / "meta", "fine_label_names") or tuple(str(i) for i in range(100))
        key = "fine_labels"
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-{num_classes} {split} files missing under {str(root)!r}: {missing}")
    parts = [read_cifar_batch(f, key) for f in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataFormatError(f"CIFAR-{num_classes} labels outside [0, {num_classes}) under {str(root)!r}")
    return images, labels, names
