"""Answer checks for the labs' exercises: each compares a learner's answer with the library's own result and
returns a short :class:`Verdict` (never raises on a wrong answer, so a lab cell or an answer box can show it).

Every check has the same shape, ``check_x(answer, **exercise_settings) -> Verdict``, and three outcomes:

- no answer yet (``None``, ``...`` or blank text): ``answered=False``, a neutral "your turn" line saying what to give;
- right: ``correct=True`` with the reason;
- wrong: ``correct=False``, "not quite" with a hint that points at the idea, not at the number.

A lab shows a check through :class:`spikelab.viz.widgets.Exercise` (a text box or choices and a Check button,
which also works in a Voila dashboard) or by calling the check in a code cell.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from spikelab.neurons import LIF

__all__ = [
    "Verdict", "is_unanswered", "check_value", "check_option", "lif_spike_times", "check_spike_times",
    "check_threshold_current", "check_rate_count", "check_latency_step", "check_steps_for_precision",
    "check_surrogate_peak", "check_flat_width", "check_mlp_parameters", "check_rate_prediction",
    "check_steps_needed", "check_conv_macs", "check_energy", "check_per_process_batch", "check_steps_per_epoch",
    "check_join_table",
]


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``correct``, a one-line ``message`` (with a hint when wrong), and ``answered``
    (False while the learner has not answered yet: the verdict then invites them, it does not fail them)."""

    correct: bool
    message: str
    answered: bool = True

    @property
    def status(self) -> str:
        """``"pending"`` (no answer yet), ``"correct"`` or ``"wrong"``."""
        return "pending" if not self.answered else "correct" if self.correct else "wrong"

    def __repr__(self) -> str:
        # marks in common text fonts (DejaVu, Liberation): an emoji check mark is a blank box without an emoji font
        return {"pending": "✏ ", "correct": "✔ ", "wrong": "✘ "}[self.status] + self.message

    def _repr_html_(self) -> str:
        import html

        colour = {"pending": "#3b5b92", "correct": "#1a7f37", "wrong": "#cf222e"}[self.status]
        return (f'<p class="spikelab-verdict spikelab-verdict-{self.status}" style="color:{colour}; '
                f'font-weight:600">{html.escape(repr(self))}</p>')


def is_unanswered(answer: object) -> bool:
    """True for the placeholders a lab starts from: ``None``, ``...`` and blank text."""
    return answer is None or answer is Ellipsis or (isinstance(answer, str) and not answer.strip())


def _your_turn(what: str) -> Verdict:
    return Verdict(False, f"your turn: {what}", answered=False)


def _number(answer: object) -> float | None:
    """``answer`` as a finite float, or None if it is not a number."""
    if isinstance(answer, bool):
        return None
    try:
        got = float(answer)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return got if math.isfinite(got) else None


def check_value(answer: object, expected: float, *, name: str = "answer", rel_tol: float = 1e-3,
                hint: str = "") -> Verdict:
    """Check a number against ``expected`` to a relative tolerance (of ``max(1, |expected|)``)."""
    if is_unanswered(answer):
        return _your_turn(f"give {name} as a number")
    got = _number(answer)
    if got is None:
        return Verdict(False, f"{name} should be a number, got {answer!r}")
    if abs(got - expected) <= rel_tol * max(1.0, abs(expected)):
        return Verdict(True, f"correct: {name} = {expected:.4g}")
    return Verdict(False, f"not quite: {name} = {got:.4g} is {'too high' if got > expected else 'too low'}"
                   + (f". Hint: {hint}" if hint else ""))


def check_option(answer: object, *, options: Mapping[str, str], correct: str) -> Verdict:
    """A multiple-choice question: ``options`` maps each choice to the explanation shown when it is picked."""
    if correct not in options:
        raise ValueError(f"correct must be one of the options {list(options)}, got {correct!r}")
    if is_unanswered(answer):
        return _your_turn("pick one of the options")
    choice = str(answer).strip()
    if choice not in options:
        return Verdict(False, f"pick one of {', '.join(repr(o) for o in options)}, not {answer!r}")
    if choice == correct:
        return Verdict(True, f"correct: {options[choice]}")
    return Verdict(False, f"not quite: {options[choice]}")


