"""A training doctor: why a spiking network is not learning, measured on one batch, with advice a student can act on.

:func:`diagnose` runs the model once forward and once backward on a batch and returns a list of :class:`Finding`:
the layer (its name in ``model.named_modules()``), the kind of fault, the measured number and one piece of advice.
The model is left bit-identical: mode, parameters, buffers (batch-norm statistics), ``.grad`` and the global random
state are as before.

Kinds, what ``value`` holds, and the bound (the defaults of :class:`Thresholds`) with the reason for it:

================== ================================================ =================================================
kind               ``value``                                         flagged when, and why that bound
================== ================================================ =================================================
``silent``         firing rate of a spiking layer (spikes per       ``< 1e-3``. Healthy layers fire 5-30 % of their
                   neuron per step)                                 neuron-steps (the default conv SNN: 12-22 %
                                                                    before and after training on digits). Below one
                                                                    spike per thousand neuron-steps the next layer
                                                                    sees an all-zero input and the surrogate sees
                                                                    membranes far below threshold.
``saturated``      firing rate, if ``>= 0.9``; else the share of    rate ``>= 0.9`` (fires almost every step, so the
                   the layer's spikes fired with a membrane         spikes no longer follow the input), or ``>= 0.8``
                   ``h >= 2 v_th``                                  of its spikes over-driven: charge for two spikes
                                                                    or more, but one spike per step is the ceiling,
                                                                    so the neuron only reports the sign of its input
                                                                    (a threshold far below the currents). Healthy
                                                                    layers: 7-38 % over-driven (default conv SNN).
``dead_output``    spread of the time-averaged logits over the      ``< 1e-3``: the prediction is the same for every
                   batch (mean over classes of the standard         input (e.g. nothing upstream fires, so the
                   deviation across samples) / their RMS            readout outputs its bias). Healthy: 0.3 to 0.8
                                                                    (the model zoo at initialisation, the trained
                                                                    conv SNN).
``vanishing_``     ratio of the gradient norms first / last         ``< 1e-2``. The model zoo at initialisation,
``gradient``       spiking layer, ``||dL/ds_first|| /               and an 8-layer spiking MLP with each surrogate
                   ||dL/ds_last||`` (SPEC section 2)                 at its default width, give 0.15 to 9 (except
                                                                    fast_sigmoid, whose derivative integrates to
                                                                    2/slope: 1.6e-5, a real fault); pooling and
                                                                    changes of width move the ratio by up to ~10x
                                                                    without any fault, so two orders of magnitude
                                                                    are needed before it is one.
``exploding_``     the same ratio                                   ``> 1e2``, for the same reason.
``gradient``
``non_finite``     number of NaN or inf values                      any: a single NaN spreads to every weight at the
                                                                    next step. Checked in every layer's output (the
                                                                    first one is named), the loss and the gradients.
================== ================================================ =================================================

The gradient ratio uses the same quantity as :func:`spikelab.analysis.gradient_flow` (the norm of the gradient
reaching a layer's spikes, ``[T, B, ...]``); the surrogate explorer (``spikelab dashboard surrogate``) shows it for
each surrogate family and width, with tighter bounds (0.1, 10) because its probe network has equal widths and no
pooling. A non-finite forward pass makes every other measurement meaningless (NaN membranes never cross the
threshold), so it is reported alone.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from spikelab._checks import check_range, check_tensor
from spikelab.analysis import _advice
from spikelab.analysis._probe import LayerRecord, Recorder, count_nonfinite, module_names, preserved, \
    spike_gradient_norms
from spikelab.losses import get_loss
from spikelab.metrics import FiringRates, layer_names

__all__ = ["Finding", "Thresholds", "KINDS", "diagnose", "format_findings"]

KINDS = ("silent", "saturated", "dead_output", "vanishing_gradient", "exploding_gradient", "non_finite")

LossArg = "str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None"


@dataclass(frozen=True)
class Finding:
    """One fault found by :func:`diagnose`.

    Attributes:
        layer: the layer's name in ``model.named_modules()`` (``""``: the model as a whole, e.g. its loss).
        kind: one of :data:`KINDS`.
        value: the measured number (see the module docstring for each kind).
        advice: what to try, with the numbers that led to it.
    """

    layer: str
    kind: str
    value: float
    advice: str

    def to_dict(self) -> dict[str, Any]:
        """``{"layer", "kind", "value", "advice"}``: plain JSON-serialisable data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Finding":
        """The inverse of :meth:`to_dict`."""
        if not isinstance(d, dict):
            raise TypeError(f"a finding must be a dict, got {type(d).__name__}")
        missing = [k for k in ("layer", "kind", "value", "advice") if k not in d]
        if missing:
            raise ValueError(f"a finding needs the keys layer, kind, value, advice; missing {missing}")
        return cls(layer=str(d["layer"]), kind=str(d["kind"]), value=float(d["value"]), advice=str(d["advice"]))

    @property
    def key(self) -> tuple[str, str]:
        """``(layer, kind)``: the same fault found again at a later epoch has the same key."""
        return self.layer, self.kind

    def __str__(self) -> str:
        return f"{self.layer or '(model)'}: {self.kind} ({self.value:.3g}). {self.advice}"


