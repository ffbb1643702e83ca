"""Checks that stop a run from going silently wrong: a non-finite loss or gradient, and a diverging loss.

``fit`` applies both and raises :class:`DivergenceError`; the run folder keeps the history written so far and the
checkpoint of the last good epoch (the bad step's update is never applied).

- **Non-finite**: after every backward pass, before the optimiser step, the loss and the gradient's global L2 norm
  must be finite (NaN in the data, an overflow). With mixed precision the gradient check is left to the gradient
  scaler, which skips steps whose scaled gradients overflow by design; the loss is still checked.
- **Divergence**: at the end of every epoch, the median training loss of the epoch's steps is compared with the
  loss of the run's first step (the untrained model; about ``ln C`` for cross-entropy over ``C`` classes). If it
  is more than ``TrainConfig.diverge_factor`` (default 10) times larger, training has diverged: more than half of
  an epoch's steps sat an order of magnitude above where training started, which no learning curve does. The
  median makes one bad batch harmless. The check is skipped when the first loss is not positive (a custom loss
  with another scale) or when ``diverge_factor`` is None.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import Any

import torch


class DivergenceError(FloatingPointError):
    """Training went numerically wrong. ``epoch`` and ``step`` (1-based) say where; ``history`` holds the records
    up to the last good step."""

    def __init__(self, message: str, *, epoch: int, step: int, history: Any = None) -> None:
        super().__init__(message)
        self.epoch, self.step, self.history = epoch, step, history


def grad_norm(params: Iterable[torch.nn.Parameter]) -> float:
    """Global L2 norm of the gradients of ``params`` (0.0 if none has one); NaN or inf if any entry is."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.nn.utils.get_total_norm(grads, norm_type=2.0))


def nonfinite_message(loss: float, norm: float, *, epoch: int, step: int) -> str:
    """The error for a step whose loss or gradient is not finite."""
    what = f"the loss is {loss}" if not math.isfinite(loss) else f"the gradient norm is {norm} (loss {loss:.4g})"
    return (f"training stopped at epoch {epoch}, step {step}: {what}. The update was not applied. Look for NaN or "
            "inf in the data, or lower the learning rate")


def divergence(step_losses: list[float], first_loss: float | None, factor: float | None) -> float | None:
    """The epoch's median loss if it exceeds ``factor`` times the first step's loss (diverged), else None."""
    if factor is None or first_loss is None or not step_losses or not first_loss > 0:
        return None
    median = statistics.median(step_losses)
    return median if median > factor * first_loss else None


def divergence_message(median: float, first_loss: float, factor: float, *, epoch: int, step: int,
                       lr: float) -> str:
    """The error for an epoch whose median loss diverged (see the module docstring)."""
    return (f"training diverged in epoch {epoch} (step {step}): the median training loss of the epoch, {median:.4g}, "
            f"is more than {factor:g} times the loss at the first step, {first_loss:.4g}. The peak learning rate "
            f"({lr:.3g}) is probably too high")
