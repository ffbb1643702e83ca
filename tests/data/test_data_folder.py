"""Image-folder reader: .npy, PGM and PPM files written here, and the Pillow-missing error."""
import sys

import numpy as np
import pytest
import torch

from spikelab import data


def write_pgm_p5(path, img):
    path.write_bytes(b"P5\n# comment\n%d %d\n255\n" % (img.shape[1], img.shape[0]) + img.astype(np.uint8).tobytes())


def write_ppm_p6_16bit(path, img, maxval=1000):
    header = b"P6 %d %d %d\n" % (img.shape[1], img.shape[0], maxval)
    path.write_bytes(header + img.astype(">u2").tobytes())


def test_read_pnm_variants(tmp_path):
    g = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    write_pgm_p5(tmp_path / "a.pgm", g)
    np.testing.assert_allclose(data.read_pnm(tmp_path / "a.pgm"), g / 255.0, atol=1e-7)
    (tmp_path / "b.pgm").write_bytes(b"P2\n2 2\n4\n0 1\n2 4\n")
    np.testing.assert_allclose(data.read_pnm(tmp_path / "b.pgm"), [[0, 0.25], [0.5, 1.0]])
    rgb = np.random.default_rng(0).integers(0, 1001, size=(2, 3, 3))
    write_ppm_p6_16bit(tmp_path / "c.ppm", rgb)
    np.testing.assert_allclose(data.read_pnm(tmp_path / "c.ppm"), rgb / 1000.0, atol=1e-6)
    x = data.read_image(tmp_path / "c.ppm")
    assert x.shape == (3, 2, 3)
    np.testing.assert_allclose(x[1].numpy(), rgb[:, :, 1] / 1000.0, atol=1e-6)
    (tmp_path / "bad.pgm").write_bytes(b"P9\n1 1\n255\n\x00")
    with pytest.raises(data.DataFormatError, match="magic"):
        data.read_pnm(tmp_path / "bad.pgm")
    (tmp_path / "cut.pgm").write_bytes(b"P5\n4 4\n255\n" + bytes(10))
    with pytest.raises(data.DataFormatError, match="truncated"):
        data.read_pnm(tmp_path / "cut.pgm")


@pytest.mark.parametrize("values", [b"0 1\n-2 4\n", b"0 1\n2.5 4\n", b"0 1\nnan 4\n", b"0 1\n+2 4\n"])
def test_ascii_netpbm_values_must_be_non_negative_integers(tmp_path, values):
    # "-2" used to be read as a negative intensity, -0.5 after scaling
    (tmp_path / "neg.pgm").write_bytes(b"P2\n2 2\n4\n" + values)
    with pytest.raises(data.DataFormatError, match=r"ASCII Netpbm values must be integers in \[0, 4\], found b'"):
        data.read_pnm(tmp_path / "neg.pgm")


def make_tree(root, n_per_class=4):
    rng = np.random.default_rng(0)
    written = {}
    for c, name in enumerate(["cat", "dog"]):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            img = rng.integers(0, 256, size=(6, 5), dtype=np.uint8)
            if i % 2:
                write_pgm_p5(root / name / f"{i}.pgm", img)
            else:
                np.save(root / name / f"{i}.npy", img)
            written[(name, i)] = img
    return written


def test_image_folder_reads_tree(tmp_path):
    written = make_tree(tmp_path / "tree")
    ds = data.ImageFolder(tmp_path / "tree")
    assert ds.classes == ["cat", "dog"] and len(ds) == 8
    for k, (path, label) in enumerate(ds.samples):
        x, y = ds[k]
        img = written[(path.parent.name, int(path.stem))]
        assert x.dtype == torch.float32 and x.shape == (1, 6, 5) and y.dtype == torch.int64
        assert int(y) == ds.classes.index(path.parent.name) == label
        np.testing.assert_allclose(x[0].numpy(), img / 255.0, atol=1e-7)


def test_image_folder_resize_and_registry_split(tmp_path):
    make_tree(tmp_path / "tree")
    ds = data.ImageFolder(tmp_path / "tree", size=3)
    x, _ = ds[0]
    assert x.shape == (1, 3, 3) and 0 <= x.min() and x.max() <= 1
    const = tmp_path / "const" / "a"
    const.mkdir(parents=True)
    np.save(const / "x.npy", np.full((8, 8), 0.25, dtype=np.float32))
    np.testing.assert_allclose(data.ImageFolder(tmp_path / "const", size=(4, 2))[0][0].numpy(), 0.25, atol=1e-6)
    train = data.load("folder", root=tmp_path / "tree")
    test = data.load(str(tmp_path / "tree"), split="test")
    assert len(train) == 6 and len(test) == 2  # a quarter of each class goes to test
    assert sorted(test.targets) == [0, 1]
    assert not {p for p, _ in train.samples} & {p for p, _ in test.samples}
    assert train.info.num_classes == 2 and train.info.input_shape == (1, 6, 5)