@dataclass(frozen=True)
class Thresholds:
    """The bounds of :func:`diagnose` (the module docstring gives the reason for each default)."""

    silent_rate: float = 1e-3  # spikes per neuron per step, below: silent
    saturated_rate: float = 0.9  # spikes per neuron per step, at or above: saturated
    overdriven_share: float = 0.8  # share of spikes fired with h >= 2 v_th, at or above: saturated
    dead_output_spread: float = 1e-3  # logit spread over the batch / logit RMS, below: dead output
    vanishing_ratio: float = 1e-2  # gradient norm first / last spiking layer, below: vanishing
    exploding_ratio: float = 1e2  # the same ratio, above: exploding

    def __post_init__(self) -> None:
        for name in ("silent_rate", "saturated_rate", "overdriven_share", "dead_output_spread", "vanishing_ratio"):
            check_range(getattr(self, name), name, 0.0, 1.0)
        if not self.exploding_ratio > 1.0 or not math.isfinite(self.exploding_ratio):
            raise ValueError(f"exploding_ratio must be a finite number > 1, got {self.exploding_ratio}")
        if self.silent_rate >= self.saturated_rate:
            raise ValueError(f"silent_rate ({self.silent_rate}) must be below saturated_rate ({self.saturated_rate})")


def _resolve_loss(loss: Any, y: torch.Tensor | None) -> Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]:
    if y is None:
        if loss is not None:
            raise ValueError("loss needs targets: pass y (class indices [B]) with it, or leave loss=None")

        def projection(out: torch.Tensor, _y: None) -> torch.Tensor:
            gen = torch.Generator().manual_seed(0)
            r = torch.randn(out.shape[-1], generator=gen, dtype=torch.float64).to(out.device, out.dtype)
            return (out.mean(0) @ r).mean() / math.sqrt(out.shape[-1])

        return projection
    if loss is None or isinstance(loss, str):
        return get_loss(loss or "sdt")
    if callable(loss):
        return loss
    raise TypeError(f"loss must be 'sdt', 'tet', a function f(outputs, targets) or None, got {type(loss).__name__}")


