"""The Voila dashboards that ship with spikelab (``spikelab dashboard [NAME]`` serves them).

Each is a thin notebook: a title, one line of what it shows, and a call into :mod:`spikelab.viz.widgets`.
A ``parameters`` cell holds ``SMOKE = False``; with ``SMOKE`` (or ``SPIKELAB_SMOKE=1``) a dashboard runs its
interactive paths once on a tiny budget, which is how the test suite executes it.
"""
from __future__ import annotations

from pathlib import Path

from spikelab._checks import check_choice

HERE = Path(__file__).resolve().parent

#: name -> (notebook file, what it shows); the first is the default of ``spikelab dashboard``.
DASHBOARDS: dict[str, tuple[str, str]] = {
    "playground": ("playground.ipynb", "train a spiking network on the embedded digits and explore its parts"),
    "neuron": ("neuron.ipynb", "one LIF neuron: membrane and spikes under decay, threshold, reset and input"),
    "surrogate": ("surrogate.ipynb", "surrogate gradients and the gradient flow through a deep spiking MLP"),
    "runs": ("runs.ipynb", "learning curves of saved runs side by side"),
}


def names() -> list[str]:
    """The dashboard names, the default first."""
    return list(DASHBOARDS)


def path(name: str = "playground") -> Path:
    """The notebook file of dashboard ``name``."""
    check_choice(name, "name", DASHBOARDS)
    return HERE / DASHBOARDS[name][0]
