"""Image-folder reader for ImageNet-style trees: ``root/<class_name>/<image file>``.

Native formats (no extra package): ``.npy`` (``[H, W]`` or ``[H, W, C]`` with C in {1, 3}; uint8, or float in
[0, 1]) and Netpbm ``.pgm`` / ``.ppm`` / ``.pnm`` (P2, P3, P5, P6; maxval up to 65535). Other formats (``.png``,
``.jpg``, ...) are read with Pillow (``pip install 'spikelab[images]'``); a folder holding them raises an
``ImportError`` naming Pillow as soon as it is opened when Pillow is missing.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ._common import DataFormatError, check_dir, check_file

NATIVE_EXTENSIONS = (".npy", ".pgm", ".ppm", ".pnm")
PIL_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _pnm_tokens(raw: bytes, count: int, source: str) -> tuple[list[int], int]:
    """Read ``count`` integer header tokens after the magic, skipping ``#`` comments; return (tokens, data offset)."""
    tokens: list[int] = []
    i = 2
    while len(tokens) < count:
        while i < len(raw) and raw[i:i + 1].isspace():
            i += 1
        if i < len(raw) and raw[i:i + 1] == b"#":
            while i < len(raw) and raw[i:i + 1] not in (b"\n", b"\r"):
                i += 1
            continue
        start = i
        while i < len(raw) and raw[i:i + 1].isdigit():
            i += 1
        if start == i:
            raise DataFormatError(f"{source}: malformed Netpbm header")
        tokens.append(int(raw[start:i]))
    return tokens, i + 1  # exactly one whitespace byte separates the header from binary data


def read_pnm(path: str | os.PathLike) -> np.ndarray:
    """Read a Netpbm image (P2/P5 grey, P3/P6 colour) as float32 ``[H, W]`` or ``[H, W, 3]``: value / maxval."""
    p = check_file(path)
    raw = p.read_bytes()
    source = repr(str(p))
    magic = raw[:2]
    if magic not in (b"P2", b"P3", b"P5", b"P6"):
        raise DataFormatError(f"{source}: wrong Netpbm magic {magic!r} (expected P2, P3, P5 or P6)")
    (width, height, maxval), offset = _pnm_tokens(raw, 3, source)
    if not (0 < maxval < 65536) or width <= 0 or height <= 0:
        raise DataFormatError(f"{source}: bad Netpbm header (width {width}, height {height}, maxval {maxval})")
    channels = 3 if magic in (b"P3", b"P6") else 1
    n = width * height * channels
    if magic in (b"P5", b"P6"):
        dtype = np.dtype("u1") if maxval < 256 else np.dtype(">u2")
        payload = raw[offset:]
        if len(payload) < n * dtype.itemsize:
            raise DataFormatError(f"{source}: truncated Netpbm data ({len(payload)} bytes, need {n * dtype.itemsize})")
        values = np.frombuffer(payload, dtype=dtype, count=n).astype(np.float32)
    else:
        tokens = raw[offset - 1:].split()
        bad = next((t for t in tokens if not t.isdigit()), None)  # Netpbm values are non-negative integers
        if bad is not None:
            raise DataFormatError(f"{source}: ASCII Netpbm values must be integers in [0, {maxval}], found {bad!r}")
        values = np.array([int(t) for t in tokens], dtype=np.float32)
        if values.size != n:
            raise DataFormatError(f"{source}: expected {n} ASCII values, found {values.size}")
    if values.max(initial=0) > maxval:
        raise DataFormatError(f"{source}: pixel value above maxval {maxval}")
    image = values / maxval
    return image.reshape(height, width, channels) if channels == 3 else image.reshape(height, width)


