"""Interactive panels for notebooks and Voila dashboards: the only spikelab package that imports ipywidgets.

Each panel wires controls to figures from :mod:`spikelab.viz.figures` and is displayed by making it the last
expression of a cell (its root widget is ``panel.widget``):

- :class:`NeuronExplorer`: one neuron's membrane and spikes as decay (or tau), threshold, reset, surrogate and the
  input current change;
- :class:`SurrogateExplorer`: a surrogate family and width, its derivative, and the gradient flow through a deep
  spiking MLP at initialisation (vanishing / exploding with depth, SPEC section 2);
- :class:`TrainingPanel`: train a small spiking network in the background with live curves, raster and rates,
  and the training doctor's findings (a "break it" network shows it at work);
- :class:`RunComparison`: learning curves of run folders written by ``spikelab train`` or a training panel;
- :func:`playground`: the main dashboard, the panels above on the embedded digits.

Every plot is an ``Output`` widget redrawn with a plotly mime bundle (:func:`show_figure`, tens of KB; safe from
the training thread). No ``FigureWidget`` is used: each ships the whole 4.9 MB plotly bundle, and in Voila its
updates were seen to be lost for good when they arrived while a heavier page was still settling. Panels never
raise into the page: a failure is shown as a readable message in ``panel.message``. Every control and plot has a
stable CSS class ``spikelab-<name>`` for browser tests.
"""
from __future__ import annotations

import html
import os

import ipywidgets as W

from spikelab.viz._live import TrainSettings
from spikelab.viz.widgets._base import SMOKE_LIMIT, Panel, _css, show_figure
from spikelab.viz.widgets.explorers import NeuronExplorer, SurrogateExplorer
from spikelab.viz.widgets.runs import RunComparison
from spikelab.viz.widgets.training import TrainingPanel

__all__ = [
    "Panel", "NeuronExplorer", "SurrogateExplorer", "TrainingPanel", "RunComparison", "Playground", "playground",
    "TrainSettings", "show_figure", "SMOKE_LIMIT",
]


class Playground(Panel):
    """The main dashboard: training on the embedded digits, the runs so far, one neuron and the surrogate gradient.

    ``training``, ``runs``, ``neuron`` and ``surrogate`` are the panels; a finished run refreshes ``runs``.
    """

    def __init__(self, *, runs_dir: str | os.PathLike = "runs", smoke: bool = False) -> None:
        super().__init__()
        self.training = TrainingPanel(runs_dir=runs_dir, smoke=smoke)
        self.runs = RunComparison(root=runs_dir)
        self.neuron = NeuronExplorer()
        self.surrogate = SurrogateExplorer()
        self.training.on_finish.append(lambda _panel: self.runs.refresh())
        sections = [
            ("Train a spiking network", "Pick a model and a loss, press Start, and watch it learn. The training doctor "
             "says what stops a network from learning: set the network to 'break it' (a threshold far too high, a surrogate "
             "far too narrow) to see it at work.",
             self.training),
            ("Compare runs", "Every run is saved; select several to compare their curves.", self.runs),
            ("Inside one neuron", "Charge, fire, reset: the equations every layer above runs.", self.neuron),
            ("Surrogate gradients", "How the backward pass gets through the spikes, and why width matters.",
             self.surrogate),
        ]
        children: list[W.Widget] = []
        for title, line, panel in sections:
            children += [W.HTML(f"<h3>{html.escape(title)}</h3><p>{html.escape(line)}</p>"), panel.widget]
        self.widget = _css(W.VBox(children), "playground")


def playground(*, runs_dir: str | os.PathLike = "runs", smoke: bool = False) -> Playground:
    """The main dashboard's panel (see :class:`Playground`); display it by making it a cell's last expression."""
    return Playground(runs_dir=runs_dir, smoke=smoke)
