"""Plumbing for long work behind a panel, without widgets: a background task with a Stop event, a throttle,
and the training job that a training panel runs and draws.

A training panel runs ``fit`` in a :class:`BackgroundTask` so the page stays responsive; the task's
``stop_event`` is handed to ``fit``, which checks it every step. Redraws from the training thread go through a
:class:`Throttle` (the training panel redraws curves twice a second, raster and rates every 1.5 s):
unthrottled redraws flood the websocket and make Stop take seconds.

When the process exits normally (a Voila or Jupyter kernel asked to shut down: a closed dashboard page culled by
the server, the server stopped), :func:`stop_all_tasks` stops every task still running and waits a few seconds for
it, so that a training run ends "stopped" (``metrics.json`` written, its folder lock released) rather than being cut
mid-step.
"""
from __future__ import annotations

import atexit
import math
import os
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from spikelab._checks import check_choice, check_int, check_positive, check_range
from spikelab.history import History
from spikelab.neurons import NeuronConfig
from spikelab.recipe import DEFAULTS, default_neuron, is_dual_stream, neuron_to_recipe, run_name

TASK_STATES = ("idle", "running", "done", "stopped", "failed")
EXIT_WAIT_S = 4.0  # how long an exiting process waits for its tasks to stop (a kernel is killed after 5 s)
_RUNNING: "weakref.WeakSet[BackgroundTask]" = weakref.WeakSet()  # tasks started in this process and not ended


class Throttle:
    """Let an action through at most once per ``interval_s`` seconds (``clock`` is injectable for tests)."""

    def __init__(self, interval_s: float = 0.25, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = check_positive(interval_s, "interval_s")
        self._clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def ready(self, force: bool = False) -> bool:
        """True (and restart the interval) if ``interval_s`` has passed since the last True, or if ``force``."""
        with self._lock:
            now = self._clock()
            if force or self._last is None or now - self._last >= self.interval_s:
                self._last = now
                return True
            return False

    def reset(self) -> None:
        """Forget the last action: the next :meth:`ready` is True."""
        with self._lock:
            self._last = None


_prewarm_lock = threading.Lock()
_prewarm_thread: threading.Thread | None = None


def prewarm() -> threading.Thread:
    """Import in a background thread what the first Start of a training run needs, so that pressing Start does not
    wait for it: the training loop and metrics, ``torch._dynamo`` (``torch.optim`` imports it when the first
    optimiser is built: about a second on a laptop CPU), and spikelab's native kernels (compiled on a machine's
    first use). Idempotent: returns the one thread (``join`` it to wait)."""
    global _prewarm_thread
    with _prewarm_lock:
        if _prewarm_thread is None:
            def body() -> None:
                try:
                    import torch._dynamo  # noqa: F401

                    import spikelab.metrics  # noqa: F401
                    import spikelab.training  # noqa: F401
                    from spikelab import _native

                    _native.load()
                except Exception:  # noqa: BLE001  (only a head start: Start imports these itself)
                    pass

            _prewarm_thread = threading.Thread(target=body, name="spikelab-prewarm", daemon=True)
            _prewarm_thread.start()
        return _prewarm_thread


class BackgroundTask:
    """Run ``fn(stop_event)`` in a daemon thread; :meth:`stop` sets the event, :meth:`wait` joins.

    ``state`` moves ``idle -> running -> done | stopped | failed``; on failure ``error`` holds a one-line message
    (``"ValueError: ..."``) and ``traceback`` the full text. ``on_done(task)`` runs in the thread at the end,
    whatever the outcome. The thread uses one intra-op torch thread so the kernel stays responsive on few cores.
    """

    def __init__(self) -> None:
        self.state = "idle"
        self.result: Any = None
        self.error: str | None = None
        self.traceback: str | None = None
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, fn: Callable[[threading.Event], Any], *,
              on_done: Callable[["BackgroundTask"], None] | None = None) -> None:
        """Start ``fn`` in a new thread with a fresh stop event; raises ``RuntimeError`` if one is running."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        if self.running:
            raise RuntimeError("a task is already running; stop it first")
        self.stop_event = threading.Event()
        self.state, self.result, self.error, self.traceback = "running", None, None, None
        stop_event = self.stop_event

        def body() -> None:
            import torch

            torch.set_num_threads(1)
            try:
                self.result = fn(stop_event)
                self.state = "stopped" if stop_event.is_set() else "done"
            except Exception as e:  # reported to the panel, never raised into the kernel
                self.state = "failed"
                self.error = f"{type(e).__name__}: {e}"
                self.traceback = traceback.format_exc()
            finally:
                try:
                    if on_done is not None:
                        on_done(self)
                finally:
                    _RUNNING.discard(self)

        self._thread = threading.Thread(target=body, name="spikelab-task", daemon=True)
        _RUNNING.add(self)
        self._thread.start()

    def stop(self) -> None:
        """Ask the task to stop (it checks the event between steps)."""
        self.stop_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Join the thread; True if it has finished (or never started) within ``timeout`` seconds."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()


def stop_all_tasks(timeout: float = EXIT_WAIT_S) -> list[BackgroundTask]:
    """Stop every :class:`BackgroundTask` running in this process and wait up to ``timeout`` seconds in all for
    them to end; returns those still running after that. Registered with ``atexit``: a kernel that shuts down
    stops its training, which then writes its run folder's ``metrics.json`` (state "stopped")."""
    tasks = [t for t in list(_RUNNING) if t.running]
    for t in tasks:
        t.stop()
    deadline = time.monotonic() + check_positive(timeout, "timeout")
    for t in tasks:
        t.wait(max(deadline - time.monotonic(), 0.0))
    return [t for t in tasks if t.running]


