"""``spikelab train --model dsnn-*`` (with or without the accumulation pathway) and ``spikelab eval --no-pathway``."""
from __future__ import annotations

import json
import re

import pytest
import torch

from spikelab import data, models
from spikelab.cli import main
from spikelab.training import evaluate, load_checkpoint

SMOKE = ["--limit", "64", "--epochs", "1", "--no-progress", "--device", "cpu", "--batch-size", "16", "-T", "2"]


def test_train_and_eval_a_dsnn_with_and_without_its_pathway(tmp_path, capsys):
    assert main(["train", "--model", "dsnn-small", "--out", str(tmp_path), "--name", "dst", *SMOKE]) == 0
    out = capsys.readouterr().out
    assert "dual-stream training (accumulation pathway on)" in out
    assert json.loads((tmp_path / "dst" / "config.json").read_text())["pathway"] is True
    assert main(["eval", str(tmp_path / "dst"), "--no-pathway", "--limit", "64", "--no-progress"]) == 0
    fsnn = capsys.readouterr().out
    assert "dsnn-small (full-spike network alone)" in fsnn and "acc_shortcut" not in fsnn
    assert main(["eval", str(tmp_path / "dst"), "--limit", "64", "--no-progress"]) == 0
    dual = capsys.readouterr().out
    assert "(dual-stream network)" in dual and "body.layer2.0.acc_shortcut.pointwise" in dual
    # the printed FSNN accuracy is the checkpoint evaluated without its pathway
    net = models.build("dsnn-small", num_classes=10, in_channels=1, T=2, pathway=False)
    net.load_state_dict(load_checkpoint(tmp_path / "dst")["model"])
    _, test, _ = data.make_loaders("digits", batch_size=256, limit=64)
    acc = float(re.search(r"accuracy ([0-9.]+) %", fsnn).group(1))
    assert acc == pytest.approx(100 * evaluate(net, test)["acc"], abs=0.006)


def test_train_without_pathway_and_bad_flags(tmp_path, capsys):
    assert main(["train", "--model", "dsnn-small", "--no-pathway", "--out", str(tmp_path), "--name", "fsnn",
                 *SMOKE]) == 0
    assert "full-spike network without the pathway" in capsys.readouterr().out
    state = load_checkpoint(tmp_path / "fsnn")["model"]
    assert int(state["body.layer2.0.acc_shortcut.bn.num_batches_tracked"]) == 0  # the pathway never ran
    assert torch.is_tensor(state["head.fc.module.weight"])
    assert main(["train", "--no-pathway", "--out", str(tmp_path), "--name", "conv", *SMOKE]) == 2
    assert "--no-pathway applies to the dsnn-* models only, not 'conv-small'" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path), "--name", "conv2", *SMOKE]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "conv2"), "--pathway", "--no-progress"]) == 2
    assert "apply to the dsnn-* models only" in capsys.readouterr().err
