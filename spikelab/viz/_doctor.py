"""The training doctor in the panels, without widgets: the "break it" preset and the findings list's HTML.

- :func:`apply_preset` turns a freshly built model into the network a preset describes. ``"break it"`` raises every
  threshold to 10 *after* the model is built, so batch norm still scales the input currents to about 1 (building with
  ``NeuronConfig(v_th=10)`` would scale them to 10 as well, and nothing would break), and gives every neuron a very
  narrow triangle surrogate (gamma 0.1, zero derivative 0.1 away from threshold): the layers are silent, the output
  is dead and no gradient gets back through the silent layers, which is what the doctor then reports.
- :func:`findings_html` renders a doctor's log (``[{"epoch", "findings"}]``, see
  :class:`~spikelab.analysis.DoctorCallback`) as a short list: each ``(layer, kind)`` once, with its latest value,
  when it was first found, its advice, and whether a later diagnosis no longer found it.
"""
from __future__ import annotations

import html
from typing import Any

from torch import nn

from spikelab import surrogate as _surrogate
from spikelab._checks import check_choice
from spikelab.neurons import BaseNeuron

PRESETS = ("healthy", "break it")
BROKEN_V_TH = 10.0  # threshold of "break it", in units of the batch-normed input current (about 1)
BROKEN_SURROGATE = _surrogate.get("triangle", gamma=0.1)


def apply_preset(model: nn.Module, preset: str) -> nn.Module:
    """Apply ``preset`` (one of :data:`PRESETS`) to every spiking layer of ``model`` in place; returns ``model``."""
    check_choice(preset, "preset", PRESETS)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if preset == "break it":
        for m in model.modules():
            if isinstance(m, BaseNeuron):
                m.v_th, m.surrogate = BROKEN_V_TH, BROKEN_SURROGATE
    return model


def _when(epoch: int) -> str:
    return "before training" if epoch == 0 else f"after epoch {epoch}"


def findings_html(log: list[dict[str, Any]], *, running: bool = False) -> str:
    """The findings list of a training panel: HTML for a doctor's ``log`` (oldest diagnosis first).

    ``running`` says whether more diagnoses will come (the empty list then reads "nothing found so far").
    """
    if not isinstance(log, list):
        raise TypeError(f"log must be a list of {{'epoch', 'findings'}} dicts, got {type(log).__name__}")
    head = "<b>Training doctor</b>"
    if not log:
        return f"{head}: diagnoses the network before training and after every epoch."
    latest = {(f["layer"], f["kind"]) for f in log[-1]["findings"]}
    shown: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in log:
        for f in entry["findings"]:
            key = (f["layer"], f["kind"])
            first = shown[key]["first"] if key in shown else entry["epoch"]
            shown[key] = {**f, "first": first}
    if not shown:
        state = "nothing found so far" if running else "nothing found"
        return f"{head} ({_when(log[-1]['epoch'])}): {state}, the network looks healthy."
    items = []
    for key, f in shown.items():
        status = "" if key in latest else f" <i>(gone {_when(log[-1]['epoch'])})</i>"
        layer = html.escape(f["layer"] or "(model)")
        items.append(
            f"<li class='spikelab-finding' data-kind='{html.escape(f['kind'])}' data-layer='{html.escape(f['layer'])}'>"
            f"<b>{html.escape(f['kind'])}</b> in <code>{layer}</code> ({f['value']:.3g}, found {_when(f['first'])})"
            f"{status}<br><span style='font-size:90%'>{html.escape(f['advice'])}</span></li>")
    return f"{head} ({_when(log[-1]['epoch'])}):<ul style='margin:4px 0; padding-left:18px'>{''.join(items)}</ul>"
