"""Dataset objects returned by :func:`spikelab.data.load`, and the batch-first to time-first boundary helper.

Every dataset yields ``(x, y)``: ``x`` float32 ``[C, H, W]`` in [0, 1] for static images, or ``[T, 2, H, W]`` event
counts for event data; ``y`` an int64 scalar. A DataLoader stacks them batch-first: ``[B, C, H, W]`` or
``[B, T, 2, H, W]``. Models run time-first, so an event batch goes through :func:`to_time_first` at the model's
input (``[B, T, ...] -> [T, B, ...]``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_choice, check_int, check_tensor, check_tensor_range
from .emulator import EventEmulator


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset."""

    name: str                           # registry name, or the path it was loaded from
    num_classes: int
    input_shape: tuple[int, ...]        # one sample: (C, H, W) static, (T, 2, H, W) event
    is_event: bool                      # True for event frames [T, 2, H, W] (channel 0 = OFF, 1 = ON)
    class_names: tuple[str, ...]


def to_time_first(x: torch.Tensor) -> torch.Tensor:
    """Turn a loader's event batch ``[B, T, ...]`` into the time-first layout ``[T, B, ...]`` used by models."""
    check_tensor(x, "x")
    if x.dim() < 2:
        raise ValueError(f"x must be batch-first [B, T, ...], got shape {tuple(x.shape)}")
    return x.transpose(0, 1)


class StaticDataset(Dataset):
    """Images held in memory: item i is ``(images[i] as float32 in [0, 1], labels[i])``.

    Args:
        images: ``[N, C, H, W]``, uint8 (scaled by 1/255 on access, which keeps CIFAR at a quarter of the memory)
            or float32 already in [0, 1].
        labels: int64 ``[N]``.
        info: the dataset's :class:`DatasetInfo`.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, info: DatasetInfo) -> None:
        check_tensor(images, "images")
        check_tensor(labels, "labels")
        if images.dim() != 4 or images.dtype not in (torch.uint8, torch.float32):
            raise ValueError(f"images must be uint8 or float32 [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        if labels.shape != (images.shape[0],) or labels.dtype != torch.int64:
            raise ValueError(f"labels must be int64 [{images.shape[0]}], got {labels.dtype} {tuple(labels.shape)}")
        if images.dtype == torch.float32:  # a NaN pixel would silently turn a whole training run into NaN
            check_tensor_range(images, "float32 images", 0.0, 1.0, " (uint8 images are scaled by 1/255)")
        if isinstance(info, DatasetInfo) and labels.numel() and (labels.min() < 0 or labels.max() >= info.num_classes):
            raise ValueError(f"labels must be class indices in [0, {info.num_classes - 1}], got range "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        self.images, self.labels, self.info = images, labels, info

    def __len__(self) -> int:
        return len(self.labels)

    def _convert(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._convert(self.images[index]), self.labels[index]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        idx = torch.as_tensor(indices, dtype=torch.int64)
        x, y = self._convert(self.images[idx]), self.labels[idx]
        return list(zip(x.unbind(0), y.unbind(0)))

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All samples as ``(x float32 [N, C, H, W], y int64 [N])``, like ``TensorDataset.tensors``."""
        return self._convert(self.images), self.labels


class EventFramesDataset(Dataset):
    """Emulated event version of grey images: item i is ``(frames float32 [T, 2, Hs, Ws], label int64)``.

    The frames are :meth:`EventEmulator.to_frames` of ``images[i]``. With ``precompute`` every sample is converted
    once at construction (small sets); otherwise each batch is emulated when requested (vectorised over the batch
    by ``__getitems__``). Either way nothing is written to disk, and the same emulator gives the same frames.

    Args:
        images: ``[N, H, W]``, uint8 or float in [0, 1].
        labels: int64 ``[N]``.
        info: the dataset's :class:`DatasetInfo`.
        emulator: the :class:`EventEmulator` config.
        T: number of frames. by: ``"time"`` or ``"count"`` binning.
        precompute: convert everything now.
        frames: already converted frames ``[N, T, 2, Hs, Ws]`` of exactly these images and settings (a cache).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, info: DatasetInfo, *, emulator: EventEmulator,
                 T: int, by: str = "time", precompute: bool = False, frames: torch.Tensor | None = None) -> None:
        if not isinstance(emulator, EventEmulator):
            raise TypeError(f"emulator must be an EventEmulator, got {type(emulator).__name__}")
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim != 3 or labels.shape != (len(images),):
            raise ValueError(f"images must be [N, H, W] with labels [N], got {images.shape} and {labels.shape}")
        self.images, self.labels, self.info = images, torch.as_tensor(labels, dtype=torch.int64), info
        self.emulator = emulator
        self.T = check_int(T, "T", minimum=1)
        self.by = check_choice(by, "by", ("time", "count"))
        if frames is not None:
            Hs, Ws = emulator.sensor_shape(*images.shape[1:])
            if tuple(frames.shape) != (len(images), self.T, 2, Hs, Ws):
                raise ValueError(f"frames must be [{len(images)}, {self.T}, 2, {Hs}, {Ws}], got {tuple(frames.shape)}")
        elif precompute:
            frames = torch.from_numpy(self._convert(np.arange(len(images))))
        self._frames = frames

    def _convert(self, idx: np.ndarray) -> np.ndarray:
        return self.emulator.to_frames(self.images[idx], self.T, by=self.by)  # [n, T, 2, Hs, Ws]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._frames is not None:
            return self._frames[index], self.labels[index]
        return torch.from_numpy(self._convert(np.array([index]))[0]), self.labels[index]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        idx = np.asarray(indices, dtype=np.int64)
        if self._frames is not None:
            frames = self._frames[torch.from_numpy(idx)]
        else:
            frames = torch.from_numpy(self._convert(idx))  # one vectorised emulation for the whole batch
        return list(zip(frames.unbind(0), self.labels[idx].unbind(0)))