def diagnose(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    loss: LossArg = None,
    thresholds: Thresholds | None = None,
) -> list[Finding]:
    """Why ``model`` may not learn, measured on one batch: a list of :class:`Finding` (empty: nothing found).

    Runs ``model(x)`` in the model's current mode (a fresh model is in training mode, as during ``fit``; in eval
    mode batch norm uses its running statistics, which a model that has never trained has not estimated), then
    the gradient of ``loss(model(x), y)`` with respect to every spiking layer's spikes and every parameter (with
    ``torch.autograd.grad``, so no ``.grad`` is touched). Without ``y`` the gradient is that of a fixed random
    projection of the time-averaged logits (the same seed every call). Afterwards the model is bit-identical:
    mode, parameters, buffers, ``.grad``, the neurons' recorded traces and the global random state are restored.
    Other hooks attached to the model (e.g. a :class:`~spikelab.metrics.FiringRates` meter) see this pass.

    The findings come in this order: ``non_finite`` in the forward pass (reported alone), then ``silent`` and
    ``saturated`` per spiking layer in the order they run, ``dead_output``, and the gradient findings. The kinds, the
    measured values and the bounds are described in the module docstring and set by ``thresholds``.

    Args:
        model: maps ``x`` to logits ``[T, B, C]``; its spiking layers are its :class:`~spikelab.neurons.BaseNeuron`
            submodules (:meth:`~spikelab.models.SpikingModel.neurons` for the models of :mod:`spikelab.models`).
        x: one batch in the model's layout: static ``[B, ...]`` or a sequence ``[T, B, ...]``. ``dead_output``
            needs at least two different samples in it.
        y: class indices ``[B]`` (or ``[T, B]`` for TET), or None.
        loss: ``"sdt"`` (default with ``y``), ``"tet"`` or ``f(outputs [T, B, C], y) -> scalar``; needs ``y``.
        thresholds: the bounds (default :class:`Thresholds`).

    Raises:
        TypeError / ValueError: ``model`` is not a module, ``x`` / ``y`` are not tensors, ``loss`` without ``y``,
            or ``model(x)`` is not a floating-point ``[T, B, C]`` tensor.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    check_tensor(x, "x")
    if y is not None:
        check_tensor(y, "y")
    th = thresholds if thresholds is not None else Thresholds()
    if not isinstance(th, Thresholds):
        raise TypeError(f"thresholds must be a Thresholds, got {type(th).__name__}")
    loss_fn = _resolve_loss(loss, y)
    names = module_names(model)
    recorder = Recorder(model, names)
    rates = FiringRates(model)
    try:
        with preserved(model, x), torch.enable_grad(), rates:
            out = model(x)
            _check_output(out)
            findings = _forward_findings(model, recorder, rates, out, x, th)
            if findings is not None:
                return findings
            findings = _activity_findings(recorder.ran(), th)
            findings += _dead_output(recorder, out, x, th)
            stale = _stale_norms_in_eval(model)
            if findings and stale is not None:
                note = _advice.stale_norms(*stale)
                findings = [Finding(f.layer, f.kind, f.value, f.advice + note) for f in findings]
            findings += _gradient_findings(model, names, recorder, loss_fn, out, y, th)
    finally:
        recorder.remove()
    return findings


def _stale_norms_in_eval(model: nn.Module) -> tuple[int, float] | None:
    """For a model in eval mode: ``(batches seen, weight the initial running statistics still have)`` of its least
    trained batch norm, if that weight is above 5 % (``(1 - momentum) ** batches``); else None."""
    if model.training:
        return None
    worst = None
    for m in model.modules():
        if isinstance(m, _BatchNorm) and m.track_running_stats and m.num_batches_tracked is not None:
            n = int(m.num_batches_tracked)
            left = 0.0 if m.momentum is None and n > 0 else 1.0 if m.momentum is None else (1 - m.momentum) ** n
            if left > 0.05 and (worst is None or left > worst[1]):
                worst = (n, left)
    return worst


def _check_output(out: Any) -> None:
    if not isinstance(out, torch.Tensor) or out.dim() != 3 or not out.is_floating_point():
        got = f"shape {tuple(out.shape)}, {out.dtype}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"model(x) must return floating-point logits [T, B, C], got {got}")


def _forward_findings(model, recorder, rates, out, x, th) -> list[Finding] | None:
    """``non_finite`` in the forward pass, or None if it is finite; also fills each layer's firing rate."""
    bad_x = count_nonfinite(x)
    first = recorder.first_nonfinite
    if first is None and count_nonfinite(out):
        first = ("", count_nonfinite(out), False)
    if first is not None:
        layer, count, from_input = first
        return [Finding(layer, "non_finite", float(count), _advice.non_finite_forward(layer, count, from_input, bad_x))]
    by_name, readable = rates.compute(), layer_names(model)
    for module, layer in recorder.layers.items():
        layer.rate = by_name.get(readable[module], 0.0) if layer.spikes else math.nan
    return None


def _activity_findings(layers: list[LayerRecord], th: Thresholds) -> list[Finding]:
    findings: list[Finding] = []
    silent_before: str | None = None
    for layer in layers:
        if not layer.membranes:
            continue
        v_th = layer.neuron.v_th
        current = torch.cat([c.flatten() for c in layer.currents]).double()
        h = layer.membrane().double()
        rms = float(current.pow(2).mean().sqrt())
        if layer.rate < th.silent_rate:
            findings.append(Finding(layer.name, "silent", layer.rate, _advice.silent(
                layer.name, layer.rate, rms=rms, h_max=float(h.max()), v_th=v_th, upstream=silent_before)))
            silent_before = layer.name
            continue
        fired = h[h >= v_th] / v_th
        over = float((fired >= 2).double().mean()) if fired.numel() else 0.0
        if layer.rate >= th.saturated_rate or over >= th.overdriven_share:
            value = layer.rate if layer.rate >= th.saturated_rate else over
            findings.append(Finding(layer.name, "saturated", value, _advice.saturated(
                layer.name, layer.rate, over=over, median=float(fired.median()), rms=rms, v_th=v_th,
                reset=layer.neuron.reset_mode)))
    return findings


