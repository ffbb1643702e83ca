"""Callbacks: how a notebook, dashboard or command line follows a training run without the loop knowing about it.

``fit`` fires four events, each with a plain dict of numbers:

- ``fit_start``: ``{"name", "config", "epochs", "steps_per_epoch", "start_epoch", "rank", "world_size"}``;
- ``step_end``: the step record (``step``, ``epoch``, ``loss``, ``acc``, ``lr``, ``time_s``);
- ``epoch_end``: the epoch record (``epoch``, ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``, ``lr``,
  ``time_s``, ``firing_rates`` and, with a probe batch, ``probe``);
- ``fit_end``: ``{"history": History, "stopped": bool, "metrics": final metrics}``.

Subclass :class:`Callback` and override what you need, or pass a plain function ``f(event, record)``.
Callbacks run on the process of rank 0 only; they must not modify the records, with one exception: a
:class:`Callback` may override ``on_epoch_record`` to add entries under new keys to the epoch record before it is
stored (in the History, ``history.jsonl`` and the checkpoint), as the training doctor adds its ``findings``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

EVENTS = ("fit_start", "step_end", "epoch_end", "fit_end")


class Callback:
    """Base class: override any of the four hooks; each receives one dict (see the module docstring)."""

    def on_fit_start(self, state: dict[str, Any]) -> None:
        """Before the first step."""

    def on_step_end(self, record: dict[str, Any]) -> None:
        """After each optimiser step."""

    def on_epoch_record(self, record: dict[str, Any]) -> None:
        """After each epoch's evaluation, before ``record`` is stored: add JSON-serialisable entries under new keys
        here (never change the existing ones). Plain-function callbacks do not see this event."""

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        """After each epoch's evaluation."""

    def on_fit_end(self, state: dict[str, Any]) -> None:
        """After the last epoch, or after a stop."""


class _FunctionCallback(Callback):
    def __init__(self, fn: Callable[[str, dict[str, Any]], Any]) -> None:
        self.fn = fn

    def on_fit_start(self, state: dict[str, Any]) -> None:
        self.fn("fit_start", state)

    def on_step_end(self, record: dict[str, Any]) -> None:
        self.fn("step_end", record)

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        self.fn("epoch_end", record)

    def on_fit_end(self, state: dict[str, Any]) -> None:
        self.fn("fit_end", state)


class CallbackList:
    """Several callbacks fired in order; plain functions ``f(event, record)`` are wrapped."""

    def __init__(self, callbacks: Iterable[Callback | Callable] | Callback | Callable | None = None) -> None:
        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, Callback) or (callable(callbacks) and not isinstance(callbacks, (list, tuple))):
            callbacks = [callbacks]
        elif not isinstance(callbacks, (list, tuple)):
            raise TypeError("callbacks must be a Callback, a function or a list of them, "
                            f"got {type(callbacks).__name__}")
        self.callbacks: list[Callback] = []
        for i, cb in enumerate(callbacks):
            if isinstance(cb, Callback):
                self.callbacks.append(cb)
            elif callable(cb):
                self.callbacks.append(_FunctionCallback(cb))
            else:
                raise TypeError(f"callbacks[{i}] must be a Callback or a function f(event, record), "
                                f"got {type(cb).__name__}")

    def fire(self, event: str, payload: dict[str, Any]) -> None:
        """Call ``on_<event>`` of every callback with ``payload``."""
        for cb in self.callbacks:
            getattr(cb, f"on_{event}")(payload)
