"""``fit``: the training loop. It reports through a History and callbacks; it never prints or plots."""
from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
import warnings
from contextlib import nullcontext
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from spikelab._checks import check_tensor
from spikelab.history import History
from spikelab.losses import auxiliary_outputs, multi_head_loss, rate_predict
from spikelab.metrics import FiringRates, _all_reduce
from spikelab.training.callbacks import Callback, CallbackList
from spikelab.training.config import TrainConfig, build_optimizer, lr_at, select_device
from spikelab.training.distributed import shard_loader, sync_tdbn, world
from spikelab.training.evaluation import (
    LossFn,
    _as_model_input,
    _autocast,
    _evaluate,
    _progress,
    _resolve_amp,
    _resolve_loss,
    _run_probe,
)
from spikelab.training.folders import RunFolderError, RunLock, open_run
from spikelab.training.guards import (
    DivergenceError,
    divergence,
    divergence_message,
    grad_norm,
    nonfinite_message,
)
from spikelab.training.resume import ResumeWarning, check_resume, load_weights
from spikelab.training.runs import RunWriter, load_checkpoint


def _split_data(data: Any) -> tuple[DataLoader, DataLoader | None, Any]:
    if isinstance(data, DataLoader):
        return data, None, None
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        train, test = data[0], data[1]
        if not isinstance(train, DataLoader):
            raise TypeError(f"data[0] (training data) must be a DataLoader, got {type(train).__name__}")
        if test is not None and not isinstance(test, DataLoader):
            raise TypeError(f"data[1] (test data) must be a DataLoader or None, got {type(test).__name__}")
        return train, test, data[2] if len(data) == 3 else None
    raise TypeError("data must be a DataLoader or a tuple (train_loader, test_loader[, info]) as returned by "
                    f"spikelab.data.make_loaders, got {type(data).__name__}")


def _seed_epoch(seed: int, epoch: int, rank: int, loader: DataLoader) -> None:
    """Seed every random source of epoch ``epoch`` from ``(seed, epoch, rank)`` alone: the global torch, numpy and
    python generators, every ``torch.Generator`` the loader holds (shuffling, batch transforms), the sampler's epoch.
    """
    s = np.random.SeedSequence([seed, epoch, rank]).generate_state(2)
    torch.manual_seed(int(s[0]))
    random.seed(int(s[1]))
    np.random.seed(int(s[1]))
    gens = [v for _, v in sorted(vars(loader).items()) if isinstance(v, torch.Generator)]
    for i, g in enumerate(gens):
        g.manual_seed(int(np.random.SeedSequence([seed, epoch, rank, i + 1]).generate_state(1)[0]))
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)


def _check_overrides(overrides: dict[str, Any]) -> None:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"fit() got unknown settings {unknown}; TrainConfig fields are {sorted(names)}")


