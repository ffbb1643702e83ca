"""The training doctor in the panels, without widgets: the network presets' labels and the findings list's HTML.

- :data:`PRESET_LABELS`: the network presets (:func:`spikelab.analysis.doctor.apply_preset`) as a control shows
  them; ``"break it"`` raises every threshold far above the batch-normed currents and narrows the surrogate, so
  that a student sees the doctor at work.
- :func:`findings_html` renders a doctor's log (``[{"epoch", "findings"}]``, see
  :class:`~spikelab.analysis.DoctorCallback`) as a short list: each ``(layer, kind)`` once, with its latest value,
  when it was first found, its advice, and whether a later diagnosis no longer found it.
"""
from __future__ import annotations

import html
import re
from typing import Any

#: the labels of the network presets (:data:`spikelab.analysis.doctor.PRESETS`) in a control
PRESET_LABELS = {"healthy": "healthy", "break it": "break it"}


def _code(text: str) -> str:
    """Backquoted commands in advice (`spikelab dashboard surrogate`) as <code>."""
    return re.sub(r"`([^`<>]+)`", r"<code>\1</code>", text)


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
            f"{status}<br><span style='font-size:90%'>{_code(html.escape(f['advice']))}</span></li>")
    return f"{head} ({_when(log[-1]['epoch'])}):<ul style='margin:4px 0; padding-left:18px'>{''.join(items)}</ul>"
