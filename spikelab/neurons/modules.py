"""Neuron modules: thin shells that hold parameters and state and loop the equations of
:mod:`spikelab.neurons.functional` over time."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from spikelab import surrogate as _surrogate
from spikelab._checks import (
    check_choice,
    check_float_tensor,
    check_not_learnable,
    check_positive,
    check_range,
    check_real,
    check_time_first,
)
from spikelab.neurons import fused
from spikelab.neurons.functional import RESET_MODES, SequenceResult, neuron_step


#: Appended to the refusal of a learnable (requires-grad) setting: where learning lives in spikelab.
LEARNABLE_HINT = (
    "; neuron settings are fixed numbers (a learned membrane time constant is PLIF: spikelab.neurons.PLIF or "
    "NeuronConfig(kind='plif'))"
)

_STATE = ("v", "h_seq", "v_seq")  # step-by-step membrane and recorded traces: module state, not parameters


def _setting(value: object, name: str) -> None:
    check_not_learnable(value, name, LEARNABLE_HINT)


class BaseNeuron(nn.Module):
    """Common shell: threshold, reset, surrogate, recording and step-by-step state.

    Calling the module on ``x_seq`` ``[T, B, ...]`` runs the whole sequence from ``v_init`` and returns spikes
    ``[T, B, ...]``; each call is self-contained (no state carries over between batches). :meth:`step` runs one
    time step on ``x`` ``[B, ...]`` and keeps the membrane in ``self.v`` until :meth:`reset_state`.
    With ``record=True`` the last sequence's membrane is kept in ``h_seq`` (charged, before reset) and ``v_seq``
    (after reset), detached, for plotting.

    Inputs are real floating-point tensors (``TypeError`` otherwise: an int, bool or complex current is refused,
    not converted). Settings (``v_th``, ``v_reset``, ``v_init``, a LIF's ``decay``) are plain numbers: a tensor that
    requires grad is refused, since it would be read once and never learn (PLIF learns its decay).

    State: ``v``, ``h_seq`` and ``v_seq`` are non-persistent buffers. They follow the module through ``.to()``,
    ``.double()``, ``.cuda()``; they are not in ``state_dict()`` (they describe the current input, not the model,
    like an RNN's hidden state); ``copy.deepcopy`` and pickling keep their values but not the autograd graph of
    the steps taken so far (the copy's ``v`` is detached). The membrane starts at ``v_init`` (default 0);
    SpikingJelly starts it at ``v_reset`` (see SPEC section 1).
    """

    v: torch.Tensor | None
    h_seq: torch.Tensor | None
    v_seq: torch.Tensor | None

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
        for value, name in ((v_th, "v_th"), (v_reset, "v_reset"), (v_init, "v_init")):
            _setting(value, name)
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
        for name in _STATE:
            self.register_buffer(name, None, persistent=False)

    @property
    def decay(self) -> float | torch.Tensor:
        raise NotImplementedError

    def _kwargs(self) -> dict:
        return dict(
            decay=self.decay, v_th=self.v_th, reset_mode=self.reset_mode, surrogate=self.surrogate,
            v_reset=self.v_reset, detach_reset=self.detach_reset,
        )

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """The current that enters the charge equation (PLIF scales it); the identity here."""
        return x

    def run(self, x_seq: torch.Tensor, v_init: torch.Tensor | None = None) -> SequenceResult:
        """Run ``x_seq`` ``[T, B, ...]`` and return spikes, final membrane and (if recording) the traces."""
        check_float_tensor(x_seq, "x_seq")
        check_time_first(x_seq, "x_seq")
        if v_init is not None:
            check_float_tensor(v_init, "v_init")
            if v_init.shape != x_seq.shape[1:]:
                raise ValueError(f"v_init must have shape {tuple(x_seq.shape[1:])}, got {tuple(v_init.shape)}")
            if v_init.dtype != x_seq.dtype or v_init.device != x_seq.device:
                raise ValueError(f"v_init must have x_seq's dtype and device ({x_seq.dtype}, {x_seq.device}), "
                                 f"got {v_init.dtype}, {v_init.device}")
        # the same equations, on the fused engine (spikelab.neurons.fused; engine("reference") loops them as written)
        result = fused.neuron_sequence(
            self._input(x_seq), v_init=self.v_init if v_init is None else v_init, record=self.record,
            **self._kwargs(),
        )
        if self.record:
            self.h_seq, self.v_seq = result.h_seq, result.v_seq
        return result

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T, B, ...]`` for input currents ``x_seq`` ``[T, B, ...]``."""
        return self.run(x_seq).spikes

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One time step on ``x`` ``[B, ...]``; the membrane carries over in ``self.v``."""
        check_float_tensor(x, "x")
        if self.v is None:
            self.v = torch.full_like(x, self.v_init)
        elif (self.v.shape, self.v.dtype, self.v.device) != (x.shape, x.dtype, x.device):
            raise ValueError(
                f"x is {tuple(x.shape)} {x.dtype} on {x.device} but the held state is {tuple(self.v.shape)} "
                f"{self.v.dtype} on {self.v.device}; call reset_state() before a new input shape, or move the "
                "neuron with .to() before moving its input"
            )
        s, _, self.v = neuron_step(self._input(x), self.v, **self._kwargs())
        return s

    def reset_state(self) -> None:
        """Forget the step-by-step membrane and the recorded traces."""
        self.v = None
        self.h_seq = None
        self.v_seq = None

    def __getstate__(self) -> dict:
        # copies and pickles keep the state's values, not the autograd graph of the steps that produced them
        # (torch cannot copy a graph: a non-leaf tensor refuses deepcopy)
        state = self.__dict__.copy()
        buffers = state["_buffers"]
        state["_buffers"] = type(buffers)(
            (k, b.detach() if k in _STATE and b is not None else b) for k, b in buffers.items()
        )
        return state

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
        _setting(decay, "decay")
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


PLIF_FORMS = ("fang2021", "decay")


class PLIF(BaseNeuron):
    """Parametric LIF (Fang et al. 2021; SPEC section 1): a LIF whose time constant is learned, one scalar ``w`` per
    layer.

    ``form="fang2021"`` (default) is the published one, as in SpikingJelly's ``ParametricLIFNode``:
    ``1/tau = sigmoid(w)``, ``decay = 1 - 1/tau``, and with ``decay_input=True`` (default) the input is scaled by
    ``1/tau``::

        decay_input=True:   h[t] = v[t-1] + (I[t] - v[t-1]) / tau  = decay * v[t-1] + (1 - decay) * I[t]
        decay_input=False:  h[t] = v[t-1] - v[t-1] / tau + I[t]     = decay * v[t-1] + I[t]

    ``form="decay"`` is spikelab's earlier parameterisation, ``decay = sigmoid(w)``; with ``decay_input=False`` it
    is exactly the former ``PLIF`` (its ``w`` is the published ``w`` negated, so its gradient has the opposite
    sign). Fire and reset are those of :class:`LIF`. Differences from SpikingJelly: the leak is toward 0, not
    toward ``v_reset`` (the same for ``v_reset = 0``, every paper's setting), and the membrane starts at
    ``v_init`` (SpikingJelly: at ``v_reset``).

    Args:
        init_decay: the initial decay in the open interval (0, 1); ``0.5`` is SpikingJelly's ``init_tau = 2``
            (``tau = 1 / (1 - decay)``).
        v_th, reset, surrogate, detach_reset, v_reset, v_init, record: as for :class:`LIF`.
        form: ``"fang2021"`` or ``"decay"`` (see above).
        decay_input: scale the input by ``1 - decay`` (``1/tau``).
    """

    def __init__(
        self,
        init_decay: float = 0.5,
        v_th: float = 1.0,
        reset: str = "hard",
        surrogate: "str | _surrogate.Surrogate" = "atan",
        detach_reset: bool = False,
        *,
        form: str = "fang2021",
        decay_input: bool = True,
        v_reset: float = 0.0,
        v_init: float = 0.0,
        record: bool = False,
    ) -> None:
        super().__init__(
            v_th=v_th, reset=reset, surrogate=surrogate, detach_reset=detach_reset,
            v_reset=v_reset, v_init=v_init, record=record,
        )
        _setting(init_decay, "init_decay")
        d = check_real(init_decay, "init_decay")
        if not 0.0 < d < 1.0:
            raise ValueError(f"init_decay must be in the open interval (0, 1), got {init_decay}")
        self.form = check_choice(form, "form", PLIF_FORMS)
        if not isinstance(decay_input, bool):
            raise TypeError(f"decay_input must be a bool, got {type(decay_input).__name__}")
        self.decay_input = decay_input
        logit = math.log(d / (1 - d))
        self.w = nn.Parameter(torch.tensor(-logit if form == "fang2021" else logit))

    @property
    def decay(self) -> torch.Tensor:
        """``1 - sigmoid(w)`` (``fang2021``) or ``sigmoid(w)`` (``decay``), a 0-d tensor that carries ``w``'s grad."""
        return torch.sigmoid(-self.w if self.form == "fang2021" else self.w)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        if not self.decay_input:
            return x
        inv_tau = torch.sigmoid(self.w if self.form == "fang2021" else -self.w)  # 1 - decay, computed exactly
        return x * inv_tau.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, form={self.form!r}, decay_input={self.decay_input}"


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
    ``v_th`` (> 0); ``reset``; ``surrogate`` (name or object); ``detach_reset``; ``v_reset``; ``v_init`` (the
    membrane at the start of every sequence; SpikingJelly starts at ``v_reset``, so set ``v_init = v_reset`` to
    compare with it). ``plif_form`` and ``plif_decay_input`` are PLIF's ``form`` and ``decay_input`` (only for
    ``kind="plif"``; the defaults are the published form of Fang et al. 2021).
    """

    kind: str = "lif"
    decay: float = 0.5
    v_th: float = 1.0
    reset: str = "hard"
    surrogate: "str | _surrogate.Surrogate" = "atan"
    detach_reset: bool = False
    v_reset: float = 0.0
    v_init: float = 0.0
    plif_form: str = "fang2021"
    plif_decay_input: bool = True

    def __post_init__(self) -> None:
        check_choice(self.kind, "kind", NEURON_KINDS)
        if self.kind != "plif" and (self.plif_form != "fang2021" or self.plif_decay_input is not True):
            raise ValueError(f"plif_form and plif_decay_input apply to kind='plif' only, got kind={self.kind!r}")
        # constructing once validates every field with the neuron's own checks
        self.build()

    def build(self, *, record: bool = False) -> BaseNeuron:
        """A fresh neuron module with these settings."""
        common = dict(reset=self.reset, surrogate=self.surrogate, detach_reset=self.detach_reset,
                      v_reset=self.v_reset, v_init=self.v_init, record=record)
        if self.kind == "lif":
            return LIF(self.decay, self.v_th, **common)
        if self.kind == "if":
            return IF(self.v_th, **common)
        return PLIF(self.decay, self.v_th, form=self.plif_form, decay_input=self.plif_decay_input, **common)