atexit.register(stop_all_tasks)


TRAIN_DATASETS = ("digits", "digits-events", "fashion-mnist", "fashion-mnist-events")
TRAIN_MODELS = ("conv-small", "mlp", "dsnn-small")


@dataclass(frozen=True)
class TrainSettings:
    """What a training panel trains: dataset and model names, loss (``"sdt"``/``"tet"`` with ``lam``), time steps
    ``T``, ``epochs``, learning rate ``lr``, ``batch_size``, ``limit`` (samples kept per split, None for all),
    ``neuron`` (the spiking layers' :class:`~spikelab.neurons.NeuronConfig`, its surrogate with its width; None:
    the model's default), for the dual-stream ``dsnn-*`` models ``pathway``: train with the auxiliary
    accumulation pathway (dual-stream training, SPEC section 5) or without it (the plain full-spike network), and
    ``preset``: the network as built (``"healthy"``) or broken on purpose so that the training doctor has something
    to report (``"break it"``, :func:`spikelab.analysis.doctor.apply_preset`, applied after the neuron settings).
    The rest of the recipe (Adam, cosine schedule, seed, the partial last batch dropped) and every default are those
    of ``spikelab train`` (:data:`spikelab.recipe.DEFAULTS`). Invalid values raise ``ValueError``/``TypeError`` with
    a readable message."""

    dataset: str = DEFAULTS["dataset"]
    model: str = DEFAULTS["model"]
    loss: str = DEFAULTS["loss"]
    lam: float = 0.05
    T: int = DEFAULTS["T"]
    epochs: int = DEFAULTS["epochs"]
    lr: float = DEFAULTS["lr"]
    batch_size: int = DEFAULTS["batch_size"]
    limit: int | None = None
    neuron: NeuronConfig | None = None
    pathway: bool = True
    preset: str = "healthy"

    def __post_init__(self) -> None:
        from spikelab.analysis.doctor import PRESETS

        check_choice(self.preset, "preset", PRESETS)
        check_choice(self.dataset, "dataset", TRAIN_DATASETS)
        check_choice(self.model, "model", TRAIN_MODELS)
        check_choice(self.loss, "loss", ("sdt", "tet"))
        check_range(self.lam, "lam", 0.0, 1.0)
        check_int(self.T, "T", minimum=1)
        check_int(self.epochs, "epochs", minimum=1)
        lr = self.lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or not 0 < lr <= 1:
            raise ValueError(f"learning rate must be a number in (0, 1], got {lr!r}")
        check_int(self.batch_size, "batch_size", minimum=1)
        if self.limit is not None:
            check_int(self.limit, "limit", minimum=1)
        if not isinstance(self.pathway, bool):
            raise TypeError(f"pathway must be a bool, got {type(self.pathway).__name__}")
        if self.neuron is not None and not isinstance(self.neuron, NeuronConfig):
            raise TypeError(f"neuron must be a spikelab.neurons.NeuronConfig or None, got {type(self.neuron).__name__}")

    def run_name(self) -> str:
        """The run folder name, as ``spikelab train`` names it: ``<model>-<dataset>-<date>-<time>``."""
        return run_name(self.model, self.dataset)

    def run_config(self) -> dict[str, Any]:
        """The run settings ``spikelab train`` would store for the same choice (before the data adds its own), and
        ``preset`` if the network is broken on purpose (so that ``spikelab eval`` rebuilds it broken)."""
        neuron = self.neuron if self.neuron is not None else default_neuron(self.model)
        return dict(model=self.model, dataset=self.dataset, data_root=None, limit=self.limit, augment=False,
                    size=None, T=self.T, batch_size=self.batch_size, drop_last=DEFAULTS["drop_last"],
                    neuron=neuron_to_recipe(neuron), pathway=self.pathway if is_dual_stream(self.model) else None,
                    **({"preset": self.preset} if self.preset != "healthy" else {}))

    def train_config(self):
        """The :class:`~spikelab.training.TrainConfig` ``spikelab train`` would build for the same choice."""
        from spikelab.training import TrainConfig

        return TrainConfig(epochs=self.epochs, lr=float(self.lr), optimizer=DEFAULTS["optimizer"],
                           schedule=DEFAULTS["schedule"], loss=self.loss, lam=self.lam, seed=DEFAULTS["seed"])