# ------------------------------------------------------------------------------------------- lab 01: one neuron
def lif_spike_times(current: float, T: int, *, decay: float, v_th: float = 1.0, reset: str = "hard") -> list[int]:
    """Steps ``t`` (0-based) at which one LIF neuron driven by a constant ``current`` spikes within ``T`` steps."""
    x = torch.full((T, 1), float(current), dtype=torch.float64)
    s = LIF(decay, v_th, reset)(x)
    return [int(t) for t in torch.nonzero(s[:, 0]).flatten()]


def check_spike_times(answer: object, current: float, T: int, *, decay: float, v_th: float = 1.0,
                      reset: str = "hard") -> Verdict:
    """Check a hand-computed list of spike steps for a constant input against the simulated neuron."""
    if is_unanswered(answer):
        return _your_turn("list the steps at which the neuron spikes, e.g. [1, 4]")
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


def check_threshold_current(answer: object, *, decay: float, v_th: float = 1.0) -> Verdict:
    """The rheobase: the constant current ``I* = v_th (1 - decay)`` below which a LIF neuron never fires.

    Without a spike the membrane climbs towards its steady state ``I / (1 - decay)``; it fires only if that
    exceeds ``v_th``.
    """
    want = v_th * (1.0 - decay)
    return check_value(answer, want, name="the threshold current I*", rel_tol=1e-2,
                       hint="without spikes h[t] approaches the fixed point h = decay * h + I, i.e. "
                            "I / (1 - decay); when does that reach v_th?")


# --------------------------------------------------------------------------------------------- lab 02: encoding
def check_rate_count(answer: object, *, x: float, T: int, gain: float = 1.0) -> Verdict:
    """Expected spike count of one input of intensity ``x`` under the rate code over ``T`` steps: ``T gain x``."""
    return check_value(answer, T * gain * x, name="the expected spike count", rel_tol=1e-2,
                       hint="each step fires independently with probability gain * x; add up T steps")


def check_latency_step(answer: object, *, x: float, T: int) -> Verdict:
    """The step at which the linear latency code fires for intensity ``x``: ``round((1 - x) (T - 1))``."""
    from spikelab.encoding import latency

    if is_unanswered(answer):
        return _your_turn("give the step (0-based) of the one spike")
    got = _number(answer)
    if got is None or got != int(got):
        return Verdict(False, f"give a whole time step such as 3, not {answer!r}")
    spikes = latency(torch.tensor([float(x)]), T)[:, 0]
    if spikes.sum() == 0:
        raise ValueError(f"an intensity of x = {x} never fires under the latency code; pick x above 0.01")
    want = int(spikes.argmax())
    if int(got) == want:
        return Verdict(True, f"correct: x = {x:g} fires at step {want} of 0..{T - 1}")
    return Verdict(False, f"not quite: step {int(got)} is {'too late' if got > want else 'too early'}. Hint: the "
                          "brightest input (x = 1) fires at step 0, a faint one near step T - 1: "
                          "t = round((1 - x) (T - 1))")


def check_steps_for_precision(answer: object, *, x: float, tol: float) -> Verdict:
    """The fewest steps ``T`` for which the rate code's estimate ``count / T`` of ``x`` has a standard deviation of
    at most ``tol``: ``sqrt(x (1 - x) / T) <= tol``, i.e. ``T = ceil(x (1 - x) / tol^2)``."""
    if is_unanswered(answer):
        return _your_turn("give a whole number of time steps T")
    got = _number(answer)
    if got is None or got != int(got) or got < 1:
        return Verdict(False, f"give a whole number of steps T >= 1, not {answer!r}")
    want = math.ceil(x * (1 - x) / tol ** 2 - 1e-9)
    if int(got) == want:
        return Verdict(True, f"correct: T = {want} steps (one spike train per pixel, {want} steps long)")
    return Verdict(False, f"not quite: T = {int(got)} is {'more than needed' if got > want else 'too few'}. "
                          "Hint: the count of T Bernoulli(x) steps has variance T x (1 - x), so count / T has "
                          "standard deviation sqrt(x (1 - x) / T)")


