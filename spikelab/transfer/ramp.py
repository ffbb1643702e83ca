"""The clipped ramp of pipe-S (Lin et al. 2022; SPEC section 4): the ANN twin's activation, annealed over the
pretraining epochs toward the spike step of the SNN it will be copied into.

At pretraining epoch ``e`` (1 for the first epoch, as in the official code) the official schedule is

    a = min(e / 200, 0.49),    b = 1 - e / 200,    out = clip((x - a) / (b - a), 0, 1)

for the official threshold ``v_th = 0.5``: a clipped ReLU at ``e = 0`` that narrows to a step at ``x = 0.5`` by
``e = 100``, the last epoch of the official pretraining. Here the schedule's length ``L`` (epochs until the sharpest
ramp; official 100) is configurable: ``a = min(e / (2L), 0.49)``, ``b = 1 - e / (2L)``; epochs past ``L`` keep the
ramp of epoch ``L`` (the formula itself would divide by zero at ``e = 1.02 L``). For another threshold the ramp is
stretched by ``2 v_th`` so that it narrows toward ``Theta(x - v_th)``; ``v_th = 0.5`` gives the formula above.

Backward: the official code does not differentiate the ramp (whose slope ``1 / (b - a)`` reaches 100): it uses
the SNN's surrogate at ``x - v_th`` (rectangle, width 1). ``ClippedRamp(surrogate=None)`` uses the ramp's own
derivative instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from spikelab import surrogate as _surrogate
from spikelab._checks import check_positive, check_real, check_tensor
from spikelab.training.callbacks import Callback


@dataclass(frozen=True)
class RampSchedule:
    """The ramp's bounds by epoch: ``a = min(e / (2 length), 0.49)``, ``b = 1 - e / (2 length)`` for the official
    threshold 0.5 (``length=100`` is the official schedule, SPEC section 4); epochs past ``length`` hold the last
    ramp. ``length`` is in epochs (> 0)."""

    length: float = 100.0

    def __post_init__(self) -> None:
        check_positive(self.length, "length")

    def bounds(self, epoch: float, v_th: float = 0.5) -> tuple[float, float]:
        """``(a, b)`` at ``epoch`` (>= 0) in input units for threshold ``v_th``: SPEC's values times ``2 v_th``."""
        e = check_real(epoch, "epoch")
        if e < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        frac = min(e, self.length) / (2.0 * self.length)
        scale = 2.0 * check_positive(v_th, "v_th")
        return scale * min(frac, 0.49), scale * (1.0 - frac)


class _RampSurrogate(torch.autograd.Function):
    """Forward ``clip((x - a) / (b - a), 0, 1)``; backward ``grad_out * surrogate.grad(x - v_th)``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, a: float, b: float, v_th: float, sg: _surrogate.Surrogate) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.v_th, ctx.sg = v_th, sg
        return ((x - a) / (b - a)).clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (x,) = ctx.saved_tensors
        return grad_out * ctx.sg.grad(x - ctx.v_th), None, None, None, None


class ClippedRamp(nn.Module):
    """The pipe-S activation: ``clip((x - a) / (b - a), 0, 1)`` with ``(a, b) = schedule.bounds(epoch, v_th)``.

    A stateless module without parameters or buffers, so an ANN twin built with it has exactly the SNN's
    ``state_dict`` keys: ``models.build(name, spiking=False, activation=lambda: ClippedRamp(v_th=0.5))``. The
    ``epoch`` attribute (a number, not saved in the ``state_dict``) selects the ramp; :class:`RampAnnealing` moves
    it during ``fit``. Input and output have any shape (elementwise).

    Args:
        v_th: the threshold of the SNN the twin is copied into (official 0.5); the ramp narrows toward
            ``Theta(x - v_th)``.
        surrogate: the backward, evaluated at ``x - v_th`` (a name or a Surrogate object; official
            ``"rectangle"`` of width 1); None differentiates the ramp itself.
        schedule: the :class:`RampSchedule` (official: length 100 epochs).
        epoch: the starting epoch (0: a plain clipped ReLU ``clip(x / (2 v_th), 0, 1)``).
    """

    def __init__(
        self,
        *,
        v_th: float = 0.5,
        surrogate: "str | _surrogate.Surrogate | None" = "rectangle",
        schedule: RampSchedule | None = None,
        epoch: float = 0.0,
    ) -> None:
        super().__init__()
        self.v_th = check_positive(v_th, "v_th")
        self.surrogate = None if surrogate is None else _surrogate.get(surrogate)
        schedule = RampSchedule() if schedule is None else schedule
        if not isinstance(schedule, RampSchedule):
            raise TypeError(f"schedule must be a RampSchedule, got {type(schedule).__name__}")
        self.schedule = schedule
        self.epoch = epoch

    @property
    def epoch(self) -> float:
        """The pretraining epoch whose ramp is used."""
        return self._epoch

    @epoch.setter
    def epoch(self, value: float) -> None:
        self.schedule.bounds(value)  # validates
        self._epoch = float(value)

    @property
    def bounds(self) -> tuple[float, float]:
        """The current ``(a, b)`` in input units."""
        return self.schedule.bounds(self._epoch, self.v_th)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x")
        a, b = self.bounds
        if self.surrogate is None:
            return ((x - a) / (b - a)).clamp(0.0, 1.0)
        return _RampSurrogate.apply(x, a, b, self.v_th, self.surrogate)

    def extra_repr(self) -> str:
        a, b = self.bounds
        return (f"v_th={self.v_th:g}, epoch={self._epoch:g}, a={a:.4g}, b={b:.4g}, surrogate={self.surrogate!r}, "
                f"length={self.schedule.length:g}")


def ramps(model: nn.Module) -> list[ClippedRamp]:
    """Every :class:`ClippedRamp` in ``model``, in module order."""
    return [m for m in model.modules() if isinstance(m, ClippedRamp)]


def set_ramp_epoch(model: nn.Module, epoch: float) -> int:
    """Set the epoch of every :class:`ClippedRamp` in ``model``; returns how many there are."""
    found = ramps(model)
    for m in found:
        m.epoch = epoch
    return len(found)


class RampAnnealing(Callback):
    """A ``fit`` callback that anneals every :class:`ClippedRamp` of ``model``: epoch ``e`` of the run (1-based, as
    in the official code; counting on from a resumed run) trains and is evaluated with the ramp of epoch
    ``e``; after training the ramps stay at the last trained epoch."""

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not ramps(model):
            raise ValueError("model has no ClippedRamp activation to anneal (build the ANN twin with "
                             "activation=lambda: ClippedRamp(...))")
        self.model = model
        self.last = 0

    def on_fit_start(self, state: dict[str, Any]) -> None:
        self.last = int(state.get("start_epoch", 0))
        set_ramp_epoch(self.model, self.last + 1)

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        self.last = int(record["epoch"])
        set_ramp_epoch(self.model, self.last + 1)

    def on_fit_end(self, state: dict[str, Any]) -> None:
        set_ramp_epoch(self.model, self.last)
