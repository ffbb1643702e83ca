"""``spikelab train`` / ``eval`` on what users get wrong: run names that escape ``runs/``, an unwritable ``--out``,
relative dataset paths, image folders of mixed sizes or without Pillow, and checkpoints whose settings do not match
their weights. Each is one error line (never a traceback) or the right result."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spikelab.cli import main
from spikelab.training import list_runs, load_checkpoint, load_run, save_checkpoint

SMOKE = ["--limit", "64", "--epochs", "1", "--no-progress", "--device", "cpu"]


def _one_error_line(capsys, command: str, message: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"spikelab {command}: error: ") and message in lines[0], lines
    assert "Traceback" not in captured.err + captured.out
    return captured.out


@pytest.mark.parametrize("name, message", [
    ("../../x", "run name must be a folder name without '/'"),
    ("a/b", "without '/'"),
    ("", "run name must not be empty"),
    ("   ", "run name must not be empty"),
    (".hidden", "must not start with '.'"),
    ("n" * 300, "run name is too long (300 characters; at most 200)"),
])
def test_run_names_stay_inside_runs(tmp_path, monkeypatch, capsys, name, message):
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert main(["train", "--name", name, *SMOKE]) == 2
    _one_error_line(capsys, "train", message)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "work"]  # nothing written anywhere


def test_an_absolute_run_name_is_refused(tmp_path, capsys):
    target = tmp_path / "elsewhere"
    assert main(["train", "--out", str(tmp_path / "runs"), "--name", str(target), *SMOKE]) == 2
    _one_error_line(capsys, "train", "without '/'")
    assert not target.exists() and not (tmp_path / "runs").exists()


def test_an_unwritable_out_is_reported_before_the_run_is_announced(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert main(["train", "--out", str(tmp_path / "file" / "runs"), *SMOKE]) == 2
    out = _one_error_line(capsys, "train", "file")
    assert out == ""  # not "training ... -> runs/..." first


def _image_folder(root: Path, shapes: dict[str, list[tuple[int, ...]]], suffix: str = ".npy") -> Path:
    rng = np.random.default_rng(0)
    for c, sizes in shapes.items():
        (root / c).mkdir(parents=True)
        for i, shape in enumerate(sizes):
            img = rng.integers(0, 256, size=shape, dtype=np.uint8)
            if suffix == ".npy":
                np.save(root / c / f"{i}.npy", img)
            else:
                from PIL import Image

                Image.fromarray(img).save(root / c / f"{i}{suffix}")
    return root


def test_relative_dataset_paths_are_stored_resolved(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    _image_folder(work / "imgs", {c: [(8, 8)] * 8 for c in ("a", "b")})
    monkeypatch.chdir(work)
    assert main(["train", "--dataset", "imgs", "--name", "f", *SMOKE]) == 0
    assert main(["train", "--dataset", "folder", "--data-root", "imgs", "--name", "g", *SMOKE]) == 0
    cfg_f = json.loads((work / "runs" / "f" / "config.json").read_text())
    cfg_g = json.loads((work / "runs" / "g" / "config.json").read_text())
    assert cfg_f["dataset"] == str(work / "imgs") and cfg_g["data_root"] == str(work / "imgs")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    for run in ("f", "g"):
        assert main(["eval", str(work / "runs" / run), "--no-progress"]) == 0
        assert "accuracy" in capsys.readouterr().out
    assert main(["train", "--resume", str(work / "runs" / "f"), "--epochs", "2", "--no-progress"]) == 0
    assert len(load_run(work / "runs" / "f").epochs) == 2


def test_images_of_two_sizes_need_size(tmp_path, capsys):
    folder = _image_folder(tmp_path / "mixed", {"a": [(8, 8)] * 6, "b": [(8, 8)] * 5 + [(10, 12)]})
    for workers in ("0", "1"):  # an error raised in a DataLoader worker arrives wrapped: still one line
        assert main(["train", "--dataset", str(folder), "--out", str(tmp_path / "runs"), "--num-workers", workers,
                     *SMOKE]) == 2
        _one_error_line(capsys, "train", "images of different sizes need a resize: size=(H, W) here, --size H W")
    assert list_runs(tmp_path / "runs") == [] and list((tmp_path / "runs").iterdir()) == []  # failed: no folder
    assert main(["train", "--dataset", str(folder), "--out", str(tmp_path / "runs"), "--name", "sized",
                 "--size", "6", "7", *SMOKE]) == 0
    cfg = json.loads((tmp_path / "runs" / "sized" / "config.json").read_text())
    assert cfg["size"] == [6, 7] and cfg["input_shape"] == [1, 6, 7]
    assert main(["eval", str(tmp_path / "runs" / "sized"), "--no-progress"]) == 0
    assert main(["train", "--size", "6", "--out", str(tmp_path / "runs"), *SMOKE]) == 2  # digits: no resize
    _one_error_line(capsys, "train", "size applies to the 'folder' dataset only")


def test_png_folders_need_pillow(tmp_path, monkeypatch, capsys):
    folder = _image_folder(tmp_path / "png", {c: [(8, 8)] * 4 for c in ("a", "b")}, suffix=".png")
    assert main(["train", "--dataset", str(folder), "--out", str(tmp_path / "runs"), "--name", "p", *SMOKE]) == 0
    monkeypatch.setitem(sys.modules, "PIL", None)  # as if Pillow were not installed
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    capsys.readouterr()
    assert main(["train", "--dataset", str(folder), "--out", str(tmp_path / "runs"), *SMOKE]) == 2
    _one_error_line(capsys, "train", "needs the Pillow package, which is not installed: pip install "
                                     "'spikelab[images]'")
    assert main(["eval", str(tmp_path / "runs" / "p"), "--no-progress"]) == 2
    _one_error_line(capsys, "eval", "Pillow")


def _checkpoint(tmp_path: Path, capsys) -> tuple[Path, dict]:
    assert main(["train", "--out", str(tmp_path), "--name", "good", *SMOKE]) == 0
    capsys.readouterr()
    return tmp_path / "good", load_checkpoint(tmp_path / "good")


@pytest.mark.parametrize("change, message", [
    (dict(model="mlp"), "do not match its model settings"),
    (dict(num_classes=7), "head.fc.module.weight is [10, 128] in the file but [7, 128] in the model"),
    (dict(input_shape=[1, 100000, 100000]), "in the file but [10, 20000000000] in the model"),  # 800 GB: never made
    (dict(input_shape=[1, 8]), "input_shape must be 3 positive ints ([C, H, W])"),
    (dict(T=0), "the run setting T must be an int >= 1"),
    (dict(model="resnet-1000"), "the run's model 'resnet-1000' is not one of"),
    (dict(is_event="yes"), "is_event must be true or false"),
])
def test_a_checkpoint_whose_settings_do_not_match_its_weights(tmp_path, capsys, change, message):
    run, ckpt = _checkpoint(tmp_path, capsys)
    bad = tmp_path / "bad"
    bad.mkdir()
    save_checkpoint(bad / "checkpoint.pt", {**ckpt, "run_config": {**ckpt["run_config"], **change}})
    assert main(["eval", str(bad), "--no-progress"]) == 2
    _one_error_line(capsys, "eval", message)
    if "input_shape" in change or "num_classes" in change:
        assert main(["train", "--resume", str(bad), "--epochs", "2", "--no-progress"]) == 2
        _one_error_line(capsys, "train", "cannot resume")


def test_a_checkpoint_holding_code_is_refused_without_advice_to_run_it(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"model": {}, "x": Evil()}, tmp_path / "evil.pt")
    for argv in (["eval", str(tmp_path / "evil.pt")], ["train", "--resume", str(tmp_path / "evil.pt")]):
        assert main([*argv, "--no-progress"]) == 2
        line = capsys.readouterr().err
        assert "holds Python objects (print) besides tensors and plain data" in line, line
        assert "weights_only" not in line and "code ran" not in line
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unreadable data: corrupt, or not written by torch.save") as err:
        load_checkpoint(tmp_path / "junk.pt")
    assert "weights_only" not in str(err.value)
