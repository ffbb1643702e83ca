"""The training panel: train a small spiking network in the background with live curves, raster and rates."""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from spikelab import surrogate as _surrogate
from spikelab.history import History
from spikelab.losses import TET_PRESETS
from spikelab.neurons import RESET_MODES, NeuronConfig, tau_from_decay
from spikelab.viz._doctor import PRESET_LABELS, findings_html
from spikelab.viz._live import TRAIN_DATASETS, TRAIN_MODELS, Throttle, TrainingJob, TrainSettings, prewarm
from spikelab.viz._common import add_hint, integer_ticks
from spikelab.viz.figures import curves_figure, firing_rate_figure, raster_figure
from spikelab.viz.widgets._base import (
    _follow_family, _surrogate_of, _width_slider,
    _STYLE, FIRST_LAYER, SMOKE_LIMIT, Panel, _controls, _css, _dropdown, _guarded, _slider, _svg,
)


SMOOTHING = 0.9  # EMA weight of the smoothed per-step curves (about ten steps)
EMPTY_LOSS_MAX = 2.5  # loss axis before the first step: cross-entropy of a guess over 10 classes is ln 10 = 2.3
TET_PRESET_OPTIONS = [("custom", "custom")] + [(f"{k} (lam {v:g})", k) for k, v in TET_PRESETS.items()]