# ------------------------------------------------------------------------------------------- lab 03: surrogates
def check_surrogate_peak(answer: object, *, name: str, **params: float) -> Verdict:
    """The height ``σ'(0)`` of surrogate ``name`` with ``params`` (e.g. ``alpha=4``)."""
    from spikelab import surrogate

    sg = surrogate.get(name, **params)
    return check_value(answer, sg.peak, name=f"σ'(0) of {sg!r}", rel_tol=1e-3,
                       hint="put x = 0 into the derivative column of the surrogate table")


def check_flat_width(answer: object, *, family: str, depth: int = 8, low: float = 0.1, high: float = 10.0,
                     batch_norm: bool = True) -> Verdict:
    """A width parameter for surrogate ``family`` that keeps the gradient roughly flat through ``depth`` layers.

    Runs :func:`spikelab.analysis.gradient_flow` with that width and accepts it when the ratio of the gradient norm
    at the first layer to the last lies in ``[low, high]``.
    """
    from spikelab import surrogate
    from spikelab.analysis.gradient_flow import flow_ratio, gradient_flow

    param = surrogate.get(family).width_param
    if is_unanswered(answer):
        return _your_turn(f"give a value of {param} for {family}")
    got = _number(answer)
    if got is None or got <= 0:
        return Verdict(False, f"{param} must be a positive number, got {answer!r}")

    def ratio(value: float) -> float:
        sg = surrogate.get(family, **{param: value})
        return flow_ratio(gradient_flow(sg, depth=depth, batch_norm=batch_norm))

    r = ratio(got)
    if low <= r <= high:
        return Verdict(True, f"correct: with {param} = {got:g} the gradient at layer 1 is {r:.3g} x the last "
                             f"layer's: it travels through all {depth} layers")
    rises = ratio(got * 1.5) > r  # which way moves the ratio up (it depends on the family)
    up = (r < low) == rises
    what = "vanishes" if r < low else "explodes"
    return Verdict(False, f"not quite: with {param} = {got:g} the gradient {what} (layer 1 / layer {depth} = "
                          f"{r:.3g}). Hint: try a {'larger' if up else 'smaller'} {param}")


# ----------------------------------------------------------------------------------------- lab 04: first SNN
def check_mlp_parameters(answer: object, *, inputs: int, hidden: int, classes: int) -> Verdict:
    """Trainable parameters of ``models.build("mlp")`` with one hidden layer: Linear without bias, tdBN (a scale and
    a shift per neuron), neuron (none), readout Linear with bias."""
    from spikelab import models

    if is_unanswered(answer):
        return _your_turn("give the number of trainable parameters")
    net = models.build("mlp", num_classes=classes, in_channels=1, T=1, hidden=(hidden,), input_size=(1, inputs))
    want = models.count_parameters(net)
    got = _number(answer)
    if got is not None and int(got) == want:
        return Verdict(True, f"correct: {want:,} parameters (the neurons themselves learn nothing here)")
    return check_value(answer, want, name="the parameter count", rel_tol=0.0,
                       hint="inputs x hidden weights (no bias: tdBN shifts instead), 2 per hidden neuron for "
                            "tdBN's scale and shift, hidden x classes + classes for the readout")


def check_rate_prediction(answer: object, *, outputs: Sequence[Sequence[float]]) -> Verdict:
    """The class an SNN predicts from per-step logits ``outputs`` ``[T][C]`` of one sample: ``argmax(mean_t O[t])``."""
    from spikelab.losses import rate_predict

    o = torch.tensor(outputs, dtype=torch.float64)
    if o.dim() != 2:
        raise ValueError(f"outputs must be a [T][C] table of logits, got shape {tuple(o.shape)}")
    want = int(rate_predict(o[:, None, :])[0])
    if is_unanswered(answer):
        return _your_turn(f"give the predicted class, 0 to {o.shape[1] - 1}")
    got = _number(answer)
    if got is None or got != int(got) or not 0 <= got < o.shape[1]:
        return Verdict(False, f"give a class index from 0 to {o.shape[1] - 1}, not {answer!r}")
    if int(got) == want:
        return Verdict(True, f"correct: class {want} has the largest mean over time, {float(o.mean(0)[want]):.3g}")
    last = int(o[-1].argmax())
    trap = " (that is the last step's winner; the prediction averages all steps)" if int(got) == last else ""
    return Verdict(False, f"not quite: class {int(got)} is not the prediction{trap}. Hint: average each class's "
                          "logit over the time steps, then take the largest")


