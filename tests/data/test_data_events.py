"""Event records, .npy event files, N-MNIST .bin files and frame binning, against hand-computed values."""
import numpy as np
import pytest
import torch

from spikelab import data


def ev(rows):
    t, x, y, p = zip(*rows)
    return data.make_events(np.array(t), np.array(x), np.array(y), np.array(p))


def test_make_events_validates():
    e = ev([(5, 1, 2, 1), (7, 0, 0, 0)])
    assert e.dtype == data.EVENT_DTYPE and e["t"].dtype == np.int64
    with pytest.raises(ValueError, match="polarity"):
        ev([(5, 1, 2, -1)])
    with pytest.raises(ValueError, match="whole numbers"):
        data.make_events(np.array([0.5]), np.array([0]), np.array([0]), np.array([1]))
    with pytest.raises(ValueError, match="length"):
        data.make_events(np.array([1, 2]), np.array([0]), np.array([0]), np.array([1]))


def test_events_to_frames_time_bins_by_hand():
    # stream spans t = 100 .. 199 -> span 100; T = 4 -> bins of 25 us: [100,125), [125,150), ...
    e = ev([(100, 0, 0, 1), (124, 0, 0, 1), (125, 2, 1, 0), (160, 1, 1, 1), (199, 2, 0, 0)])
    f = data.events_to_frames(e, 4, 2, 3, by="time")
    expected = np.zeros((4, 2, 2, 3), np.float32)
    expected[0, 1, 0, 0] = 2
    expected[1, 0, 1, 2] = 1
    expected[2, 1, 1, 1] = 1
    expected[3, 0, 0, 2] = 1
    np.testing.assert_array_equal(f, expected)


def test_events_to_frames_fixed_window_and_count():
    e = ev([(0, 0, 0, 1), (50, 0, 0, 1), (99, 1, 0, 0), (100, 1, 0, 1), (250, 0, 0, 0)])
    f = data.events_to_frames(e, 2, 1, 2, by="time", duration_us=200)  # bins [0,100), [100,200); 250 left out
    assert f.sum() == 4
    assert f[0, 1, 0, 0] == 2 and f[0, 0, 0, 1] == 1 and f[1, 1, 0, 1] == 1
    # count bins: event i -> floor(i * T / N) with N = 5, T = 2: bins 0,0,0,1,1 (input order shuffled)
    shuffled = e[[4, 2, 0, 3, 1]]
    g = data.events_to_frames(shuffled, 2, 1, 2, by="count")
    assert g[0].sum() == 3 and g[1].sum() == 2
    assert g[1, 1, 0, 1] == 1 and g[1, 0, 0, 0] == 1
    with pytest.raises(ValueError, match="outside"):
        data.events_to_frames(e, 2, 1, 1)
    with pytest.raises(ValueError, match="by must be one of"):
        data.events_to_frames(e, 2, 1, 2, by="space")
    assert data.events_to_frames(e[:0], 3, 1, 2).shape == (3, 2, 1, 2)


