"""Answer checks for the labs' exercises: each compares a learner's answer with the library's own result and
returns a short verdict (never raises on a wrong answer, so a lab cell can simply display it)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from spikelab.neurons import LIF


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``correct`` and a one-line message (with a hint when wrong)."""

    correct: bool
    message: str

    def __repr__(self) -> str:
        return ("✅ " if self.correct else "❌ ") + self.message

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.correct else "#cf222e"
        return f'<p style="color:{colour}; font-weight:600">{self!r}</p>'


def lif_spike_times(current: float, T: int, *, decay: float, v_th: float = 1.0, reset: str = "hard") -> list[int]:
    """Steps ``t`` (0-based) at which one LIF neuron driven by a constant ``current`` spikes within ``T`` steps."""
    x = torch.full((T, 1), float(current), dtype=torch.float64)
    s = LIF(decay, v_th, reset)(x)
    return [int(t) for t in torch.nonzero(s[:, 0]).flatten()]


def check_spike_times(answer: object, current: float, T: int, *, decay: float, v_th: float = 1.0,
                      reset: str = "hard") -> Verdict:
    """Check a hand-computed list of spike steps for a constant input against the simulated neuron."""
    try:
        given = sorted(int(t) for t in answer)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return Verdict(False, f"give a list of whole time steps, e.g. [2, 5], not {answer!r}")
    want = lif_spike_times(current, T, decay=decay, v_th=v_th, reset=reset)
    if given == want:
        return Verdict(True, f"correct: the neuron spikes at steps {want}")
    if not want:
        return Verdict(False, "not quite: this neuron never reaches threshold (its steady state "
                              f"I / (1 - decay) = {current / (1 - decay) if decay < 1 else float('inf'):.3g} "
                              f"stays below v_th = {v_th:g})")
    missing = sorted(set(want) - set(given))
    extra = sorted(set(given) - set(want))
    hint = "charge first, h[t] = decay * v[t-1] + I, then compare h[t] with v_th (h = v_th fires), then reset"
    parts = [f"{len(missing)} spike(s) missing" if missing else "", f"{len(extra)} too many" if extra else ""]
    return Verdict(False, "not quite: " + ", ".join(p for p in parts if p) + f". Hint: {hint}")


def check_value(answer: object, expected: float, *, name: str = "answer", rel_tol: float = 1e-3) -> Verdict:
    """Check a number against ``expected`` to a relative tolerance."""
    try:
        got = float(answer)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return Verdict(False, f"{name} should be a number, got {answer!r}")
    if abs(got - expected) <= rel_tol * max(1.0, abs(expected)):
        return Verdict(True, f"correct: {name} = {expected:.4g}")
    return Verdict(False, f"not quite: {name} = {got:.4g} is {'too high' if got > expected else 'too low'}")
