"""Resuming a run: what a checkpoint must agree with before training continues from it.

A resume continues the run's own recipe and, when nothing about it changes, reaches the result of the
uninterrupted run. ``fit(resume=...)`` therefore refuses, with a message naming every difference:

- another training recipe (every :class:`~spikelab.training.TrainConfig` field except ``epochs`` and the execution
  settings ``device``, ``amp`` and ``compile``, which decide where and how fast a run computes, not what);
- other run settings (``run_config`` entries the run also has: model, dataset, T, the loss, ...);
- another global batch size or number of steps per epoch: the checkpoint counts optimiser steps, and the
  learning-rate schedule is a function of the step, so other units would shift it;
- weights that do not fit the model (names and shapes are compared before anything is loaded).

``epochs`` may change (never below the epochs already trained). The run then trains to the new total, and the
change is recorded in the run's config as ``extensions: [{"after_epoch": E, "epochs": N}]`` (``config.json`` keeps
the original recipe beside it). Under the ``"none"`` and ``"step"`` schedules the learning rate of a step does not
depend on the number of epochs, so the result equals an uninterrupted ``N``-epoch run. Under ``"cosine"``, whose
length is ``epochs * steps_per_epoch``, the schedule is recomputed over the new total from the next step on; the
:class:`ResumeWarning` says by how much the learning rate jumps, and the result is that of neither length.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch

from spikelab.training.config import TrainConfig, lr_at

EXECUTION_FIELDS = ("device", "amp", "compile")
FREE_RUN_KEYS = ("world_size", "extensions")  # may differ between the legs of one run
RESUME_KEYS = ("model", "optimizer", "epoch", "step", "time_s", "history", "steps_per_epoch", "train_config")


class ResumeWarning(UserWarning):
    """A resume changes the run's number of epochs (see the module docstring for what that means)."""


def planned_epochs(run_config: Mapping[str, Any]) -> int | None:
    """The number of epochs a run trains to: its last extension's, else its recipe's ``epochs``."""
    ext = run_config.get("extensions")
    if isinstance(ext, list) and ext and isinstance(ext[-1], dict) and "epochs" in ext[-1]:
        return int(ext[-1]["epochs"])
    return int(run_config["epochs"]) if "epochs" in run_config else None


