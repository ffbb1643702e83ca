"""Interactive panels for notebooks and Voila dashboards: the only spikelab module that imports ipywidgets.

Each panel wires controls to figures from :mod:`spikelab.viz.figures` and is displayed by making it the last
expression of a cell (its root widget is ``panel.widget``):

- :class:`NeuronExplorer`: one neuron's membrane and spikes as decay (or tau), threshold, reset, surrogate and the
  input current change;
- :class:`SurrogateExplorer`: a surrogate family and width, its derivative, and the gradient flow through a deep
  spiking MLP at initialisation (vanishing / exploding with depth, SPEC section 2);
- :class:`TrainingPanel`: train a small spiking network in the background with live curves, raster and rates;
- :class:`RunComparison`: learning curves of run folders written by ``spikelab train`` or a training panel;
- :func:`playground`: the main dashboard, the panels above on the embedded digits.

Every plot is an ``Output`` widget redrawn with a plotly mime bundle (:func:`show_figure`, tens of KB; safe from
the training thread). No ``FigureWidget`` is used: each ships the whole 4.9 MB plotly bundle, and in Voila its
updates were seen to be lost for good when they arrived while a heavier page was still settling. Panels never
raise into the page: a failure is shown as a readable message in ``panel.message``. Every control and plot has a
stable CSS class ``spikelab-<name>`` for browser tests.
"""
from __future__ import annotations

import functools
import html
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from spikelab import surrogate as _surrogate
from spikelab._checks import check_choice, check_int, check_range
from spikelab.analysis import gradient_flow
from spikelab.history import History
from spikelab.neurons import RESET_MODES, NeuronConfig, decay_from_tau, tau_from_decay
from spikelab.viz import _explore
from spikelab.viz._live import TRAIN_DATASETS, TRAIN_MODELS, Throttle, TrainingJob, TrainSettings
from spikelab.viz.figures import (
    curves_figure, firing_rate_figure, gradient_heatmap, membrane_figure, raster_figure, surrogate_figure,
)

__all__ = [
    "Panel", "NeuronExplorer", "SurrogateExplorer", "TrainingPanel", "RunComparison", "Playground", "playground",
    "TrainSettings", "show_figure",
]

CONTROL_WIDTH = "330px"
SMOKE_LIMIT = 128  # samples per split in smoke mode
FIRST_LAYER = "(first spiking layer)"
_STYLE = {"description_width": "110px"}


def show_figure(out: W.Output, fig: go.Figure) -> None:
    """Replace what ``out`` shows with ``fig`` as a plotly mime bundle, in one update (safe from any thread)."""
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
    bundle["text/plain"] = f"<plotly figure: {fig.layout.title.text or 'untitled'}>"
    out.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)


def _svg(fig: go.Figure) -> go.Figure:
    """``fig`` with its WebGL scatter traces drawn as SVG: a redrawn plot would otherwise leak a WebGL context per
    redraw (browsers keep about 16). Fine for rasters of a few thousand spikes."""
    if not any(tr.type == "scattergl" for tr in fig.data):
        return fig
    traces = []
    for tr in fig.data:
        props = tr.to_plotly_json()
        traces.append(go.Scatter(**{k: v for k, v in props.items() if k != "type"}) if tr.type == "scattergl" else tr)
    return go.Figure(data=traces, layout=fig.layout)


def _css(widget: W.Widget, name: str) -> W.Widget:
    widget.add_class(f"spikelab-{name}")
    return widget


def _guarded(what: str) -> Callable:
    """Decorate a panel method so that an exception becomes a message in the panel instead of a traceback."""

    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(self: "Panel", *args: Any, **kwargs: Any) -> Any:
            try:
                out = fn(self, *args, **kwargs)
            except Exception as e:
                self.report(f"{what} failed: {type(e).__name__}: {e}")
                return None
            return out

        return wrapper

    return deco


