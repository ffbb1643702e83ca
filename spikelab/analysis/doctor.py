"""The training doctor as a ``fit`` callback: diagnose a probe batch before training and after every epoch.

>>> doctor = DoctorCallback(model, x_probe, y_probe)
>>> history = fit(model, loaders, callbacks=[doctor])
>>> doctor.log            # [{"epoch": 0, "findings": [...]}, {"epoch": 1, "findings": [...]}, ...]
>>> history.epochs[0]["findings"]   # the same findings, as plain dicts, in the history

Each finding dict is :meth:`Finding.to_dict` plus ``epoch`` (0: before the first epoch) and ``new`` (True the first
time its ``(layer, kind)`` was found in this run). A new finding is announced once: as a
:class:`TrainingDoctorWarning` (``warn=True``) and to ``on_finding(finding, epoch)``.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from spikelab import surrogate as _surrogate
from spikelab._checks import check_choice, check_tensor
from spikelab.analysis.diagnose import Finding, LossArg, Thresholds, diagnose
from spikelab.neurons import BaseNeuron
from spikelab.training.callbacks import Callback

__all__ = ["DoctorCallback", "TrainingDoctorWarning", "findings_of", "break_it", "apply_preset", "PRESETS",
           "BROKEN_V_TH", "BROKEN_SURROGATE"]

#: network presets of a run: ``"healthy"`` (as built) or ``"break it"`` (:func:`break_it`); a run's settings keep a
#: preset other than healthy under ``"preset"``, so that every tool rebuilds the same network
PRESETS = ("healthy", "break it")
BROKEN_V_TH = 10.0  # threshold of :func:`break_it`, in units of the batch-normed input current (about 1)
BROKEN_SURROGATE = _surrogate.get("triangle", gamma=0.1)  # zero derivative 0.1 away from threshold


class TrainingDoctorWarning(UserWarning):
    """A new finding of the training doctor during ``fit``."""


class DoctorCallback(Callback):
    """Run :func:`~spikelab.analysis.diagnose` on a probe batch at ``fit_start`` and after every epoch.

    The model is diagnosed in the mode ``fit`` leaves it in (training mode: batch norm on batch statistics, as the
    optimiser sees it), after each epoch's evaluation and before its record is stored, and left bit-identical.
    Findings go to :attr:`log`, into the epoch record under ``"findings"`` (the first epoch record also holds those
    found before training, with ``epoch = 0``), to ``on_finding`` and, once per new ``(layer, kind)``, to a
    :class:`TrainingDoctorWarning`.

    Args:
        model: the model given to ``fit`` (not a DDP or compiled wrapper).
        x: a probe batch in the model's layout (static ``[B, ...]`` or a sequence ``[T, B, ...]``), at least two
            different samples; moved to the model's device when diagnosed.
        y: its class indices ``[B]`` (None: see :func:`~spikelab.analysis.diagnose`).
        loss: as for :func:`~spikelab.analysis.diagnose` (``"sdt"``, ``"tet"``, a function; needs ``y``).
        thresholds: as for :func:`~spikelab.analysis.diagnose`.
        warn: issue a :class:`TrainingDoctorWarning` for each new finding.
        on_finding: called as ``on_finding(finding, epoch)`` for each new finding (e.g. a command line's print).
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, loss: LossArg = None,
                 thresholds: Thresholds | None = None, warn: bool = True,
                 on_finding: Callable[[Finding, int], Any] | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        check_tensor(x, "x")
        if y is not None:
            check_tensor(y, "y")
        if not isinstance(warn, bool):
            raise TypeError(f"warn must be a bool, got {type(warn).__name__}")
        if on_finding is not None and not callable(on_finding):
            raise TypeError(f"on_finding must be a function f(finding, epoch), got {type(on_finding).__name__}")
        self.model, self.x, self.y = model, x, y
        self.loss, self.thresholds, self.warn, self.on_finding = loss, thresholds, warn, on_finding
        self.log: list[dict[str, Any]] = []
        self._seen: set[tuple[str, str]] = set()
        self._pending: list[dict[str, Any]] = []  # the start's findings, for the first epoch record

    def run(self, epoch: int) -> list[dict[str, Any]]:
        """Diagnose the probe batch now; log, announce and return the findings as dicts tagged with ``epoch``."""
        device = next((t.device for t in (*self.model.parameters(), *self.model.buffers())), self.x.device)
        y = self.y.to(device) if self.y is not None else None
        findings = diagnose(self.model, self.x.to(device), y, loss=self.loss, thresholds=self.thresholds)
        tagged = []
        for f in findings:
            new = f.key not in self._seen
            tagged.append({**f.to_dict(), "epoch": epoch, "new": new})
            if new:
                self._seen.add(f.key)
                self._announce(f, epoch)
        self.log.append({"epoch": epoch, "findings": tagged})
        return tagged

    def _announce(self, f: Finding, epoch: int) -> None:
        if self.warn:
            when = "before training" if epoch == 0 else f"after epoch {epoch}"
            warnings.warn(f"training doctor, {when}: {f}", TrainingDoctorWarning, stacklevel=2)
        if self.on_finding is not None:
            self.on_finding(f, epoch)

    def on_fit_start(self, state: dict[str, Any]) -> None:
        self.log.clear()  # in place: a panel may hold on to the list
        self._seen.clear()
        self._pending = self.run(int(state.get("start_epoch", 0)))

    def on_epoch_record(self, record: dict[str, Any]) -> None:
        found = self.run(int(record["epoch"]))
        record["findings"] = self._pending + found
        self._pending = []


def findings_of(history: Any) -> list[dict[str, Any]]:
    """Every finding recorded in a History (or a list of epoch records), in order: ``[{layer, kind, value, advice,
    epoch, new}, ...]``; empty when the run had no doctor."""
    epochs = history.epochs if hasattr(history, "epochs") else history
    if not isinstance(epochs, list):
        raise TypeError(f"history must be a History or a list of epoch records, got {type(history).__name__}")
    return [f for r in epochs for f in (r.get("findings") or [])]


def break_it(model: nn.Module) -> nn.Module:
    """Break ``model`` in place the way students often do, so that the doctor has something to say: every spiking
    layer gets the threshold :data:`BROKEN_V_TH` (10) and the very narrow surrogate :data:`BROKEN_SURROGATE`
    (triangle, gamma 0.1). Returns ``model``.

    The threshold is raised *after* the model is built, so batch norm still scales the input currents to about 1
    (building with ``NeuronConfig(v_th=10)`` would scale tdBN, and so the currents, to 10 as well, and nothing
    would break). The layers are then silent, the output dead, and with a derivative that is zero 0.1 away from
    threshold no gradient gets back through them either.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    for m in model.modules():
        if isinstance(m, BaseNeuron):
            m.v_th, m.surrogate = BROKEN_V_TH, BROKEN_SURROGATE
    return model


def apply_preset(model: nn.Module, preset: str) -> nn.Module:
    """Apply ``preset`` (one of :data:`PRESETS`) to ``model`` in place; returns ``model``."""
    check_choice(preset, "preset", PRESETS)
    return break_it(model) if preset == "break it" else model
