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
- :class:`EncodingExplorer`: an image turned into spikes by the direct, rate or latency code (lab 02);
- :class:`NetworkInspector`: a trained network's hidden membranes, rasters, rates, accuracy against time steps and
  confusion matrix on its test set (labs 04 and 05);
- :class:`EnergyComparison`: synaptic operations and energy of a network against its ANN twin (lab 05);
- :class:`Exercise`: an exercise's answer box with a Check button (every lab);
- :class:`TrainCommand` and :class:`RunTools`: build and run ``spikelab train`` / ``torchrun``, ``spikelab eval --T``
  and ``spikelab export-nir`` command lines, with their output and curves (lab 11);
- :class:`ReproductionPanel`: ``spikelab reproduce NAME`` run from the page at a chosen size, its table beside
  the one docs/RESULTS.md reports, and its figures (labs 06 to 10);
- :class:`FullSpikeComparison`: operations and energy of an FSNN, its DSNN, a SEW-ResNet and the ANN (lab 10);
- :class:`LandscapeExplorer`: loss landscapes of a network and of its rescaled copy, filter-normalised or raw (lab 07);
- :func:`playground`: the main dashboard, the panels above on the embedded digits.
- :class:`SliderFigure`, :class:`StepAccuracy`: a figure driven by sliders, the accuracy of each time step's
  output (labs 06, 08, 09);

Every plot is an ``Output`` widget redrawn with a plotly mime bundle (:func:`show_figure`, tens of KB; safe from
the training thread); :func:`plot` shows any figure that way, and labs use it for every figure (a bare figure as a
cell result raises "setData is not a function" in Voila). No ``FigureWidget`` is used: each ships the whole 4.9 MB plotly bundle, and in Voila its
updates were seen to be lost for good when they arrived while a heavier page was still settling. Panels never
raise into the page: a failure is shown as a readable message in ``panel.message``. Every control and plot has a
stable CSS class ``spikelab-<name>`` for browser tests.
"""
from __future__ import annotations

import html
import os

import ipywidgets as W

from spikelab.viz._live import TrainSettings
from spikelab.viz.widgets._base import SMOKE_LIMIT, Panel, _css, plot, show_figure
from spikelab.viz.widgets.coding import EncodingExplorer
from spikelab.viz.widgets.command import RunTools, TrainCommand
from spikelab.viz.widgets.exercise import Exercise
from spikelab.viz.widgets.fullspike import FullSpikeComparison
from spikelab.viz.widgets.landscape import LandscapeExplorer
from spikelab.viz.widgets.explorers import NeuronExplorer, SurrogateExplorer
from spikelab.viz.widgets.inspector import EnergyComparison, NetworkInspector
from spikelab.viz.widgets.methods import SliderFigure, StepAccuracy
from spikelab.viz.widgets.reproduction import ReproductionPanel
from spikelab.viz.widgets.runs import RunComparison
from spikelab.viz.widgets.training import TrainingPanel

__all__ = [
    "Panel", "NeuronExplorer", "SurrogateExplorer", "TrainingPanel", "RunComparison", "Playground", "playground",
    "TrainSettings", "show_figure", "plot", "SMOKE_LIMIT", "EncodingExplorer", "NetworkInspector", "EnergyComparison",
    "Exercise", "TrainCommand", "RunTools", "ReproductionPanel", "FullSpikeComparison", "LandscapeExplorer",
    "SliderFigure", "StepAccuracy",
]


class Playground(Panel):
    """The main dashboard: train a network on the embedded digits, look inside it once trained, compare runs, and
    open up one neuron and the surrogate gradient.

    ``training`` (with the neuron and surrogate controls), ``inspector`` (confusion matrix, accuracy against time
    steps, hidden membranes on one test image, firing rates per layer), ``energy`` (synaptic operations and energy
    against the ANN twin), ``runs``, ``neuron`` and ``surrogate`` are the panels. A run that ends (finished or
    stopped) is inspected, counted and added to the runs.
    """

    def __init__(self, *, runs_dir: str | os.PathLike = "runs", smoke: bool = False) -> None:
        super().__init__()
        self.training = TrainingPanel(runs_dir=runs_dir, smoke=smoke, neuron_controls=True)
        self.inspector = NetworkInspector(limit=SMOKE_LIMIT if smoke else None)
        self.energy = EnergyComparison(model=self.training.controls["model"].value)
        self.runs = RunComparison(root=runs_dir)
        self.neuron = NeuronExplorer()
        self.surrogate = SurrogateExplorer()
        self.inspector.follow(self.training)
        self.energy.follow(self.training)
        self.training.on_finish.append(lambda _panel: self.runs.refresh())
        sections = [
            ("Train a spiking network", "Pick a model, a loss, the neuron and its surrogate gradient, press Start, "
             "and watch it learn. The training doctor says what stops a network from learning: set the network to "
             "'break it' (a threshold far too high, a surrogate far too narrow) to see it at work.", self.training),
            ("Inside the trained network", "Once a run ends: its membranes and spikes on one test image, its firing "
             "rates, how accuracy grows with the time steps read, and which digits it confuses.", self.inspector),
            ("Operations and energy", "What the trained network costs per image against its ANN twin (same weights, "
             "ReLU instead of spikes), on the 45 nm estimate.", self.energy),
            ("Compare runs", "Every run is saved, from this page or from `spikelab train`; select several to compare "
             "their curves.", self.runs),
            ("Inside one neuron", "Charge, fire, reset: the equations every layer above runs, and what the surrogate "
             "passes back.", self.neuron),
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