class Panel:
    """Base of every panel: a root ``widget``, a ``message`` line, and the last figure drawn in each output.

    ``figures[key]`` holds the ``go.Figure`` last shown in ``outputs[key]``, so tests and notebooks can read what
    is on screen without a browser.
    """

    def __init__(self) -> None:
        self.message = _css(W.HTML(value=""), "message")
        self.outputs: dict[str, W.Output] = {}
        self.figures: dict[str, go.Figure] = {}
        self.widget: W.Box = W.VBox()
        self.error: str | None = None  # the error shown now, if any

    def _output(self, key: str, height: str = "auto") -> W.Output:
        out = _css(W.Output(layout=W.Layout(min_height=height, width="100%")), key)
        self.outputs[key] = out
        return out

    def _draw(self, key: str, fig: go.Figure) -> None:
        self.figures[key] = fig
        show_figure(self.outputs[key], fig)

    def report(self, text: str, level: str = "error") -> None:
        """Show ``text`` in the message line (``level`` ``"error"`` in red, ``"info"`` in grey)."""
        color = "#b00020" if level == "error" else "#555"
        self.message.value = f'<span style="color:{color}">{html.escape(text)}</span>'
        self.error = text if level == "error" else None
        if level == "error":
            self.message.add_class("spikelab-error")
        else:
            self.message.remove_class("spikelab-error")

    def clear_message(self) -> None:
        """Empty the message line."""
        self.message.value = ""
        self.error = None
        self.message.remove_class("spikelab-error")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _controls(title: str, *children: W.Widget) -> W.VBox:
    head = W.HTML(f"<b>{html.escape(title)}</b>")
    return W.VBox([head, *children], layout=W.Layout(width=CONTROL_WIDTH, min_width=CONTROL_WIDTH))


def _slider(cls: type, name: str, description: str, **kwargs: Any) -> W.Widget:
    return _css(cls(description=description, continuous_update=False, style=_STYLE,
                    layout=W.Layout(width="320px"), **kwargs), name)


def _dropdown(name: str, description: str, options: Any, value: Any) -> W.Dropdown:
    return _css(W.Dropdown(description=description, options=options, value=value, style=_STYLE,
                           layout=W.Layout(width="320px")), name)


