"""IDX reader and the MNIST-family loaders, checked against files written byte by byte here."""
import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spikelab import data
from spikelab.data.idx import write_idx_bytes
from spikelab.data.mnist import FASHION_MNIST_DEBIAN, FASHION_MNIST_ENV

FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def require_debian_fashion() -> Path:
    """The Debian Fashion-MNIST folder; skip if absent, but fail when CI=true (CI must have it installed)."""
    if all((FASHION_MNIST_DEBIAN / f).is_file() for f in FASHION_FILES):
        return FASHION_MNIST_DEBIAN
    msg = f"Fashion-MNIST not installed at {FASHION_MNIST_DEBIAN} (apt-get install dataset-fashion-mnist)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def idx_bytes(type_code: int, shape: tuple, payload: bytes) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + b"".join(struct.pack(">I", s) for s in shape) + payload


def write_mnist_like(root: Path, n_train: int = 6, n_test: int = 4, gz: bool = True) -> dict:
    rng = np.random.default_rng(1)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, size=(n, 5, 4), dtype=np.uint8)
        labs = (np.arange(n) % 10).astype(np.uint8)
        for kind, arr, dims in (("images", imgs, 3), ("labels", labs, 1)):
            raw = idx_bytes(0x08, arr.shape, arr.tobytes())
            name = f"{prefix}-{kind}-idx{dims}-ubyte"
            if gz:
                (root / (name + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (root / name).write_bytes(raw)
        arrays[prefix] = (imgs, labs)
    return arrays


def test_read_idx_raw_and_gzip_uint8(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = idx_bytes(0x08, (2, 3, 4), bytes(range(24)))
    (tmp_path / "a-idx3-ubyte").write_bytes(raw)
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        out = data.read_idx(tmp_path / name)
        assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
        np.testing.assert_array_equal(out, arr)


def test_read_idx_big_endian_types(tmp_path):
    i32 = np.array([[1, -2], [70000, 3]], dtype=np.int32)
    (tmp_path / "i").write_bytes(idx_bytes(0x0C, (2, 2), struct.pack(">4i", 1, -2, 70000, 3)))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "i"), i32)
    (tmp_path / "f").write_bytes(idx_bytes(0x0D, (3,), struct.pack(">3f", 0.5, -1.25, 3.0)))
    out = data.read_idx(tmp_path / "f")
    assert out.dtype == np.float32 and out.dtype.byteorder in ("=", "<", "|")
    np.testing.assert_array_equal(out, [0.5, -1.25, 3.0])


def test_read_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        data.read_idx(tmp_path / "missing")
    (tmp_path / "magic").write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(data.DataFormatError, match="magic"):
        data.read_idx(tmp_path / "magic")
    (tmp_path / "short").write_bytes(idx_bytes(0x08, (10,), b"\x00" * 9))
    with pytest.raises(data.DataFormatError, match="truncated"):
        data.read_idx(tmp_path / "short")
    (tmp_path / "long").write_bytes(idx_bytes(0x08, (2,), b"\x00" * 3))
    with pytest.raises(data.DataFormatError, match="trailing"):
        data.read_idx(tmp_path / "long")
    gz = gzip.compress(idx_bytes(0x08, (100,), bytes(100)))
    (tmp_path / "cut.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(data.DataFormatError, match="gzip"):
        data.read_idx(tmp_path / "cut.gz")


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_root_load_matches_written_arrays(tmp_path, gz):
    arrays = write_mnist_like(tmp_path, gz=gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = data.load("mnist", root=tmp_path, split=split)
        x, y = ds.tensors
        imgs, labs = arrays[prefix]
        assert x.dtype.is_floating_point and x.shape == (len(labs), 1, 5, 4)
        np.testing.assert_allclose(x[:, 0].numpy(), imgs / 255.0, rtol=0, atol=1e-7)
        np.testing.assert_array_equal(y.numpy(), labs)
    assert ds.info.input_shape == (1, 5, 4) and ds.info.num_classes == 10 and not ds.info.is_event


def test_kmnist_torchvision_layout_and_path_autodetect(tmp_path):
    raw = tmp_path / "KMNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = write_mnist_like(raw)
    ds = data.load("kmnist", root=tmp_path, split="test")
    np.testing.assert_array_equal(ds.labels.numpy(), arrays["t10k"][1])
    assert ds.info.class_names[1] == "ki"
    plain = tmp_path / "plain"
    plain.mkdir()
    write_mnist_like(plain)
    assert data.detect_format(plain) == "mnist"
    assert data.load(str(plain)).info.name == str(plain)


def test_image_label_count_mismatch(tmp_path):
    write_mnist_like(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(0x08, (5,), bytes(5)))
    with pytest.raises(data.DataFormatError, match="6 images but"):
        data.load("mnist", root=tmp_path)


def test_labels_outside_the_classes_are_refused(tmp_path):
    # labels 10 and 255 of a 10-class IDX set used to load silently (CIFAR's were already checked)
    write_mnist_like(tmp_path, gz=False)
    labels = np.array([0, 1, 10, 3, 255, 5], dtype=np.uint8)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(0x08, (6,), labels.tobytes()))
    with pytest.raises(data.DataFormatError, match=r"class indices in \[0, 9\], found 2 outside \(e.g. 10\)"):
        data.load("mnist", root=tmp_path)
    floats = np.array([0, 1, 2.5, 3, 4, 5], dtype=">f4")  # a float label file would have been truncated to ints
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(0x0D, (6,), floats.tobytes()))
    with pytest.raises(data.DataFormatError, match="integer labels"):
        data.load("mnist", root=tmp_path)


@pytest.mark.parametrize("shape", [(6, 0, 0), (6, 5, 0), (0, 5, 4)])
def test_empty_images_are_refused(tmp_path, shape):
    # 0x0 IDX images used to load as a dataset of empty tensors
    write_mnist_like(tmp_path, gz=False)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(0x08, shape, b""))
    if shape[0] == 0:
        (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(0x08, (0,), b""))
    with pytest.raises(data.DataFormatError, match=r"at least one image of at least 1 x 1 pixels"):
        data.load("mnist", root=tmp_path)