class TrainingPanel(Panel):
    """Train a small spiking network in the background, with live curves, hidden-layer raster and firing rates.

    Start validates the settings (a readable message if they are wrong) and runs a
    :class:`~spikelab.viz._live.TrainingJob` (``spikelab.training.fit`` in a thread, so the page stays responsive);
    Stop sets its stop event, which ``fit`` checks before every batch. Each run is written to a run folder under
    ``runs_dir``, which :class:`RunComparison` reads, and is a run like one of ``spikelab train`` (same defaults,
    names and settings): ``spikelab eval`` and ``spikelab train --resume`` take it. Loss and accuracy per step
    (and on the test split per epoch) redraw at most twice a second, the raster (first sample of the latest batch,
    in the layer picked) and the firing rates every 1.5 s: each redraw costs the browser a render, and every
    message waits in the page behind those before it. Once Stop is pressed nothing more is redrawn until the run
    has ended; then the status ("stopped after ...") goes out first, before the final redraws and the views of the
    trained network (``benchmarks/bench_stop.py`` measures the delay).
    ``smoke=True`` trains on ``SMOKE_LIMIT`` samples for one epoch (otherwise on ``settings.limit`` samples per
    split, all if None). ``neuron_controls=True`` adds a "Neuron" box (decay, threshold, reset, surrogate and its
    width) whose settings every spiking layer of the next run gets, starting from ``settings.neuron``.
    The "TET preset" control applies the TET paper's settings (:data:`spikelab.losses.TET_PRESETS`: the TET loss
    with lam 0.05 for CIFAR, 0.001 for ImageNet and DVS; phi stays 1, the lab models' v_th) and shows "custom"
    once loss or lam are moved off them.
    For the dual-stream ``dsnn-small`` the "accumulation pathway" box trains with the pathway (dual-stream training,
    SPEC section 5; both heads in the loss) or without it; with it, the final status also gives the full-spike
    network's accuracy alone.
    The training doctor's findings (``findings``, a short list with advice) appear before training and after each
    epoch; the ``network`` control picks the network as built or broken on purpose ("break it", applied after the
    neuron settings).
    """

    def __init__(self, *, settings: TrainSettings | None = None, runs_dir: str | os.PathLike = "runs",
                 smoke: bool = False, neuron_controls: bool = False) -> None:
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
            "lam": _slider(W.FloatSlider, "lam", "TET lam", min=0.0, max=1.0, step=0.001, value=s.lam,
                           disabled=s.loss != "tet", readout_format=".3f"),
            "tet_preset": _dropdown("tet-preset", "TET preset", TET_PRESET_OPTIONS, "custom"),
            "T": _slider(W.IntSlider, "T", "time steps T", min=1, max=16, value=s.T),
            "epochs": _slider(W.IntSlider, "epochs", "epochs", min=1, max=200, value=1 if smoke else s.epochs),
            "lr": _css(W.FloatText(description="learning rate", value=s.lr, step=1e-3, style=_STYLE,
                                   layout=W.Layout(width="320px")), "lr"),
            "pathway": _css(W.Checkbox(value=s.pathway, description="accumulation pathway (dsnn)", indent=False,
                                       disabled=not s.model.startswith("dsnn")), "pathway"),
            "preset": _dropdown("preset", "network", [(v, k) for k, v in PRESET_LABELS.items()], s.preset),
        }
        self._batch_size, self._limit = s.batch_size, s.limit
        self.neuron_controls = self._neuron_controls(s.neuron) if neuron_controls else {}
        c["loss"].observe(lambda ch: setattr(c["lam"], "disabled", ch["new"] != "tet"), "value")
        c["tet_preset"].observe(lambda ch: self._apply_preset(ch["new"]), "value")
        c["loss"].observe(lambda _ch: self._check_preset(), "value")
        c["lam"].observe(lambda _ch: self._check_preset(), "value")
        c["model"].observe(lambda ch: setattr(c["pathway"], "disabled", not ch["new"].startswith("dsnn")), "value")
        self.start_button = _css(W.Button(description="Start", button_style="success", icon="play"), "start")
        self.stop_button = _css(W.Button(description="Stop", button_style="danger", icon="stop", disabled=True),
                                "stop")
        self.start_button.on_click(lambda _b: self.start())
        self.stop_button.on_click(lambda _b: self.stop())
        self.progress = _css(W.IntProgress(value=0, min=0, max=1, description="progress", style=_STYLE,
                                           layout=W.Layout(width="320px")), "progress")
        self.status = _css(W.HTML("press Start to train"), "status")
        self.layer = _dropdown("layer", "raster layer", [FIRST_LAYER], FIRST_LAYER)
        self.spikes: dict[str, list[list[int]]] = {}  # the last spikes recorded ({layer: [T][N]}), for the raster
        self.rates: dict[str, float] = {}  # the last firing rates recorded
        curves = self._output("curves", "330px")
        raster, rates = self._output("raster", "300px"), self._output("rates", "300px")
        left = _controls("Training", *c.values(), W.HBox([self.start_button, self.stop_button]), self.progress,
                         self.status, self.layer)
        if self.neuron_controls:
            left = W.VBox([left, _controls("Neuron (every spiking layer)", *self.neuron_controls.values())])
        self.findings = _css(W.HTML(findings_html([])), "findings")
        right = W.VBox([self.message, self.findings, curves, W.HBox([raster, rates])], layout=W.Layout(flex="1"))
        self.widget = _css(W.HBox([left, right]), "training")
        self.layer.observe(lambda _change: self._draw_raster(), "value")  # also once the run has ended
        self._redraw_curves()
        self._draw_raster()
        self._draw_rates()
        prewarm()  # the imports Start needs load while the page renders

    def _apply_preset(self, name: str) -> None:
        """A TET preset sets the loss to TET and lam to the paper's value (phi stays 1 = the models' v_th)."""
        if name in TET_PRESETS:
            self.controls["loss"].value = "tet"
            self.controls["lam"].value = TET_PRESETS[name]

    def _check_preset(self) -> None:
        """Back to "custom" once the loss or lam no longer match the preset shown."""
        c = self.controls
        name = c["tet_preset"].value
        if name in TET_PRESETS and (c["loss"].value != "tet" or abs(c["lam"].value - TET_PRESETS[name]) > 1e-9):
            c["tet_preset"].value = "custom"

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
                             lr=c["lr"].value, batch_size=self._batch_size,
                             limit=SMOKE_LIMIT if self.smoke else self._limit, neuron=self.neuron_config(),
                             pathway=bool(c["pathway"].value), preset=c["preset"].value)

    def neuron_config(self) -> NeuronConfig | None:
        """The neuron the "Neuron" controls describe (None without them: the model's default)."""
        n = self.neuron_controls
        if not n:
            return None
        # the sliders move in steps of 0.05, which the browser adds in binary (1.0 - 4 * 0.05 = 0.7999999999999999):
        # the recipe gets the value the readout shows
        decay, v_th = (round(float(n[k].value), 6) for k in ("decay", "v_th"))
        return NeuronConfig(kind="lif", decay=decay, v_th=v_th, reset=n["reset"].value,
                            surrogate=_surrogate_of(n["surrogate"], n["width"]))

    def _neuron_controls(self, start: NeuronConfig | None) -> dict[str, W.Widget]:
        cfg = start if start is not None else NeuronConfig()
        sg = _surrogate.get(cfg.surrogate)
        n = {
            "decay": _slider(W.FloatSlider, "n-decay", "decay", min=0.0, max=1.0, step=0.05, value=cfg.decay),
            "tau": _css(W.HTML(), "n-tau"),
            "v_th": _slider(W.FloatSlider, "n-vth", "threshold v_th", min=0.1, max=3.0, step=0.05, value=cfg.v_th),
            "reset": _dropdown("n-reset", "reset", list(RESET_MODES), cfg.reset),
            "surrogate": _dropdown("n-surrogate", "surrogate", _surrogate.names(), sg.name),
            "width": _width_slider("n-width", sg.name, getattr(sg, sg.width_param)),
        }
        _follow_family(n["surrogate"], n["width"])

        def show_tau(_change: object = None) -> None:  # the leak in the other unit (decay = exp(-1 / tau))
            d = float(n["decay"].value)
            tau = "∞ (no leak)" if d >= 1 else "0" if d <= 0 else f"{tau_from_decay(d):.3g} steps"
            n["tau"].value = f"<span style='margin-left:118px;color:#555'>time constant tau = {tau}</span>"

        n["decay"].observe(show_tau, "value")
        show_tau()
        return n

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
        self.findings.value = findings_html([])
        self.start_button.disabled, self.stop_button.disabled = True, False
        self._curve_throttle.reset()
        self._spike_throttle.reset()
        self.spikes, self.rates = {}, {}
        self._redraw_curves()
        self._draw_raster()
        self._draw_rates()
        self.job.start()
        return True

    def stop(self) -> None:
        """Ask the running training to stop before its next batch (nothing once it has ended)."""
        with self._status_lock:  # else "stopping..." could land after the thread wrote the final status
            if self.job is not None and self.running and self.job.task.state == "running":
                self.job.stop()
                self.status.value = "stopping..."
                self.stop_button.disabled = True  # pressed once is enough; Start comes back when the run has ended

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; True if it has ended (or none was started) within ``timeout`` seconds."""
        return self.job is None or self.job.wait(timeout)

    def _on_job(self, event: str, job: TrainingJob) -> None:
        # runs in the training thread; setting widget values and Output contents is safe from there
        if job is not self.job:
            return
        if event in ("step", "epoch") and job.task.stop_event.is_set():
            return  # Stop was pressed: no redraw may queue ahead of "stopped", and the end redraws everything
        if event == "start":
            self.progress.max = max(job.total_steps, 1)
            self.status.value = f"training {job.run_dir.name}"
            self.findings.value = findings_html(job.doctor_log, running=True)
        elif event == "step":  # every message costs the browser a render: progress moves with the curves
            if self._curve_throttle.ready():
                self.progress.value = job.history.steps[-1]["step"]
                self._redraw_curves()
            if not job.task.stop_event.is_set() and self._spike_throttle.ready():  # Stop pressed while drawing
                self._redraw_spikes()
        elif event == "epoch":
            e = job.history.epochs[-1]
            test = e.get("test_acc")
            self.status.value = (f"epoch {e['epoch']}/{job.settings.epochs}: train acc {e['train_acc']:.3f}"
                                 + (f", test acc {test:.3f}" if test is not None else ""))
            if self._curve_throttle.ready():
                self._redraw_curves()
            self.findings.value = findings_html(job.doctor_log, running=True)
        elif event == "end":
            self._finished(job)

    @_guarded("drawing the curves")
    def _redraw_curves(self) -> None:
        """Loss and accuracy per step (raw, faint, under a smoothed line), with the test split's values at each
        epoch's end as diamonds; before the first step, empty axes of the right ranges and a hint."""
        h = self.history
        fig = curves_figure(h, level="steps", smooth=SMOOTHING, title=None)
        for col, metric in enumerate(("loss", "acc"), start=1):
            x, y = self.job.test_series(f"test_{metric}") if self.job is not None else ([], [])
            fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name="test (per epoch)", showlegend=col == 1,
                                     marker=dict(size=9, symbol="diamond", color="#d62728"),
                                     meta=dict(split="test", metric=metric, key=f"test_{metric}")), row=1, col=col)
        fig.update_layout(height=330, margin=dict(l=60, r=20, t=40, b=40),
                          legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
        if not h.steps:
            fig.update_xaxes(range=[0, 1], showticklabels=False)
            fig.update_yaxes(range=[0, EMPTY_LOSS_MAX], row=1, col=1)
            starting = self.job is not None and self.job.task.state in ("idle", "running")
            add_hint(fig, "loading the data and building the network..." if starting else
                     "press Start: the loss and accuracy of every training step appear here")
        self._draw("curves", fig)

    @_guarded("drawing the spikes")
    def _redraw_spikes(self) -> None:
        """Take the spikes and firing rates the run recorded since the last call, and draw them."""
        spikes, rates = self.job.take_spikes() if self.job is not None else ({}, {})
        if spikes:
            self.spikes = spikes
            layers = list(spikes)
            if list(self.layer.options)[1:] != layers:
                self.layer.options = [FIRST_LAYER, *layers]  # keeps the layer picked if it is still there
        if rates:
            self.rates = rates
        self._draw_raster()
        self._draw_rates()

    @_guarded("drawing the raster")
    def _draw_raster(self) -> None:
        """The raster of the layer picked, from the last spikes recorded (also after the run has ended)."""
        if not self.spikes:
            fig = raster_figure(np.zeros((1, 1), dtype=np.int8), title="spikes of one sample")
            # the axes of a typical run, ticked for that range (not for the one-row placeholder: 65 crowded labels)
            fig.update_xaxes(range=[0, 4], **integer_ticks(4))
            fig.update_yaxes(range=[0, 64], **integer_ticks(64))
            add_hint(fig, "spikes of one training image,<br>in the layer picked, appear here")
        else:
            layers = list(self.spikes)
            name = self.layer.value if self.layer.value in layers else layers[0]
            fig = _svg(raster_figure(np.asarray(self.spikes[name], dtype=np.int8),
                                     title=f"spikes in {name} (one sample)"))
        fig.update_layout(height=300, margin=dict(l=50, r=10, t=40, b=40))
        self._draw("raster", fig)

    @_guarded("drawing the firing rates")
    def _draw_rates(self) -> None:
        if not self.rates:
            fig = firing_rate_figure({"(no run yet)": 0.0}, title="firing rate per layer")
            fig.update_yaxes(range=[0, 0.5])
            add_hint(fig, "each spiking layer's firing rate<br>appears here while it trains")
        else:
            fig = firing_rate_figure(self.rates, title="firing rate per layer (recent batches)")
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
                                     + (f" (full-spike network alone: {job.fsnn_acc:.3f})"
                                        if job.fsnn_acc is not None else "")
                                     + (f"; saved as {job.run_dir.name}" if job.run_dir is not None else ""))
                self.progress.bar_style = "success" if task.state == "done" else "warning"
        self.progress.value = len(job.history.steps)
        self.findings.value = findings_html(job.doctor_log)
        self._redraw_curves()
        self._redraw_spikes()
        for fn in self.on_finish:
            try:
                fn(self)
            except Exception as e:
                self.report(f"after training: {type(e).__name__}: {e}")
        self.start_button.disabled, self.stop_button.disabled = False, True  # last: the thread is about to end
