"""The network inspector: a (trained) network looked at from the inside, on its test data."""
from __future__ import annotations

import html
import threading
from collections.abc import Callable

import ipywidgets as W
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from spikelab._checks import check_choice, check_int
from spikelab.analysis.network import record_sample
from spikelab.viz._inspect import Inspection, inspect_network
from spikelab.viz.figures import (
    accuracy_by_steps_figure, confusion_figure, energy_compare_figure, firing_rate_figure, membrane_figure,
    ops_table_figure, raster_figure,
)
from spikelab.viz.widgets._base import Panel, _controls, _css, _dropdown, _guarded, _hint_figure, _slider
from spikelab.viz.widgets.training import TrainingPanel

MEMBRANE_NEURONS = 4  # hidden neurons whose membrane is drawn
RASTER_NEURONS = 128  # most neurons of a layer in the raster


class NetworkInspector(Panel):
    """What a network does on its test set, redrawn whenever :meth:`set_model` hands it a network.

    Per test image (the "test image" slider) and spiking layer (the "layer" menu): the membrane potential of a few
    of the layer's neurons (preferably ones that fire at some steps but not all) and the layer's raster (its
    ``RASTER_NEURONS`` busiest neurons if it has more). Over the test set: firing rate per layer,
    accuracy against the number of time steps read (up to ``max(2 T, 8)``, beyond what it was trained with) and
    the confusion matrix of the predictions after ``T`` steps.

    Event data (``digits-events``, ...) is binned into the network's own ``T`` frames, so the accuracy curve then
    stops at ``T``: the information arrives over time, and the curve shows how it accumulates.

    Args:
        dataset: a dataset name for :func:`spikelab.data.load` (its test split is used); :meth:`set_model` may
            switch to another.
        limit: test samples used (evenly spaced; None: all).
        batch_size: evaluation batch size.
    """

    def __init__(self, *, dataset: str = "digits", limit: int | None = None, batch_size: int = 256) -> None:
        super().__init__()
        self.limit = None if limit is None else check_int(limit, "limit", minimum=1)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.dataset, self._data_T = "", None
        self._load(dataset, None)
        self.model: nn.Module | None = None
        self.inspection: Inspection | None = None
        self.label = ""
        self.on_change: list[Callable[[NetworkInspector], None]] = []  # called after each set_model
        self._lock = threading.Lock()
        self.sample = _slider(W.IntSlider, "sample", "test image", min=0, max=len(self.loader.dataset) - 1, value=0)
        self.layer = _dropdown("inspect-layer", "layer", ["(none yet)"], "(none yet)")
        self.readout = _css(W.HTML("no network yet"), "inspect-readout")
        outs = [self._output(k, h) for k, h in (("inspect-membrane", "380px"), ("inspect-raster", "300px"),
                                                 ("inspect-rates", "300px"), ("inspect-steps", "300px"),
                                                 ("inspect-confusion", "420px"))]
        grid = W.VBox([W.HBox([outs[0], outs[1]]), W.HBox([outs[2], outs[3]]), outs[4]], layout=W.Layout(flex="1"))
        self.widget = _css(W.HBox([_controls("Inspect", self.sample, self.layer, self.readout),
                                   W.VBox([self.message, grid], layout=W.Layout(flex="1"))]), "inspector")
        self.sample.observe(lambda _c: self.redraw_sample(), "value")
        self.layer.observe(lambda _c: self.redraw_sample(), "value")
        for key, height, what in (
                ("inspect-membrane", 380, "the membrane potential of a few hidden neurons on one test image"),
                ("inspect-raster", 300, "the spikes of a hidden layer on that image"),
                ("inspect-rates", 300, "the firing rate of each spiking layer on the test set"),
                ("inspect-steps", 300, "test accuracy against the number of time steps read"),
                ("inspect-confusion", 420, "the confusion matrix of the test set")):
            self._draw(key, _hint_figure(f"{what}<br>appears here once a network is trained", height=height))

    def _load(self, dataset: str, T: int | None) -> None:
        from spikelab import data

        test = data.load(dataset, split="test", limit=self.limit, T=T)
        self.loader = DataLoader(test, batch_size=self.batch_size, shuffle=False)
        self.class_names = list(test.info.class_names)
        self.dataset, self._data_T = dataset, (T if test.info.is_event else None)
        if hasattr(self, "sample"):
            self.sample.max = len(test) - 1

    @_guarded("inspecting the network")
    def set_model(self, model: nn.Module, *, label: str = "trained", dataset: str | None = None) -> None:
        """Evaluate ``model`` on the test set (of ``dataset`` if given, e.g. the one it was trained on) and redraw
        every figure; ``label`` names the network in the titles."""
        if not isinstance(model, nn.Module) or not hasattr(model, "T"):
            raise TypeError(f"model must be a spikelab model, got {type(model).__name__}")
        with self._lock:
            name = self.dataset if dataset is None else dataset
            is_event = name.endswith("-events") or name == "nmnist"
            if name != self.dataset or (is_event and self._data_T != model.T):
                self._load(name, model.T)
            self.model, self.label = model, str(label)
            self.inspection = ins = inspect_network(model, self.loader)
        names = list(ins.rates)
        if list(self.layer.options) != names:
            self.layer.options = names  # observers redraw the sample
        self.redraw_sample()
        fig = firing_rate_figure(ins.rates, title=f"firing rate per layer ({self.label}, test set)")
        fig.update_layout(height=300)
        self._draw("inspect-rates", fig)
        fig = accuracy_by_steps_figure(ins.acc_by_steps, trained_T=ins.trained_T,
                                       title="how many time steps does it need?")
        fig.update_layout(height=300)
        self._draw("inspect-steps", fig)
        fig = confusion_figure(ins.targets, ins.predictions, class_names=self.class_names,
                               title=f"confusion matrix after T = {ins.trained_T} steps ({self.label})")
        fig.update_layout(height=420)
        self._draw("inspect-confusion", fig)
        self.clear_message()
        for fn in self.on_change:
            fn(self)

    def follow(self, panel: TrainingPanel) -> None:
        """Inspect every network ``panel`` (a :class:`TrainingPanel`) finishes or stops training, on its dataset."""
        panel.on_finish.append(lambda p: None if p.job.model is None else self.set_model(
            p.job.model, label=_run_label(p), dataset=p.job.settings.dataset))

    @property
    def accuracies(self) -> list[float] | None:
        """Test accuracy after each number of steps read (None before a network is set)."""
        return None if self.inspection is None else [float(a) for a in self.inspection.acc_by_steps]

    @_guarded("drawing one test image")
    def redraw_sample(self) -> None:
        """Redraw the membrane and raster of the chosen layer for the chosen test image."""
        if self.model is None or self.inspection is None:
            return
        i = int(self.sample.value)
        x, y = self.loader.dataset[i]
        rec = record_sample(self.model, x)
        name = self.layer.value if self.layer.value in rec.layers else next(iter(rec.layers))
        layer = rec.layers[name]
        picked = _telling_neurons(layer.h, layer.spikes, MEMBRANE_NEURONS)
        fig = membrane_figure(layer.h[:, picked], layer.spikes[:, picked], v_th=layer.v_th,
                              names=[f"neuron {n}" for n in picked],
                              title=f"{name}: membrane of {len(picked)} of its neurons")
        fig.update_layout(height=380)
        self._draw("inspect-membrane", fig)
        n_all = layer.spikes.shape[1]
        if n_all <= RASTER_NEURONS:
            fig = raster_figure(layer.spikes.astype(np.int8), title=f"{name}: spikes of its {n_all} neurons")
        else:  # a conv layer has thousands: show the busiest, busiest on top
            order = np.argsort(-layer.spikes.sum(0), kind="stable")[:RASTER_NEURONS][::-1]
            fig = raster_figure(layer.spikes[:, order].astype(np.int8), y_title="neuron, by activity",
                                title=f"{name}: the {RASTER_NEURONS} busiest of its {n_all} neurons")
            fig.update_yaxes(showticklabels=False)
        fig.update_layout(height=300)
        self._draw("inspect-raster", fig)
        ins = self.inspection
        pred = int(torch.as_tensor(rec.logits[: ins.trained_T]).sum(0).argmax())
        right = "right" if pred == int(y) else "wrong"
        self.readout.value = (f"{html.escape(self.label)} network: test accuracy <b>{ins.accuracy:.1%}</b> on "
                              f"{ins.targets.numel()} images after T = {ins.trained_T} steps<br>"
                              f"test image {i}: true class <b>{html.escape(self.class_names[int(y)])}</b>, "
                              f"predicted <b>{html.escape(self.class_names[pred])}</b> ({right})")


