"""Event (neuromorphic) data: the event record, ``.npy`` event files, and binning events into frames.

An event stream is a structured numpy array of dtype :data:`EVENT_DTYPE` with fields ``t`` (timestamp,
microseconds, int64), ``x`` (column), ``y`` (row) and ``p`` (polarity: 0 = OFF, brightness fell; 1 = ON, it rose).
Frames are float32 ``[T, 2, H, W]``: channel 0 counts OFF events, channel 1 counts ON events, per time bin.
"""
from __future__ import annotations

import os

import numpy as np

from .._checks import check_choice, check_int
from ._common import DataFormatError, check_file

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])


def make_events(t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Build an :data:`EVENT_DTYPE` array from four equal-length integer columns.

    Raises ``ValueError`` if lengths differ, values are not whole numbers, ``x``/``y`` are negative or above
    32767, or ``p`` holds anything but 0 and 1 or bools (a -1/+1 convention must be mapped by the caller).
    """
    cols = {"t": np.asarray(t), "x": np.asarray(x), "y": np.asarray(y), "p": np.asarray(p)}
    n = len(cols["t"])
    for name, col in cols.items():
        if col.ndim != 1 or len(col) != n:
            raise ValueError(f"event column {name!r} must be 1-D of length {n}, got shape {col.shape}")
        allowed = "iufb" if name == "p" else "iuf"  # a bool polarity (False = OFF, True = ON) is common
        if col.dtype.kind not in allowed and n:
            raise ValueError(f"event column {name!r} must be numeric, got {col.dtype}")
        if col.dtype.kind == "f" and not np.all(np.isfinite(col) & (col == np.round(col))):
            raise ValueError(f"event column {name!r} must hold whole numbers")
    for name in ("x", "y"):
        if n and (cols[name].min() < 0 or cols[name].max() > np.iinfo(np.int16).max):
            raise ValueError(f"event column {name!r} must lie in [0, 32767]")
    if n and not np.isin(cols["p"], (0, 1)).all():
        raise ValueError(f"event polarity p must be 0 (OFF) or 1 (ON); found values {np.unique(cols['p'])[:5]}")
    out = np.empty(n, dtype=EVENT_DTYPE)
    for name, col in cols.items():
        out[name] = col
    return out


def read_events_npy(path: str | os.PathLike) -> np.ndarray:
    """Read events from a ``.npy`` file: a structured array with fields t, x, y, p, or a numeric ``[N, 4]`` array
    whose columns are t (microseconds), x, y, p (0 = OFF, 1 = ON). Returns an :data:`EVENT_DTYPE` array in file order.
    """
    p = check_file(path)
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataFormatError(f"{str(p)!r}: not a readable .npy array ({err})") from err
    try:
        if arr.dtype.names is not None:
            missing = [f for f in ("t", "x", "y", "p") if f not in arr.dtype.names]
            if missing or arr.ndim != 1:
                raise ValueError(f"structured events need 1-D fields t, x, y, p; missing {missing}, shape {arr.shape}")
            return make_events(arr["t"], arr["x"], arr["y"], arr["p"])
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise ValueError(f"expected a structured array or [N, 4] columns t, x, y, p; got shape {arr.shape}")
        return make_events(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
    except ValueError as err:
        raise DataFormatError(f"{str(p)!r}: {err}") from err


def bin_events(sample: np.ndarray, events: np.ndarray, num_samples: int, T: int, H: int, W: int,
               by: str = "time", duration_us: int | None = None) -> np.ndarray:
    """Bin the events of many samples at once into float32 frames ``[num_samples, T, 2, H, W]``.

    ``sample[i]`` is the sample index of ``events[i]``; events of each sample must be in time order. Binning rules
    are those of :func:`events_to_frames`, applied per sample.
    """
    check_int(T, "T", minimum=1)
    check_choice(by, "by", ("time", "count"))
    frames = np.zeros((num_samples, T, 2, H, W), dtype=np.float32)
    if len(events) == 0:
        return frames
    x, y, p = events["x"].astype(np.int64), events["y"].astype(np.int64), events["p"].astype(np.int64)
    t = events["t"]
    if x.max() >= W or y.max() >= H or x.min() < 0 or y.min() < 0:
        raise ValueError(f"events fall outside the H x W = {H} x {W} frame (x max {x.max()}, y max {y.max()})")
    if not np.isin(p, (0, 1)).all():
        raise ValueError("event polarity p must be 0 (OFF) or 1 (ON)")
    if np.any(np.diff(sample) < 0) or sample.min() < 0 or sample.max() >= num_samples:
        raise ValueError(f"sample indices must be ascending and in [0, {num_samples})")
    counts = np.bincount(sample, minlength=num_samples)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    if by == "count":
        rank = np.arange(len(events)) - first[sample]
        tbin = rank * T // counts[sample]
        keep = np.ones(len(events), dtype=bool)
    elif duration_us is not None:
        check_int(duration_us, "duration_us", minimum=1)
        keep = (t >= 0) & (t < duration_us)
        tbin = np.where(keep, t, 0) * T // duration_us
    else:
        t0 = np.minimum.reduceat(t, first[counts > 0])
        t1 = np.maximum.reduceat(t, first[counts > 0])
        start = np.zeros(num_samples, dtype=np.int64)
        span = np.ones(num_samples, dtype=np.int64)
        start[counts > 0], span[counts > 0] = t0, t1 - t0 + 1
        tbin = (t - start[sample]) * T // span[sample]
        keep = np.ones(len(events), dtype=bool)
    flat = ((((sample * T + tbin) * 2 + p) * H + y) * W + x)[keep]
    frames.reshape(-1)[:] = np.bincount(flat, minlength=frames.size).astype(np.float32)
    return frames


def events_to_frames(events: np.ndarray, T: int, H: int, W: int, by: str = "time",
                     *, duration_us: int | None = None) -> np.ndarray:
    """Turn an event stream into count frames ``[T, 2, H, W]`` (float32; channel 0 = OFF, 1 = ON).

    ``by="time"``: T equal time bins. With ``duration_us`` the window is ``[0, duration_us)`` and event i lands in
    bin ``floor(t_i * T / duration_us)`` (events outside the window are left out); without it the window spans the
    stream, bin ``floor((t_i - t_first) * T / (t_last - t_first + 1))``.
    ``by="count"``: T bins of (nearly) equal event count: the i-th event in time order lands in ``floor(i * T / N)``.

    Args:
        events: :data:`EVENT_DTYPE` array (any order; sorted by time here, stably).
        T: number of time bins. H, W: frame height and width; every event must satisfy ``x < W``, ``y < H``.
    """
    if not isinstance(events, np.ndarray) or events.dtype.names is None or \
            any(f not in events.dtype.names for f in ("t", "x", "y", "p")):
        raise TypeError("events must be a structured numpy array with fields t, x, y, p (see EVENT_DTYPE)")
    check_int(H, "H", minimum=1)
    check_int(W, "W", minimum=1)
    events = events[np.argsort(events["t"], kind="stable")]
    sample = np.zeros(len(events), dtype=np.int64)
    return bin_events(sample, events, 1, T, H, W, by=by, duration_us=duration_us)[0]