def test_read_events_npy_structured_and_columns(tmp_path):
    s = np.zeros(3, dtype=[("x", "u2"), ("y", "u2"), ("t", "u8"), ("p", "?")])
    s["x"], s["y"], s["t"], s["p"] = [1, 2, 3], [4, 5, 6], [10, 20, 30], [True, False, True]
    np.save(tmp_path / "s.npy", s)
    e = data.read_events_npy(tmp_path / "s.npy")
    assert e.dtype == data.EVENT_DTYPE
    np.testing.assert_array_equal(e["t"], [10, 20, 30])
    np.testing.assert_array_equal(e["x"], [1, 2, 3])
    np.testing.assert_array_equal(e["p"], [1, 0, 1])
    cols = np.array([[10, 1, 4, 1], [20, 2, 5, 0]], dtype=np.float64)
    np.save(tmp_path / "c.npy", cols)
    c = data.read_events_npy(tmp_path / "c.npy")
    np.testing.assert_array_equal(c["y"], [4, 5])
    np.save(tmp_path / "bad.npy", np.array([[10, 1, 4, -1]]))
    with pytest.raises(data.DataFormatError, match="polarity"):
        data.read_events_npy(tmp_path / "bad.npy")
    np.save(tmp_path / "three.npy", np.zeros((2, 3)))
    with pytest.raises(data.DataFormatError, match=r"\[N, 4\]"):
        data.read_events_npy(tmp_path / "three.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(data.DataFormatError):
        data.read_events_npy(tmp_path / "junk.npy")


def nmnist_event_bytes(x, y, p, ts):
    return bytes([x, y, (p << 7) | ((ts >> 16) & 0x7F), (ts >> 8) & 0xFF, ts & 0xFF])


def test_read_nmnist_bin_by_hand(tmp_path):
    rows = [(3, 4, 1, 0x12345), (33, 0, 0, 2**23 - 1), (0, 33, 1, 7)]
    raw = b"".join(nmnist_event_bytes(*r) for r in rows)
    raw += nmnist_event_bytes(0, 240, 0, 0) + nmnist_event_bytes(5, 6, 0, 100)  # overflow marker, then an event
    (tmp_path / "a.bin").write_bytes(raw)
    e = data.read_nmnist_bin(tmp_path / "a.bin")
    assert len(e) == 4
    np.testing.assert_array_equal(e["x"], [3, 33, 0, 5])
    np.testing.assert_array_equal(e["y"], [4, 0, 33, 6])
    np.testing.assert_array_equal(e["p"], [1, 0, 1, 0])
    np.testing.assert_array_equal(e["t"], [0x12345, 2**23 - 1, 7, 100 + 2**13])
    (tmp_path / "cut.bin").write_bytes(raw[:-2])
    with pytest.raises(data.DataFormatError, match="multiple of 5"):
        data.read_nmnist_bin(tmp_path / "cut.bin")
    with pytest.raises(FileNotFoundError):
        data.read_nmnist_bin(tmp_path / "missing.bin")


def test_nmnist_file_without_events_or_outside_the_sensor_is_refused(tmp_path):
    # an empty .bin used to give all-zero frames, a sample indistinguishable from a silent recording
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(data.DataFormatError, match="empty.bin.*no events"):
        data.read_nmnist_bin(tmp_path / "empty.bin")
    (tmp_path / "markers.bin").write_bytes(nmnist_event_bytes(0, 240, 0, 0) * 3)  # overflow markers only
    with pytest.raises(data.DataFormatError, match="no events"):
        data.read_nmnist_bin(tmp_path / "markers.bin")
    (tmp_path / "wide.bin").write_bytes(nmnist_event_bytes(3, 4, 1, 5) + nmnist_event_bytes(34, 2, 0, 9))
    with pytest.raises(data.DataFormatError, match="wide.bin.*outside the 34 x 34.*x up to 34"):
        data.read_nmnist_bin(tmp_path / "wide.bin")
    d = tmp_path / "tree" / "Train" / "3"
    d.mkdir(parents=True)
    (d / "00001.bin").write_bytes(b"")
    with pytest.raises(data.DataFormatError, match="00001.bin.*no events"):
        data.load("nmnist", root=tmp_path / "tree")[0]


def test_nmnist_tree_loads_frames(tmp_path):
    rng = np.random.default_rng(0)
    written = {}
    for split in ("Train", "Test"):
        for digit in (0, 7):
            d = tmp_path / split / str(digit)
            d.mkdir(parents=True)
            rows = [(int(rng.integers(34)), int(rng.integers(34)), int(rng.integers(2)), int(t))
                    for t in np.sort(rng.integers(0, 300_000, 50))]
            (d / "00001.bin").write_bytes(b"".join(nmnist_event_bytes(*r) for r in rows))
            written[(split, digit)] = rows
    assert data.detect_format(tmp_path) == "nmnist"
    ds = data.load("nmnist", root=tmp_path, split="test", T=5)
    assert len(ds) == 2 and ds.info.input_shape == (5, 2, 34, 34) and ds.info.is_event
    x, y = ds[1]
    assert int(y) == 7 and x.shape == (5, 2, 34, 34) and x.dtype == torch.float32
    rows = written[("Test", 7)]
    ts = np.array([r[3] for r in rows])
    expected = np.zeros((5, 2, 34, 34), np.float32)
    for (xx, yy, p, t) in rows:
        expected[(t - ts.min()) * 5 // (ts.max() - ts.min() + 1), p, yy, xx] += 1
    np.testing.assert_array_equal(x.numpy(), expected)
    train, test, info = data.make_loaders(tmp_path, batch_size=2, T=3)
    xb, yb = next(iter(train))
    assert xb.shape == (2, 3, 2, 34, 34) and yb.dtype == torch.int64 and info.name == str(tmp_path)
