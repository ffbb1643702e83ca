"""Panels of the labs on the papers' methods (06, 08, 09): a figure driven by sliders and the per-step accuracy of
trained networks (their reproductions: :mod:`spikelab.viz.widgets.reproduction`)."""
from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from spikelab.viz.methods import step_accuracy_figure
from spikelab.viz.widgets._base import Panel, _controls, _css, _guarded, _hint_figure, _slider

__all__ = ["SliderFigure", "StepAccuracy"]


class SliderFigure(Panel):
    """A figure redrawn by ``build(**values)`` whenever one of its sliders moves.

    ``sliders`` maps each keyword of ``build`` to ``(min, max, step, value)``: an ``IntSlider`` when all four are
    ints, a ``FloatSlider`` otherwise (class ``spikelab-<name>-<keyword>``). ``fixed`` are keywords passed unchanged.
    The plot's class is ``spikelab-<name>``; ``values`` holds what the sliders show now.
    """

    def __init__(self, build: Callable[..., go.Figure], *, name: str, sliders: Mapping[str, tuple],
                 fixed: Mapping[str, Any] | None = None, title: str = "Controls") -> None:
        super().__init__()
        if not callable(build):
            raise TypeError(f"build must be a figure builder, got {type(build).__name__}")
        if not isinstance(sliders, Mapping) or not sliders:
            raise ValueError("sliders must map at least one keyword of build to (min, max, step, value)")
        self.build, self.fixed = build, dict(fixed or {})
        self.sliders: dict[str, W.Widget] = {}
        for key, spec in sliders.items():
            if not (isinstance(spec, tuple) and len(spec) == 4):
                raise ValueError(f"sliders[{key!r}] must be (min, max, step, value), got {spec!r}")
            lo, hi, step, value = spec
            ints = all(isinstance(v, int) and not isinstance(v, bool) for v in spec)
            cls = W.IntSlider if ints else W.FloatSlider
            self.sliders[key] = _slider(cls, f"{name}-{key}", key, min=lo, max=hi, step=step, value=value)
            self.sliders[key].observe(lambda _c: self.redraw(), "value")
        out = self._output(name, "360px")
        self.name = name
        self.widget = _css(W.HBox([_controls(title, *self.sliders.values()),
                                   W.VBox([self.message, out], layout=W.Layout(flex="1"))]), "slider-figure")
        self.redraw()

    @property
    def values(self) -> dict[str, Any]:
        return {k: s.value for k, s in self.sliders.items()}

    @property
    def figure(self) -> go.Figure:
        """The figure on screen."""
        return self.figures[self.name]

    @_guarded("drawing the figure")
    def redraw(self) -> None:
        self._draw(self.name, self.build(**self.fixed, **self.values))
        self.clear_message()


class StepAccuracy(Panel):
    """Accuracy of each time step's own output (``argmax O[t]``) and of the mean of the first ``t`` outputs, for
    every network a :class:`TrainingPanel` finishes, one line per run (labelled by its loss), on its test set.

    TET trains every ``O[t]`` (SPEC section 3), SDT only their mean: train the same network with each loss and
    compare. ``curves[label] = {"step": [T], "mean": [T]}`` holds the numbers drawn (fractions).
    """

    def __init__(self, *, limit: int | None = 500) -> None:
        super().__init__()
        self.limit = limit
        self.curves: dict[str, dict[str, list[float]]] = {}
        self.readout = _css(W.HTML("no network yet: train one above"), "steps-readout")
        out = self._output("step-accuracy", "340px")
        self.widget = _css(W.VBox([self.message, self.readout, out]), "step-accuracy-panel")
        self._draw("step-accuracy", _hint_figure("the accuracy of each time step's output<br>appears here once a "
                                                 "network is trained", height=340))

    def follow(self, panel: Any) -> None:
        """Add a line for every network ``panel`` (a TrainingPanel) finishes or stops training."""
        panel.on_finish.append(lambda p: None if p.job.model is None else self.add(
            p.job.model, label=_loss_label(p.job.settings), dataset=p.job.settings.dataset))

    @_guarded("measuring the accuracy per step")
    def add(self, model: Any, *, label: str, dataset: str = "digits") -> None:
        """Evaluate ``model`` on the test split of ``dataset`` and draw its curves under ``label``."""
        from torch.utils.data import DataLoader

        from spikelab import data
        from spikelab.analysis.network import accuracy_by_steps, predict
        from spikelab.losses import per_step_accuracy

        test = data.load(dataset, split="test", limit=self.limit, T=getattr(model, "T", None))
        outputs, targets = predict(model, DataLoader(test, batch_size=256))
        self.curves[label] = dict(step=per_step_accuracy(outputs, targets),
                                  mean=[float(a) for a in accuracy_by_steps(outputs, targets)])
        self._draw("step-accuracy", step_accuracy_figure(self.curves))
        parts = [f"{html.escape(k)}: step 0 alone {100 * c['step'][0]:.1f} %, all {len(c['step'])} steps "
                 f"{100 * c['mean'][-1]:.1f} %" for k, c in self.curves.items()]
        self.readout.value = "<br>".join(parts)
        self.clear_message()


def _loss_label(settings: Any) -> str:
    return f"TET (lam {settings.lam:g}), T={settings.T}" if settings.loss == "tet" else f"SDT, T={settings.T}"
