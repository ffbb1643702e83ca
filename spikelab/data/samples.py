"""A few labelled images for the labs to show: ``sample_images("digits", n=10)``, and whether a dataset is installed."""
from __future__ import annotations

import torch

from .._checks import check_choice, check_int
from .registry import load

__all__ = ["sample_images", "available"]

STATIC_SAMPLES = ("digits", "fashion-mnist")


def available(name: str) -> bool:
    """True if dataset ``name`` (``"digits"`` or ``"fashion-mnist"``) can be loaded here without a ``root``."""
    check_choice(name, "name", STATIC_SAMPLES)
    try:
        load(name, split="test", limit=1)
    except FileNotFoundError:
        return False
    return True


def sample_images(name: str = "digits", *, n: int = 10, split: str = "test") -> dict[str, torch.Tensor]:
    """``n`` images evenly spaced over a split, as ``{label: [H, W] float32 in [0, 1]}``.

    Labels read like ``"digit 3 (test #0)"`` or ``"Fashion-MNIST Trouser (test #1)"``. Raises
    ``FileNotFoundError`` (with install instructions) if the dataset is not installed; see :func:`available`.
    """
    check_choice(name, "name", STATIC_SAMPLES)
    n = check_int(n, "n", minimum=1)
    ds = load(name, split=split, limit=n)
    classes = ds.info.class_names
    prefix = "digit" if name == "digits" else "Fashion-MNIST"
    out = {}
    for i in range(len(ds)):
        x, y = ds[i]
        out[f"{prefix} {classes[int(y)]} ({split} #{i})"] = x[0]
    return out
