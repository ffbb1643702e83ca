"""Training in phases on one model, recorded as one run: time inheritance training (TIT) and staged fine-tuning.

A :class:`Phase` changes what ``fit`` trains for a number of epochs: the time steps ``T`` of a static input, the
peak learning rate, or which parameters are trained (the rest frozen). :func:`fit_phases` runs ``fit`` once per
phase on the same model, so the weights carry over; the records of all phases go into one
:class:`~spikelab.history.History` and one run folder, numbered on (epochs, steps and time continue), each record
tagged with its ``phase`` and ``T``. :func:`fit_tit` is the TET paper's time inheritance training (SPEC section 3):
train many epochs at a small T, then fine-tune a few at the target T. :func:`evaluate_at_T` evaluates a trained
model at other T (a table of accuracy against T).

Optimiser state: each phase starts a fresh optimiser and its own learning-rate schedule (``config.schedule`` over
the phase's epochs, from the phase's ``lr``), as fine-tuning from saved weights does. Adam's moment estimates (and
SGD's momentum) describe the gradients of the network unrolled over the previous phase's T, or of the previous
phase's trainable set; Adam's bias correction makes a fresh start safe, and a schedule restarted per phase lets
the fine-tuning phase set its own learning rate.
"""
from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from spikelab._checks import check_int, check_positive
from spikelab.history import History
from spikelab.training.callbacks import Callback, CallbackList
from spikelab.training.config import TrainConfig
from spikelab.training.distributed import world
from spikelab.training.evaluation import LossFn, _resolve_loss, evaluate
from spikelab.training.guards import DivergenceError
from spikelab.training.loop import _check_overrides, _open_run, _split_data, final_metrics, fit
from spikelab.training.runs import RunWriter


@dataclass(frozen=True)
class Phase:
    """One phase of :func:`fit_phases`.

    Fields:
        epochs: passes over the training data in this phase.
        T: time steps of a static input during this phase (sets ``model.T``); None keeps the model's.
        lr: peak learning rate of this phase's schedule; None takes ``config.lr``.
        trainable: names (or name prefixes ending in ``"."``) of the parameters trained in this phase; the others
            are frozen (``requires_grad=False``) for the phase. None trains every parameter that was trainable
            before the call. Frozen layers' batch-norm running statistics still follow the data (train mode).
        name: the label of the phase's records (default ``"T=<T>"`` when ``T`` is set, else ``"phase<k>"``).
    """

    epochs: int
    T: int | None = None
    lr: float | None = None
    trainable: tuple[str, ...] | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        check_int(self.epochs, "epochs", minimum=1)
        if self.T is not None:
            check_int(self.T, "T", minimum=1)
        if self.lr is not None:
            check_positive(self.lr, "lr")
        if self.trainable is not None:
            if isinstance(self.trainable, str) or not all(isinstance(p, str) and p for p in self.trainable):
                raise TypeError(f"trainable must be a tuple of parameter names or prefixes, got {self.trainable!r}")
            object.__setattr__(self, "trainable", tuple(self.trainable))
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise TypeError(f"name must be a non-empty str or None, got {self.name!r}")

    def label(self, index: int) -> str:
        """The phase's name, or its default for position ``index`` (0-based)."""
        if self.name is not None:
            return self.name
        return f"T={self.T}" if self.T is not None else f"phase{index + 1}"


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(name == p or (p.endswith(".") and name.startswith(p)) for p in patterns)


def _check_phases(model: nn.Module, phases: Sequence[Phase], static: bool) -> list[Phase]:
    if isinstance(phases, Phase) or not isinstance(phases, Sequence) or not phases:
        raise TypeError("phases must be a non-empty list of Phase")
    for i, ph in enumerate(phases):
        if not isinstance(ph, Phase):
            raise TypeError(f"phases[{i}] must be a Phase, got {type(ph).__name__}")
        if ph.T is not None:
            if not hasattr(model, "T"):
                raise TypeError(f"phases[{i}] sets T={ph.T}, but {type(model).__name__} has no settable T "
                                "(a spikelab model has one)")
            if not static:
                raise ValueError(f"phases[{i}] sets T={ph.T}, but the data are event sequences [B, T, ...] that "
                                 "bring their own T: a T schedule needs static input (direct encoding)")
        if ph.trainable is not None:
            names = [n for n, _ in model.named_parameters()]
            for p in ph.trainable:
                if not any(_matches(n, (p,)) for n in names):
                    raise ValueError(f"phases[{i}].trainable entry {p!r} matches no parameter of the model "
                                     f"(names look like {names[:3]}; end a prefix with '.')")
    labels = [ph.label(i) for i, ph in enumerate(phases)]
    if len(set(labels)) != len(labels):
        raise ValueError(f"phase names must be distinct, got {labels} (give each Phase a name)")
    return list(phases)


