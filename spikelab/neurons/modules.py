"""Neuron modules: thin shells that hold parameters and state and loop the equations of
:mod:`spikelab.neurons.functional` over time."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from spikelab import surrogate as _surrogate
from spikelab._checks import check_choice, check_positive, check_range, check_real, check_tensor, check_time_first
from spikelab.neurons.functional import RESET_MODES, SequenceResult, neuron_sequence, neuron_step


class BaseNeuron(nn.Module):
    """Common shell: threshold, reset, surrogate, recording and step-by-step state.

    Calling the module on ``x_seq`` ``[T, B, ...]`` runs the whole sequence from ``v_init`` and returns spikes
    ``[T, B, ...]``; each call is self-contained (no state carries over between batches). :meth:`step` runs one
    time step on ``x`` ``[B, ...]`` and keeps the membrane in ``self.v`` until :meth:`reset_state`.
    With ``record=True`` the last sequence's membrane is kept in ``h_seq`` (charged, before reset) and ``v_seq``
    (after reset), detached, for plotting.
    """

    def __init__(
        self,
        *,
        v_th: float = 1.0,
        reset: str = "hard",
        surrogate: "str | _surrogate.Surrogate" = "atan",
        detach_reset: bool = False,
        v_reset: float = 0.0,
        v_init: float = 0.0,
        record: bool = False,
    ) -> None:
        super().__init__()
        self.v_th = check_positive(v_th, "v_th")
        self.reset_mode = check_choice(reset, "reset", RESET_MODES)
        self.surrogate = _surrogate.get(surrogate)
        if not isinstance(detach_reset, bool):
            raise TypeError(f"detach_reset must be a bool, got {type(detach_reset).__name__}")
        if not isinstance(record, bool):
            raise TypeError(f"record must be a bool, got {type(record).__name__}")
        self.detach_reset = detach_reset
        self.v_reset = check_real(v_reset, "v_reset")
        self.v_init = check_real(v_init, "v_init")
        self.record = record
        self.v: torch.Tensor | None = None  # step-by-step state
        self.h_seq: torch.Tensor | None = None
        self.v_seq: torch.Tensor | None = None

    @property
    def decay(self) -> float | torch.Tensor:
        raise NotImplementedError

    def _kwargs(self) -> dict:
        return dict(
            decay=self.decay, v_th=self.v_th, reset_mode=self.reset_mode, surrogate=self.surrogate,
            v_reset=self.v_reset, detach_reset=self.detach_reset,
        )

    def run(self, x_seq: torch.Tensor, v_init: torch.Tensor | None = None) -> SequenceResult:
        """Run ``x_seq`` ``[T, B, ...]`` and return spikes, final membrane and (if recording) the traces."""
        check_time_first(x_seq, "x_seq")
        if v_init is not None:
            check_tensor(v_init, "v_init")
            if v_init.shape != x_seq.shape[1:]:
                raise ValueError(f"v_init must have shape {tuple(x_seq.shape[1:])}, got {tuple(v_init.shape)}")
        result = neuron_sequence(
            x_seq, v_init=self.v_init if v_init is None else v_init, record=self.record, **self._kwargs()
        )
        if self.record:
            self.h_seq, self.v_seq = result.h_seq, result.v_seq
        return result

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T, B, ...]`` for input currents ``x_seq`` ``[T, B, ...]``."""
        return self.run(x_seq).spikes

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One time step on ``x`` ``[B, ...]``; the membrane carries over in ``self.v``."""
        check_tensor(x, "x")
        if self.v is None or self.v.shape != x.shape:
            if self.v is not None:
                raise ValueError(
                    f"x has shape {tuple(x.shape)} but the held state has {tuple(self.v.shape)}; "
                    "call reset_state() before a new input shape"
                )
            self.v = torch.full_like(x, self.v_init)
        s, _, self.v = neuron_step(x, self.v, **self._kwargs())
        return s

    def reset_state(self) -> None:
        """Forget the step-by-step membrane and the recorded traces."""
        self.v = None
        self.h_seq = None
        self.v_seq = None

    def extra_repr(self) -> str:
        d = self.decay
        d = f"{float(d):.4g}" if isinstance(d, (int, float)) else f"learned, now {d.item():.4g}"
        return (
            f"decay={d}, v_th={self.v_th:g}, reset={self.reset_mode!r}, surrogate={self.surrogate!r}, "
            f"detach_reset={self.detach_reset}"
        )


class LIF(BaseNeuron):
    """Leaky integrate-and-fire neuron, ``h[t] = decay * v[t-1] + I[t]`` (SPEC section 1).

    Args:
        decay: membrane decay per step in [0, 1] (``exp(-dt/tau)``; see :func:`decay_from_tau`).
        v_th: firing threshold (> 0).
        reset: ``"hard"`` (to ``v_reset``), ``"soft"`` (subtract ``v_th``) or ``"none"``.
        surrogate: a surrogate name (see :func:`spikelab.surrogate.names`) or a Surrogate object.
        detach_reset: if True the spike used in the reset carries no gradient.

    Differences from snnTorch's ``Leaky`` (step-by-step, ``beta`` = ``decay``):

    - its default ``reset_mechanism="subtract"`` computes ``v[t] = beta * v[t-1] + I[t] - v_th * s[t-1]``: the
      threshold is subtracted one step late and outside the decay, so it differs from ``reset="soft"`` here
      whenever ``beta < 1`` (they agree for ``beta = 1``);
    - its ``reset_mechanism="zero"`` gives the same spikes as ``reset="hard"`` with ``detach_reset=True``, and with
      the atan surrogate the same input gradients; the membrane it returns on a spike step is the value before
      the reset (``h_seq`` here), zeroed only at the start of the next step.
    """

    def __init__(
        self,
        decay: float = 0.5,
        v_th: float = 1.0,
        reset: str = "hard",
        surrogate: "str | _surrogate.Surrogate" = "atan",
        detach_reset: bool = False,
        *,
        v_reset: float = 0.0,
        v_init: float = 0.0,
        record: bool = False,
    ) -> None:
        super().__init__(
            v_th=v_th, reset=reset, surrogate=surrogate, detach_reset=detach_reset,
            v_reset=v_reset, v_init=v_init, record=record,
        )
        self._decay = check_range(decay, "decay", 0.0, 1.0)

    @property
    def decay(self) -> float:
        return self._decay


class IF(LIF):
    """Integrate-and-fire neuron: :class:`LIF` with ``decay = 1`` (no leak)."""

    def __init__(
        self,
        v_th: float = 1.0,
        reset: str = "hard",
        surrogate: "str | _surrogate.Surrogate" = "atan",
        detach_reset: bool = False,
        *,
        v_reset: float = 0.0,
        v_init: float = 0.0,
        record: bool = False,
    ) -> None:
        super().__init__(
            1.0, v_th, reset, surrogate, detach_reset, v_reset=v_reset, v_init=v_init, record=record
        )


class PLIF(BaseNeuron):
    """Parametric LIF: ``decay = sigmoid(w)`` with ``w`` learned (one scalar per layer), initialised so that
    ``decay = init_decay`` (in the open interval (0, 1))."""

    def __init__(
        self,
        init_decay: float = 0.5,
        v_th: float = 1.0,
        reset: str = "hard",
        surrogate: "str | _surrogate.Surrogate" = "atan",
        detach_reset: bool = False,
        *,
        v_reset: float = 0.0,
        v_init: float = 0.0,
        record: bool = False,
    ) -> None:
        super().__init__(
            v_th=v_th, reset=reset, surrogate=surrogate, detach_reset=detach_reset,
            v_reset=v_reset, v_init=v_init, record=record,
        )
        d = check_real(init_decay, "init_decay")
        if not 0.0 < d < 1.0:
            raise ValueError(f"init_decay must be in the open interval (0, 1), got {init_decay}")
        self.w = nn.Parameter(torch.tensor(math.log(d / (1 - d))))

    @property
    def decay(self) -> torch.Tensor:
        return torch.sigmoid(self.w)


def decay_from_tau(tau: float, dt: float = 1.0, method: str = "exact") -> float:
    """Membrane decay per step for time constant ``tau`` (same unit as ``dt``).

    ``method="exact"``: ``exp(-dt / tau)``; ``method="euler"``: ``1 - dt / tau`` (needs ``tau >= dt``).
    """
    tau = check_positive(tau, "tau")
    dt = check_positive(dt, "dt")
    check_choice(method, "method", ("exact", "euler"))
    if method == "exact":
        return math.exp(-dt / tau)
    if tau < dt:
        raise ValueError(f"tau must be >= dt for the Euler form (decay would be negative), got tau={tau}, dt={dt}")
    return 1.0 - dt / tau


def tau_from_decay(decay: float, dt: float = 1.0, method: str = "exact") -> float:
    """Inverse of :func:`decay_from_tau`: ``-dt / ln(decay)`` (exact) or ``dt / (1 - decay)`` (Euler).

    ``decay = 1`` (IF, no leak) gives ``inf``; ``decay`` must be in (0, 1] (exact) or [0, 1] (Euler).
    """
    decay = check_range(decay, "decay", 0.0, 1.0)
    dt = check_positive(dt, "dt")
    check_choice(method, "method", ("exact", "euler"))
    if decay == 1.0:
        return math.inf
    if method == "exact":
        if decay == 0.0:
            raise ValueError("decay must be > 0 for the exact form (tau would be 0)")
        return -dt / math.log(decay)
    return dt / (1.0 - decay)


NEURON_KINDS = ("lif", "if", "plif")


@dataclass(frozen=True)
class NeuronConfig:
    """A neuron recipe that models build their spiking layers from.

    ``kind``: ``"lif"``, ``"if"`` or ``"plif"`` (``decay`` is then the initial decay); ``decay`` in [0, 1];
    ``v_th`` (> 0); ``reset``; ``surrogate`` (name or object); ``detach_reset``; ``v_reset``.
    """

    kind: str = "lif"
    decay: float = 0.5
    v_th: float = 1.0
    reset: str = "hard"
    surrogate: "str | _surrogate.Surrogate" = "atan"
    detach_reset: bool = False
    v_reset: float = 0.0

    def __post_init__(self) -> None:
        check_choice(self.kind, "kind", NEURON_KINDS)
        # constructing once validates every field with the neuron's own checks
        self.build()

    def build(self, *, record: bool = False) -> BaseNeuron:
        """A fresh neuron module with these settings."""
        common = dict(reset=self.reset, surrogate=self.surrogate, detach_reset=self.detach_reset)
        if self.kind == "lif":
            return LIF(self.decay, self.v_th, v_reset=self.v_reset, record=record, **common)
        if self.kind == "if":
            return IF(self.v_th, v_reset=self.v_reset, record=record, **common)
        return PLIF(self.decay, self.v_th, v_reset=self.v_reset, record=record, **common)
