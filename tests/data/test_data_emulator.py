"""The saccade event emulator against a per-pixel reference loop, plus determinism."""
import math

import numpy as np
import pytest

from spikelab import data
from spikelab.data.registry import _digits_event_frames


def test_trajectory_is_the_triangle():
    em = data.EventEmulator(amplitude=2.0, steps_per_saccade=2, duration_us=600)
    times, offsets = em.trajectory()
    np.testing.assert_array_equal(times, [0, 100, 200, 300, 400, 500, 600])
    expected = [(-1, 1), (-0.5, 0), (0, -1), (0.5, 0), (1, 1), (0, 1), (-1, 1)]
    np.testing.assert_allclose(offsets, expected)
    assert em.pad == 2 and em.sensor_shape(8, 8) == (12, 12)
    assert data.EventEmulator().sensor_shape(28, 28) == (34, 34)  # the N-MNIST sensor


def reference_events(img, em, thr_map=None):
    """Per-pixel loop: tent-kernel rendering, one threshold crossing at a time."""
    H, W = img.shape
    pad = em.pad
    Hs, Ws = H + 2 * pad, W + 2 * pad
    times, offsets = em.trajectory()
    rr, cc = np.mgrid[0:Hs, 0:Ws]

    def render(dx, dy):
        out = np.zeros((Hs, Ws))
        for i in range(H):
            for j in range(W):
                wy = np.maximum(0, 1 - np.abs(rr - (pad + dy + i)))
                wx = np.maximum(0, 1 - np.abs(cc - (pad + dx + j)))
                out += img[i, j] * wy * wx
        return out

    logs = [np.log(render(dx, dy) + em.eps) for dx, dy in offsets]
    out = []
    for r in range(Hs):
        for c in range(Ws):
            thr = em.threshold if thr_map is None else thr_map[r, c]
            ref = logs[0][r, c]
            for k in range(1, len(times)):
                l0, l1 = logs[k - 1][r, c], logs[k][r, c]
                while abs(l1 - ref) >= thr * (1 - 1e-9):  # same tie rule as the emulator
                    s = 1.0 if l1 > ref else -1.0
                    level = ref + s * thr
                    frac = (level - l0) / (l1 - l0)
                    out.append((c, r, int(s > 0), times[k - 1] + math.floor(frac * (times[k] - times[k - 1]))))
                    ref = level
    return out


def test_emulator_matches_reference_loop():
    img = np.array([[0.9, 0.13, 0.0], [0.42, 0.77, 0.31], [0.05, 0.6, 0.97]])
    em = data.EventEmulator(amplitude=2.0, steps_per_saccade=3, threshold=0.15, duration_us=90_000)
    got = em.emulate(img)
    ref = reference_events(img, em)
    assert len(got) == len(ref) > 50
    got_rows = sorted(zip(got["x"].tolist(), got["y"].tolist(), got["p"].tolist(), got["t"].tolist()))
    ref_rows = sorted(ref)
    assert [r[:3] for r in got_rows] == [r[:3] for r in ref_rows]
    assert max(abs(a[3] - b[3]) for a, b in zip(got_rows, ref_rows)) <= 1  # float rounding at floor()
    assert np.all(np.diff(got["t"]) >= 0) and got["t"].min() >= 0 and got["t"].max() <= em.duration_us


def test_polarity_and_silence():
    em = data.EventEmulator(amplitude=2.0, steps_per_saccade=1)
    assert len(em.emulate(np.zeros((4, 4)))) == 0
    img = np.zeros((1, 1))
    img[0, 0] = 1.0
    e = em.emulate(img)  # a bright dot on a sensor of 5x5 (pad 2), starting at (x, y) = (1, 3)
    first = e[e["t"] <= em.trajectory()[0][1]]
    # first saccade moves the dot by (+1, -2): it leaves (1, 3) (OFF) and arrives at (2, 1) (ON)
    assert set(zip(first["x"][first["p"] == 0].tolist(), first["y"][first["p"] == 0].tolist())) == {(1, 3)}
    assert set(zip(first["x"][first["p"] == 1].tolist(), first["y"][first["p"] == 1].tolist())) == {(2, 1)}


def test_threshold_mismatch_is_seeded():
    img = np.random.default_rng(0).random((5, 5))
    a = data.EventEmulator(threshold_sigma=0.1, seed=3).emulate(img)
    b = data.EventEmulator(threshold_sigma=0.1, seed=3).emulate(img)
    c = data.EventEmulator(threshold_sigma=0.1, seed=4).emulate(img)
    np.testing.assert_array_equal(a, b)
    assert len(a) != len(c) or not np.array_equal(a, c)


def test_batch_equals_single_and_uint8_equals_float():
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 256, size=(3, 6, 6), dtype=np.uint8)
    em = data.EventEmulator(amplitude=2.0)
    sample, events = em.emulate_batch(imgs)
    for i in range(3):
        np.testing.assert_array_equal(events[sample == i], em.emulate(imgs[i]))
    np.testing.assert_array_equal(em.emulate(imgs[0]), em.emulate(imgs[0] / 255.0))
    frames = em.to_frames(imgs, 4)
    for i in range(3):
        expected = data.events_to_frames(events[sample == i], 4, 10, 10, duration_us=em.duration_us + 1)
        np.testing.assert_array_equal(frames[i], expected)
        assert frames[i].sum() == (sample == i).sum()  # no event left out, the final instant included
        by_count = data.events_to_frames(events[sample == i], 4, 10, 10, by="count")
        np.testing.assert_array_equal(em.to_frames(imgs[i:i + 1], 4, by="count")[0], by_count)


def test_emulator_validation():
    with pytest.raises(ValueError, match="threshold"):
        data.EventEmulator(threshold=0)
    with pytest.raises(ValueError, match="margin"):
        data.EventEmulator(amplitude=4.0, margin=1)
    with pytest.raises(TypeError):
        data.EventEmulator(0.2)  # keyword-only
    em = data.EventEmulator()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        em.emulate(np.full((3, 3), 2.0))
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        em.emulate(np.zeros((2, 3, 3)))


def test_digits_events_cover_every_digit_and_are_deterministic():
    _digits_event_frames.cache_clear()
    a = data.load("digits-events", T=6)
    b = data.load("digits-events", split="test", T=6)
    assert len(a) + len(b) == 1797
    x_train, y_train, _, _ = data.load_digits_split()
    again = data.DIGITS_EMULATOR.to_frames(x_train[:40, 0].numpy(), 6)  # a fresh emulation, no cache
    got = np.stack([a[i][0].numpy() for i in range(40)])
    assert got.shape == (40, 6, 2, 12, 12) and got.sum() > 0
    np.testing.assert_array_equal(got, again)
    assert [int(a[i][1]) for i in range(40)] == y_train[:40].tolist()
