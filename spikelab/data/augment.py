"""Standard image augmentation on batched tensors, in plain torch: random crop with zero padding, horizontal
flip, and per-channel normalisation. Each sample of a batch draws its own crop and flip from a ``torch.Generator``,
so a seeded generator gives the same augmentation on every run.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .._checks import check_int, check_tensor


class RandomCropFlip:
    """Zero-pad each image by ``padding`` pixels, crop back to ``H x W`` at a random offset, and (if ``flip``) mirror
    left-right with probability 1/2.

    Works on ``[B, C, H, W]`` and on any ``[B, ..., H, W]`` (e.g. event frames ``[B, T, 2, H, W]``): all leading
    dimensions of one sample share its crop and flip, so an event clip moves as one.
    Output pixel ``(i, j)`` of sample b is ``padded[b, ..., oy_b + i, ox_b + j']`` with ``oy_b, ox_b`` uniform in
    ``[0, 2 * padding]`` and ``j' = W - 1 - j`` when flipped, else ``j``.
    """

    def __init__(self, padding: int = 4, flip: bool = True) -> None:
        self.padding = check_int(padding, "padding", minimum=0)
        if not isinstance(flip, bool):
            raise TypeError(f"flip must be a bool, got {type(flip).__name__}")
        self.flip = flip

    def __repr__(self) -> str:
        return f"RandomCropFlip(padding={self.padding}, flip={self.flip})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch ``x`` of shape ``[B, ..., H, W]``; draws from ``generator`` (torch's default if None)."""
        check_tensor(x, "x")
        if x.dim() < 3:
            raise ValueError(f"x must be a batch [B, ..., H, W] with at least 3 dimensions, got {tuple(x.shape)}")
        B, H, W = x.shape[0], x.shape[-2], x.shape[-1]
        P = self.padding
        flat = x.reshape(B, -1, H, W)  # [B, M, H, W]
        padded = torch.nn.functional.pad(flat, (P, P, P, P))  # [B, M, H+2P, W+2P]
        oy = torch.randint(0, 2 * P + 1, (B,), generator=generator)
        ox = torch.randint(0, 2 * P + 1, (B,), generator=generator)
        cols = torch.arange(W).expand(B, W)
        if self.flip:
            flipped = torch.rand(B, generator=generator) < 0.5
            cols = torch.where(flipped[:, None], W - 1 - cols, cols)
        rows = oy[:, None] + torch.arange(H)  # [B, H]
        cols = ox[:, None] + cols  # [B, W]
        b = torch.arange(B)[:, None, None, None]
        m = torch.arange(flat.shape[1])[None, :, None, None]
        out = padded[b, m, rows[:, None, :, None], cols[:, None, None, :]]  # [B, M, H, W]
        return out.reshape(x.shape)


class Normalize:
    """Per-channel normalisation ``(x - mean[c]) / std[c]`` over channel dimension 1 of ``[B, C, ...]``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if self.mean.shape != self.std.shape or self.mean.numel() == 0:
            raise ValueError(f"mean and std must be non-empty and of equal length, got {list(mean)} and {list(std)}")
        if not bool(torch.isfinite(self.mean).all()):
            raise ValueError(f"mean must be finite for every channel, got {self.mean.tolist()}")
        if not bool((torch.isfinite(self.std) & (self.std > 0)).all()):
            raise ValueError(f"std must be finite and > 0 for every channel, got {self.std.tolist()}")

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalise ``x`` ``[B, C, ...]`` with C equal to the number of channels given; ``generator`` is unused."""
        check_tensor(x, "x")
        C = self.mean.numel()
        if x.dim() < 2 or x.shape[1] != C:
            raise ValueError(f"x must be [B, C, ...] with C = {C}, got shape {tuple(x.shape)}")
        shape = (1, C) + (1,) * (x.dim() - 2)
        return (x - self.mean.to(x).reshape(shape)) / self.std.to(x).reshape(shape)

    @staticmethod
    def fit(x: torch.Tensor) -> "Normalize":
        """Normalisation with the per-channel mean and standard deviation of ``x`` ``[N, C, ...]``."""
        check_tensor(x, "x")
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise ValueError("x must be finite to fit a normalisation (it holds NaN or inf)")
        dims = [0] + list(range(2, x.dim()))
        return Normalize(x.float().mean(dims).tolist(), x.float().std(dims).clamp_min(1e-8).tolist())
