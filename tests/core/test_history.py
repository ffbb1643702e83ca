"""History: JSON-lines round trip, a live reader's view of a half-written file, series extraction."""
import pytest

from spikelab.history import History


def sample():
    h = History(name="r", config={"lr": 0.1})
    h.steps += [{"step": 1, "epoch": 1, "loss": 2.0, "acc": 0.1}, {"step": 2, "epoch": 1, "loss": 1.5, "acc": 0.3}]
    h.epochs += [{"epoch": 1, "train_loss": 1.7, "test_acc": None}, {"epoch": 2, "train_loss": 1.1, "test_acc": 0.8}]
    return h


def test_roundtrip(tmp_path):
    h = sample()
    path = tmp_path / "run" / "history.jsonl"
    path.parent.mkdir()
    path.write_text(h.to_jsonl())
    back = History.from_jsonl(path, config=h.config)
    assert back.steps == h.steps and back.epochs == h.epochs and back.config == h.config
    assert back.name == "run" and back.last == h.epochs[-1]


def test_half_written_last_line_is_ignored(tmp_path):
    path = tmp_path / "history.jsonl"
    text = sample().to_jsonl()
    path.write_text(text + '{"kind": "epoch", "epo')
    assert len(History.from_jsonl(path).epochs) == 2


def test_bad_records(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"kind": "batch"}\n')
    with pytest.raises(ValueError, match=r"history.jsonl:1: record kind must be 'step' or 'epoch'"):
        History.from_jsonl(path)
    path.write_text("not json\n")
    with pytest.raises(ValueError, match="not a JSON line"):
        History.from_jsonl(path)
    with pytest.raises(FileNotFoundError, match="history file not found"):
        History.from_jsonl(tmp_path / "missing.jsonl")


def test_series_skips_missing_values():
    h = sample()
    assert h.series("test_acc") == ([2], [0.8])
    assert h.series("loss", level="steps") == ([1, 2], [2.0, 1.5])
    with pytest.raises(ValueError, match="level"):
        h.series("loss", level="batches")
