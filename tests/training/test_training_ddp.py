"""Data-parallel training: 2 processes (torchrun, gloo, CPU) reach the same result as one process on the same
global batch, with batch norm (tdBN synchronised over the processes) in the model."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import _training_ddp_worker as worker

from spikelab.training import load_run

HERE = Path(__file__).parent
REPO = HERE.parents[1]


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    # own process group: on a timeout, the workers torchrun started are ended with it, not left running
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-3000:]
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def test_two_processes_match_one_on_the_same_global_batch(tmp_path):
    _torchrun(str(HERE / "_training_ddp_worker.py"), str(tmp_path / "ddp"), cwd=tmp_path)
    dist_run = load_run(tmp_path / "ddp")
    saved = torch.load(tmp_path / "ddp" / "weights.pt", weights_only=True)
    assert saved["world_size"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]  # only rank 0 wrote, and only there

    torch.set_num_threads(1)
    model, data = worker.make()
    single = worker.fit(model, data, progress=False, **worker.SETTINGS)
    assert len(dist_run.steps) == len(single.steps) == 3 * 4  # 64 samples / global batch 16, 3 epochs
    for a, b in zip(dist_run.steps + dist_run.epochs, single.steps + single.epochs):
        assert a.keys() == b.keys()
        for k in a:
            if k == "time_s":
                continue
            if isinstance(a[k], dict):
                assert a[k] == pytest.approx(b[k], abs=1e-5), k
            else:
                assert a[k] == pytest.approx(b[k], abs=1e-5), k
    for k, v in model.state_dict().items():
        torch.testing.assert_close(saved["model"][k], v, atol=1e-5, rtol=1e-5)
    assert dist_run.epochs[-1]["test_acc"] > 0.4  # it learned something: the comparison is not between two no-ops


def test_spikelab_train_under_torchrun(tmp_path):
    proc = _torchrun("-m", "spikelab", "train", "--model", "mlp", "--limit", "64", "--epochs", "1",
                     "--batch-size", "16", "--out", str(tmp_path), "--name", "cli", "--no-progress", cwd=tmp_path)
    assert proc.stdout.count("done: test accuracy") == 1  # rank 0 prints, rank 1 stays quiet
    assert "x 2 processes" in proc.stdout
    cfg = json.loads((tmp_path / "cli" / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["batch_size"] == 16
    h = load_run(tmp_path / "cli")
    assert len(h.steps) == 4 and len(h.epochs) == 1  # 64 samples in global batches of 16


def test_every_built_in_model_matches_one_process_with_synchronised_tdbn(tmp_path):
    """One training step of each registered model: logits, averaged gradients and running statistics on 2 processes
    equal those of one process on the global batch (float64), and differ without synchronised tdBN."""
    _torchrun(str(HERE / "_training_ddp_models_worker.py"), str(tmp_path / "diffs.json"), cwd=tmp_path)
    diffs = json.loads((tmp_path / "diffs.json").read_text())
    names = [k.removesuffix(" sync=True") for k in diffs if k.endswith("sync=True")]
    assert len(names) == 8
    for name in names:
        synced, alone = diffs[f"{name} sync=True"], diffs[f"{name} sync=False"]
        assert max(synced.values()) < 1e-10, (name, synced)
        assert alone["running_stats"] > 1e-3 and max(alone["logits"], alone["grads"]) > 1e-3, (name, alone)


def test_sync_tdbn_defaults_to_the_number_of_processes():
    from spikelab import models
    from spikelab.layers import TdBatchNorm
    from spikelab.training import TrainConfig, sync_tdbn

    model = models.build("conv-small", num_classes=3, in_channels=1, T=2)
    assert sync_tdbn(model) == 2  # two tdBN layers, not synchronised in a single process
    assert not any(m.sync for m in model.modules() if isinstance(m, TdBatchNorm))
    sync_tdbn(model, True)
    assert all(m.sync for m in model.modules() if isinstance(m, TdBatchNorm))
    with pytest.raises(TypeError, match="sync_bn"):
        TrainConfig(sync_bn="yes")
    assert TrainConfig().sync_bn is None
