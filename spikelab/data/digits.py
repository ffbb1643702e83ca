"""The embedded default dataset: scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes, no download).

Pixel values 0..16 are scaled to [0, 1] by dividing by 16. The train/test split is stratified and fixed.
"""
from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ._common import stratified_split

DIGITS_CLASSES = tuple(str(i) for i in range(10))


def _digits_csv() -> Path | None:
    """scikit-learn's own copy of the digits (``sklearn/datasets/data/digits.csv.gz``), found without importing
    scikit-learn (which takes seconds); None if its layout has changed."""
    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(pixels [1797, 8, 8] in 0..16, labels [1797])`` as ``sklearn.datasets.load_digits`` gives them."""
    path = _digits_csv()
    if path is not None:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",")  # [1797, 65]: 64 pixels then the label
        if table.shape == (1797, 65):
            return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)
    from sklearn.datasets import load_digits  # the slow, documented way

    d = load_digits()
    return d.images, d.target


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    pixels, target = _read_digits()
    images = (pixels / 16.0).astype(np.float32)  # [1797, 8, 8] in [0, 1]
    images.setflags(write=False)
    labels = target.astype(np.int64)
    labels.setflags(write=False)
    return images, labels


def digits_split_arrays(split: str, seed: int = 0, test_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """One split of the digits as read-only numpy arrays ``(images float32 [N, 8, 8] in [0, 1], labels int64 [N])``."""
    images, labels = _digits_arrays()
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    idx = train_idx if split == "train" else test_idx
    return images[idx], labels[idx]


def load_digits_split(seed: int = 0, test_fraction: float = 0.25
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 8x8 digits with a fixed, stratified, deterministic train/test split.

    For each class, ``round(n_c * test_fraction)`` samples chosen by ``numpy.random.default_rng(seed)`` go to the test
    set (seed 0, fraction 0.25: 1,347 train / 450 test); both sets keep scikit-learn's order.

    Returns:
        ``(x_train float32 [N, 1, 8, 8] in [0, 1], y_train int64 [N], x_test, y_test)``.
    """
    x_tr, y_tr = digits_split_arrays("train", seed, test_fraction)
    x_te, y_te = digits_split_arrays("test", seed, test_fraction)
    return (torch.tensor(x_tr).unsqueeze(1), torch.tensor(y_tr),
            torch.tensor(x_te).unsqueeze(1), torch.tensor(y_te))