def fit(
    model: nn.Module,
    data: Any,
    config: TrainConfig | None = None,
    *,
    loss: str | LossFn | None = None,
    callbacks: Callback | Callable | list | None = None,
    stop_event: threading.Event | None = None,
    probe: torch.Tensor | None = None,
    run_dir: str | Path | None = None,
    run_config: dict[str, Any] | None = None,
    name: str | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    sequence_input: bool | None = None,
    **overrides: Any,
) -> History:
    """Train ``model`` on ``data`` and return its :class:`~spikelab.history.History`.

    Each optimiser step minimises ``loss(model(x), y)`` (outputs ``[T, B, C]``), plus the same loss of every
    auxiliary head the model has (a dual-stream network's spike head: see
    :func:`spikelab.losses.auxiliary_outputs`); after each epoch the model is
    evaluated on the test data. Step records hold ``step``, ``epoch``, ``loss``, ``acc``, ``lr``, ``time_s``; epoch
    records hold ``epoch``, ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``, ``lr``, ``time_s``,
    ``firing_rates`` (training batches; ``{layer: spikes per neuron per step}``), ``test_firing_rates`` and, with a
    ``probe`` batch, ``probe = {"spikes": {layer: [T][N] 0/1 of the probe's first sample}, "rates": {layer: rate}}``.
    Everything is plain numbers and lists (JSON-serialisable). ``history.stopped`` says whether a stop cut the run.

    Epoch ``e`` draws its shuffling and other randomness from ``(config.seed, e)`` alone; with the optimiser and
    loop state in the checkpoint, a run resumed from the end of epoch ``e`` repeats the uninterrupted one.

    A non-finite loss or gradient, or a diverging loss (:mod:`spikelab.training.guards`), stops training with a
    :class:`~spikelab.training.DivergenceError` naming the epoch and step; the bad update is not applied and the run
    folder keeps the history so far and the checkpoint of the last good epoch (``metrics.json`` records the error).

    Raises:
        ValueError: empty training or test data, a resume that disagrees with the run, a run folder in use or
            already holding a run (:class:`~spikelab.training.RunFolderError`).
        DivergenceError: see above.

    Args:
        model: maps a batch (static ``[B, ...]`` or a sequence ``[T, B, ...]``) to logits ``[T, B, C]``.
        data: a training DataLoader, or ``(train_loader, test_loader)`` or ``(train_loader, test_loader, info)``
            (what :func:`spikelab.data.make_loaders` returns; ``info.is_event`` says whether batches are events
            ``[B, T, ...]``, which are transposed to ``[T, B, ...]``). Its ``batch_size`` is the global batch.
        config: the :class:`TrainConfig` (default ``TrainConfig()``); keyword ``overrides`` replace its fields
            (``fit(model, data, epochs=3, lr=1e-2)``).
        loss: ``"sdt"``, ``"tet"`` or any ``f(outputs [T, B, C], targets [B]) -> scalar``; default ``config.loss``.
        callbacks: a :class:`Callback`, a function ``f(event, record)`` or a list of them (rank 0 only).
        stop_event: a ``threading.Event``; when set, training stops before the next batch and the partial history is
            returned with ``stopped=True`` (a cut epoch gets no epoch record and no checkpoint).
        probe: a batch (loader layout) run after every epoch to record spikes for a raster.
        run_dir: folder to write ``config.json``, ``history.jsonl``, ``metrics.json``, ``checkpoint.pt`` into; it is
            claimed and locked for the run's life (see :mod:`spikelab.training.folders`). Without ``resume`` it must
            not hold a finished epoch already.
        run_config: extra entries for the run's config (model name, dataset, T, ...), kept in the History, in
            ``config.json`` and in the checkpoint.
        name: the History's name (default: the run folder's name, else ``"run"``).
        resume: a checkpoint (or run folder) to continue from; trains on up to ``config.epochs`` in total. The
            checkpoint must agree with ``config``, ``run_config``, the batch size and the model (see
            :mod:`spikelab.training.resume`); a changed ``epochs`` gives a :class:`ResumeWarning`.
        progress: show a tqdm progress bar (terminal or notebook).
        sequence_input: whether batches are events ``[B, T, ...]``; default from ``info``, else 5-D batches are.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    config = config if config is not None else TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    _check_overrides(overrides)
    config = dataclasses.replace(config, **overrides)
    train_loader, test_loader, info = _split_data(data)
    if sequence_input is None and info is not None and hasattr(info, "is_event"):
        sequence_input = bool(info.is_event)
    if stop_event is not None and not hasattr(stop_event, "is_set"):
        raise TypeError(f"stop_event must be a threading.Event, got {type(stop_event).__name__}")
    if probe is not None:
        check_tensor(probe, "probe")
    cbs = CallbackList(callbacks)
    loss_fn, loss_name = _resolve_loss(loss, config)
    run_config = dict(run_config or {})
    clash = sorted(set(run_config) & set(config.to_dict()))
    if clash:
        raise ValueError(f"run_config must not repeat TrainConfig fields {clash}; pass them in config")
    full_config = {**config.to_dict(), "loss": loss_name, **run_config}
    name = name if name is not None else (Path(run_dir).name if run_dir is not None else "run")
    if len(train_loader) == 0:
        raise ValueError("the training data yields no batch (empty dataset, or drop_last with too few samples)")
    if test_loader is not None and len(test_loader) == 0:
        raise ValueError("the test data yields no batch (an empty test split); pass the training loader alone "
                         "to train without evaluation")

    rank, size = world()
    lead = rank == 0
    device = select_device(config.device)
    amp = _resolve_amp(config.amp, device)
    batch_size = train_loader.batch_size  # the global batch
    train_loader = shard_loader(train_loader, rank=rank, world_size=size, seed=config.seed, train=True)
    if test_loader is not None:
        test_loader = shard_loader(test_loader, rank=rank, world_size=size, seed=config.seed, train=False)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ValueError(f"the training data yields no batch on process {rank} of {size} (too few samples)")

    with _open_run(run_dir, lead, resume is not None):
        model.to(device)
        sync_tdbn(model, config.sync_bn)  # tdBN statistics over the global batch when several processes train
        raw = model
        fast = torch.compile(raw) if config.compile else raw
        net: nn.Module = fast
        if size > 1:
            net = nn.parallel.DistributedDataParallel(
                fast, device_ids=[device.index] if device.type == "cuda" else None)
        optimizer = build_optimizer(raw.parameters(), config)
        scaled = amp and device.type == "cuda"  # float16 needs gradient scaling; bfloat16 (CPU amp) does not
        scaler = torch.amp.GradScaler("cuda", enabled=scaled)

        history = History(config=full_config, name=name)
        start_epoch, step, elapsed0, write_config = 0, 0, 0.0, True
        if resume is not None:
            state = load_checkpoint(resume, map_location=device)
            full_config, note = check_resume(state, source=resume, config=config, full_config=full_config,
                                             steps_per_epoch=steps_per_epoch, batch_size=batch_size)
            if note is not None and lead:
                warnings.warn(note, ResumeWarning, stacklevel=2)
            load_weights(raw, state["model"], resume)
            optimizer.load_state_dict(state["optimizer"])
            if scaled and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            start_epoch, step, elapsed0 = int(state["epoch"]), int(state["step"]), float(state["time_s"])
            history = History(steps=list(state["history"]["steps"]), epochs=list(state["history"]["epochs"]),
                              config=full_config, name=name)
            write_config = note is not None  # config.json keeps the recipe; an extension is recorded in it
        writer = RunWriter(run_dir, enabled=lead) if run_dir is not None else None
        if writer is not None:
            writer.start(full_config, history, write_config=write_config)
        if lead:
            cbs.fire("fit_start", dict(name=name, config=full_config, epochs=config.epochs, start_epoch=start_epoch,
                                       steps_per_epoch=steps_per_epoch, rank=rank, world_size=size))

        t0 = time.perf_counter()
        stopped = _stop_requested(stop_event)
        lr = lr_at(config, step, steps_per_epoch)
        for epoch in range(start_epoch, config.epochs):
            if stopped:
                break
            _seed_epoch(config.seed, epoch, rank, train_loader)
            net.train()
            rates = FiringRates(raw).attach()
            totals = [0.0, 0.0, 0.0]  # loss * n, correct, n (all processes)
            epoch_steps: list[dict[str, Any]] = []
            bar = _progress(progress and lead, steps_per_epoch, f"epoch {epoch + 1}/{config.epochs}")
            try:
                for x, y in train_loader:
                    lr = lr_at(config, step, steps_per_epoch)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    x, y = _as_model_input(x.to(device, non_blocking=True), sequence_input), y.to(device)
                    optimizer.zero_grad(set_to_none=True)
                    with _autocast(device, amp), auxiliary_outputs(raw) as aux:
                        out = net(x)  # [T, B, C]; a model with auxiliary heads (DSNN) also fills aux
                        loss = multi_head_loss(loss_fn, out, aux, y)
                    scaler.scale(loss).backward()
                    if config.grad_clip is not None:
                        scaler.unscale_(optimizer)
                        norm = float(nn.utils.clip_grad_norm_(raw.parameters(), config.grad_clip))
                    else:
                        norm = 0.0 if scaled else grad_norm(raw.parameters())  # the scaler handles overflow
                    n, loss_value = y.shape[0], float(loss.detach())
                    bad = not math.isfinite(loss_value) or (not scaled and not math.isfinite(norm))
                    local_stop = float(stop_event is not None and stop_event.is_set())
                    loss_sum, correct, n_all, stop_votes, bad_votes = _all_reduce(
                        [loss_value * n, float((rate_predict(out.detach()) == y).sum()), float(n), local_stop,
                         float(bad)])
                    if bad_votes > 0:  # before the optimiser step: the weights stay those of the last good step
                        message = nonfinite_message(loss_sum / n_all, norm, epoch=epoch + 1, step=step + 1)
                        _fail(writer, history, epoch_steps, message, epoch + 1, step + 1)
                    scaler.step(optimizer)
                    scaler.update()
                    totals = [totals[0] + loss_sum, totals[1] + correct, totals[2] + n_all]
                    step += 1
                    record = dict(step=step, epoch=epoch + 1, loss=loss_sum / n_all, acc=correct / n_all, lr=lr,
                                  time_s=elapsed0 + time.perf_counter() - t0)
                    history.steps.append(record)
                    epoch_steps.append(record)
                    if lead:
                        cbs.fire("step_end", record)
                    if bar is not None:
                        bar.set_postfix(loss=f"{record['loss']:.4f}", acc=f"{record['acc']:.3f}", refresh=False)
                        bar.update(1)
                    if stop_votes > 0 or (size == 1 and stop_event is not None and stop_event.is_set()):
                        stopped = True  # set during this step (or by its callbacks): no further batch runs
                        break
            finally:
                rates.detach()
                if bar is not None:
                    bar.close()
            if stopped and len(epoch_steps) < steps_per_epoch:
                if writer is not None:
                    writer.append(epoch_steps, [])
                break
            median = divergence([r["loss"] for r in epoch_steps], history.steps[0]["loss"], config.diverge_factor)
            if median is not None:
                _fail(writer, history, epoch_steps, divergence_message(
                    median, history.steps[0]["loss"], config.diverge_factor, epoch=epoch + 1, step=step, lr=config.lr),
                    epoch + 1, step)
            rates.sync()
            record = dict(epoch=epoch + 1, train_loss=totals[0] / totals[2], train_acc=totals[1] / totals[2],
                          test_loss=None, test_acc=None, lr=lr, time_s=0.0, firing_rates=rates.compute())
            if test_loader is not None:
                ev = _evaluate(fast, raw, test_loader, loss_fn, device, amp, sequence_input, False, False)
                record.update(test_loss=ev["loss"], test_acc=ev["acc"], test_firing_rates=ev["firing_rates"])
            if probe is not None and lead:
                record["probe"] = _run_probe(raw, probe, device, amp, sequence_input)
            record["time_s"] = elapsed0 + time.perf_counter() - t0
            if lead:
                cbs.fire("epoch_record", record)  # a callback may add entries (the doctor's findings) before storing
            history.epochs.append(record)
            if writer is not None:
                writer.append(epoch_steps, [record])
                writer.checkpoint(dict(
                    format=1, model=raw.state_dict(), optimizer=optimizer.state_dict(), scaler=scaler.state_dict(),
                    epoch=epoch + 1, step=step, time_s=record["time_s"], steps_per_epoch=steps_per_epoch,
                    batch_size=batch_size, train_config=config.to_dict(), run_config=full_config,
                    history=dict(steps=history.steps, epochs=history.epochs),
                ))
            if lead:
                cbs.fire("epoch_end", record)
            if epoch + 1 < config.epochs:
                stopped = _stop_requested(stop_event)

        history.stopped = stopped
        metrics = final_metrics(history, stopped)
        if writer is not None:
            writer.finish(metrics)
    if lead:
        cbs.fire("fit_end", dict(history=history, stopped=stopped, metrics=metrics))
    return history


def _open_run(run_dir: str | Path | None, lead: bool, resume: bool) -> RunLock | nullcontext:
    """Claim and lock ``run_dir`` on rank 0 (see :func:`spikelab.training.folders.open_run`); every process learns
    whether that worked, so none waits forever for a rank that gave up."""
    if run_dir is None:
        return nullcontext()
    lock, error = None, None
    if lead:
        try:
            lock = open_run(run_dir, resume=resume)
        except (OSError, ValueError) as err:
            error = err
    if _all_reduce([float(error is not None)])[0] > 0:
        raise error if error is not None else RunFolderError(f"process 0 could not open the run folder {run_dir}")
    return lock if lock is not None else nullcontext()


def _fail(writer: RunWriter | None, history: History, epoch_steps: list[dict[str, Any]], message: str,
          epoch: int, step: int) -> None:
    """Record a numerical failure (the good steps of the epoch, ``metrics.json`` with the error) and raise it."""
    if writer is not None:
        writer.append(epoch_steps, [])
        writer.finish({**final_metrics(history, False), "error": message})
    raise DivergenceError(message, epoch=epoch, step=step, history=history)


def _stop_requested(stop_event: threading.Event | None) -> bool:
    """Whether any process's stop event is set (a collective call in a distributed run)."""
    return _all_reduce([float(stop_event is not None and stop_event.is_set())])[0] > 0


def final_metrics(history: History, stopped: bool) -> dict[str, Any]:
    """The summary written to ``metrics.json``: last epoch's numbers, best test accuracy, time, stop flag."""
    last = history.last
    tests = [e["test_acc"] for e in history.epochs if e.get("test_acc") is not None]
    return dict(
        epochs=len(history.epochs), steps=len(history.steps),
        train_loss=last.get("train_loss"), train_acc=last.get("train_acc"),
        test_loss=last.get("test_loss"), test_acc=last.get("test_acc"),
        best_test_acc=max(tests) if tests else None,
        firing_rates=last.get("test_firing_rates", last.get("firing_rates")),
        time_s=history.steps[-1]["time_s"] if history.steps else 0.0, stopped=stopped,
    )
