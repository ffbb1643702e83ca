"""``spikelab train`` and ``spikelab eval`` on small data (run in-process through ``spikelab.cli.main``)."""
from __future__ import annotations

import argparse
import json
import re
import signal
from pathlib import Path

import pytest
from _support import require

from spikelab.cli import build_parser, main
from spikelab.data import find_fashion_mnist
from spikelab.training import load_run

SMOKE = ["--limit", "120", "--epochs", "1", "--no-progress", "--device", "cpu"]


def _train(tmp_path: Path, name: str, *extra: str) -> Path:
    assert main(["train", "--out", str(tmp_path), "--name", name, *SMOKE, *extra]) == 0
    return tmp_path / name


def test_train_writes_a_run_and_prints_a_summary(tmp_path, capsys):
    handler = signal.getsignal(signal.SIGINT)
    run = _train(tmp_path, "smoke", "--lr", "0.02", "--loss", "tet", "--lam", "0.1", "--optimizer", "sgd",
                 "--schedule", "step", "--seed", "2")
    out = capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is handler  # the Ctrl-C handler is put back
    assert re.search(r"^epoch +1/1 +train loss [0-9.]+ acc", out, re.M)
    assert "done: test accuracy" in out and str(run) in out
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["model"], cfg["dataset"], cfg["T"], cfg["loss"], cfg["lam"], cfg["optimizer"], cfg["seed"]) == \
        ("conv-small", "digits", 4, "tet", 0.1, "sgd", 2)
    assert cfg["input_shape"] == [1, 8, 8] and cfg["limit"] == 120
    h = load_run(run)
    assert len(h.epochs) == 1 and h.epochs[0]["lr"] == 0.02
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"{100 * metrics['test_acc']:.1f} %" in out


def test_eval_reports_accuracy_rates_and_energy(tmp_path, capsys):
    run = _train(tmp_path, "ev")
    capsys.readouterr()
    assert main(["eval", str(run / "checkpoint.pt"), "--limit", "120", "--no-progress"]) == 0
    out = capsys.readouterr().out
    test_acc = json.loads((run / "metrics.json").read_text())["test_acc"]
    assert f"accuracy {100 * test_acc:.2f} %" in out  # same weights, same test samples
    assert "firing rates" in out and re.search(r"^  body\.sn1 +0\.\d{4}$", out, re.M)
    assert re.search(r"^  stem\.conv +conv +- ", out, re.M)  # the stem sees real-valued pixels: MACs, no input rate
    assert re.search(r"^  body\.conv2\.conv +conv +0\.\d{4} ", out, re.M)  # spikes in: ACs scaled by the input rate
    assert re.search(r"^  total .* [0-9.]+ (pJ|nJ|uJ)$", out, re.M)


def test_resume_continues_the_run_in_its_folder(tmp_path, capsys):
    run = _train(tmp_path, "res")
    first = load_run(run).epochs[0]
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^epoch +2/2 ", out, re.M) and not re.search(r"^epoch +1/2 ", out, re.M)
    h = load_run(run)
    assert [e["epoch"] for e in h.epochs] == [1, 2] and h.epochs[0] == first
    assert json.loads((run / "config.json").read_text())["limit"] == 120  # data settings come from the run


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "nope"], "--model must be one of"),
    (["train", "--dataset", "/no/such/folder"], "--dataset must be one of"),
    (["train", "--epochs", "0"], "--epochs must be >= 1"),
    (["train", "--lr", "-1", "--limit", "40"], "lr must be > 0"),
    (["train", "--device", "tpu", "--limit", "40"], "device must be"),
    (["train", "--resume", "/no/such/run"], "checkpoint not found"),
    (["eval", "/no/such/run"], "checkpoint not found"),
])
def test_bad_arguments_give_one_error_line(argv, message, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path)] if argv[0] == "train" and "--resume" not in argv else argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"spikelab {argv[0]}: error: ") and message in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not any(tmp_path.iterdir())


def test_parse_errors_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--optimizer", "rmsprop"])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spikelab train: error: argument --optimizer: invalid choice")


def test_help_documents_every_option():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("train", "eval"):
        p = sub.choices[command]
        documented = [a for a in p._actions if not isinstance(a, argparse._HelpAction)]
        assert documented
        for action in documented:
            assert action.help and action.help != argparse.SUPPRESS, (command, action.dest)
        text = p.format_help()
        for action in documented:
            for opt in action.option_strings:
                assert opt in text


def test_fashion_mnist_from_the_debian_files(tmp_path, capsys):
    try:
        find_fashion_mnist(None)
        found = True
    except FileNotFoundError:
        found = False
    require(found, "Fashion-MNIST IDX files not installed (apt-get install dataset-fashion-mnist)")
    run = _train(tmp_path, "fm", "--dataset", "fashion-mnist", "--batch-size", "40")
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["dataset"] == "fashion-mnist" and cfg["input_shape"] == [1, 28, 28] and cfg["num_classes"] == 10
    h = load_run(run)
    assert len(h.steps) == 3 and h.epochs[0]["test_acc"] is not None
    assert "fashion-mnist" in capsys.readouterr().out


def _one_error_line(capsys, command: str, message: str) -> None:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"spikelab {command}: error: ") and message in lines[0], lines
    assert "Traceback" not in captured.err + captured.out


def test_checkpoint_without_run_settings_gives_one_error_line(tmp_path, capsys):
    from spikelab.training import save_checkpoint

    save_checkpoint(tmp_path / "bare.pt", {"model": {}})  # a checkpoint not written by 'spikelab train'
    assert main(["train", "--resume", str(tmp_path / "bare.pt"), "--no-progress", "--device", "cpu"]) == 2
    _one_error_line(capsys, "train", "lacks the run settings")
    assert main(["eval", str(tmp_path / "bare.pt"), "--no-progress"]) == 2
    _one_error_line(capsys, "eval", "lacks the run settings")


def test_an_existing_run_folder_is_not_overwritten(tmp_path, capsys):
    run = _train(tmp_path, "taken")
    capsys.readouterr()
    before = (run / "history.jsonl").read_text()
    assert main(["train", "--out", str(tmp_path), "--name", "taken", *SMOKE]) == 2
    _one_error_line(capsys, "train", "--resume")
    assert (run / "history.jsonl").read_text() == before
    assert main(["train", "--out", str(tmp_path), "--name", "n" * 300, *SMOKE]) == 2  # OSError: name too long
    _one_error_line(capsys, "train", "too long")

