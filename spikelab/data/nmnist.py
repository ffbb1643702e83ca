"""Reader for N-MNIST ``.bin`` files and the N-MNIST folder tree (``Train|Test/<digit>/<id>.bin``).

Each event is 40 bits, big-endian: byte 0 = x, byte 1 = y, bit 7 of byte 2 = polarity (1 = ON), then a 23-bit
timestamp in microseconds made of the low 7 bits of byte 2 and bytes 3 and 4. An event with y == 240 is not a
spike but a timestamp-overflow marker: it adds 2**13 us to every later timestamp (as the dataset's own
reference reader does) and is dropped. Sensor: 34 x 34 pixels.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_choice, check_int
from ._common import DataFormatError, check_dir, check_file
from .events import EVENT_DTYPE, events_to_frames

NMNIST_SIZE = (34, 34)
OVERFLOW_Y = 240
OVERFLOW_US = 2**13


def decode_nmnist(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an N-MNIST ``.bin`` file into an :data:`EVENT_DTYPE` array (file order)."""
    if len(raw) % 5:
        raise DataFormatError(f"{source}: size {len(raw)} bytes is not a multiple of 5 (40-bit events): truncated?")
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    x, y = b[:, 0], b[:, 1]
    p = b[:, 2] >> 7
    t = ((b[:, 2] & 0x7F) << 16) | (b[:, 3] << 8) | b[:, 4]
    overflow = y == OVERFLOW_Y
    t = t + np.cumsum(overflow) * OVERFLOW_US
    keep = ~overflow
    out = np.empty(int(keep.sum()), dtype=EVENT_DTYPE)
    out["t"], out["x"], out["y"], out["p"] = t[keep], x[keep], y[keep], p[keep]
    return out


def read_nmnist_bin(path: str | os.PathLike) -> np.ndarray:
    """Read one N-MNIST ``.bin`` file -> events (EVENT_DTYPE: t us int64, x, y, p 0 = OFF / 1 = ON).

    Raises :class:`DataFormatError` for a file without any event (empty, or only overflow markers: a recording of
    a digit holds thousands, and empty frames would pass for one silently) or with events outside the 34 x 34
    sensor.
    """
    p = check_file(path)
    events = decode_nmnist(p.read_bytes(), source=repr(str(p)))
    if len(events) == 0:
        raise DataFormatError(f"{str(p)!r}: no events (an empty or cut N-MNIST recording)")
    H, W = NMNIST_SIZE
    if events["x"].max() >= W or events["y"].max() >= H:
        raise DataFormatError(f"{str(p)!r}: events outside the {H} x {W} N-MNIST sensor "
                              f"(x up to {events['x'].max()}, y up to {events['y'].max()})")
    return events


def _split_dir(root: Path, split: str) -> Path | None:
    """``root/Train`` (or ``train``), also looking inside an ``NMNIST`` / ``nmnist`` / ``N-MNIST`` sub-folder."""
    wanted = {"train": ("Train", "train"), "test": ("Test", "test")}[split]
    for base in (root, root / "NMNIST", root / "nmnist", root / "N-MNIST"):
        for name in wanted:
            if (base / name).is_dir():
                return base / name
    return None


def detect_nmnist(root: Path) -> bool:
    """True if ``root`` looks like the N-MNIST tree (a Train or Test folder with ``.bin`` files in digit folders)."""
    for split in ("train", "test"):
        d = _split_dir(root, split)
        if d is not None and any(d.glob("[0-9]/*.bin")):
            return True
    return False


class NMNISTFrames(Dataset):
    """N-MNIST read lazily from its folder tree: item i is ``(frames float32 [T, 2, 34, 34], label int64)``.

    Frames follow :func:`events_to_frames` over each sample's own time span (``by="time"``) or event count.

    Args:
        root: folder holding ``Train/`` and ``Test/`` (each with digit folders ``0`` .. ``9`` of ``.bin`` files),
            directly or in an ``NMNIST`` / ``nmnist`` / ``N-MNIST`` sub-folder.
        split: ``"train"`` or ``"test"``.
        T: number of frames. by: ``"time"`` or ``"count"``.
    """

    info = None  # a DatasetInfo, set by spikelab.data.load

    def __init__(self, root: str | os.PathLike, split: str = "train", *, T: int = 10, by: str = "time") -> None:
        root = check_dir(root)
        check_choice(split, "split", ("train", "test"))
        self.T = check_int(T, "T", minimum=1)
        self.by = check_choice(by, "by", ("time", "count"))
        d = _split_dir(root, split)
        if d is None:
            raise FileNotFoundError(f"N-MNIST: no {split.capitalize()}/ folder under {str(root)!r}")
        self.samples = [(f, int(c.name)) for c in sorted(d.iterdir()) if c.is_dir() and c.name.isdigit()
                        for f in sorted(c.glob("*.bin"))]
        if not self.samples:
            raise FileNotFoundError(f"N-MNIST: no .bin files in digit folders under {str(d)!r}")
        self.targets = [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path, label = self.samples[index]
        events = read_nmnist_bin(path)
        frames = events_to_frames(events, self.T, *NMNIST_SIZE, by=self.by)  # [T, 2, 34, 34]
        return torch.from_numpy(frames), torch.tensor(label, dtype=torch.int64)
