"""Registry, the digits split, and make_loaders: shapes, determinism, limits and error messages."""
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from spikelab import data
from spikelab.data.idx import write_idx_bytes


def test_names_and_unknown_name():
    known = data.names()
    assert known[0] == "digits"
    for name in ("digits", "fashion-mnist", "mnist", "kmnist", "cifar10", "cifar100", "digits-events",
                 "fashion-mnist-events", "nmnist", "folder"):
        assert name in known
    with pytest.raises(ValueError, match="known names: digits, digits-events"):
        data.load("imagenet-22k")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load("./no/such/folder")
    with pytest.raises(ValueError, match="needs root"):
        data.load("mnist")
    with pytest.raises(ValueError, match="embedded"):
        data.load("digits", root=".")
    with pytest.raises(ValueError, match="split must be one of"):
        data.load("digits", split="val")


def test_load_digits_split_is_fixed_stratified_and_exact():
    x_tr, y_tr, x_te, y_te = data.load_digits_split()
    assert x_tr.shape == (1347, 1, 8, 8) and x_te.shape == (450, 1, 8, 8)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    assert 0.0 <= float(x_tr.min()) and float(x_tr.max()) == 1.0
    counts_all = np.bincount(load_digits().target)
    np.testing.assert_array_equal(np.bincount(y_te.numpy()), np.round(counts_all * 0.25).astype(int))
    # every sample is a scikit-learn digit divided by 16, appearing exactly once across the two sets
    sk = load_digits()
    pool = {(tuple((im / 16.0).astype(np.float32).ravel()), int(t)) for im, t in zip(sk.images, sk.target)}
    ours = [(tuple(x.ravel().tolist()), int(y)) for x, y in zip(torch.cat([x_tr, x_te]).numpy(),
                                                                 torch.cat([y_tr, y_te]))]
    assert len(set(ours)) == len(ours) == 1797 and set(ours) <= pool
    again = data.load_digits_split()
    assert all(torch.equal(a, b) for a, b in zip((x_tr, y_tr, x_te, y_te), again))
    other = data.load_digits_split(seed=1)
    assert not torch.equal(other[1], y_tr) or not torch.equal(other[0], x_tr)


def test_digits_read_without_sklearn_import_equal_load_digits():
    from spikelab.data.digits import _digits_csv, _read_digits

    assert _digits_csv() is not None  # the fast path is taken on this installation
    pixels, target = _read_digits()
    sk = load_digits()
    np.testing.assert_array_equal(pixels, sk.images)
    np.testing.assert_array_equal(target, sk.target)


def test_make_loaders_digits_shapes_and_limit():
    train, test, info = data.make_loaders("digits", batch_size=32, limit=100)
    assert info == data.DatasetInfo("digits", 10, (1, 8, 8), False, tuple("0123456789"))
    assert len(train.dataset) == 100 and len(test.dataset) == 100
    x, y = next(iter(train))
    assert x.shape == (32, 1, 8, 8) and x.dtype == torch.float32 and y.shape == (32,) and y.dtype == torch.int64
    xs = torch.cat([b[0] for b in test])
    x_tr, _, x_te, _ = data.load_digits_split()
    idx = np.arange(100) * len(x_te) // 100  # limit keeps evenly spaced samples, in order
    torch.testing.assert_close(xs, x_te[idx], rtol=0, atol=0)
    assert len(set(torch.cat([b[1] for b in train]).tolist())) == 10


def test_make_loaders_seeded_shuffle_and_augment():
    def first_batch(seed, augment):
        train, _, _ = data.make_loaders("digits", batch_size=16, seed=seed, augment=augment)
        return next(iter(train))

    a, b, c = first_batch(0, True), first_batch(0, True), first_batch(1, True)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    plain = first_batch(0, False)
    assert torch.equal(plain[1], a[1]) and not torch.equal(plain[0], a[0])  # same order, augmented pixels
    train, _, _ = data.make_loaders("digits", batch_size=2000, augment=True)
    e1, e2 = next(iter(train))[0], next(iter(train))[0]
    assert not torch.equal(e1, e2)  # a new crop per epoch


def test_make_loaders_events_batch_first():
    train, test, info = data.make_loaders("digits-events", batch_size=8, T=4, limit=40, augment=True)
    assert info.is_event and info.input_shape == (4, 2, 12, 12)
    x, y = next(iter(test))
    assert x.shape == (8, 4, 2, 12, 12) and y.dtype == torch.int64
    assert data.to_time_first(x).shape == (4, 8, 2, 12, 12)
    assert torch.all(x == x.round()) and x.min() >= 0  # spike counts
    with pytest.raises(ValueError, match="normalize"):
        data.make_loaders("digits-events", batch_size=8, normalize=True)
    with pytest.raises(ValueError, match="emulator"):
        data.load("digits", emulator=data.EventEmulator())


