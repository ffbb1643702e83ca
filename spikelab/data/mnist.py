"""MNIST, Fashion-MNIST and KMNIST on disk: finding the four IDX files of a split and loading them.

All three datasets ship as ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
``t10k-labels-idx1-ubyte`` (each optionally ``.gz``; the original MNIST also appears as ``train-images.idx3-ubyte``).
A root may hold them directly, under ``raw/``, or in a dataset sub-folder such as ``FashionMNIST/raw/`` (the layout
torchvision leaves behind) or ``fashion-mnist/``, so one general data folder can serve every dataset.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._checks import check_choice, check_int
from ._common import DataFormatError, check_dir
from .idx import read_idx

FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_ENV = "SPIKELAB_FASHION_MNIST"

CLASS_NAMES = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
}
_SUBDIRS = {"mnist": ("MNIST", "mnist"), "fashion-mnist": ("FashionMNIST", "fashion-mnist", "fashion_mnist"),
            "kmnist": ("KMNIST", "kmnist")}
_PREFIX = {"train": "train", "test": "t10k"}


def _candidates(prefix: str, kind: str, ndim: int) -> list[str]:
    stems = [f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte"]
    return [s + ext for s in stems for ext in ("", ".gz")]


def find_idx_files(root: str | os.PathLike, split: str = "train", dataset: str | None = None) -> tuple[Path, Path]:
    """Return ``(images_path, labels_path)`` of one split of an MNIST-style IDX dataset under ``root``.

    Args:
        root: a folder holding the IDX files: directly, in ``raw/``, or in a dataset sub-folder (``MNIST``,
            ``FashionMNIST``, ``KMNIST`` or ``mnist``, ``fashion-mnist``, ``kmnist``; with or without ``raw/``).
        split: ``"train"`` (``train-*``) or ``"test"`` (``t10k-*``).
        dataset: optional name used to look in its torchvision-style sub-folder.
    """
    root = check_dir(root)
    check_choice(split, "split", ("train", "test"))
    dirs = [root, root / "raw"]
    names = [dataset] if dataset in _SUBDIRS else list(_SUBDIRS)
    subs = [sub for n in names for sub in _SUBDIRS[n]]
    dirs += [root / sub / "raw" for sub in subs] + [root / sub for sub in subs]
    prefix = _PREFIX[split]
    for d in dirs:
        imgs = [d / c for c in _candidates(prefix, "images", 3) if (d / c).is_file()]
        labs = [d / c for c in _candidates(prefix, "labels", 1) if (d / c).is_file()]
        if imgs and labs:
            return imgs[0], labs[0]
    raise FileNotFoundError(
        f"no IDX files for split {split!r} under {str(root)!r}: expected {prefix}-images-idx3-ubyte[.gz] and "
        f"{prefix}-labels-idx1-ubyte[.gz] there or in raw/"
    )


def has_idx_files(root: Path) -> bool:
    """True if ``root`` holds the train split of an MNIST-style IDX dataset (used to auto-detect a path)."""
    try:
        find_idx_files(root, "train")
    except (FileNotFoundError, TypeError):
        return False
    return True


def load_idx_split(root: str | os.PathLike, split: str = "train", dataset: str | None = None,
                   num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Load one split as ``(images uint8 [N, H, W], labels int64 [N])``, checking that the two files agree.

    Raises :class:`DataFormatError` for images that are not uint8 ``[N, H, W]`` with ``N, H, W >= 1``, labels that
    are not integers in ``[0, num_classes)`` (MNIST, Fashion-MNIST and KMNIST all have 10 classes), or counts that
    differ.
    """
    check_int(num_classes, "num_classes", minimum=1)
    img_path, lab_path = find_idx_files(root, split, dataset)
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataFormatError(f"{str(img_path)!r}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
    if 0 in images.shape:
        raise DataFormatError(f"{str(img_path)!r}: expected at least one image of at least 1 x 1 pixels, "
                              f"got shape {images.shape}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataFormatError(f"{str(lab_path)!r}: expected integer labels [N], got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise DataFormatError(
            f"{str(img_path)!r} holds {len(images)} images but {str(lab_path)!r} holds {len(labels)} labels"
        )
    if labels.min() < 0 or labels.max() >= num_classes:
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise DataFormatError(
            f"{str(lab_path)!r}: labels must be class indices in [0, {num_classes - 1}], found {bad.size} outside "
            f"(e.g. {int(bad[0])})"
        )
    return images, labels.astype(np.int64)


def find_fashion_mnist(root: str | os.PathLike | None = None) -> Path:
    """Return the folder holding Fashion-MNIST's IDX files.

    A ``root`` the user gives is the only place looked at (a wrong path is an error, never a silent fallback);
    without one, the environment variable ``SPIKELAB_FASHION_MNIST``, then Debian's
    ``/usr/share/datasets/fashion-mnist/`` (package ``dataset-fashion-mnist``).

    Raises:
        FileNotFoundError: with instructions, if none of them holds the files.
    """
    tried: list[str] = []
    candidates: list[Path] = []
    env = os.environ.get(FASHION_MNIST_ENV)
    if root is not None:
        candidates.append(check_dir(root))
    elif env:
        candidates.append(Path(env).expanduser())
    else:
        candidates.append(FASHION_MNIST_DEBIAN)
    for c in candidates:
        tried.append(str(c))
        if c.is_dir() and has_idx_files(c):
            return c
    raise FileNotFoundError(
        "Fashion-MNIST not found (looked in: " + ", ".join(tried) + "). Install it offline with "
        "`apt-get install dataset-fashion-mnist` (files land in /usr/share/datasets/fashion-mnist/), or pass "
        f"--data-root / root=PATH, or set {FASHION_MNIST_ENV}=PATH to a folder with the IDX files."
    )