def state_dict_mismatch(expected: Mapping[str, tuple[int, ...]], state_dict: Mapping[str, Any]) -> str | None:
    """How ``state_dict`` disagrees with the ``{name: shape}`` a model expects, in one line; None if it fits."""
    if not isinstance(state_dict, Mapping):
        return f"the weights are a {type(state_dict).__name__}, not a state dict"
    missing = [k for k in expected if k not in state_dict]
    extra = [k for k in state_dict if k not in expected]
    shapes = [f"{k} is {list(state_dict[k].shape)} in the file but {list(expected[k])} in the model"
              for k in expected if k in state_dict and isinstance(state_dict[k], torch.Tensor)
              and tuple(state_dict[k].shape) != tuple(expected[k])]
    bad = [k for k in expected if k in state_dict and not isinstance(state_dict[k], torch.Tensor)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if extra:
        parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
    if bad:
        parts.append(f"{len(bad)} not tensors (e.g. {bad[0]})")
    if shapes:
        parts.append(f"{len(shapes)} of another shape ({shapes[0]})")
    return "; ".join(parts) if parts else None


def load_weights(model: torch.nn.Module, state_dict: Mapping[str, Any], source: Any) -> None:
    """Load ``state_dict`` into ``model`` after checking names and shapes (``ValueError`` naming ``source``)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problem = state_dict_mismatch(expected, state_dict)
    if problem:
        raise ValueError(f"the weights in {str(source)!r} do not fit the model: {problem}")
    model.load_state_dict(state_dict)


def _differences(saved: Mapping[str, Any], given: Mapping[str, Any], keys: list[str]) -> list[str]:
    return [f"{k}={saved[k]!r} (asked: {given[k]!r})" for k in keys
            if k in saved and k in given and saved[k] != given[k]]


def check_resume(state: Mapping[str, Any], *, source: Any, config: TrainConfig, full_config: dict[str, Any],
                 steps_per_epoch: int, batch_size: int | None) -> tuple[dict[str, Any], str | None]:
    """Check that ``state`` (a checkpoint) can continue under ``config`` and the run settings ``full_config``.

    Returns the run's config to continue with (the saved recipe, the new ``epochs`` recorded as an extension) and,
    if ``epochs`` changed, the note for a :class:`ResumeWarning`. Raises ``ValueError`` naming every difference.
    """
    missing = [k for k in RESUME_KEYS if k not in state]
    if missing:
        raise ValueError(f"{str(source)!r} cannot be resumed: the checkpoint lacks {missing} (was it written by fit?)")
    saved_train = dict(state["train_config"])
    saved_run = dict(state.get("run_config") or {})
    new_train = config.to_dict()
    recipe = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("epochs", *EXECUTION_FIELDS)]
    diffs = _differences(saved_train, new_train, recipe)
    run_keys = [k for k in full_config if (k not in new_train or k == "loss") and k not in FREE_RUN_KEYS]
    diffs += _differences(saved_run, full_config, run_keys)
    if diffs:
        raise ValueError(f"cannot resume {str(source)!r} with other settings: the run has {', '.join(diffs)}. A "
                         "resume continues the run's own recipe: pass its settings "
                         "(TrainConfig.from_dict(checkpoint['train_config'])), or start a new run")
    if int(state["steps_per_epoch"]) != steps_per_epoch or (
            batch_size is not None and state.get("batch_size") not in (None, batch_size)):
        raise ValueError(
            f"cannot resume {str(source)!r}: the run was trained in batches of {state.get('batch_size', '?')} with "
            f"{state['steps_per_epoch']} steps per epoch, but the data now gives batches of {batch_size} and "
            f"{steps_per_epoch} steps per epoch (another batch size, limit, dataset or number of processes). The "
            "step count and the learning-rate schedule are in the run's units: resume with the run's data settings")

    done, step = int(state["epoch"]), int(state["step"])
    run = {**saved_run, **{k: v for k, v in full_config.items() if k not in ("epochs", "extensions")}}
    run["epochs"] = saved_run.get("epochs", saved_train["epochs"])
    planned = planned_epochs(saved_run) or int(saved_train["epochs"])
    if config.epochs < done:
        raise ValueError(f"cannot resume {str(source)!r} with epochs={config.epochs}: it has already trained "
                         f"{done} epochs")
    if config.epochs == planned:
        return run, None
    run["extensions"] = [*saved_run.get("extensions", []), dict(after_epoch=done, epochs=config.epochs)]
    return run, extension_note(config, planned=planned, done=done, step=step, steps_per_epoch=steps_per_epoch)


def extension_note(config: TrainConfig, *, planned: int, done: int, step: int, steps_per_epoch: int) -> str:
    """What training a run of ``planned`` epochs to ``config.epochs`` after ``done`` epochs does to its schedule."""
    head = (f"the run planned {planned} epoch{'s' * (planned != 1)} and has trained {done}; it now trains to "
            f"{config.epochs}")
    if config.schedule != "cosine":
        return (f"{head}. The '{config.schedule}' learning-rate schedule does not depend on the number of epochs, so "
                f"the result equals an uninterrupted {config.epochs}-epoch run")
    old = lr_at(dataclasses.replace(config, epochs=planned), step, steps_per_epoch)
    new = lr_at(config, step, steps_per_epoch)
    return (f"{head}. The cosine schedule is recomputed over {config.epochs} epochs from here: the learning rate of "
            f"the next step is {new:.3g} (the {planned}-epoch schedule had {old:.3g}), so the result is that of "
            f"neither an uninterrupted {planned}- nor {config.epochs}-epoch run")
