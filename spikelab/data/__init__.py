"""Datasets for spikelab: the embedded digits, readers for real on-disk formats, and an event-camera emulator.

Quick start::

    from spikelab import data
    train_loader, test_loader, info = data.make_loaders("digits", batch_size=64)
    for x, y in train_loader:      # x float32 [B, 1, 8, 8] in [0, 1], y int64 [B]
        ...

Event datasets (``digits-events``, ``fashion-mnist-events``, ``nmnist``) yield ``x`` float32 ``[B, T, 2, H, W]``
batch-first; models are time-first, so call :func:`to_time_first` (``[B, T, ...] -> [T, B, ...]``) at the input.
Nothing here downloads; see ``data/README.md`` for where each dataset comes from and how to point to it.
"""
from ._common import DataFormatError, stratified_split
from .augment import Normalize, RandomCropFlip
from .cifar import load_cifar_split, read_cifar_batch
from .datasets import DatasetInfo, EventFramesDataset, StaticDataset, to_time_first
from .digits import load_digits_split
from .emulator import EventEmulator, emulate
from .events import EVENT_DTYPE, events_to_frames, make_events, read_events_npy
from .folder import ImageFolder, read_image, read_pnm
from .idx import read_idx
from .mnist import find_fashion_mnist, find_idx_files, load_idx_split
from .nmnist import NMNISTFrames, read_nmnist_bin
from .samples import available, sample_images
from .registry import (
    DIGITS_EMULATOR,
    FASHION_EMULATOR,
    BatchTransformLoader,
    describe,
    detect_format,
    load,
    make_loaders,
    names,
)

__all__ = [
    "BatchTransformLoader", "DIGITS_EMULATOR", "DataFormatError", "DatasetInfo", "EVENT_DTYPE", "EventEmulator",
    "EventFramesDataset", "FASHION_EMULATOR", "ImageFolder", "NMNISTFrames", "Normalize", "RandomCropFlip",
    "StaticDataset", "describe", "detect_format", "emulate", "events_to_frames", "find_fashion_mnist",
    "find_idx_files", "load", "load_cifar_split", "load_digits_split", "load_idx_split", "make_events",
    "make_loaders", "names", "read_cifar_batch", "read_events_npy", "read_idx", "read_image", "read_nmnist_bin",
    "read_pnm", "stratified_split", "to_time_first", "available", "sample_images",
]
