"""Computations behind the network inspector (no widgets): run a trained network over its test data once and keep
what the inspection figures need: per-step outputs, accuracy after each step, predictions, firing rates per layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from spikelab._checks import check_int
from spikelab.analysis.network import accuracy_by_steps, predict
from spikelab.metrics import FiringRates

__all__ = ["Inspection", "inspect_network"]


@dataclass(frozen=True)
class Inspection:
    """A network's behaviour on a test set.

    ``outputs`` ``[eval_T, N, C]`` logits, ``targets`` ``[N]``; ``trained_T`` the steps it was trained with;
    ``acc_by_steps`` ``[eval_T]`` accuracy reading the first t steps; ``predictions`` ``[N]`` read after
    ``trained_T`` steps; ``accuracy`` their accuracy; ``rates`` ``{layer: spikes per neuron per step}``.
    """

    outputs: torch.Tensor
    targets: torch.Tensor
    trained_T: int
    acc_by_steps: np.ndarray
    predictions: torch.Tensor
    accuracy: float
    rates: dict[str, float]


def inspect_network(model: nn.Module, batches: Any, *, eval_T: int | None = None,
                    limit: int | None = None) -> Inspection:
    """Run ``model`` (eval mode) over ``batches`` for ``eval_T`` steps (default ``max(2 T, 8)``, so the curve shows
    whether more steps than trained help; event batches bring their own number of frames) and summarise it as an
    :class:`Inspection`.

    Firing rates (spikes per neuron per step) are measured over the whole ``eval_T``-step run.
    """
    trained_T = check_int(getattr(model, "T", 0), "model.T", minimum=1)
    eval_T = max(2 * trained_T, 8) if eval_T is None else check_int(eval_T, "eval_T", minimum=trained_T)
    with FiringRates(model) as meter:
        outputs, targets = predict(model, batches, T=eval_T, limit=limit)
    acc = accuracy_by_steps(outputs, targets)
    predictions = outputs[:trained_T].sum(0).argmax(-1)  # argmax of the mean over the trained steps
    return Inspection(outputs=outputs, targets=targets, trained_T=trained_T, acc_by_steps=acc,
                      predictions=predictions, accuracy=float(acc[trained_T - 1]), rates=meter.compute())