def test_make_loaders_normalize_uses_train_stats():
    train, test, _ = data.make_loaders("digits", batch_size=4000, normalize=True)
    x = next(iter(train))[0]
    torch.testing.assert_close(x.mean(), torch.tensor(0.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(x.std(), torch.tensor(1.0), atol=1e-3, rtol=0)
    raw_test = data.load("digits", split="test").tensors[0]
    x_tr = data.load("digits").tensors[0]
    torch.testing.assert_close(next(iter(test))[0], (raw_test - x_tr.mean()) / x_tr.std())


def test_fashion_events_lazy_batches(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", 10), ("t10k", 5)):
        imgs = rng.integers(0, 256, size=(n, 5, 4), dtype=np.uint8)
        labs = rng.integers(0, 10, size=n).astype(np.uint8)
        (tmp_path / f"{prefix}-images-idx3-ubyte").write_bytes(write_idx_bytes(imgs))
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(write_idx_bytes(labs))
        arrays[prefix] = (imgs, labs)
    ds = data.load("fashion-mnist-events", root=tmp_path, split="test", T=3)
    assert ds.info.input_shape == (3, 2, 11, 10) and ds.info.class_names[0] == "T-shirt/top"
    expected = data.FASHION_EMULATOR.to_frames(arrays["t10k"][0], 3)
    batch = ds.__getitems__([4, 0])
    np.testing.assert_array_equal(batch[0][0].numpy(), expected[4])
    np.testing.assert_array_equal(ds[0][0].numpy(), expected[0])
    assert int(batch[1][1]) == int(arrays["t10k"][1][0])


def test_one_data_root_serves_several_datasets(tmp_path):
    fm = tmp_path / "fashion-mnist"
    fm.mkdir()
    imgs = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for prefix in ("train", "t10k"):
        (fm / f"{prefix}-images-idx3-ubyte").write_bytes(write_idx_bytes(imgs))
        (fm / f"{prefix}-labels-idx1-ubyte").write_bytes(write_idx_bytes(np.array([4, 2], dtype=np.uint8)))
    ds = data.load("fashion-mnist", root=tmp_path)
    np.testing.assert_allclose(ds.tensors[0][:, 0].numpy(), imgs / 255.0, atol=1e-7)
    digit = tmp_path / "NMNIST" / "Train" / "3"
    digit.mkdir(parents=True)
    (digit / "a.bin").write_bytes(bytes([1, 2, 0x80, 0, 9]))
    x, y = data.load("nmnist", root=tmp_path, T=2)[0]
    assert int(y) == 3 and float(x.sum()) == 1.0 and float(x[0, 1, 2, 1]) == 1.0


def test_root_of_the_wrong_type_is_named():
    with pytest.raises(TypeError, match="root"):
        data.load("mnist", root=5)


def test_normalize_stats_of_a_disk_dataset_cover_the_whole_split():
    from torch.utils.data import Dataset

    from spikelab.data.registry import _channel_stats

    class Sorted(Dataset):  # like an image folder: sorted by class, here class 0 dark and class 1 bright
        def __len__(self):
            return 3000

        def __getitem__(self, i):
            return torch.full((1, 2, 2), float(i >= 1500)), torch.tensor(int(i >= 1500))

    norm = _channel_stats(Sorted())
    assert norm.mean.tolist() == pytest.approx([0.5], abs=1e-3)


def test_static_dataset_refuses_nan_and_out_of_range_pixels_and_labels():
    info = data.DatasetInfo("t", 3, (1, 2, 2), False, ("a", "b", "c"))
    images, labels = torch.rand(4, 1, 2, 2), torch.tensor([0, 1, 2, 1])
    assert len(data.StaticDataset(images, labels, info)) == 4
    bad = images.clone()
    bad[2, 0, 1, 1] = float("nan")  # a NaN pixel would turn the whole training run into NaN
    with pytest.raises(ValueError, match=r"float32 images must lie in \[0, 1\].*1 NaN value"):
        data.StaticDataset(bad, labels, info)
    with pytest.raises(ValueError, match=r"float32 images must lie in \[0, 1\]"):
        data.StaticDataset(images * 255, labels, info)
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\]"):
        data.StaticDataset(images, torch.tensor([0, 1, 3, 1]), info)