def test_image_folder_train_test_subfolders(tmp_path):
    make_tree(tmp_path / "ds" / "train", 2)
    make_tree(tmp_path / "ds" / "val", 1)
    assert data.detect_format(tmp_path / "ds") == "folder"
    assert len(data.load("folder", root=tmp_path / "ds", split="test")) == 2
    assert len(data.load("folder", root=tmp_path / "ds", split="train")) == 4


def test_image_folder_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        data.ImageFolder(tmp_path / "missing")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no images"):
        data.ImageFolder(tmp_path / "empty")
    png = tmp_path / "png" / "a"
    png.mkdir(parents=True)
    (png / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    monkeypatch.setitem(sys.modules, "PIL", None)  # as if Pillow were not installed
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match=r"Pillow .*spikelab\[images\]"):  # when the folder is opened
        data.ImageFolder(tmp_path / "png")
    with pytest.raises(ImportError, match="Pillow"):
        data.read_image(png / "x.png")
    np.save(png / "bad.npy", np.full((2, 2), 3.0))
    with pytest.raises(data.DataFormatError, match=r"\[0, 1\]"):
        data.read_image(png / "bad.npy")
    with pytest.raises(ValueError, match="size"):
        data.ImageFolder(tmp_path / "png", size=0)


def test_test_folder_lacking_a_class_keeps_the_train_labels(tmp_path):
    for split, classes in (("train", ("ant", "bee", "cow")), ("val", ("ant", "cow"))):
        for c in classes:
            (tmp_path / split / c).mkdir(parents=True)
            np.save(tmp_path / split / c / "0.npy", np.zeros((2, 2), np.uint8))
    test = data.load("folder", root=tmp_path, split="test")
    assert test.info.class_names == ("ant", "bee", "cow") and test.info.num_classes == 3
    assert [(p.parent.name, y) for p, y in test.samples] == [("ant", 0), ("cow", 2)]
    assert [int(test[i][1]) for i in range(2)] == [0, 2]
    (tmp_path / "val" / "dog").mkdir()
    np.save(tmp_path / "val" / "dog" / "0.npy", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="dog"):
        data.load("folder", root=tmp_path, split="test")


def _mixed_sizes(root):
    for c, shapes in (("a", [(6, 5), (6, 5)]), ("b", [(6, 5), (9, 7)])):
        (root / c).mkdir(parents=True)
        for i, shape in enumerate(shapes):
            np.save(root / c / f"{i}.npy", np.full(shape, 0.5, dtype=np.float32))


def test_images_of_two_sizes_are_a_clear_error_or_resized(tmp_path):
    _mixed_sizes(tmp_path / "tree")
    ds = data.ImageFolder(tmp_path / "tree")
    assert ds.sample_shape == (1, 6, 5) and ds[0][0].shape == (1, 6, 5)
    with pytest.raises(data.DataFormatError, match=r"1x9x7 .* is 1x6x5; images of different sizes need a resize"):
        ds[3]
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    with pytest.raises(data.DataFormatError, match="--size H W"):
        next(iter(loader))
    resized = data.ImageFolder(tmp_path / "tree", size=(4, 4))
    batch = next(iter(torch.utils.data.DataLoader(resized, batch_size=4)))[0]
    assert batch.shape == (4, 1, 4, 4)
    torch.testing.assert_close(batch, torch.full((4, 1, 4, 4), 0.5))  # a constant image stays constant


def test_grey_and_colour_images_are_not_mixed(tmp_path):
    (tmp_path / "a").mkdir()
    np.save(tmp_path / "a" / "0.npy", np.zeros((4, 4), np.uint8))
    np.save(tmp_path / "a" / "1.npy", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(data.DataFormatError, match="grey and colour"):
        data.ImageFolder(tmp_path, size=4)[1]


def test_train_and_test_splits_of_other_shapes_are_refused(tmp_path):
    for split, shape in (("train", (6, 6)), ("test", (5, 5))):
        (tmp_path / split / "a").mkdir(parents=True)
        np.save(tmp_path / split / "a" / "0.npy", np.zeros(shape, np.uint8))
    with pytest.raises(data.DataFormatError, match=r"test split's samples are \(1, 5, 5\) .* \(1, 6, 6\)"):
        data.make_loaders(str(tmp_path), batch_size=2)
    assert data.make_loaders(str(tmp_path), batch_size=2, size=4)[2].input_shape == (1, 4, 4)