def _is_static(data: Any, sequence_input: bool | None) -> bool:
    if sequence_input is not None:
        return not sequence_input
    _, _, info = _split_data(data)
    return not bool(getattr(info, "is_event", False))


class _Relay(Callback):
    """Renumbers one phase's records into the whole run, writes them to the run folder and passes them on."""

    def __init__(self, run: "_PhasedRun", phase: str, T: int | None) -> None:
        self.run, self.phase, self.T = run, phase, T
        self.pending: list[dict[str, Any]] = []

    def _shift(self, record: dict[str, Any]) -> dict[str, Any]:
        r = self.run
        out = dict(record, epoch=record["epoch"] + r.epoch0, time_s=record["time_s"] + r.time0, phase=self.phase)
        if "step" in record:
            out["step"] = record["step"] + r.step0
        if self.T is not None:
            out["T"] = self.T
        return out

    def on_fit_start(self, state: dict[str, Any]) -> None:
        if not self.run.started:
            self.run.started = True
            self.run.cbs.fire("fit_start", dict(state, name=self.run.history.name, config=self.run.history.config,
                                                epochs=self.run.total_epochs, start_epoch=0))

    def on_step_end(self, record: dict[str, Any]) -> None:
        rec = self._shift(record)
        self.run.live.steps.append(rec)
        self.pending.append(rec)
        self.run.cbs.fire("step_end", rec)

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        rec = self._shift(record)
        live = self.run.live
        live.epochs.append(rec)
        writer = self.run.writer
        if writer is not None:
            writer.append(self.pending, [rec])
            writer.checkpoint(dict(
                format=1, model=self.run.model.state_dict(), epoch=rec["epoch"], step=live.steps[-1]["step"],
                time_s=rec["time_s"], train_config=self.run.config.to_dict(), run_config=live.config,
                phases=self.run.phase_dicts, phase=self.phase, history=dict(steps=live.steps, epochs=live.epochs),
            ))
        self.pending = []
        self.run.cbs.fire("epoch_end", rec)

    def flush(self) -> None:
        """Write the steps of a cut epoch (a stop), as ``fit`` does."""
        if self.pending and self.run.writer is not None:
            self.run.writer.append(self.pending, [])
        self.pending = []


@dataclass
class _PhasedRun:
    model: nn.Module
    config: TrainConfig
    history: History  # the returned record, merged from each phase's History (complete on every process)
    live: History  # the same, built from callbacks as they come (rank 0), for the run folder
    writer: RunWriter | None
    cbs: CallbackList
    total_epochs: int
    phase_dicts: list[dict[str, Any]]
    epoch0: int = 0
    step0: int = 0
    time0: float = 0.0
    started: bool = False