def _run_label(panel: TrainingPanel) -> str:
    state = panel.job.task.state
    return "trained" if state == "done" else f"trained, {state}"


def _telling_neurons(h: np.ndarray, spikes: np.ndarray, k: int) -> list[int]:
    """``k`` neurons worth a membrane plot, in index order: first those that fire at some steps but not all (most
    spikes first), then those that fire at every step, then silent ones (ties: lower index first), skipping any
    whose membrane trace repeats one already picked (neighbours in a conv layer often see the same input)."""
    counts = spikes.sum(0)
    steps = spikes.shape[0]
    rank = np.where((counts > 0) & (counts < steps), 0, np.where(counts == steps, 1, 2))
    picked: list[int] = []
    for i in np.lexsort((np.arange(counts.size), -counts, rank)):
        if not any(np.allclose(h[:, i], h[:, j]) for j in picked):
            picked.append(int(i))
            if len(picked) == k:
                break
    return sorted(picked)


class EnergyComparison(Panel):
    """Synaptic operations and energy per sample of a spiking network and of its ANN twin (SPEC section 5).

    :meth:`set_model` copies the network's weights into its ANN twin (``models.build(model, ..., spiking=False)``:
    the same layers and names, ReLU for every neuron, one step for a static input) and counts both on ``n`` test
    samples of ``dataset`` with :func:`spikelab.metrics.ops_table`: the per-layer table of the SNN, and the totals
    side by side. Event data goes to both as frames ``[T, B, 2, H, W]``.

    Args:
        dataset: the dataset name the networks take (:func:`spikelab.data.load`); :meth:`set_model` may switch it.
        model: the registered model name (:func:`spikelab.models.names`) the networks were built as.
        n: test samples counted.
    """

    def __init__(self, *, dataset: str = "digits", model: str = "conv-small", n: int = 64) -> None:
        super().__init__()
        from spikelab import models

        self.model_name = check_choice(model, "model", models.names())
        self.n = check_int(n, "n", minimum=1)
        self.dataset, self.x, self.info = "", None, None
        self._load(dataset)
        self.rows: dict[str, list[dict]] = {}
        self.readout = _css(W.HTML("no network yet"), "energy-readout")
        table, bars = self._output("ops-table", "300px"), self._output("energy", "340px")
        self.widget = _css(W.VBox([self.message, self.readout, bars, table]), "energy-comparison")
        self._draw("energy", _hint_figure("operations and energy per image, the network against its ANN twin,<br>"
                                          "appear here once a network is trained", height=340))
        self._draw("ops-table", _hint_figure("the operations of every layer appear here", height=200))

    def _load(self, dataset: str, T: int | None = None) -> None:
        from spikelab import data

        test = data.load(dataset, split="test", limit=self.n, T=T)
        x = torch.stack([test[i][0] for i in range(len(test))])  # [n, C, H, W] or [n, T, 2, H, W]
        self.dataset, self.info = dataset, test.info
        self.x = x.transpose(0, 1).contiguous() if test.info.is_event else x

    def twin(self, model: nn.Module) -> nn.Module:
        """The ANN twin of ``model`` with its weights (raises ``ValueError`` if a weight has no place in it)."""
        from spikelab import models

        shape = self.info.input_shape
        kwargs = {} if self.model_name not in ("mlp", "conv-small", "vggsnn") else {"input_size": tuple(shape[-2:])}
        twin = models.build(self.model_name, num_classes=self.info.num_classes, in_channels=shape[-3], T=model.T,
                            spiking=False, **kwargs)
        missing = twin.load_state_dict(model.state_dict(), strict=False).missing_keys
        if missing:
            raise ValueError(f"the twin lacks weights the network has: {missing}")
        return twin

    @_guarded("counting operations")
    def set_model(self, model: nn.Module, *, label: str = "trained", dataset: str | None = None,
                  model_name: str | None = None) -> None:
        """Count the operations of ``model`` and of its twin with the same weights (on ``dataset`` and as
        ``model_name`` if given, e.g. those a training panel used), and redraw."""
        from spikelab import models
        from spikelab.metrics import ops_table, ops_totals

        if model_name is not None:
            self.model_name = check_choice(model_name, "model_name", models.names())
        if dataset is not None and (dataset != self.dataset or (self.info.is_event and self.x.shape[0] != model.T)):
            self._load(dataset, model.T)
        b = self.n if not self.info.is_event else self.x.shape[1]
        self.rows = {"SNN": ops_table(model, self.x, batch_size=b),
                     "ANN twin": ops_table(self.twin(model), self.x, batch_size=b)}
        totals = {k: ops_totals(v) for k, v in self.rows.items()}
        fig = ops_table_figure(self.rows["SNN"], title=f"the SNN layer by layer ({label}, per sample)")
        self._draw("ops-table", fig)
        fig = energy_compare_figure(totals, title=f"SNN against its ANN twin ({label}, per sample)")
        fig.update_layout(height=340)
        self._draw("energy", fig)
        snn, ann = totals["SNN"]["energy_pj"], totals["ANN twin"]["energy_pj"]
        self.readout.value = (f"energy per sample on {self.dataset}: SNN <b>{snn / 1e6:.3g} µJ</b>, ANN twin "
                              f"<b>{ann / 1e6:.3g} µJ</b> (the SNN needs {snn / ann:.2f} × the ANN's energy on this "
                              "estimate)")
        self.clear_message()

    def follow(self, panel: TrainingPanel) -> None:
        """Count the operations of every network ``panel`` (a :class:`TrainingPanel`) finishes or stops training."""
        panel.on_finish.append(lambda p: None if p.job.model is None else self.set_model(
            p.job.model, label=_run_label(p), dataset=p.job.settings.dataset, model_name=p.job.settings.model))