class NeuronExplorer(Panel):
    """One LIF neuron driven by an input current; the membrane and spikes redraw as the controls move.

    Controls: the leak as ``decay`` per step or as time constant ``tau`` (``decay = exp(-1 / tau)``), threshold
    ``v_th``, reset mode, surrogate (it changes only the backward pass: the readout shows the gradient of the spike
    count with respect to the input), input current kind and amplitude, number of steps ``T``.
    """

    def __init__(self, *, decay: float = 0.8, v_th: float = 1.0, reset: str = "hard", surrogate: str = "atan",
                 current: str = "constant", amplitude: float = 0.4, T: int = 100) -> None:
        super().__init__()
        check_range(decay, "decay", 0.01, 0.99)
        check_range(v_th, "v_th", 0.1, 3.0)
        check_choice(reset, "reset", RESET_MODES)
        check_choice(surrogate, "surrogate", _surrogate.names())
        check_choice(current, "current", _explore.CURRENT_KINDS)
        check_range(amplitude, "amplitude", -1.0, 3.0)
        check_range(check_int(T, "T", minimum=10), "T", 10, 400)
        self._syncing = False
        self.trace: _explore.NeuronTrace | None = None
        c = self.controls = {
            "leak": _css(W.ToggleButtons(options=["decay", "tau"], value="decay", description="leak as",
                                         style={"description_width": "110px", "button_width": "90px"}), "leak"),
            "decay": _slider(W.FloatSlider, "decay", "decay", min=0.01, max=0.99, step=0.01, value=decay),
            "tau": _slider(W.FloatSlider, "tau", "tau (steps)", min=0.25, max=50.0, step=0.25,
                           value=round(tau_from_decay(decay) * 4) / 4),
            "v_th": _slider(W.FloatSlider, "vth", "threshold v_th", min=0.1, max=3.0, step=0.05, value=v_th),
            "reset": _dropdown("reset", "reset", list(RESET_MODES), reset),
            "surrogate": _dropdown("surrogate", "surrogate", _surrogate.names(), surrogate),
            "current": _dropdown("current", "input current", list(_explore.CURRENT_KINDS), current),
            "amplitude": _slider(W.FloatSlider, "amplitude", "amplitude", min=-1.0, max=3.0, step=0.05,
                                 value=amplitude),
            "T": _slider(W.IntSlider, "steps", "time steps T", min=10, max=400, step=10, value=T),
        }
        c["tau"].layout.display = "none"
        self.readout = _css(W.HTML(), "readout")
        out = self._output("membrane", "420px")
        self.widget = _css(W.HBox([_controls("Neuron", *c.values()), W.VBox([self.readout, self.message, out],
                                                                               layout=W.Layout(flex="1"))]),
                           "neuron-explorer")
        c["leak"].observe(self._on_leak_mode, "value")
        c["decay"].observe(self._on_decay, "value")
        c["tau"].observe(self._on_tau, "value")
        for key in ("v_th", "reset", "surrogate", "current", "amplitude", "T"):
            c[key].observe(lambda _change: self.redraw(), "value")
        self.redraw()

    @property
    def config(self) -> NeuronConfig:
        """The neuron the controls describe."""
        c = self.controls
        return NeuronConfig(kind="lif", decay=float(c["decay"].value), v_th=float(c["v_th"].value),
                            reset=c["reset"].value, surrogate=c["surrogate"].value)

    def _on_leak_mode(self, change: dict) -> None:
        tau_mode = change["new"] == "tau"
        self.controls["tau"].layout.display = None if tau_mode else "none"
        self.controls["decay"].layout.display = "none" if tau_mode else None

    def _on_decay(self, change: dict) -> None:
        if self._syncing:  # set by _on_tau, which redraws
            return
        self._syncing = True
        try:
            self.controls["tau"].value = min(max(round(tau_from_decay(change["new"]) * 4) / 4, 0.25), 50.0)
        finally:
            self._syncing = False
        self.redraw()

    def _on_tau(self, change: dict) -> None:
        if self._syncing:  # set by _on_decay, which redraws
            return
        self._syncing = True
        try:
            self.controls["decay"].value = min(max(decay_from_tau(change["new"]), 0.01), 0.99)
        finally:
            self._syncing = False
        self.redraw()

    @_guarded("drawing the neuron")
    def redraw(self) -> None:
        """Simulate the neuron with the current settings and redraw membrane, spikes and readout."""
        c = self.controls
        cfg = self.config
        current = _explore.input_current(c["current"].value, float(c["amplitude"].value), int(c["T"].value))
        tr = self.trace = _explore.simulate_neuron(cfg, current)
        fig = membrane_figure(tr.h, tr.spikes, v_th=cfg.v_th, input_current=tr.current,
                              title="membrane potential before reset h[t], and spikes")
        fig.update_layout(height=420, margin=dict(l=60, r=20, t=50, b=40), showlegend=False)
        self._draw("membrane", fig)
        T = tr.spikes.size
        self.readout.value = (
            f"decay = {cfg.decay:.3f} (tau = {tau_from_decay(cfg.decay):.2f} steps) &nbsp;|&nbsp; "
            f"<b>{tr.count}</b> spikes in {T} steps (rate {tr.count / T:.3f}) &nbsp;|&nbsp; "
            f"backward, {html.escape(repr(_surrogate.get(cfg.surrogate)))}: "
            f"d(spike count)/dI summed over t = {tr.grad.sum():.3g}"
        )
        self.clear_message()