def _read_npy_image(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataFormatError(f"{str(path)!r}: not a readable .npy array ({err})") from err
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3)):
        raise DataFormatError(f"{str(path)!r}: expected an image [H, W] or [H, W, C] with C in (1, 3), got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and (np.nanmin(arr) < 0 or np.nanmax(arr) > 1 or np.isnan(arr).any()):
            raise DataFormatError(f"{str(path)!r}: float images must lie in [0, 1]")
        return arr.astype(np.float32)
    raise DataFormatError(f"{str(path)!r}: image dtype must be uint8 or float, got {arr.dtype}")


def require_pillow(suffix: str) -> None:
    """Raise an ``ImportError`` saying how to install Pillow if it is missing (needed for ``suffix`` images)."""
    try:
        import PIL.Image  # noqa: F401
    except ImportError as err:
        raise ImportError(
            f"reading {suffix!r} images needs the Pillow package, which is not installed: pip install "
            f"'spikelab[images]' (or pip install pillow); without it use {', '.join(NATIVE_EXTENSIONS)} files"
        ) from err


def _read_pil_image(path: Path) -> np.ndarray:
    require_pillow(path.suffix)
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("L") if im.mode in ("1", "L", "I;16", "I", "F") else im.convert("RGB")
        return np.asarray(im, dtype=np.float32) / 255.0


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """Read one image file as float32 ``[C, H, W]`` in [0, 1] (C = 1 for grey, 3 for colour)."""
    p = check_file(path)
    ext = p.suffix.lower()
    if ext == ".npy":
        arr = _read_npy_image(p)
    elif ext in (".pgm", ".ppm", ".pnm"):
        arr = read_pnm(p)
    elif ext in PIL_EXTENSIONS:
        arr = _read_pil_image(p)
    else:
        raise DataFormatError(f"{str(p)!r}: unknown image extension (known: {NATIVE_EXTENSIONS + PIL_EXTENSIONS})")
    t = torch.from_numpy(np.ascontiguousarray(arr))
    return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1).contiguous()


class ImageFolder(Dataset):
    """A folder of class sub-folders, read lazily: item i is ``(x float32 [C, H, W] in [0, 1], y int64)``.

    Classes are the sub-folder names in sorted order (label = position); files are sorted within each class.
    Images of different sizes need ``size`` (bilinear resize with antialiasing, done in torch): without it, every
    image must have the shape of the first one (``sample_shape``), and one that does not raises a
    ``DataFormatError`` naming both files (a batch of mixed sizes cannot be stacked).

    Args:
        root: the tree's root folder.
        size: output ``H = W = size`` or ``(H, W)``; None keeps each image's own size.

    Raises:
        FileNotFoundError: no images. ImportError: PNG/JPEG/... files and no Pillow.
    """

    info = None  # a DatasetInfo, set by spikelab.data.load

    def __init__(self, root: str | os.PathLike, size: int | tuple[int, int] | None = None) -> None:
        self.root = check_dir(root)
        if size is not None:
            hw = (size, size) if isinstance(size, int) else tuple(size)
            if len(hw) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in hw):
                raise ValueError(f"size must be a positive int or (H, W) of positive ints, got {size!r}")
            size = hw
        self.size: tuple[int, int] | None = size
        exts = NATIVE_EXTENSIONS + PIL_EXTENSIONS
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        self.samples: list[tuple[Path, int]] = []
        for label, name in enumerate(self.classes):
            files = sorted(f for f in (self.root / name).iterdir() if f.is_file() and f.suffix.lower() in exts)
            self.samples += [(f, label) for f in files]
        if not self.samples:
            raise FileNotFoundError(
                f"no images under {str(self.root)!r}: expected class sub-folders holding files with extensions {exts}"
            )
        self.targets = [label for _, label in self.samples]
        pil = sorted({f.suffix.lower() for f, _ in self.samples} & set(PIL_EXTENSIONS))
        if pil:
            require_pillow(pil[0])
        self._first = self.samples[0][0]
        self.sample_shape: tuple[int, ...] = tuple(self._load(self._first).shape)  # [C, H, W] of every item

    def _load(self, path: Path) -> torch.Tensor:
        x = read_image(path)  # [C, H, W]
        if self.size is not None and tuple(x.shape[1:]) != self.size:
            x = F.interpolate(x.unsqueeze(0), size=self.size, mode="bilinear", align_corners=False,
                              antialias=True).squeeze(0).clamp_(0.0, 1.0)
        return x

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path, label = self.samples[index]
        x = self._load(path)
        if tuple(x.shape) != self.sample_shape:
            got, want = tuple(x.shape), self.sample_shape
            hint = ("grey and colour images cannot be mixed: convert them to one kind" if got[0] != want[0] else
                    "images of different sizes need a resize: size=(H, W) here, --size H W on the command line")
            raise DataFormatError(f"{str(path)!r} is {'x'.join(map(str, got))} (C x H x W) but the first image of "
                                  f"the folder, {str(self._first)!r}, is {'x'.join(map(str, want))}; {hint}")
        return x, torch.tensor(label, dtype=torch.int64)


def looks_like_image_folder(root: Path) -> bool:
    """True if ``root`` has at least one sub-folder holding an image file of a known extension."""
    exts = NATIVE_EXTENSIONS + PIL_EXTENSIONS
    for d in root.iterdir():
        if d.is_dir() and any(f.suffix.lower() in exts for f in d.iterdir() if f.is_file()):
            return True
    return False
