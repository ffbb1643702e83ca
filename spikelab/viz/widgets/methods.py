"""Panels of the labs on the papers' methods (06, 08, 09): a figure driven by sliders, per-step accuracy of trained
networks, and a reproduction re-run at a laptop size beside what ``docs/RESULTS.md`` reports."""
from __future__ import annotations

import html
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from spikelab.viz.methods import step_accuracy_figure
from spikelab.viz._live import Throttle
from spikelab.viz._reproduction import PROGRESS_PREFIX, ReproductionJob, side_by_side, table_html
from spikelab.viz.widgets._base import Panel, _controls, _css, _dropdown, _guarded, _hint_figure, _slider

__all__ = ["SliderFigure", "StepAccuracy", "ReproductionPanel"]


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


class ReproductionPanel(Panel):
    """Re-run reproduction ``name`` (``spikelab reproduce NAME --size SIZE``) from the page and set its table beside
    the one ``docs/RESULTS.md`` reports (:func:`spikelab.reproduce.reported`). The size menu offers ``lab`` (the
    default), ``smoke`` and ``full`` (the size docs/RESULTS.md reports).

    Start runs it in a child process (its runs and table go to ``runs_dir/reproduce-SIZE/NAME/``), Stop ends it;
    progress lines appear as they come. When it ends: our table, the two side by side, and the reproduction's
    figure. ``smoke=True`` picks the smoke size (seconds). ``table`` is our last :class:`Table`, ``on_finish``
    functions are called with the panel when a run ends.
    """

    def __init__(self, name: str, *, runs_dir: str | os.PathLike = "runs", smoke: bool = False) -> None:
        super().__init__()
        from spikelab import reproduce

        self.rep = reproduce.get(name)
        self.name, self.runs_dir = name, Path(runs_dir)
        self.reported = reproduce.reported(name)
        sizes = [s for s in ("lab", "smoke", "full") if s in self.rep.sizes]
        self.size = _dropdown("repro-size", "size", sizes, "smoke" if smoke else sizes[0])
        self.start_button = _css(W.Button(description="Start", icon="play", button_style="success"), "start")
        self.stop_button = _css(W.Button(description="Stop", icon="stop", disabled=True), "stop")
        self.start_button.on_click(lambda _b: self.start())
        self.stop_button.on_click(lambda _b: self.stop())
        self.status = _css(W.HTML("not started: press Start"), "repro-status")
        self.ours = _css(W.HTML("<i>your table appears here when the run ends</i>"), "repro-ours")
        self.compare = _css(W.HTML(""), "repro-compare")
        self.results = _css(W.HTML(self._reported_html()), "repro-reported")
        self.table = None
        self.job: ReproductionJob | None = None
        self.on_finish: list[Callable[[ReproductionPanel], None]] = []
        self._throttle = Throttle(0.5)
        out = self._output("repro-figure", "380px")
        self._draw("repro-figure", _hint_figure("the reproduction's figure appears here when the run ends",
                                                height=300))
        head = W.HTML(f"<b>{html.escape(self.rep.title)}</b> ({html.escape(self.rep.paper)}; "
                      f"{html.escape(self.rep.spec)}). Sizes: <i>lab</i>, a few minutes on a laptop; <i>smoke</i>, "
                      "seconds, only shows that it runs; <i>full</i>, what docs/RESULTS.md reports (30 to 60 "
                      f"minutes on 2 cores; also <code>spikelab reproduce {html.escape(name)}</code>).")
        controls = _controls("Reproduction", self.size, W.HBox([self.start_button, self.stop_button]), self.status)
        self.widget = _css(W.VBox([head, W.HBox([controls, W.VBox([self.message, self.ours, self.compare],
                                                                   layout=W.Layout(flex="1"))]),
                                   out, self.results]), f"repro-{name}")

    def _reported_html(self) -> str:
        if self.reported is None:
            return (f"<p class='spikelab-repro-missing'>docs/RESULTS.md reports no table for "
                    f"<code>{html.escape(self.name)}</code> yet (not measured at full size); compare with the "
                    "paper's numbers in the table's last column instead.</p>")
        return "<p>What docs/RESULTS.md reports (full size):</p>" + table_html(self.reported)

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    @_guarded("starting the reproduction")
    def start(self) -> bool:
        """Start the run at the chosen size; False (with a message) if one is running."""
        if self.running:
            self.report("a run is already going: Stop it first", level="info")
            return False
        out = self.runs_dir / f"reproduce-{self.size.value}"
        self.job = ReproductionJob(self.name, size=self.size.value, out=out, on_line=self._on_line)
        self._t0 = time.monotonic()
        self.start_button.disabled, self.stop_button.disabled = True, False
        self.clear_message()
        self.status.value = f"running at size {html.escape(self.size.value)}: starting (importing torch)"
        self.job.run(on_done=lambda _t: self._finished())
        return True

    def stop(self) -> None:
        """End the run now (nothing is written for the run that was going)."""
        if self.job is not None:
            self.job.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; True if it has."""
        return True if self.job is None else self.job.wait(timeout)

    def _on_line(self, job: ReproductionJob) -> None:
        # a training bar sends many lines a second: redraw for the reproduction's own lines, else twice a second
        if not (job.last.startswith(PROGRESS_PREFIX) or self._throttle.ready()):
            return
        done = job.lines[-1] if job.lines else job.last
        self.status.value = (f"running at size {html.escape(job.size)}, {time.monotonic() - self._t0:.0f} s:<br>"
                             f"<small>{html.escape(done[:160])}</small>")

    def _finished(self) -> None:
        job = self.job
        assert job is not None
        self.start_button.disabled, self.stop_button.disabled = False, True
        elapsed = time.monotonic() - self._t0
        if job.state == "stopped":
            self.status.value = f"stopped after {elapsed:.0f} s"
        elif job.state == "failed":
            self.status.value = "failed"
            self.report(f"the reproduction failed: {job.error}")
        else:
            self.table = job.result
            self.ours.value = table_html(self.table)
            self.compare.value = table_html(side_by_side(self.table, self.reported))
            self._draw_figure()
            self.status.value = f"done in {elapsed:.0f} s (size {html.escape(job.size)})"  # last: all is drawn
        for fn in self.on_finish:
            fn(self)

    @_guarded("drawing the reproduction's figure")
    def _draw_figure(self) -> None:
        from spikelab.viz.tet_transfer import BUILDERS

        if self.name in BUILDERS and self.table is not None:
            fig = BUILDERS[self.name](self.table.data)
            fig.update_layout(width=None)
            self._draw("repro-figure", fig)
