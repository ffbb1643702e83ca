"""A deterministic event-camera emulator: static images -> event streams, the way N-MNIST was recorded.

N-MNIST (Orchard et al., 2015) was made by showing each MNIST digit on a monitor and moving an ATIS event camera
through three saccades that trace a triangle. Here the image moves instead of the camera, which gives the same
relative motion. Each pixel keeps a reference log intensity ``ref`` (the level at its last event; at t = 0 the
pixel is adapted to the image). Whenever the log intensity ``L = log(I + eps)`` has moved by the threshold ``C``
since then, the pixel emits an event, ON (p = 1) for a rise, OFF (p = 0) for a fall, and ``ref`` moves by ``C``:

    n_events = floor(|L - ref| / C + 1e-9),    ref <- ref + sign(L - ref) * n_events * C

(the 1e-9 makes a return to exactly a crossing level, as when the triangle closes, count regardless of rounding).

Between two positions the intensity is taken as linear in time, so the j-th crossing of a step from ``t0`` to
``t1`` is stamped ``t0 + (t1 - t0) * (ref + s j C - L0) / (L1 - L0)`` (the v2e recipe). No randomness is used
unless ``threshold_sigma > 0``, whose per-pixel threshold mismatch is drawn from ``seed``: same config, same events.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_choice, check_int, check_positive, check_real
from .events import EVENT_DTYPE, bin_events

_TIE = 1e-9  # relative tolerance: a return to exactly a crossing level (n * C) counts, whatever the rounding


@dataclass(frozen=True, kw_only=True)
class EventEmulator:
    """Configuration of the saccade event emulator (see the module docstring for the model)."""

    threshold: float = 0.2          # contrast threshold C, in units of log intensity
    amplitude: float = 4.0          # width and height of the saccade triangle, pixels
    margin: int | None = None       # border added around the image on the sensor, pixels; None: ceil(amplitude/2)+1
    steps_per_saccade: int = 20     # positions sampled per saccade (three saccades in all)
    duration_us: int = 300_000      # duration of the three saccades, microseconds (N-MNIST: about 300 ms)
    eps: float = 0.1                # offset added to intensity in [0, 1] before the log (keeps black finite)
    threshold_sigma: float = 0.0    # per-pixel threshold mismatch, relative standard deviation (0: none)
    seed: int = 0                   # seed of the threshold mismatch

    def __post_init__(self) -> None:
        check_positive(self.threshold, "threshold")
        check_positive(self.amplitude, "amplitude")
        if self.margin is not None:
            check_int(self.margin, "margin", minimum=math.ceil(self.amplitude / 2))
        check_int(self.steps_per_saccade, "steps_per_saccade", minimum=1)
        check_int(self.duration_us, "duration_us", minimum=3 * self.steps_per_saccade)
        check_positive(self.eps, "eps")
        if check_real(self.threshold_sigma, "threshold_sigma") < 0:
            raise ValueError(f"threshold_sigma must be >= 0, got {self.threshold_sigma}")
        check_int(self.seed, "seed", minimum=0)

    @property
    def pad(self) -> int:
        """Border in pixels between the image and the sensor edge."""
        return self.margin if self.margin is not None else math.ceil(self.amplitude / 2) + 1

    def sensor_shape(self, H: int, W: int) -> tuple[int, int]:
        """Sensor size for an ``H x W`` image: ``(H + 2 pad, W + 2 pad)`` (28 x 28 -> 34 x 34 by default)."""
        return H + 2 * self.pad, W + 2 * self.pad

    def trajectory(self) -> tuple[np.ndarray, np.ndarray]:
        """Sample times ``t_k`` (int64 [K+1], microseconds) and image offsets ``(dx, dy)`` (float64 [K+1, 2], pixels).

        The triangle runs bottom-left (-a/2, +a/2) -> top (0, -a/2) -> bottom-right (+a/2, +a/2) -> bottom-left, with
        a = amplitude and y pointing down; K = 3 * steps_per_saccade; ``t_k = floor(k * duration_us / K)``.
        """
        a, S = self.amplitude, self.steps_per_saccade
        corners = np.array([[-a / 2, a / 2], [0.0, -a / 2], [a / 2, a / 2], [-a / 2, a / 2]])
        frac = np.arange(S) / S
        path = [corners[i] + frac[:, None] * (corners[i + 1] - corners[i]) for i in range(3)]
        offsets = np.concatenate(path + [corners[3:]])
        K = 3 * S
        times = np.arange(K + 1, dtype=np.int64) * self.duration_us // K
        return times, offsets

    def _thresholds(self, Hs: int, Ws: int) -> np.ndarray:
        if self.threshold_sigma == 0:
            return np.full((Hs, Ws), self.threshold)
        rng = np.random.default_rng(self.seed)
        return np.maximum(self.threshold * (1 + self.threshold_sigma * rng.standard_normal((Hs, Ws))),
                          1e-3 * self.threshold)

    def _render(self, images: np.ndarray, dx: float, dy: float) -> np.ndarray:
        """Place ``images`` [N, H, W] on the sensor shifted by (dx, dy) pixels (bilinear) -> [N, Hs, Ws]."""
        N, H, W = images.shape
        Hs, Ws = self.sensor_shape(H, W)
        canvas = np.zeros((N, Hs + 1, Ws + 1))
        ox, oy = self.pad + dx, self.pad + dy
        ix, iy = math.floor(ox), math.floor(oy)
        fx, fy = ox - ix, oy - iy
        for wy, ry in ((1 - fy, 0), (fy, 1)):
            for wx, rx in ((1 - fx, 0), (fx, 1)):
                if wx * wy > 0:
                    canvas[:, iy + ry:iy + ry + H, ix + rx:ix + rx + W] += wx * wy * images
        return canvas[:, :Hs, :Ws]

    def _emulate_raw(self, imgs: np.ndarray) -> tuple[np.ndarray, ...] | None:
        """Columns ``(sample, t, x, y, p)`` of all events of float images [N, H, W], in generation order."""
        N, H, W = imgs.shape
        Hs, Ws = self.sensor_shape(H, W)
        thr = self._thresholds(Hs, Ws)[None]  # [1, Hs, Ws]
        thr_flat = np.broadcast_to(thr, (N, Hs, Ws)).reshape(-1)
        times, offsets = self.trajectory()
        log_prev = np.log(self._render(imgs, *offsets[0]) + self.eps)  # [N, Hs, Ws]
        ref = log_prev.copy()
        parts = []
        for k in range(1, len(times)):
            log_now = np.log(self._render(imgs, *offsets[k]) + self.eps)
            diff = log_now - ref
            n = np.floor(np.abs(diff) / thr + _TIE).astype(np.int64)
            idx = np.flatnonzero(n)
            if idx.size:
                counts = n.reshape(-1)[idx]
                pix = np.repeat(idx, counts)
                j = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + 1
                sgn = np.sign(diff.reshape(-1)[pix])
                level = ref.reshape(-1)[pix] + sgn * j * thr_flat[pix]
                l0, l1 = log_prev.reshape(-1)[pix], log_now.reshape(-1)[pix]
                frac = np.clip((level - l0) / (l1 - l0), 0.0, 1.0)
                t = times[k - 1] + np.floor(frac * (times[k] - times[k - 1])).astype(np.int64)
                s, rem = np.divmod(pix, Hs * Ws)
                y, x = np.divmod(rem, Ws)
                parts.append((s, t, x, y, (sgn > 0).astype(np.int8)))
                ref += np.sign(diff) * n * thr
            log_prev = log_now
        if not parts:
            return None
        return tuple(np.concatenate(c) for c in zip(*parts))

    def emulate_batch(self, images: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Emulate many images at once.

        Args:
            images: ``[N, H, W]``, uint8 (0..255) or float in [0, 1].

        Returns:
            ``(sample int64 [E], events EVENT_DTYPE [E])``, grouped by sample index and ordered by (t, y, x) within a
            sample; x, y are sensor coordinates (``sensor_shape``).
        """
        imgs = _as_unit_images(images)
        raw = self._emulate_raw(imgs)
        if raw is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=EVENT_DTYPE)
        s, t, x, y, p = raw
        Hs, Ws = self.sensor_shape(*imgs.shape[1:])
        span = (int(s.max()) + 1) * (self.duration_us + 1) * Hs * Ws
        if span < 2**62:  # one int64 key sorts ~8x faster than lexsort; stable keeps crossing order
            order = np.argsort(((s * (self.duration_us + 1) + t) * Hs + y) * Ws + x, kind="stable")
        else:
            order = np.lexsort((x, y, t, s))
        events = np.empty(len(order), dtype=EVENT_DTYPE)
        events["t"], events["x"], events["y"], events["p"] = t[order], x[order], y[order], p[order]
        return s[order], events

    def emulate(self, image: np.ndarray | torch.Tensor) -> np.ndarray:
        """Emulate one image ``[H, W]`` (uint8 or float in [0, 1]) -> events (EVENT_DTYPE, ordered by t, y, x)."""
        img = _as_unit_images(image, single=True)
        return self.emulate_batch(img)[1]

    def to_frames(self, images: np.ndarray | torch.Tensor, T: int, by: str = "time") -> np.ndarray:
        """Emulate ``images`` [N, H, W] and bin each stream into frames: float32 ``[N, T, 2, Hs, Ws]``.

        ``by="time"`` uses the fixed window ``[0, duration_us]`` (as ``events_to_frames`` with
        ``duration_us=duration_us + 1``), so bin b covers the same motion in every sample; ``by="count"`` splits
        each stream into equal event counts.
        """
        check_choice(by, "by", ("time", "count"))
        check_int(T, "T", minimum=1)
        imgs = _as_unit_images(images)
        Hs, Ws = self.sensor_shape(*imgs.shape[1:])
        if by == "count":
            sample, events = self.emulate_batch(imgs)
            return bin_events(sample, events, len(imgs), T, Hs, Ws, by="count")
        frames = np.zeros((len(imgs), T, 2, Hs, Ws), dtype=np.float32)
        raw = self._emulate_raw(imgs)  # time bins need no ordering: count straight from the raw columns
        if raw is not None:
            s, t, x, y, p = raw
            tbin = t * T // (self.duration_us + 1)  # window [0, duration_us]: the final instant is included
            flat = (((s * T + tbin) * 2 + p) * Hs + y) * Ws + x
            frames.reshape(-1)[:] = np.bincount(flat, minlength=frames.size)
        return frames


def emulate(image: np.ndarray | torch.Tensor, emulator: EventEmulator | None = None) -> np.ndarray:
    """Emulate one image ``[H, W]`` with ``emulator`` (default :class:`EventEmulator()`) -> events (EVENT_DTYPE)."""
    return (emulator or EventEmulator()).emulate(image)


def _as_unit_images(images: np.ndarray | torch.Tensor, single: bool = False) -> np.ndarray:
    """Return float64 images in [0, 1]: uint8 is divided by 255, floats must already lie in [0, 1]."""
    name = "image" if single else "images"
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or torch.Tensor, got {type(images).__name__}")
    want = 2 if single else 3
    if images.ndim != want:
        raise ValueError(f"{name} must be {'[H, W]' if single else '[N, H, W]'}, got shape {images.shape}")
    if images.dtype == np.uint8:
        out = images.astype(np.float64) / 255.0
    elif np.issubdtype(images.dtype, np.floating):
        out = images.astype(np.float64)
        if out.size and not (np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1):
            raise ValueError(f"float {name} must lie in [0, 1]")
    else:
        raise TypeError(f"{name} must be uint8 or float, got {images.dtype}")
    return out[None] if single else out