def check_steps_needed(answer: object, *, accuracies: Sequence[float] | None, within: float = 0.02) -> Verdict:
    """The fewest time steps at which the accuracy ``accuracies[t - 1]`` (after ``t`` steps) comes within
    ``within`` of its best value; ``accuracies=None`` while there is no trained network yet."""
    if accuracies is None or len(accuracies) == 0:
        return _your_turn("train the network first (Start), then read the curve")
    if is_unanswered(answer):
        return _your_turn("give a number of time steps")
    got = _number(answer)
    if got is None or got != int(got) or not 1 <= got <= len(accuracies):
        return Verdict(False, f"give a whole number of steps from 1 to {len(accuracies)}, not {answer!r}")
    best = max(accuracies)
    want = next(t + 1 for t, a in enumerate(accuracies) if a >= best - within)
    if int(got) == want:
        return Verdict(True, f"correct: after {want} step(s) the accuracy is {accuracies[want - 1]:.1%}, within "
                             f"{within:.0%} of the best, {best:.1%}")
    return Verdict(False, f"not quite: after {int(got)} step(s) the accuracy is {accuracies[int(got) - 1]:.1%}. "
                          f"Hint: find the first step whose accuracy is at least {best - within:.1%}")


# ------------------------------------------------------------ labs 06, 08, 09: TET, pretraining, event data
__all__ += ["check_loss_value", "check_epoch_steps_ratio", "check_ramp", "check_pipe_time_fraction",
            "check_nmnist_event", "check_event_stem"]


def check_loss_value(answer: object, *, outputs: Sequence[Sequence[float]], target: int, loss: str,
                     lam: float = 0.0, phi: float = 1.0) -> Verdict:
    """SDT's or TET's loss (``loss`` ``"sdt"``/``"tet"``) of one sample's per-step logits ``outputs`` ``[T][C]``
    with class ``target``, in nats, computed by :mod:`spikelab.losses` (SPEC section 3)."""
    from spikelab.losses import get_loss

    o = torch.tensor(outputs, dtype=torch.float64)
    if o.dim() != 2:
        raise ValueError(f"outputs must be a [T][C] table of logits, got shape {tuple(o.shape)}")
    want = float(get_loss(loss, lam=lam, phi=phi)(o[:, None, :], torch.tensor([target])))
    hint = ("SDT averages the logits over time first, then takes one cross-entropy: -log softmax(mean_t O[t])[y]"
            if loss == "sdt" else "TET takes the cross-entropy of every step's logits, -log softmax(O[t])[y], and "
            "averages those" + (f"; then (1 - lam) times that plus lam times the mean of (O - phi)^2" if lam else ""))
    return check_value(answer, want, name=f"the {loss.upper()} loss in nats", rel_tol=5e-3, hint=hint)


def check_epoch_steps_ratio(answer: object, *, phases: Sequence[tuple[int, int]], scratch: tuple[int, int]) -> Verdict:
    """Cost of time inheritance training against training from scratch, counted in epoch-steps (epochs x T):
    ``sum(epochs_i T_i) / (epochs_scratch T_scratch)`` for ``phases`` ``[(epochs, T), ...]`` (SPEC section 3)."""
    want = sum(e * t for e, t in phases) / (scratch[0] * scratch[1])
    return check_value(answer, want, name="the cost ratio", rel_tol=1e-2,
                       hint="an epoch at T steps runs the network T times per image: add epochs x T over the "
                            "phases and divide by the scratch run's epochs x T")


def check_ramp(answer: object, *, epoch: float, length: float = 100.0, v_th: float = 0.5,
               quantity: str = "slope") -> Verdict:
    """The clipped ramp of pipe-S at ``epoch`` (SPEC section 4): its lower bound ``"a"``, upper bound ``"b"`` or
    ``"slope"`` ``1 / (b - a)``, from :class:`spikelab.transfer.RampSchedule`."""
    from spikelab.transfer import RampSchedule

    a, b = RampSchedule(length=length).bounds(epoch, v_th)
    want = {"a": a, "b": b, "slope": 1.0 / (b - a)}
    if quantity not in want:
        raise ValueError(f"quantity must be 'a', 'b' or 'slope', got {quantity!r}")
    return check_value(answer, want[quantity], name=f"the ramp's {quantity} at epoch {epoch:g}", rel_tol=1e-2,
                       hint=f"a = min(e / (2 L), 0.49) and b = 1 - e / (2 L) for v_th = 0.5 (L = {length:g}); "
                            "the slope is 1 / (b - a)")


