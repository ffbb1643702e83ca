"""The dataset registry: names -> datasets, path auto-detection, and ready-made DataLoaders.

``load(name_or_path)`` accepts a registry name (see :func:`names`) or an existing folder whose format is detected.
``make_loaders`` wraps both splits in DataLoaders yielding ``(x, y)`` batch-first: ``x`` float32 ``[B, C, H, W]``
(static) or ``[B, T, 2, H, W]`` (events), ``y`` int64 ``[B]``. Models are time-first: convert event batches with
:func:`spikelab.data.to_time_first` (``[B, T, ...] -> [T, B, ...]``); static batches are encoded over time by the
model side (``spikelab.encoding``).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .._checks import check_choice, check_int
from ._common import DataFormatError, check_dir, stratified_split
from .augment import Normalize, RandomCropFlip
from .cifar import detect_cifar, load_cifar_split
from .datasets import DatasetInfo, EventFramesDataset, StaticDataset
from .digits import DIGITS_CLASSES, digits_split_arrays
from .emulator import EventEmulator
from .folder import ImageFolder, looks_like_image_folder
from .mnist import CLASS_NAMES, find_fashion_mnist, find_idx_files, has_idx_files, load_idx_split
from .nmnist import NMNIST_SIZE, NMNISTFrames, detect_nmnist

DIGITS_EMULATOR = EventEmulator(amplitude=2.0)   # 8 x 8 digits -> 12 x 12 sensor
FASHION_EMULATOR = EventEmulator(amplitude=4.0)  # 28 x 28 -> 34 x 34, the N-MNIST geometry
DEFAULT_T = 10


@dataclass(frozen=True)
class _Entry:
    description: str
    needs_root: bool
    is_event: bool
    flip: bool  # horizontal flip is label-preserving (natural images), not for digits or letters


_REGISTRY: dict[str, _Entry] = {
    "digits": _Entry("scikit-learn 8x8 digits, embedded (default)", False, False, False),
    "digits-events": _Entry("8x8 digits as emulated saccade events, 12x12", False, True, False),
    "fashion-mnist": _Entry("Fashion-MNIST 28x28 (Debian dataset-fashion-mnist or root)", False, False, False),
    "fashion-mnist-events": _Entry("Fashion-MNIST as emulated saccade events, 34x34", False, True, False),
    "mnist": _Entry("MNIST 28x28 IDX files (root)", True, False, False),
    "kmnist": _Entry("Kuzushiji-MNIST 28x28 IDX files (root)", True, False, False),
    "cifar10": _Entry("CIFAR-10 python batches (root)", True, False, True),
    "cifar100": _Entry("CIFAR-100 python batches, fine labels (root)", True, False, True),
    "nmnist": _Entry("N-MNIST .bin event files, 34x34 (root)", True, True, False),
    "folder": _Entry("image folder, class sub-folders (root)", True, False, True),
}


def names() -> list[str]:
    """Names known to :func:`load`, the default (``"digits"``) first."""
    return list(_REGISTRY)


def describe() -> dict[str, str]:
    """One line per registry name saying what it is and whether it needs ``root``."""
    return {k: v.description for k, v in _REGISTRY.items()}


def detect_format(path: str | os.PathLike) -> str:
    """Registry name that reads the folder ``path``: nmnist, cifar10, cifar100, an MNIST-style IDX set or folder.

    An IDX folder is named ``fashion-mnist`` or ``kmnist`` when its own name (or, for ``raw``, its parent's) says
    so, else ``mnist``.
    """
    p = check_dir(path, "path")
    if detect_nmnist(p):
        return "nmnist"
    cifar = detect_cifar(p)
    if cifar is not None:
        return cifar
    if has_idx_files(p):
        own = p.resolve()
        low = (own.parent.name + "/" + own.name if own.name == "raw" else own.name).lower()
        return "fashion-mnist" if "fashion" in low else "kmnist" if "kmnist" in low else "mnist"
    if any((p / s).is_dir() and looks_like_image_folder(p / s) for s in ("train", "test", "val")) or \
            looks_like_image_folder(p):
        return "folder"
    raise ValueError(
        f"cannot tell the format of {str(p)!r}: expected N-MNIST (Train/Test/<digit>/*.bin), CIFAR python batches, "
        "MNIST-style IDX files, or an image folder (class sub-folders)"
    )


def _resolve(name_or_path: str | os.PathLike, root: str | os.PathLike | None) -> tuple[str, Path | None]:
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a str, an os.PathLike or None, got {type(root).__name__}")
    if isinstance(name_or_path, str) and name_or_path in _REGISTRY:
        return name_or_path, (Path(root).expanduser() if root is not None else None)
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"name_or_path must be a dataset name or a path, got {type(name_or_path).__name__}")
    p = Path(name_or_path).expanduser()
    if p.exists():
        if root is not None:
            raise ValueError("give a dataset path either as name_or_path or as root, not both")
        return detect_format(p), p
    text = str(name_or_path)
    if any(c in text for c in ("/", "\\")) or text.startswith((".", "~")):
        raise FileNotFoundError(f"dataset path {text!r} does not exist (known names: {', '.join(names())})")
    raise ValueError(f"unknown dataset {text!r}; known names: {', '.join(names())} (or give an existing folder)")


def _limit_indices(n: int, limit: int | None) -> np.ndarray:
    """Evenly spaced indices ``floor(i * n / limit)`` (all of them when limit is None or >= n)."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.arange(limit) * n // limit


@lru_cache(maxsize=4)
def _idx_cached(root: str, split: str, dataset: str, stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_idx_split(root, split, dataset)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _idx_arrays(root: Path, split: str, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    files = find_idx_files(root, split, dataset)
    stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)  # re-read if a file changes
    return _idx_cached(str(root), split, dataset, stamp)


@lru_cache(maxsize=4)
def _digits_event_frames(emulator: EventEmulator, split: str, T: int, by: str) -> torch.Tensor:
    images, _ = digits_split_arrays(split)
    return torch.from_numpy(emulator.to_frames(images, T, by=by))


def _folder(root: Path, split: str, size: Any, limit: int | None) -> tuple[ImageFolder, tuple[str, ...]]:
    sub = {"train": ("train",), "test": ("test", "val")}[split]
    if (root / "train").is_dir():
        dirs = [root / s for s in sub if (root / s).is_dir()]
        if not dirs:
            raise FileNotFoundError(f"image folder {str(root)!r} has train/ but no {' or '.join(sub)}/ folder")
        ds = ImageFolder(dirs[0], size=size)
        if split == "test":  # labels are positions in the train classes, even if the test folder lacks some
            train_classes = ImageFolder(root / "train").classes
            unknown = sorted(set(ds.classes) - set(train_classes))
            if unknown:
                raise ValueError(f"image folder {str(dirs[0])!r} has classes {unknown} that train/ does not have")
            position = [train_classes.index(c) for c in ds.classes]
            ds.samples = [(f, position[label]) for f, label in ds.samples]
            ds.targets = [label for _, label in ds.samples]
            ds.classes = train_classes
        keep = _limit_indices(len(ds), limit)
    else:
        ds = ImageFolder(root, size=size)
        train_idx, test_idx = stratified_split(np.array(ds.targets), 0.25, 0)
        chosen = train_idx if split == "train" else test_idx
        keep = chosen[_limit_indices(len(chosen), limit)]
    ds.samples = [ds.samples[i] for i in keep]
    ds.targets = [ds.targets[i] for i in keep]
    return ds, tuple(ds.classes)


def load(name_or_path: str | os.PathLike = "digits", *, split: str = "train", root: str | os.PathLike | None = None,
         T: int | None = None, by: str = "time", limit: int | None = None, emulator: EventEmulator | None = None,
         size: int | tuple[int, int] | None = None) -> Dataset:
    """Load one split of a dataset by registry name or folder path; the result has an ``.info`` (:class:`DatasetInfo`).

    Items are ``(x, y)``: x float32 ``[C, H, W]`` in [0, 1] (static) or event counts ``[T, 2, H, W]``; y int64.

    Args:
        name_or_path: a name from :func:`names` or an existing folder (format auto-detected).
        split: ``"train"`` or ``"test"``. root: the data folder for names that need one (``fashion-mnist`` finds
            its Debian copy without it).
        T: frames per event sample (default 10); static datasets ignore it (models encode them over their own T).
        by: event binning, ``"time"`` or ``"count"``.
        limit: keep at most this many samples, evenly spaced over the split (for smoke runs).
        emulator: :class:`EventEmulator` for ``*-events`` names (defaults: ``DIGITS_EMULATOR``, ``FASHION_EMULATOR``).
        size: resize images of ``folder`` datasets to ``size x size`` or ``(H, W)``.

    Raises:
        ValueError: unknown name (the message lists known names), or an option that does not apply.
        FileNotFoundError: a missing path or files. DataFormatError (a ValueError): a corrupt file.
    """
    name, path = _resolve(name_or_path, root)
    entry = _REGISTRY[name]
    check_choice(split, "split", ("train", "test"))
    check_choice(by, "by", ("time", "count"))
    if limit is not None:
        check_int(limit, "limit", minimum=1)
    T = DEFAULT_T if T is None else check_int(T, "T", minimum=1)
    if emulator is not None and name not in ("digits-events", "fashion-mnist-events"):
        raise ValueError(f"emulator applies to digits-events and fashion-mnist-events, not {name!r}")
    if size is not None and name != "folder":
        raise ValueError(f"size applies to the 'folder' dataset only, not {name!r}")
    if name.startswith("digits") and path is not None:
        raise ValueError(f"{name!r} is embedded in scikit-learn: root must be None")
    if entry.needs_root and path is None:
        raise ValueError(f"dataset {name!r} needs root=PATH (--data-root): {entry.description}")
    label = str(name_or_path) if not (isinstance(name_or_path, str) and name_or_path in _REGISTRY) else name

    if name in ("digits", "digits-events"):
        images, labels = digits_split_arrays(split)
        keep = _limit_indices(len(labels), limit)
        if name == "digits":
            info = DatasetInfo(label, 10, (1, 8, 8), False, DIGITS_CLASSES)
            return StaticDataset(torch.tensor(images[keep]).unsqueeze(1), torch.tensor(labels[keep]), info)
        em = emulator or DIGITS_EMULATOR
        info = DatasetInfo(label, 10, (T, 2, *em.sensor_shape(8, 8)), True, DIGITS_CLASSES)
        frames = _digits_event_frames(em, split, T, by)[torch.from_numpy(keep)]
        return EventFramesDataset(images[keep], labels[keep], info, emulator=em, T=T, by=by, frames=frames)
    if name in ("fashion-mnist", "fashion-mnist-events", "mnist", "kmnist"):
        base = name.removesuffix("-events")
        folder = find_fashion_mnist(path) if base == "fashion-mnist" else check_dir(path)
        images, labels = _idx_arrays(folder, split, base)
        keep = _limit_indices(len(labels), limit)
        classes = CLASS_NAMES[base]
        if name == "fashion-mnist-events":
            em = emulator or FASHION_EMULATOR
            info = DatasetInfo(label, 10, (T, 2, *em.sensor_shape(*images.shape[1:])), True, classes)
            return EventFramesDataset(images[keep], labels[keep], info, emulator=em, T=T, by=by)
        info = DatasetInfo(label, 10, (1, *images.shape[1:]), False, classes)
        return StaticDataset(torch.tensor(images[keep]).unsqueeze(1), torch.tensor(labels[keep]), info)
    if name in ("cifar10", "cifar100"):
        n = 10 if name == "cifar10" else 100
        images, labels, classes = load_cifar_split(path, split, n)
        keep = _limit_indices(len(labels), limit)
        info = DatasetInfo(label, n, (3, 32, 32), False, classes)
        return StaticDataset(torch.from_numpy(images[keep]), torch.from_numpy(labels[keep]), info)
    if name == "nmnist":
        ds = NMNISTFrames(path, split, T=T, by=by)
        keep = _limit_indices(len(ds), limit)
        ds.samples = [ds.samples[i] for i in keep]
        ds.targets = [ds.targets[i] for i in keep]
        ds.info = DatasetInfo(label, 10, (T, 2, *NMNIST_SIZE), True, DIGITS_CLASSES)
        return ds
    ds, classes = _folder(check_dir(path), split, size, limit)
    ds.info = DatasetInfo(label, len(classes), ds.sample_shape, False, classes)
    return ds


class BatchTransformLoader(DataLoader):
    """A DataLoader that applies batch transforms (augmentation, normalisation) in the main process.

    Transforms run on whole batches after collation, drawing from one ``torch.Generator`` seeded at construction,
    so results do not depend on ``num_workers`` and differ from epoch to epoch but not from run to run.
    """

    def __init__(self, dataset: Dataset, *, transforms: tuple[Callable[..., torch.Tensor], ...] = (),
                 transform_seed: int = 0, **kwargs: Any) -> None:
        super().__init__(dataset, **kwargs)
        self.transforms = tuple(transforms)
        self.transform_generator = torch.Generator().manual_seed(transform_seed)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in super().__iter__():
            for transform in self.transforms:
                x = transform(x, generator=self.transform_generator)
            yield x, y


def _channel_stats(ds: Dataset, max_samples: int = 10_000) -> Normalize:
    if isinstance(ds, StaticDataset):
        idx = _limit_indices(len(ds), max_samples)
        x = ds.images[torch.from_numpy(idx)]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x
    else:  # read from disk: fewer samples, still spread over the whole split (folders are sorted by class)
        x = torch.stack([ds[int(i)][0] for i in _limit_indices(len(ds), min(max_samples, 1000))])
    return Normalize.fit(x)


def make_loaders(name_or_path: str | os.PathLike = "digits", *, batch_size: int, root: str | os.PathLike | None = None,
                 augment: bool = False, seed: int = 0, num_workers: int = 0, T: int | None = None,
                 limit: int | None = None, by: str = "time", normalize: bool = False,
                 emulator: EventEmulator | None = None, size: int | tuple[int, int] | None = None,
                 drop_last: bool = False) -> tuple[BatchTransformLoader, BatchTransformLoader, DatasetInfo]:
    """Train and test loaders plus the dataset's :class:`DatasetInfo`.

    Loaders yield ``(x, y)`` batch-first: x float32 ``[B, C, H, W]`` (static) or ``[B, T, 2, H, W]`` (events; convert
    with :func:`to_time_first` before a time-first model), y int64 ``[B]``. The train loader shuffles with a
    generator seeded by ``seed``; the test loader keeps order.

    Args:
        name_or_path, root, T, by, limit, emulator, size: as for :func:`load` (``limit`` caps both splits).
        batch_size: samples per batch. num_workers: DataLoader worker processes.
        augment: on the train loader, :class:`RandomCropFlip` with padding ``max(1, W // 8)`` (4 for 32 x 32) and
            horizontal flips only where they keep the label (CIFAR, image folders; not digits or letters).
        seed: seeds shuffling (``seed``) and augmentation (``seed + 1``).
        normalize: static data only; per-channel mean/std of the training split, applied to both loaders.
        drop_last: the train loader drops its last batch when it is partial (fewer than ``batch_size`` samples),
            so that every optimiser step averages as many samples (a few samples, different each epoch, sit out);
            it is kept when it is the only batch. The test loader keeps every sample.
    """
    check_int(batch_size, "batch_size", minimum=1)
    check_int(seed, "seed", minimum=0)
    check_int(num_workers, "num_workers", minimum=0)
    for flag, value in (("augment", augment), ("normalize", normalize), ("drop_last", drop_last)):
        if not isinstance(value, bool):
            raise TypeError(f"{flag} must be a bool, got {type(value).__name__}")
    opts: dict[str, Any] = dict(root=root, T=T, by=by, limit=limit, emulator=emulator, size=size)
    train = load(name_or_path, split="train", **opts)
    test = load(name_or_path, split="test", **opts)
    info: DatasetInfo = train.info
    if tuple(test.info.input_shape) != tuple(info.input_shape):  # a model trained on one cannot evaluate the other
        raise DataFormatError(f"the test split's samples are {tuple(test.info.input_shape)} but the training split's "
                              f"are {tuple(info.input_shape)}" + ("; resize the images with size=(H, W)"
                                                                   if isinstance(train, ImageFolder) else ""))
    name, _ = _resolve(name_or_path, root)
    train_tf: list[Callable[..., torch.Tensor]] = []
    test_tf: list[Callable[..., torch.Tensor]] = []
    if augment:
        train_tf.append(RandomCropFlip(padding=max(1, info.input_shape[-1] // 8), flip=_REGISTRY[name].flip))
    if normalize:
        if info.is_event:
            raise ValueError("normalize applies to static images; event frames are spike counts")
        norm = _channel_stats(train)
        train_tf.append(norm)
        test_tf.append(norm)
    shuffle_gen = torch.Generator().manual_seed(seed)
    common = dict(batch_size=batch_size, num_workers=num_workers, transform_seed=seed + 1)
    train_loader = BatchTransformLoader(train, transforms=tuple(train_tf), shuffle=True, generator=shuffle_gen,
                                        drop_last=drop_last and len(train) > batch_size, **common)
    test_loader = BatchTransformLoader(test, transforms=tuple(test_tf), shuffle=False, **common)
    return train_loader, test_loader, info
