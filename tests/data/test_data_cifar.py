"""CIFAR python batches: files pickled here, read back and compared."""
import pickle

import numpy as np
import pytest

from spikelab import data


def write_batch(path, images, labels, key="labels", bytes_keys=False, protocol=2):
    batch = {"data": images.reshape(len(images), -1), key: list(map(int, labels)), "batch_label": "x"}
    if bytes_keys:  # the original files were pickled by Python 2: keys come back as bytes
        batch = {k.encode(): v for k, v in batch.items()}
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


def random_images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


@pytest.mark.parametrize("bytes_keys,protocol", [(True, 2), (False, 5)])
def test_read_cifar_batch_roundtrip(tmp_path, bytes_keys, protocol):
    imgs, labs = random_images(5, 0), np.array([3, 1, 4, 1, 5])
    write_batch(tmp_path / "b", imgs, labs, bytes_keys=bytes_keys, protocol=protocol)
    x, y = data.read_cifar_batch(tmp_path / "b")
    assert x.dtype == np.uint8 and x.shape == (5, 3, 32, 32) and y.dtype == np.int64
    np.testing.assert_array_equal(x, imgs)
    np.testing.assert_array_equal(y, labs)
    # channel layout: the first 1024 values of a row are the red plane in row-major order
    row = imgs.reshape(5, -1)[2]
    assert x[2, 0, 1, 3] == row[32 + 3] and x[2, 2, 0, 0] == row[2048]


def test_cifar10_root_and_autodetect(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    parts = []
    for i in range(1, 6):
        imgs, labs = random_images(2, i), np.array([i % 10, (i + 1) % 10])
        write_batch(d / f"data_batch_{i}", imgs, labs)
        parts.append((imgs, labs))
    write_batch(d / "test_batch", random_images(3, 9), np.array([0, 9, 2]))
    (d / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    train = data.load("cifar10", root=tmp_path)
    x, y = train.tensors
    np.testing.assert_allclose(x.numpy(), np.concatenate([p[0] for p in parts]) / 255.0, atol=1e-7)
    np.testing.assert_array_equal(y.numpy(), np.concatenate([p[1] for p in parts]))
    assert train.info.class_names[3] == "c3" and train.info.input_shape == (3, 32, 32)
    assert data.detect_format(tmp_path) == "cifar10"
    assert len(data.load(str(d), split="test")) == 3


def test_cifar100_fine_labels(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    imgs = random_images(4, 3)
    batch = {"data": imgs.reshape(4, -1), "fine_labels": [99, 0, 50, 7], "coarse_labels": [19, 0, 5, 1]}
    (d / "train").write_bytes(pickle.dumps(batch))
    (d / "test").write_bytes(pickle.dumps(batch))
    (d / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"f{i}" for i in range(100)]}))
    ds = data.load("cifar100", root=d)
    np.testing.assert_array_equal(ds.labels.numpy(), [99, 0, 50, 7])
    assert ds.info.num_classes == 100 and ds.info.class_names[99] == "f99"
    _, coarse = data.read_cifar_batch(d / "train", label_key="coarse_labels")
    np.testing.assert_array_equal(coarse, [19, 0, 5, 1])


class Evil:
    def __reduce__(self):
        return (print, ("should never run",))


def test_cifar_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.read_cifar_batch(tmp_path / "nope")
    (tmp_path / "evil").write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(data.DataFormatError, match="refusing"):
        data.read_cifar_batch(tmp_path / "evil")
    good = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]})
    (tmp_path / "cut").write_bytes(good[:-40])
    with pytest.raises(data.DataFormatError):
        data.read_cifar_batch(tmp_path / "cut")
    (tmp_path / "shape").write_bytes(pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}))
    with pytest.raises(data.DataFormatError, match=r"\[N, 3072\]"):
        data.read_cifar_batch(tmp_path / "shape")
    with pytest.raises(ValueError, match="needs root"):
        data.load("cifar10")
    with pytest.raises(FileNotFoundError, match="missing"):
        data.load("cifar10", root=tmp_path)