def check_pipe_time_fraction(answer: object, *, pretrain_epochs: int, ann_epoch_cost: float, finetune_epochs: int,
                             scratch_epochs: int) -> Verdict:
    """pipe-S's time to accuracy as a fraction of training the SNN from scratch, counted in SNN epochs: pretraining
    costs ``ann_epoch_cost`` of an SNN epoch per epoch, then ``finetune_epochs`` SNN epochs, against
    ``scratch_epochs`` SNN epochs."""
    want = (pretrain_epochs * ann_epoch_cost + finetune_epochs) / scratch_epochs
    return check_value(answer, want, name="the fraction of the scratch run's time", rel_tol=1e-2,
                       hint="count everything in SNN epochs: the pretraining counts too, at its lower cost per "
                            "epoch")


def check_nmnist_event(answer: object, *, record: str) -> Verdict:
    """The event encoded by one 5-byte N-MNIST record (hex, e.g. ``"0c 1f 80 01 2c"``) as ``(x, y, p, t_us)``,
    decoded by :func:`spikelab.data.nmnist.decode_nmnist`."""
    from spikelab.data.nmnist import decode_nmnist

    ev = decode_nmnist(bytes.fromhex(record))
    if len(ev) != 1:
        raise ValueError(f"record must encode exactly one event (not an overflow marker), got {record!r}")
    want = (int(ev["x"][0]), int(ev["y"][0]), int(ev["p"][0]), int(ev["t"][0]))
    if is_unanswered(answer):
        return _your_turn("give x, y, p, t as four whole numbers, e.g. 3, 7, 1, 500")
    try:
        items = answer.strip("()[] ").replace(",", " ").split() if isinstance(answer, str) else answer
        got = tuple(int(v) for v in items)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return Verdict(False, f"give four whole numbers x, y, p, t, not {answer!r}")
    if got == want:
        return Verdict(True, f"correct: x = {want[0]}, y = {want[1]}, {'ON' if want[2] else 'OFF'} (p = {want[2]}), "
                             f"t = {want[3]} µs")
    wrong = [n for n, g, w in zip(("x", "y", "p", "t"), got, want) if g != w] if len(got) == 4 else ["the count"]
    return Verdict(False, f"not quite: {', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} off. Hint: byte 0 "
                          "is x, byte 1 is y, the top bit of byte 2 is p, and the low 7 bits of byte 2 then bytes "
                          "3 and 4 make t (t = (b2 & 0x7F) * 65536 + b3 * 256 + b4)")


def check_event_stem(answer: object, *, kernel: Sequence[float]) -> Verdict:
    """The weight of the 2-channel event stem at one kernel position, for a static stem whose weights at that
    position over its input channels are ``kernel``: their mean, as :func:`spikelab.transfer.event_stem` sets
    both the ON and the OFF channel (SPEC section 4)."""
    from torch import nn

    from spikelab.transfer import event_stem

    conv = nn.Conv2d(len(kernel), 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(kernel, dtype=torch.float32).view(1, -1, 1, 1))
    new = event_stem(conv, 2)
    want = float(new.weight.detach()[0, 0, 0, 0])
    return check_value(answer, want, name="the ON (and OFF) weight", rel_tol=1e-3,
                       hint="both event channels start from the same kernel: the pretrained kernel averaged over "
                            "its input channels")

# ------------------------------------------------------------------------------------- lab 05: convolutional SNNs
def check_conv_macs(answer: object, *, in_channels: int, out_channels: int, kernel: int, size: int) -> Verdict:
    """Multiply-accumulates of one ``kernel x kernel`` convolution (stride 1, same padding) on a ``size x size``
    input: ``size^2 * out_channels * in_channels * kernel^2``, checked against :func:`spikelab.metrics.ops_table`."""
    from torch import nn

    from spikelab.metrics import ops_table

    if is_unanswered(answer):
        return _your_turn("give the number of multiply-accumulates")
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False)
    rows = ops_table(conv, torch.rand(1, in_channels, size, size) * 0.5 + 0.25, batch_size=1)
    want = rows[0]["macs"]
    return check_value(answer, want, name="the MACs", rel_tol=1e-6,
                       hint="every output pixel of every output channel multiplies in_channels x kernel x kernel "
                            "weights with inputs")