def test_find_fashion_mnist_order_and_error(tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    write_mnist_like(mine)
    assert data.find_fashion_mnist(mine) == mine
    monkeypatch.setenv(FASHION_MNIST_ENV, str(mine))
    assert data.find_fashion_mnist() == mine
    empty = tmp_path / "empty"
    empty.mkdir()
    # a root the user names is the only place looked at, even when the default locations hold the files
    monkeypatch.setattr("spikelab.data.mnist.FASHION_MNIST_DEBIAN", mine)
    with pytest.raises(FileNotFoundError, match="looked in: .*empty\\)"):
        data.find_fashion_mnist(empty)
    monkeypatch.setattr("spikelab.data.mnist.FASHION_MNIST_DEBIAN", tmp_path / "nowhere")
    monkeypatch.delenv(FASHION_MNIST_ENV)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.find_fashion_mnist(empty)


def test_real_fashion_mnist_from_debian():
    root = require_debian_fashion()
    assert data.find_fashion_mnist() == root
    test = data.load("fashion-mnist", split="test")
    x, y = test.tensors
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)
    np.testing.assert_array_equal(np.bincount(y.numpy()), [1000] * 10)  # the published class balance
    raw = gzip.decompress((root / "t10k-images-idx3-ubyte.gz").read_bytes())
    assert struct.unpack(">4I", raw[:16]) == (2051, 10000, 28, 28)
    first = np.frombuffer(raw, dtype=np.uint8, count=784, offset=16).reshape(28, 28)
    np.testing.assert_allclose(x[0, 0].numpy(), first / 255.0, atol=1e-7)
    assert test.info.class_names[9] == "Ankle boot"
    train = data.load("fashion-mnist", split="train", limit=100)
    assert len(train) == 100


def test_write_idx_bytes_matches_hand_encoding():
    arr = np.array([[1, -2, 3]], dtype=np.int16)
    assert write_idx_bytes(arr) == idx_bytes(0x0B, (1, 3), struct.pack(">3h", 1, -2, 3))
    with pytest.raises(TypeError, match="IDX"):
        write_idx_bytes(np.zeros(2, dtype=np.complex64))


def test_fashion_helper_skips_or_fails(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "FASHION_MNIST_DEBIAN", tmp_path / "absent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install dataset-fashion-mnist"):
        require_debian_fashion()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require_debian_fashion()


def test_importing_data_pulls_no_optional_packages():
    code = ("import sys, spikelab.data; bad = [m for m in ('tonic', 'plotly', 'ipywidgets', 'PIL', 'torchvision') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stdout + done.stderr