class SurrogateExplorer(Panel):
    """A surrogate family and width: its primitive and derivative, and the gradient flow it gives.

    The gradient-flow heatmap is ``|| dL / ds_l[t] ||`` per layer ``l`` and step ``t`` of a deep spiking MLP at
    initialisation (:func:`spikelab.analysis.gradient_flow`); the readout says whether the gradient reaching
    the first layer is much smaller (vanishing) or larger (exploding) than at the last.
    """

    def __init__(self, *, family: str = "atan", width: float | None = None, depth: int = 8) -> None:
        super().__init__()
        check_choice(family, "family", _surrogate.names())
        lo, hi = _explore.WIDTH_RANGES[family]
        width = _explore.default_width(family) if width is None else check_range(width, "width", lo, hi)
        check_range(check_int(depth, "depth", minimum=2), "depth", 2, 16)
        self.grad_norms = None
        self._hold = False
        c = self.controls = {
            "family": _dropdown("family", "surrogate", _surrogate.names(), family),
            "width": _slider(W.FloatLogSlider, "width", _surrogate.get(family).width_param, base=10,
                             min=math.log10(lo), max=math.log10(hi), step=0.02, value=width, readout_format=".3g"),
            "depth": _slider(W.IntSlider, "depth", "depth (layers)", min=2, max=16, value=depth),
        }
        self.readout = _css(W.HTML(), "readout")
        curves, flow = self._output("surrogate-curves", "330px"), self._output("gradient-flow", "330px")
        self.widget = _css(W.HBox([_controls("Surrogate gradient", *c.values(), self.readout),
                                   W.VBox([self.message, curves, flow], layout=W.Layout(flex="1"))]),
                           "surrogate-explorer")
        c["family"].observe(self._on_family, "value")
        for key in ("width", "depth"):
            c[key].observe(lambda _change: None if self._hold else self.redraw(), "value")
        self.redraw()

    @property
    def surrogate(self) -> _surrogate.Surrogate:
        """The surrogate the controls describe."""
        name = self.controls["family"].value
        return _surrogate.get(name, **{_surrogate.get(name).width_param: float(self.controls["width"].value)})

    def _on_family(self, change: dict) -> None:
        lo, hi = _explore.WIDTH_RANGES[change["new"]]
        w = self.controls["width"]
        self._hold = True
        try:
            w.min, w.max = -20.0, 20.0  # widen first so that neither bound clips the value in between
            w.value = _explore.default_width(change["new"])
            w.min, w.max = math.log10(lo), math.log10(hi)
            w.description = _surrogate.get(change["new"]).width_param
        finally:
            self._hold = False
        self.redraw()

    @_guarded("drawing the surrogate")
    def redraw(self) -> None:
        """Redraw the surrogate curves and recompute the gradient flow (about 50 ms)."""
        sg = self.surrogate
        reference = _surrogate.get(sg.name)
        items = {f"{sg!r}": sg} if sg == reference else {f"{sg!r}": sg, f"default {reference!r}": reference}
        fig = surrogate_figure(items, x_range=(-2.0, 2.0), title=f"surrogate {sg!r}: peak σ′(0) = {sg.peak:.3g}")
        fig.update_layout(height=330, margin=dict(l=60, r=20, t=70, b=40))
        self._draw("surrogate-curves", fig)
        g = self.grad_norms = gradient_flow(sg, depth=int(self.controls["depth"].value))
        per_layer = (g ** 2).sum(axis=1) ** 0.5
        ratio = per_layer[0] / per_layer[-1] if per_layer[-1] > 0 else float("inf")
        verdict = "vanishing" if ratio < 0.1 else "exploding" if ratio > 10 else "roughly flat"
        fig = gradient_heatmap(g, layer_names=[f"layer {i + 1}" for i in range(g.shape[0])],
                               title="gradient norm per layer and step at initialisation")
        fig.update_layout(height=330, margin=dict(l=60, r=20, t=50, b=40))
        self._draw("gradient-flow", fig)
        self.readout.value = (f"gradient at layer 1 / at layer {g.shape[0]}: <b>{ratio:.3g}</b> "
                              f"(<b>{verdict}</b> with depth)")
        self.clear_message()



