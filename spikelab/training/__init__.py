"""The training engine: ``fit`` / ``evaluate`` returning a :class:`~spikelab.history.History`, callbacks, run
folders, checkpoints and data-parallel training. It reports; it never prints or plots.

>>> from spikelab.training import fit, TrainConfig
>>> history = fit(model, (train_loader, test_loader), TrainConfig(epochs=5, lr=1e-3), run_dir="runs/demo")
"""
from spikelab.training.callbacks import EVENTS, Callback, CallbackList
from spikelab.training.config import (
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    build_optimizer,
    lr_at,
    parse_device,
    select_device,
)
from spikelab.training.distributed import init_distributed, shard_loader, shutdown_distributed, sync_tdbn, world
from spikelab.training.evaluation import evaluate
from spikelab.training.folders import (
    RunBusyError,
    RunFolderError,
    RunLock,
    check_run_name,
    claim_run,
    clean_stale,
    is_running,
    lock_run,
)
from spikelab.training.guards import DivergenceError
from spikelab.training.loop import final_metrics, fit
from spikelab.training.resume import ResumeWarning, planned_epochs
from spikelab.training.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    RUN_STATES,
    RunWriter,
    atomic_write,
    list_runs,
    load_checkpoint,
    load_metrics,
    load_run,
    run_state,
    save_checkpoint,
    write_json,
)

__all__ = [
    "fit", "evaluate", "final_metrics", "TrainConfig", "OPTIMIZERS", "SCHEDULES", "build_optimizer", "lr_at",
    "parse_device", "select_device", "Callback", "CallbackList", "EVENTS", "init_distributed",
    "shutdown_distributed", "shard_loader", "sync_tdbn", "world", "RunWriter", "list_runs", "load_run", "load_metrics",
    "load_checkpoint", "save_checkpoint", "write_json", "CONFIG_FILE", "HISTORY_FILE", "METRICS_FILE",
    "CHECKPOINT_FILE", "atomic_write", "run_state", "RUN_STATES", "RunLock", "RunFolderError", "RunBusyError",
    "check_run_name", "claim_run", "lock_run", "is_running", "clean_stale", "DivergenceError", "ResumeWarning",
    "planned_epochs",
]
