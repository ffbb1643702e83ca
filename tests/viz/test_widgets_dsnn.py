"""The training panel trains the dual-stream network with and without its accumulation pathway (SPEC section 5)."""
from __future__ import annotations

import json

import pytest

from spikelab import models
from spikelab.training import evaluate, load_checkpoint
from spikelab.viz._live import TrainingJob, TrainSettings
from spikelab.viz.widgets import TrainingPanel


def test_pathway_box_follows_the_model_and_reaches_the_settings():
    p = TrainingPanel()
    box = p.controls["pathway"]
    assert box.disabled and "spikelab-pathway" in box._dom_classes  # conv-small: no pathway
    p.controls["model"].value = "dsnn-small"
    assert not box.disabled and p.settings().pathway is True
    box.value = False
    assert p.settings().pathway is False
    with pytest.raises(TypeError, match="pathway must be a bool"):
        TrainSettings(model="dsnn-small", pathway=1)


def test_panel_trains_a_dsnn_and_reports_the_fsnn_alone(tmp_path):
    p = TrainingPanel(settings=TrainSettings(model="dsnn-small"), runs_dir=tmp_path, smoke=True)
    assert p.start() and p.wait(120), p.error
    job = p.job
    assert job.task.state == "done" and job.fsnn_acc is not None
    assert "full-spike network alone" in p.status.value
    config = json.loads((job.run_dir / "config.json").read_text())
    assert config["pathway"] is True and config["model"] == "dsnn-small"
    # the reported FSNN accuracy is the saved network evaluated without its pathway
    info_shape = (1, 8, 8)
    net = models.build("dsnn-small", num_classes=10, in_channels=info_shape[0], T=4, pathway=False)
    net.load_state_dict(load_checkpoint(job.run_dir)["model"])
    from spikelab import data

    _, test, _ = data.make_loaders("digits", batch_size=64, limit=128)
    assert evaluate(net, test)["acc"] == pytest.approx(job.fsnn_acc)


def test_job_without_pathway_trains_the_plain_fsnn(tmp_path):
    job = TrainingJob(TrainSettings(model="dsnn-small", pathway=False, epochs=1, limit=32, batch_size=16),
                      runs_dir=tmp_path)
    job.start()
    assert job.wait(120) and job.task.state == "done", job.task.error
    assert job.fsnn_acc is None  # the run is the FSNN: its test accuracy is the one in the history
    state = load_checkpoint(job.run_dir)["model"]
    # the pathway never ran: its batch norms saw no batch, while the spike stream's did
    tracked = {k: int(v) for k, v in state.items() if k.endswith("num_batches_tracked")}
    assert all(n == 0 for k, n in tracked.items() if "acc_shortcut" in k)
    assert all(n > 0 for k, n in tracked.items() if "acc_shortcut" not in k)
    assert sum("acc_shortcut" in k for k in tracked) == 2