def _dead_output(recorder: Recorder, out: torch.Tensor, x: torch.Tensor, th: Thresholds) -> list[Finding]:
    T, B = out.shape[:2]
    if B < 2 or not _samples_differ(x, B, T):
        return []
    logits = out.detach().double().mean(0)  # [B, C]
    scale = float(logits.pow(2).mean().sqrt())
    spread = float(logits.std(dim=0).mean()) / scale if scale > 0 else 0.0
    if spread >= th.dead_output_spread:
        return []
    layers = recorder.ran()
    last = (layers[-1].name, layers[-1].rate) if layers else None
    layer = recorder.readout or ""
    return [Finding(layer, "dead_output", spread, _advice.dead_output(layer, spread, last))]


def _samples_differ(x: torch.Tensor, B: int, T: int) -> bool:
    """Whether the batch holds two different samples: along axis 0 for a static batch ``[B, ...]``, along axis 1 for
    a sequence ``[T, B, ...]``. When the shape fits both layouts (e.g. ``T == B``), the samples must differ along
    every axis that may be the batch's, so that a sequence of identical samples whose steps differ is not taken for
    a varied batch (a missed ``dead_output`` is better than a false one)."""
    axes = [axis for axis, ok in ((0, x.shape[0] == B), (1, x.dim() > 2 and x.shape[:2] == (T, B))) if ok]
    return bool(axes) and all(
        not torch.equal(x, x.select(axis, 0).unsqueeze(axis).expand_as(x)) for axis in axes)


def _gradient_findings(model, names, recorder, loss_fn, out, y, th) -> list[Finding]:
    if not out.requires_grad:
        return []
    value = loss_fn(out, y)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise ValueError(f"loss must return a scalar tensor, got {type(value).__name__}")
    if count_nonfinite(value.detach()):
        return [Finding("", "non_finite", 1.0, _advice.non_finite_loss(float(value.detach())))]
    layers = [lay for lay in recorder.ran() if lay.spikes[0].requires_grad]
    spikes = [s for lay in layers for s in lay.spikes]
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(value, spikes + [p for _, p in params], allow_unused=True)
    spike_grads, param_grads = grads[: len(spikes)], grads[len(spikes):]
    owners = {id(p): names[m] for m in model.modules() for p in m.parameters(recurse=False)}
    for (pname, p), g in zip(params, param_grads):
        if g is not None and count_nonfinite(g):
            return [Finding(owners[id(p)], "non_finite", float(count_nonfinite(g)),
                            _advice.non_finite_grad(pname, count_nonfinite(g)))]
    norms = spike_gradient_norms(layers, list(spike_grads)).pow(2).sum(1).sqrt().tolist()  # per layer
    if len(layers) < 2 or norms[-1] == 0:
        return []
    ratio = norms[0] / norms[-1]
    if th.vanishing_ratio <= ratio <= th.exploding_ratio:
        return []
    kind = "vanishing_gradient" if ratio < th.vanishing_ratio else "exploding_gradient"
    gains = [_surrogate_gain(lay) for lay in layers]
    silent = [lay.name for lay in layers if lay.rate < th.silent_rate]
    return [Finding(layers[0].name, kind, ratio, _advice.gradient(
        kind, ratio, first=layers[0].name, last=layers[-1].name, depth=len(layers),
        surrogates=[lay.neuron.surrogate for lay in layers], mean_gain=sum(gains) / len(gains), silent=silent))]


def _surrogate_gain(layer: LayerRecord) -> float:
    """Mean surrogate derivative ``sigma'(h - v_th)`` over the layer's neuron-steps: the factor by which the spike
    nonlinearity scales the gradient passing back through this layer, on average."""
    return float(layer.neuron.surrogate.grad(layer.membrane() - layer.neuron.v_th).double().mean())


def format_findings(findings: list[Finding] | list[dict[str, Any]], *, indent: str = "  ") -> str:
    """Findings (or their dicts) as text, one per line: ``layer: kind (value). advice``; ``""`` for none."""
    if not isinstance(findings, list):
        raise TypeError(f"findings must be a list, got {type(findings).__name__}")
    items = [f if isinstance(f, Finding) else Finding.from_dict(f) for f in findings]
    return "\n".join(f"{indent}{f}" for f in items)