class TrainingPanel(Panel):
    """Train a small spiking network in the background, with live curves, hidden-layer raster and firing rates.

    Start validates the settings (a readable message if they are wrong) and runs a
    :class:`~spikelab.viz._live.TrainingJob` (``spikelab.training.fit`` in a thread, so the page stays responsive);
    Stop sets its stop event, which ``fit`` checks before every batch. Each run is written to a run folder under
    ``runs_dir``, which :class:`RunComparison` reads. Loss and accuracy per step (and on the test split per epoch)
    redraw at most twice a second, the raster (first sample of the latest batch, in the layer picked) and the
    firing rates every 1.5 s: each redraw costs the browser a render, and a backlog of them delays Stop. ``smoke=True`` trains on ``SMOKE_LIMIT`` samples for one epoch.
    """

    def __init__(self, *, settings: TrainSettings | None = None, runs_dir: str | os.PathLike = "runs",
                 smoke: bool = False) -> None:
        super().__init__()
        s = settings if settings is not None else TrainSettings()
        if not isinstance(s, TrainSettings):
            raise TypeError(f"settings must be a TrainSettings, got {type(s).__name__}")
        if not isinstance(smoke, bool):
            raise TypeError(f"smoke must be a bool, got {type(smoke).__name__}")
        self.runs_dir, self.smoke = Path(runs_dir), smoke
        self.job: TrainingJob | None = None
        self.on_finish: list[Callable[[TrainingPanel], None]] = []
        self._curve_throttle, self._spike_throttle = Throttle(0.5), Throttle(1.5)
        self._status_lock = threading.Lock()
        c = self.controls = {
            "dataset": _dropdown("dataset", "dataset", list(TRAIN_DATASETS), s.dataset),
            "model": _dropdown("model", "model", list(TRAIN_MODELS), s.model),
            "loss": _css(W.ToggleButtons(options=[("SDT", "sdt"), ("TET", "tet")], value=s.loss, description="loss",
                                         style={"description_width": "110px", "button_width": "90px"}), "loss"),
            "lam": _slider(W.FloatSlider, "lam", "TET lam", min=0.0, max=1.0, step=0.01, value=s.lam,
                           disabled=s.loss != "tet"),
            "T": _slider(W.IntSlider, "T", "time steps T", min=1, max=16, value=s.T),
            "epochs": _slider(W.IntSlider, "epochs", "epochs", min=1, max=200, value=1 if smoke else s.epochs),
            "lr": _css(W.FloatText(description="learning rate", value=s.lr, step=1e-3, style=_STYLE,
                                   layout=W.Layout(width="320px")), "lr"),
        }
        self._batch_size = s.batch_size
        c["loss"].observe(lambda ch: setattr(c["lam"], "disabled", ch["new"] != "tet"), "value")
        self.start_button = _css(W.Button(description="Start", button_style="success", icon="play"), "start")
        self.stop_button = _css(W.Button(description="Stop", button_style="danger", icon="stop", disabled=True),
                                "stop")
        self.start_button.on_click(lambda _b: self.start())
        self.stop_button.on_click(lambda _b: self.stop())
        self.progress = _css(W.IntProgress(value=0, min=0, max=1, description="progress", style=_STYLE,
                                           layout=W.Layout(width="320px")), "progress")
        self.status = _css(W.HTML("press Start to train"), "status")
        self.layer = _dropdown("layer", "raster layer", [FIRST_LAYER], FIRST_LAYER)
        curves = self._output("curves", "330px")
        raster, rates = self._output("raster", "300px"), self._output("rates", "300px")
        left = _controls("Training", *c.values(), W.HBox([self.start_button, self.stop_button]), self.progress,
                         self.status, self.layer)
        right = W.VBox([self.message, curves, W.HBox([raster, rates])], layout=W.Layout(flex="1"))
        self.widget = _css(W.HBox([left, right]), "training")
        self._redraw_curves()

    @property
    def history(self) -> History:
        """The History of the current (or last) run; empty before the first Start."""
        return self.job.history if self.job is not None else History(name="(not started)")

    @property
    def running(self) -> bool:
        """True while a run is training."""
        return self.job is not None and self.job.task.running

    def settings(self) -> TrainSettings:
        """The run the controls describe; raises ``ValueError`` with a readable message if it is invalid."""
        c = self.controls
        return TrainSettings(dataset=c["dataset"].value, model=c["model"].value, loss=c["loss"].value,
                             lam=float(c["lam"].value), T=int(c["T"].value), epochs=int(c["epochs"].value),
                             lr=c["lr"].value, batch_size=self._batch_size, limit=SMOKE_LIMIT if self.smoke else None)

    def start(self) -> bool:
        """Validate the settings and start training in the background; False (with a message) if it cannot."""
        if self.running:
            self.report("a run is already training: press Stop first", level="info")
            return False
        try:
            settings = self.settings()
        except (TypeError, ValueError) as e:
            self.report(f"cannot start: {e}")
            return False
        self.clear_message()
        self.job = TrainingJob(settings, runs_dir=self.runs_dir, listener=self._on_job)
        self.progress.value, self.progress.bar_style = 0, ""
        self.status.value = "loading data and building the model..."
        self.start_button.disabled, self.stop_button.disabled = True, False
        self._curve_throttle.reset()
        self._spike_throttle.reset()
        self._redraw_curves()
        self.job.start()
        return True

    def stop(self) -> None:
        """Ask the running training to stop before its next batch (nothing once it has ended)."""
        with self._status_lock:  # else "stopping..." could land after the thread wrote the final status
            if self.job is not None and self.running and self.job.task.state == "running":
                self.job.stop()
                self.status.value = "stopping..."

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; True if it has ended (or none was started) within ``timeout`` seconds."""
        return self.job is None or self.job.wait(timeout)

    def _on_job(self, event: str, job: TrainingJob) -> None:
        # runs in the training thread; setting widget values and Output contents is safe from there
        if job is not self.job:
            return
        if event == "start":
            self.progress.max = max(job.total_steps, 1)
            self.status.value = f"training {job.run_dir.name}"
        elif event == "step":  # every message costs the browser a render: progress moves with the curves
            if self._curve_throttle.ready():
                self.progress.value = job.history.steps[-1]["step"]
                self._redraw_curves()
            if self._spike_throttle.ready():
                self._redraw_spikes()
        elif event == "epoch":
            e = job.history.epochs[-1]
            test = e.get("test_acc")
            self.status.value = (f"epoch {e['epoch']}/{job.settings.epochs}: train acc {e['train_acc']:.3f}"
                                 + (f", test acc {test:.3f}" if test is not None else ""))
            if self._curve_throttle.ready():
                self._redraw_curves()
        elif event == "end":
            self._finished(job)

    @_guarded("drawing the curves")
    def _redraw_curves(self) -> None:
        """Loss and accuracy per step, with the test split's values at each epoch's end as diamonds."""
        h = self.history
        fig = curves_figure(h, level="steps", title=None)
        for col, metric in enumerate(("loss", "acc"), start=1):
            x, y = self.job.test_series(f"test_{metric}") if self.job is not None else ([], [])
            fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name="test (per epoch)", showlegend=col == 1,
                                     marker=dict(size=9, symbol="diamond", color="#d62728"),
                                     meta=dict(split="test", metric=metric, key=f"test_{metric}")), row=1, col=col)
        fig.update_layout(height=330, margin=dict(l=60, r=20, t=40, b=40))
        self._draw("curves", fig)

    @_guarded("drawing the spikes")
    def _redraw_spikes(self) -> None:
        spikes, rates = self.job.take_spikes() if self.job is not None else ({}, {})
        if not spikes:
            return
        layers = list(spikes)
        if list(self.layer.options)[1:] != layers:
            self.layer.options = [FIRST_LAYER, *layers]
        name = self.layer.value if self.layer.value in layers else layers[0]
        fig = _svg(raster_figure(np.asarray(spikes[name], dtype=np.int8), title=f"spikes in {name} (one sample)"))
        fig.update_layout(height=300, margin=dict(l=50, r=10, t=40, b=40))
        self._draw("raster", fig)
        if rates:
            fig = firing_rate_figure(rates, title="firing rate per layer (recent batches)")
            fig.update_layout(height=300, margin=dict(l=50, r=10, t=40, b=40))
            self._draw("rates", fig)

    def _finished(self, job: TrainingJob) -> None:
        task = job.task
        with self._status_lock:
            if task.state == "failed":
                self.report(f"training failed: {task.error}")
                self.status.value, self.progress.bar_style = "failed", "danger"
            else:
                acc = job.history.last.get("test_acc")
                self.status.value = (f"{'stopped' if task.state == 'stopped' else 'finished'} after "
                                     f"{len(job.history.steps)} steps"
                                     + (f", test acc {acc:.3f}" if acc is not None else "")
                                     + f"; saved as {job.run_dir.name}")
                self.progress.bar_style = "success" if task.state == "done" else "warning"
        self.progress.value = len(job.history.steps)
        self._redraw_curves()
        self._redraw_spikes()
        for fn in self.on_finish:
            try:
                fn(self)
            except Exception as e:
                self.report(f"after training: {type(e).__name__}: {e}")
        self.start_button.disabled, self.stop_button.disabled = False, True  # last: the thread is about to end


class RunComparison(Panel):
    """Learning curves of saved runs side by side, with a table of their settings and final numbers.

    Reads the run folders under ``root`` (written by ``spikelab train`` or a :class:`TrainingPanel`); Refresh
    rescans, so a run still training shows its progress so far, and selects runs that appeared since the last scan.
    The newest ``preselect`` runs start selected.
    """

    def __init__(self, *, root: str | os.PathLike = "runs", preselect: int = 3) -> None:
        super().__init__()
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a folder path, got {type(root).__name__}")
        self.preselect = check_int(preselect, "preselect", minimum=0)
        self.root = _css(W.Text(value=str(root), description="runs folder", style=_STYLE,
                                layout=W.Layout(width="320px")), "runs-root")
        self.refresh_button = _css(W.Button(description="Refresh", icon="refresh"), "refresh")
        self.select = _css(W.SelectMultiple(options=[], rows=8, description="runs", style=_STYLE,
                                            layout=W.Layout(width="320px")), "run-select")
        self.level = _css(W.ToggleButtons(options=["epochs", "steps"], value="epochs", description="per",
                                          style={"description_width": "110px", "button_width": "90px"}), "level")
        self.table = _css(W.HTML(), "run-table")
        self.histories: dict[str, History] = {}
        out = self._output("run-curves", "340px")
        self.widget = _css(W.HBox([_controls("Runs", self.root, self.refresh_button, self.select, self.level),
                                   W.VBox([self.message, out, self.table], layout=W.Layout(flex="1"))]),
                           "run-comparison")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self._hold = False
        self.select.observe(lambda _c: None if self._hold else self.redraw(), "value")
        self.level.observe(lambda _c: self.redraw(), "value")
        self.root.observe(lambda _c: self.refresh(), "value")
        self.refresh()

    @_guarded("reading the runs")
    def refresh(self) -> None:
        """Rescan the runs folder, keep the selection where the runs still exist, and redraw."""
        from spikelab.training import list_runs

        names = [p.name for p in list_runs(self.root.value)]
        known = set(self.select.options)
        keep = [n for n in self.select.value if n in names] + [n for n in names if known and n not in known]
        if not keep and self.preselect:
            keep = names[-self.preselect:]
        self._hold = True
        try:
            self.select.options = names
            self.select.value = tuple(keep)
        finally:
            self._hold = False
        self.redraw()

    @_guarded("drawing the runs")
    def redraw(self) -> None:
        """Redraw the curves and the table for the selected runs."""
        from spikelab.training import load_metrics, load_run

        root = Path(self.root.value)
        if not self.select.options:
            self.histories = {}
            self.outputs["run-curves"].outputs, self.table.value = (), ""
            self.report(f"no runs in {root} yet: train one in the playground or with `spikelab train`", "info")
            return
        if not self.select.value:
            self.report("select one or more runs to compare", "info")
            return
        self.histories = {n: load_run(root / n) for n in self.select.value}
        fig = curves_figure(self.histories, level=self.level.value, title="learning curves")
        fig.update_layout(height=340, margin=dict(l=60, r=20, t=60, b=40))
        self._draw("run-curves", fig)
        rows = []
        for n, h in self.histories.items():
            cfg, m = h.config, load_metrics(root / n) or {}
            state = "stopped" if m.get("stopped") else "finished" if m else "running"
            cells = [n, cfg.get("dataset", ""), cfg.get("model", ""), cfg.get("loss", ""), cfg.get("T", ""),
                     len(h.epochs), _fmt(h.last.get("test_acc")), _fmt(m.get("best_test_acc")), state]
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
        head = "".join(f"<th>{h}</th>" for h in ("run", "dataset", "model", "loss", "T", "epochs", "test acc",
                                                 "best test acc", "state"))
        self.table.value = (f'<table style="border-collapse:collapse" cellpadding="4"><tr>{head}</tr>'
                            f'{"".join(rows)}</table>')
        self.clear_message()


def _fmt(x: Any) -> str:
    return "" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


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
            ("Train a spiking network", "Pick a model and a loss, press Start, and watch it learn.", self.training),
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