def check_energy(answer: object, *, acs: float, macs: float) -> Verdict:
    """Energy in pJ of ``acs`` accumulates and ``macs`` multiply-accumulates at 45 nm (SPEC section 5)."""
    from spikelab.metrics import E_AC_PJ, E_MAC_PJ

    return check_value(answer, E_AC_PJ * acs + E_MAC_PJ * macs, name="the energy in pJ", rel_tol=1e-3,
                       hint=f"E = {E_AC_PJ} pJ per accumulate + {E_MAC_PJ} pJ per multiply-accumulate")


# ------------------------------------------------------------------------------------------- lab 11: full scale
def check_per_process_batch(answer: object, *, batch_size: int, processes: int) -> Verdict:
    """Samples each process gets per step when ``spikelab train --batch-size batch_size`` runs under ``torchrun
    --nproc_per_node=processes`` (the global batch split evenly), checked against
    :func:`spikelab.training.distributed.shard_loader`."""
    from torch.utils.data import DataLoader

    from spikelab.training.distributed import shard_loader

    if is_unanswered(answer):
        return _your_turn("give the number of samples per process and step")
    loader = DataLoader(range(4 * batch_size), batch_size=batch_size, shuffle=True)
    want = shard_loader(loader, rank=0, world_size=processes, seed=0, train=True).batch_size
    return check_value(answer, want, name="the samples per process", rel_tol=1e-9,
                       hint="--batch-size is the global batch: one optimiser step over all processes sees it once")


def check_steps_per_epoch(answer: object, *, samples: int, batch_size: int, drop_last: bool = True) -> Verdict:
    """Optimiser steps in one epoch over ``samples`` training samples in batches of ``batch_size`` (the partial
    last batch dropped when ``drop_last``, as ``spikelab train`` does by default), checked against a DataLoader."""
    from torch.utils.data import DataLoader

    if is_unanswered(answer):
        return _your_turn("give the number of optimiser steps per epoch")
    want = len(DataLoader(range(samples), batch_size=batch_size, drop_last=drop_last))
    return check_value(answer, want, name="the steps per epoch", rel_tol=1e-9,
                       hint="one step per full batch; " + ("the partial last batch is dropped" if drop_last
                                                           else "the partial last batch is a step too"))


# ---------------------------------------------------------------------- lab 10: full-spike networks and joins
def check_join_table(answer: object, *, connect: str) -> Verdict:
    """The outputs of residual join ``connect`` for ``(a, s)`` = (0, 0), (0, 1), (1, 0), (1, 1), as a list of four
    numbers, checked against :func:`spikelab.models.resnet.sew_function` (SPEC section 5)."""
    from spikelab.viz._fullspike import join_table

    if is_unanswered(answer):
        return _your_turn("list the four outputs for (a, s) = (0, 0), (0, 1), (1, 0), (1, 1), e.g. [0, 1, 1, 1]")
    want = [float(v) for v in join_table(connect).reshape(-1)]
    try:
        given = [float(v) for v in answer]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return Verdict(False, f"give a list of four numbers, e.g. [0, 1, 1, 1], not {answer!r}")
    if len(given) != 4:
        return Verdict(False, f"give four outputs, one per input pair, not {len(given)}")
    if given == want:
        return Verdict(True, f"correct: {connect} gives {[int(v) for v in want]}")
    wrong = [f"({a}, {s})" for (a, s), g, w in zip(((0, 0), (0, 1), (1, 0), (1, 1)), given, want) if g != w]
    return Verdict(False, f"not quite: check the output{'s' if len(wrong) > 1 else ''} for (a, s) = "
                          f"{', '.join(wrong)}. Hint: {connect} is a logic gate on the two spikes (IAND is "
                          "'NOT a AND s'); ADD is a plain sum")
