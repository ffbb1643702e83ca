"""The advice text of :func:`spikelab.analysis.diagnose`: the measured numbers and what to change, per kind of fault.

Kept apart from the measurements so that the wording can be read (and improved) in one place.
"""
from __future__ import annotations

from spikelab import surrogate as _surrogate

EXPLORER = "the surrogate explorer (`spikelab dashboard surrogate`)"
#: width parameters for which a larger value means a narrower surrogate (see Surrogate's docstring)
_NARROW_IF_LARGER = ("alpha", "slope")


def _pct(x: float) -> str:
    return f"{100 * x:.2g} %" if x < 0.1 else f"{100 * x:.0f} %"


def _times(x: float) -> str:
    """A factor for a sentence: ``0.0097``, ``3.4``, ``100``, ``3.3e+04``."""
    return f"{x:.2g}" if x < 10 else f"{x:.0f}" if x < 1e4 else f"{x:.2g}"


def _fires(layer: str, rate: float) -> str:
    return f"{layer} never fires on this batch" if rate == 0 else \
        f"{layer} fires on only {_pct(rate)} of its neuron-steps"


def silent(layer: str, rate: float, *, rms: float, h_max: float, v_th: float, upstream: str | None) -> str:
    if rms == 0.0:
        source = f"the layer before it, {upstream}, is silent too: fix that one first" if upstream else \
            "the layers before it do not fire, or its weights are zero: fix what feeds it first"
        return f"{_fires(layer, rate)} because no input current reaches it; {source}."
    return (f"{_fires(layer, rate)}: its input currents have RMS {rms:.3g}, {_times(rms / v_th)} x its threshold "
            f"v_th = {v_th:g}, and its membrane never rises above {_times(max(h_max, 0.0) / v_th)} x v_th. Lower v_th "
            f"towards {rms:.2g} (or scale the inputs up {_times(v_th / rms)}x), put batch norm on its input currents "
            "(TdBatchNorm, whose scale starts at v_th), or initialise the weights before it larger.")


def saturated(layer: str, rate: float, *, over: float, median: float, rms: float, v_th: float, reset: str) -> str:
    fix = (f"Raise v_th towards {rms:.2g}, scale the input currents down or normalise them with batch norm"
           if rms > v_th else "Raise v_th, scale the input currents down or normalise them with batch norm")
    if reset == "soft":
        fix += "; with a soft reset the extra charge piles up step after step, a hard reset drops it"
    return (f"{layer} fires on {_pct(rate)} of its neuron-steps and {_pct(over)} of its spikes come with a membrane of "
            f"at least 2 x v_th (median {median:.3g} x v_th = {v_th:g}; input current RMS {rms:.3g}): one spike per "
            f"step is the ceiling, so its neurons report little more than the sign of their input. {fix}.")


def dead_output(layer: str, spread: float, last: tuple[str, float] | None) -> str:
    name = layer or "the readout"
    if last is not None and last[1] == 0.0:
        return (f"{name} gives the same logits for every input (spread {spread:.2g}): {last[0]}, the last spiking "
                "layer, never fires, so the readout only adds its bias. Fix that layer first (see its finding).")
    return (f"{name} gives (almost) the same logits for every input (spread {spread:.2g} of their size): too little "
            "activity reaches it. Check the firing rates of the layers before it and that the readout's weights "
            "are not zero.")


def non_finite_forward(layer: str, count: int, from_input: bool, bad_x: int) -> str:
    where = layer or "the model's output"
    if bad_x:
        return (f"The input batch holds {bad_x} NaN or inf values, and {where} is the first layer to pass them on "
                f"({count} values): clean the data (e.g. a division by a zero standard deviation when "
                "normalising) before training.")
    if from_input:
        return (f"{where} receives NaN or inf values from an operation between layers and outputs {count} of them: "
                "check the model's forward code (divisions, logs, square roots).")
    return (f"{where} turns finite inputs into {count} NaN or inf values: its weights have overflowed or hold NaN "
            "(lower the learning rate, or clip the gradient norm, e.g. `spikelab train --grad-clip 1`).")


def non_finite_loss(value: float) -> str:
    return (f"The loss is {value} although the logits are finite: check the targets (class indices in range) "
            "and the loss function (a log or division of zero).")


def non_finite_grad(param: str, count: int) -> str:
    return (f"The gradient of {param} holds {count} NaN or inf values although the forward pass is finite: lower "
            "the learning rate, clip the gradient norm (`--grad-clip 1`), and check the surrogate's derivative.")


def _suggest(sg: _surrogate.Surrogate) -> str:
    """A surrogate to try: the family's default width, or atan / triangle when the family is the problem."""
    if sg.name == "fast_sigmoid":
        return "atan (alpha=2) or triangle (gamma=1), whose derivative integrates to 1 (fast_sigmoid's to 2/slope)"
    default = _surrogate.get(sg.name)
    if sg != default:
        return f"{sg.name} with its default {default.width_param}={getattr(default, default.width_param):g}" \
               f" (peak {default.peak:.3g})"
    return "triangle (gamma=1, TET's choice)" if sg.name != "triangle" else "atan (alpha=2)"


def _shape(sg: _surrogate.Surrogate) -> str:
    value = getattr(sg, sg.width_param)
    default = getattr(_surrogate.get(sg.name), sg.width_param)
    if value == default:
        return "its default width"
    narrower = (value > default) == (sg.width_param in _NARROW_IF_LARGER)
    return "narrower than its default" if narrower else "wider than its default"


def gradient(kind: str, ratio: float, *, first: str, last: str, depth: int, surrogates: list[_surrogate.Surrogate],
             mean_gain: float, silent: list[str]) -> str:
    sg = surrogates[0]
    several = len(set(surrogates)) > 1
    used = "several surrogates" if several else f"{sg!r} ({_shape(sg)}, peak {sg.peak:.3g})"
    if ratio == 0:
        change = "vanishes completely"
    else:
        change = f"shrinks {_times(1 / ratio)}x" if ratio < 1 else f"grows {_times(ratio)}x"
    head = (f"The gradient {change} from {last} back to {first} through {depth} spiking layers; the surrogate is "
            f"{used}, and its mean derivative over the membranes is {mean_gain:.2g} per layer. ")
    if silent:
        narrow = not several and _shape(sg) == "narrower than its default"
        also = (f", and a surrogate this narrow leaves it no gradient to recover with: try {_suggest(sg)} too, "
                f"comparing surrogates in {EXPLORER}") if narrow else f"; then compare surrogates in {EXPLORER}"
        return head + f"The silent layer {silent[0]} is the likely cause: fix it first{also}."
    if kind == "vanishing_gradient":
        why = "too few membranes fall where its derivative is large" if sg.peak >= 1 else "its peak is low"
        return head + (f"Here {why}: try {_suggest(sg)}, and compare families and widths in {EXPLORER}; "
                       "tdBN or residual connections also help deep networks.")
    return head + (f"A narrow surrogate is also tall, and each layer multiplies the gradient by up to its peak: try "
                   f"{_suggest(sg)} (compare them in {EXPLORER}), or clip the gradient norm.")


def stale_norms(batches: int, left: float) -> str:
    """Appended to activity advice when an eval-mode model's batch norms have not estimated their statistics yet."""
    seen = "never seen a training batch" if batches == 0 else \
        f"seen only {batches} training batch{'es' if batches > 1 else ''}"
    return (f" Note: the model is in eval mode, and a batch norm has {seen}: its running statistics still hold "
            f"{_pct(left)} of their initial values. Train longer, or diagnose in training mode (model.train()).")
