"""The recipe the command line and the training panel share: the partial last batch is dropped, the neuron (and
its surrogate with its width) is part of the recipe, and a run written before these existed resumes as trained."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spikelab import data, recipe, surrogate
from spikelab.cli import main
from spikelab.models import LAB_NEURON, TET_NEURON
from spikelab.training import load_run
from spikelab.viz._live import TrainSettings

SMOKE = ["--epochs", "1", "--no-progress", "--device", "cpu"]


def test_the_partial_last_batch_is_dropped_only_when_asked_and_never_the_only_one():
    n_train = len(data.load("digits", split="train"))
    assert n_train % 32 != 0  # the digits leave a partial batch: the jump at every epoch's end
    kept, _, _ = data.make_loaders("digits", batch_size=32)
    dropped, test, _ = data.make_loaders("digits", batch_size=32, drop_last=True)
    assert len(kept) == n_train // 32 + 1 and len(dropped) == n_train // 32
    assert {len(y) for _, y in dropped} == {32}
    assert sum(len(y) for _, y in test) == len(test.dataset)  # the test split keeps every sample
    only, _, _ = data.make_loaders("digits", batch_size=32, limit=20, drop_last=True)
    assert [len(y) for _, y in only] == [20]
    with pytest.raises(TypeError, match="drop_last must be a bool"):
        data.make_loaders("digits", batch_size=32, drop_last=1)


def test_a_model_default_neuron_with_changes_in_the_command_line_terms():
    assert recipe.neuron_to_recipe(recipe.default_neuron("conv-small")) == recipe.neuron_to_recipe(LAB_NEURON)
    assert recipe.neuron_to_recipe(recipe.default_neuron("resnet19")) == recipe.neuron_to_recipe(TET_NEURON)
    custom = recipe.neuron_for("mlp", decay=0.8, v_th=1.5, reset="soft", surrogate="sigmoid", width=8.0)
    assert (custom.decay, custom.v_th, custom.reset) == (0.8, 1.5, "soft")
    assert surrogate.get(custom.surrogate) == surrogate.get("sigmoid", alpha=8.0)
    assert recipe.neuron_from_recipe(recipe.neuron_to_recipe(custom)) == custom
    tri = recipe.neuron_for("mlp", surrogate="triangle")  # a new family takes its own default width
    assert surrogate.get(tri.surrogate) == surrogate.get("triangle")
    assert surrogate.get(recipe.neuron_for("mlp", width=4.0).surrogate) == surrogate.get("atan", alpha=4.0)
    assert recipe.describe_neuron(recipe.neuron_to_recipe(custom)) == \
        "LIF decay 0.8, v_th 1.5, soft reset; sigmoid alpha=8"
    assert recipe.describe_neuron(None, "mlp") == "LIF decay 0.5, v_th 1, hard reset; atan alpha=2"
    assert recipe.describe_neuron(None) == "model default"
    with pytest.raises(ValueError, match="v_th"):
        recipe.neuron_for("mlp", v_th=-1.0)
    with pytest.raises(ValueError, match="unknown neuron settings"):
        recipe.neuron_for("mlp", tau=3)


def test_the_recipe_builds_the_network_with_its_neuron():
    neuron = recipe.neuron_for("mlp", v_th=0.7, surrogate="rectangle", width=0.5)
    cfg = dict(model="mlp", T=4, num_classes=10, input_shape=[1, 8, 8], is_event=False,
               neuron=recipe.neuron_to_recipe(neuron))
    net = recipe.build_model(cfg)
    assert net.neuron_config.v_th == 0.7
    assert surrogate.get(net.neuron_config.surrogate) == surrogate.get("rectangle", width=0.5)
    legacy = {k: v for k, v in cfg.items() if k != "neuron"}  # a run from before: the model's default
    assert recipe.neuron_to_recipe(recipe.build_model(legacy).neuron_config) == recipe.neuron_to_recipe(LAB_NEURON)
    with pytest.raises(ValueError, match="the run setting neuron is malformed"):
        recipe.build_model(dict(cfg, neuron={"kind": "lif"}))


def test_command_line_and_panel_store_the_same_recipe(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--name", "cli", "--model", "mlp", *SMOKE]) == 0
    out = capsys.readouterr().out
    assert "neuron LIF decay 0.5, v_th 1, hard reset; atan alpha=2" in out
    cli = json.loads((tmp_path / "cli" / "config.json").read_text())
    panel = TrainSettings(model="mlp", epochs=1).run_config()
    assert {k: cli[k] for k in panel} == panel  # the same settings, defaults included
    assert cli["drop_last"] is True and cli["neuron"] == recipe.neuron_to_recipe(LAB_NEURON)
    steps = [s for s in load_run(tmp_path / "cli").steps]
    assert len(steps) == len(data.load("digits", split="train")) // 32  # no partial batch


def test_neuron_options_of_the_command_line(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--name", "n", "--limit", "64", "--v-th", "1.5",
                 "--neuron-decay", "0.9", "--reset", "soft", "--surrogate", "triangle", "--surrogate-width", "0.5",
                 *SMOKE]) == 0
    cfg = json.loads((tmp_path / "n" / "config.json").read_text())
    assert cfg["neuron"] == recipe.neuron_to_recipe(recipe.neuron_for("conv-small", decay=0.9, v_th=1.5,
                                                                       reset="soft", surrogate="triangle", width=0.5))
    ckpt = torch.load(tmp_path / "n" / "checkpoint.pt", weights_only=True)
    assert recipe.build_model(ckpt["run_config"]).neuron_config.v_th == 1.5
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "n"), "--v-th", "1.0", *SMOKE]) == 2
    err = capsys.readouterr().err
    assert "--v-th 1.0 (the run has 1.5)" in err
    assert main(["train", "--out", str(tmp_path), "--name", "bad", "--surrogate-width", "-3", *SMOKE]) == 2
    assert "neuron options:" in capsys.readouterr().err


def test_a_run_from_before_the_shared_recipe_resumes_as_it_was_trained(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--name", "old", "--limit", "100", "--no-drop-last", *SMOKE]) == 0
    run = tmp_path / "old"
    assert len(load_run(run).steps) == 4  # 3 full batches and the partial one
    for path in (run / "config.json",):  # as written before drop_last and neuron existed
        cfg = json.loads(path.read_text())
        path.write_text(json.dumps({k: v for k, v in cfg.items() if k not in ("drop_last", "neuron")}))
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ckpt["run_config"] = {k: v for k, v in ckpt["run_config"].items() if k not in ("drop_last", "neuron")}
    torch.save(ckpt, run / "checkpoint.pt")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress", "--device", "cpu"]) == 0
    h = load_run(run)
    assert [e["epoch"] for e in h.epochs] == [1, 2] and len(h.steps) == 8  # still with its partial batch