def fit_phases(
    model: nn.Module,
    data: Any,
    phases: Sequence[Phase],
    config: TrainConfig | None = None,
    *,
    loss: str | LossFn | None = None,
    callbacks: Callback | Callable | list | None = None,
    stop_event: threading.Event | None = None,
    probe: torch.Tensor | None = None,
    run_dir: str | Path | None = None,
    run_config: dict[str, Any] | None = None,
    name: str | None = None,
    progress: bool = True,
    sequence_input: bool | None = None,
    **overrides: Any,
) -> History:
    """Train ``model`` through ``phases`` (one ``fit`` per phase, same weights) and return one History.

    Each phase trains ``phase.epochs`` epochs with ``config`` (its ``epochs`` is ignored), a fresh optimiser and
    the phase's own schedule from ``phase.lr`` (see the module docstring). Before a phase, ``model.T`` is set to
    ``phase.T`` and the parameters outside ``phase.trainable`` are frozen; afterwards the model keeps the last
    phase's T and every parameter gets back the ``requires_grad`` it had before the call.

    Records are those of :func:`~spikelab.training.fit` with epochs, steps and ``time_s`` numbered over the
    whole run, plus ``phase`` (the phase's name) and, where the phase sets it, ``T``. The run folder (``run_dir``)
    holds them all as one run (claimed and locked for the run's life, as by ``fit``): ``config.json`` (with ``phases``, and ``epochs`` the total), ``history.jsonl``
    appended after every epoch, ``metrics.json`` (with ``phases``: per phase its epochs, T, best test accuracy,
    time and ``epoch_steps`` = epochs x T) and, after every epoch, ``checkpoint.pt`` with the model weights and
    run settings (``spikelab eval`` reads it). A phased run is not resumed from its checkpoint (it holds no
    optimiser state: each phase starts a fresh one). Callbacks see one run: one ``fit_start`` (``epochs`` = the
    total), the renumbered records, one ``fit_end``. A stop ends the whole run.

    Args:
        model: as for ``fit``; it needs a settable ``T`` if a phase sets one (every spikelab model has it).
        data: as for ``fit``. A phase that sets ``T`` needs static input: event sequences bring their own T.
        phases: the :class:`Phase` list, run in order.
        config, loss, callbacks, stop_event, probe, run_config, name, progress, sequence_input, overrides: as for
            ``fit``.
        run_dir: the run folder (all phases in one); None writes nothing.

    Raises:
        TypeError, ValueError: bad phases (not Phase objects, a ``trainable`` entry matching no parameter,
            repeated names), a T schedule on event data, or what ``fit`` raises.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    config = config if config is not None else TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    _check_overrides(overrides)
    config = dataclasses.replace(config, **overrides)
    phases = _check_phases(model, phases, _is_static(data, sequence_input))
    total = sum(ph.epochs for ph in phases)
    phase_dicts = [dict(name=ph.label(i), epochs=ph.epochs, T=ph.T, lr=ph.lr if ph.lr is not None else config.lr,
                        trainable=list(ph.trainable) if ph.trainable is not None else None)
                   for i, ph in enumerate(phases)]
    run_config = dict(run_config or {})
    clash = sorted(set(run_config) & (set(config.to_dict()) | {"phases"}))
    if clash:
        raise ValueError(f"run_config must not repeat TrainConfig fields or 'phases' {clash}")
    _, loss_name = _resolve_loss(loss, config)  # checks loss, and names it as fit does
    full_config = {**config.to_dict(), "epochs": total, "loss": loss_name, **run_config, "phases": phase_dicts}
    name = name if name is not None else (Path(run_dir).name if run_dir is not None else "run")
    rank, _ = world()
    with _open_run(run_dir, rank == 0, False):  # claimed and locked for the whole run, as fit does
        return _run_phases(model, data, phases, config, full_config, phase_dicts, total, loss=loss, name=name,
                           callbacks=callbacks, stop_event=stop_event, probe=probe, run_dir=run_dir, rank=rank,
                           progress=progress, sequence_input=sequence_input)


def _run_phases(model: nn.Module, data: Any, phases: list[Phase], config: TrainConfig, full_config: dict[str, Any],
                phase_dicts: list[dict[str, Any]], total: int, *, loss: Any, name: str, callbacks: Any,
                stop_event: Any, probe: Any, run_dir: Any, rank: int, progress: bool,
                sequence_input: bool | None) -> History:
    writer = RunWriter(run_dir, enabled=rank == 0) if run_dir is not None else None
    run = _PhasedRun(model=model, config=config, history=History(config=full_config, name=name),
                     live=History(config=full_config, name=name), writer=writer, cbs=CallbackList(callbacks),
                     total_epochs=total, phase_dicts=phase_dicts)
    if writer is not None:
        writer.start(full_config, run.history)

    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    stopped = False
    try:
        for i, ph in enumerate(phases):
            label = ph.label(i)
            if ph.T is not None:
                model.T = ph.T
            for n, p in model.named_parameters():
                p.requires_grad_(flags[n] and (ph.trainable is None or _matches(n, ph.trainable)))
            lr = ph.lr if ph.lr is not None else config.lr
            phase_config = dataclasses.replace(config, epochs=ph.epochs, lr=lr, lr_min=min(config.lr_min, lr))
            relay = _Relay(run, label, ph.T)
            try:
                h = fit(model, data, phase_config, loss=loss, callbacks=relay, stop_event=stop_event, probe=probe,
                        name=name, progress=progress, sequence_input=sequence_input)
            except DivergenceError as err:  # recorded in the run folder as fit records it, then raised
                relay.flush()
                if writer is not None:
                    writer.finish({**final_metrics(run.live, False), "error": str(err), "phase": label})
                raise
            relay.flush()
            for rec in h.steps:
                run.history.steps.append(relay._shift(rec))
            for rec in h.epochs:
                run.history.epochs.append(relay._shift(rec))
            tests = [e["test_acc"] for e in h.epochs if e.get("test_acc") is not None]
            time_s = h.steps[-1]["time_s"] if h.steps else 0.0
            phase_dicts[i].update(done_epochs=len(h.epochs), best_test_acc=max(tests) if tests else None,
                                  time_s=time_s, epoch_steps=len(h.epochs) * (ph.T or getattr(model, "T", 1)))
            run.epoch0 += len(h.epochs)
            run.step0 += len(h.steps)
            run.time0 += time_s
            if h.stopped:
                stopped = True
                break
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])

    run.history.stopped = stopped
    metrics = final_metrics(run.history, stopped)
    metrics["phases"] = [d for d in phase_dicts if "done_epochs" in d]
    metrics["epoch_steps"] = sum(d["epoch_steps"] for d in metrics["phases"])
    if writer is not None:
        writer.finish(metrics)
    if rank == 0:
        run.cbs.fire("fit_end", dict(history=run.history, stopped=stopped, metrics=metrics))
    return run.history


def tit_phases(T: Sequence[int], epochs: Sequence[int], lr: Sequence[float | None] | None = None) -> list[Phase]:
    """The phases of time inheritance training: ``epochs[k]`` epochs at ``T[k]``, in order (SPEC section 3).

    ``tit_phases((2, 6), (300, 50))`` is the paper's cost example: 300 epochs at T=2, then 50 at T=6
    (900 epoch-steps, against 1800 for 300 epochs at T=6). ``lr`` gives each phase's peak learning rate (None:
    the config's).
    """
    for arg, value in (("T", T), ("epochs", epochs)):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise TypeError(f"{arg} must be a sequence of ints, one per phase, got {type(value).__name__}")
    if len(T) < 2 or len(T) != len(epochs):
        raise ValueError(f"T and epochs must have the same length, at least 2 (one per phase), got T={tuple(T)} "
                         f"and epochs={tuple(epochs)}")
    lrs = [None] * len(T) if lr is None else list(lr)
    if len(lrs) != len(T):
        raise ValueError(f"lr must have one entry per phase ({len(T)}), got {len(lrs)}")
    return [Phase(epochs=e, T=t, lr=r) for t, e, r in zip(T, epochs, lrs)]


def fit_tit(
    model: nn.Module,
    data: Any,
    config: TrainConfig | None = None,
    *,
    T: Sequence[int],
    epochs: Sequence[int],
    lr: Sequence[float | None] | None = None,
    **kwargs: Any,
) -> History:
    """Time inheritance training (Deng et al. 2022; SPEC section 3): ``epochs[k]`` epochs at ``T[k]`` in turn,
    each phase continuing from the previous one's weights; one run, one History (see :func:`fit_phases`).

    ``fit_tit(model, data, config, T=(2, 6), epochs=(300, 50))`` trains 300 epochs at T=2, then fine-tunes 50 at
    T=6. ``kwargs`` go to :func:`fit_phases` (``run_dir``, ``callbacks``, ``loss``, TrainConfig overrides, ...).
    """
    return fit_phases(model, data, tit_phases(T, epochs, lr), config, **kwargs)


def evaluate_at_T(
    model: nn.Module,
    loader: DataLoader,
    T: Sequence[int],
    *,
    sequence_input: bool | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Accuracy of ``model`` at each number of time steps in ``T`` (a static input is encoded over each T).

    Returns one row per T, in order: ``{"T", "acc", "loss", "n", "firing_rate"}`` (``firing_rate``: the mean over
    layers of spikes per neuron per step; None without spiking layers). ``model.T`` is restored afterwards.
    ``kwargs`` go to :func:`~spikelab.training.evaluate` (``loss``, ``device``, ...).

    Raises:
        TypeError: the model has no settable ``T``.
        ValueError: ``T`` empty or not ints >= 1, or the loader yields event sequences (their T is fixed by the
            frames: make loaders with another T instead).
    """
    if not hasattr(model, "T"):
        raise TypeError(f"model must have a settable T (a spikelab model), got {type(model).__name__}")
    if isinstance(T, (str, bytes)) or not isinstance(T, Sequence) or not T:
        raise ValueError(f"T must be a non-empty sequence of ints >= 1, got {T!r}")
    Ts = [check_int(t, f"T[{i}]", minimum=1) for i, t in enumerate(T)]
    info = getattr(getattr(loader, "dataset", None), "info", None)
    if sequence_input or (sequence_input is None and getattr(info, "is_event", False)):
        raise ValueError("the loader yields event sequences [B, T, ...] whose T is fixed by the frames; evaluate "
                         "at another T with loaders made at that T (spikelab.data.make_loaders(..., T=...))")
    old = model.T
    rows = []
    try:
        for t in Ts:
            model.T = t
            res = evaluate(model, loader, sequence_input=False, **kwargs)
            rates = list(res["firing_rates"].values())
            rows.append(dict(T=t, acc=res["acc"], loss=res["loss"], n=res["n"],
                             firing_rate=sum(rates) / len(rates) if rates else None))
    finally:
        model.T = old
    return rows