class TrainingJob:
    """One training run of :class:`TrainSettings` in a :class:`BackgroundTask`, recorded as it goes.

    ``listener(event, job)`` is called from the training thread with ``event`` one of ``"start"`` (data and model
    ready), ``"step"``, ``"epoch"``, ``"end"`` (always last, also after a failure or a stop). Meanwhile ``history``
    grows step by step, ``epoch_end_steps[e]`` is the step at which epoch ``e + 1`` ended, and
    :meth:`take_spikes` returns the first sample's spikes of the latest batch and the firing rates since the last
    call.

    The run is a run like any ``spikelab train`` run: its folder under ``runs_dir`` is claimed with the same
    function and name format when it starts (``run_dir``, None before), locked while it trains, and holds the same
    settings, so ``spikelab eval`` and ``spikelab train --resume`` accept it. A run that fails before its first
    epoch leaves no folder. Once the data and model are ready, ``model`` is the network being trained and
    ``run_config`` its complete recipe (what ``config.json`` holds besides the TrainConfig). For a dual-stream model
    trained with its pathway, ``fsnn_acc`` is the test accuracy of the full-spike network alone (pathway removed)
    once the run has finished.

    The training doctor (:class:`~spikelab.analysis.DoctorCallback`, on the first test batch) diagnoses the network
    before training and after every epoch; its log is ``doctor_log``, up to date when ``"start"`` and each
    ``"epoch"`` are emitted.
    """

    def __init__(self, settings: TrainSettings, *, runs_dir: str | os.PathLike,
                 listener: Callable[[str, "TrainingJob"], None] | None = None) -> None:
        if not isinstance(settings, TrainSettings):
            raise TypeError(f"settings must be a TrainSettings, got {type(settings).__name__}")
        if not isinstance(runs_dir, (str, os.PathLike)):
            raise TypeError(f"runs_dir must be a folder path, got {type(runs_dir).__name__}")
        self.settings = settings
        self.runs_dir = Path(runs_dir)
        self.run_dir: Path | None = None
        self.history = History(config=dict(asdict(settings), neuron=settings.run_config()["neuron"]),
                               name=settings.run_name())
        self.epoch_end_steps: list[int] = []
        self.total_steps = 0
        self.task = BackgroundTask()
        self.doctor_log: list[dict[str, Any]] = []
        self._listener = listener
        self._meters: tuple[Any, Any] | None = None
        self.model: Any = None
        self.run_config: dict[str, Any] | None = None
        self.fsnn_acc: float | None = None

    def start(self) -> None:
        """Start training in the background."""
        self.task.start(self._run, on_done=lambda _task: self._emit("end"))

    def stop(self) -> None:
        """Ask the run to stop before its next batch."""
        self.task.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Join the training thread; True if the run has ended within ``timeout`` seconds."""
        return self.task.wait(timeout)

    def test_series(self, key: str) -> tuple[list[int], list[float]]:
        """``(steps, values)`` of an epoch-level ``key`` (e.g. ``"test_acc"``), placed at each epoch's last step."""
        pairs = [(s, e[key]) for s, e in zip(self.epoch_end_steps, self.history.epochs) if e.get(key) is not None]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def take_spikes(self) -> tuple[dict[str, list[list[int]]], dict[str, float]]:
        """``({layer: [T][N] spikes of one sample}, {layer: firing rate})`` from the batches since the last call."""
        if self._meters is None:
            return {}, {}
        sample, rates = self._meters
        out = sample.compute(), rates.compute()
        rates.reset()
        return out

    def _emit(self, event: str) -> None:
        if self._listener is not None:
            self._listener(event, self)

    def _run(self, stop_event: threading.Event) -> History:
        import torch

        from spikelab import recipe
        from spikelab.analysis import DoctorCallback
        from spikelab.losses import get_loss
        from spikelab.metrics import FiringRates, SpikeSample
        from spikelab.training import claim_run, evaluate, fit

        s = self.settings
        config = s.train_config()
        with claim_run(self.runs_dir, base=s.run_name()) as run:
            self.run_dir = run.path
            self.history.name = run.path.name
            cfg = s.run_config()
            loaders = recipe.make_data(cfg, batch_size=s.batch_size, seed=config.seed)
            cfg = recipe.with_data(cfg, loaders[2])
            torch.manual_seed(config.seed)  # the weights spikelab train would start from
            net = recipe.build_model(cfg)
            self.model, self.run_config = net, cfg
            x, y = next(iter(loaders[1]))
            doctor = DoctorCallback(net, x.transpose(0, 1).contiguous() if cfg["is_event"] else x, y,
                                    loss=get_loss(s.loss, lam=s.lam), warn=False)
            self.doctor_log = doctor.log
            sample, rates = SpikeSample(net, max_neurons=256).attach(), FiringRates(net).attach()
            self._meters = (sample, rates)
            try:
                result = fit(net, loaders, config, callbacks=[doctor, self._on_event], stop_event=stop_event,
                             run_dir=run.path, run_config=cfg, progress=False)
            finally:
                sample.detach()
                rates.detach()
            if cfg.get("pathway") and result.epochs and not result.stopped:
                net.pathway = False  # the deployable network: the spike stream alone
                self.fsnn_acc = evaluate(net, loaders[1], sequence_input=cfg["is_event"])["acc"]
                net.pathway = True
        self.history = result
        return result

    def _on_event(self, event: str, record: dict[str, Any]) -> None:
        if event == "fit_start":
            self.total_steps = record["epochs"] * record["steps_per_epoch"]
            self._emit("start")
        elif event == "step_end":
            self.history.steps.append(dict(record))
            self._emit("step")
        elif event == "epoch_end":
            self.history.epochs.append({k: v for k, v in record.items() if k != "probe"})
            self.epoch_end_steps.append(self.history.steps[-1]["step"] if self.history.steps else 0)
            self._emit("epoch")
