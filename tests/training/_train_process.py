"""``spikelab train`` in a process of its own, for the tests that need real processes (locks, ``kill -9``).

Test hooks, set through the environment and applied here by patching (spikelab itself has no test hooks):

- ``SPIKELAB_TEST_TIME=20250101-000000``: default run names get this timestamp, as for two runs started in the
  same second;
- ``SPIKELAB_TEST_PAUSE=step:N`` (after optimiser step N) or ``checkpoint:E`` (halfway through writing the
  checkpoint of epoch E): write the pid to ``SPIKELAB_TEST_MARKER``, then wait until the file ``SPIKELAB_TEST_GO``
  exists (without it, forever: the test kills the process there).

Usage: ``python _train_process.py TRAIN_ARGS...`` (the arguments after ``spikelab train``).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def _pause() -> None:
    marker = Path(os.environ["SPIKELAB_TEST_MARKER"])
    tmp = marker.with_name(marker.name + ".part")
    tmp.write_text(str(os.getpid()))
    tmp.rename(marker)
    go = os.environ.get("SPIKELAB_TEST_GO")
    while not (go and Path(go).exists()):
        time.sleep(0.02)


def _install_hooks() -> None:
    stamp = os.environ.get("SPIKELAB_TEST_TIME")
    if stamp:
        import spikelab.recipe

        spikelab.recipe.run_name = lambda model, dataset: f"{model}-{Path(str(dataset)).name}-{stamp}"
    where = os.environ.get("SPIKELAB_TEST_PAUSE")
    if not where:
        return
    kind, n = where.split(":")
    if kind == "step":
        from spikelab.training.callbacks import CallbackList

        fire = CallbackList.fire

        def fire_and_pause(self, event, payload):
            fire(self, event, payload)
            if event == "step_end" and payload["step"] == int(n):
                _pause()

        CallbackList.fire = fire_and_pause
    else:
        import torch

        save = torch.save

        def save_and_pause(obj, f, *args, **kwargs):
            if isinstance(obj, dict) and obj.get("epoch") == int(n) and hasattr(f, "write"):
                f.write(b"half a checkpoint")
                f.flush()
                _pause()
            return save(obj, f, *args, **kwargs)

        torch.save = save_and_pause


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    _install_hooks()
    from spikelab.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
