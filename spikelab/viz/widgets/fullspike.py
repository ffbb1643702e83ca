"""Lab 10's panel: synaptic operations and energy of a full-spike network, its dual-stream twin, a SEW-ResNet and
the ANN, side by side and layer by layer (SPEC section 5)."""
from __future__ import annotations

from typing import Any

import ipywidgets as W
import torch

from spikelab._checks import check_int
from spikelab.viz.widgets._base import Panel, _controls, _css, _dropdown, _guarded, _slider


class FullSpikeComparison(Panel):
    """Operations and energy per sample of the four networks of :func:`spikelab.analysis.fullspike.full_spike_networks`
    (FSNN, DSNN, SEW-ResNet with ADD, ANN) on ``n`` test samples of ``dataset``: their totals as bars, and the
    chosen network's per-layer table. The ``join`` and ``T`` controls rebuild the networks (untrained, the same seed);
    :meth:`set_model` puts a trained ``dsnn-small`` in place of the FSNN/DSNN (its own join and T), :meth:`follow`
    does so for every ``dsnn-small`` a training panel finishes. ``rows`` holds the per-layer tables by network.
    """

    def __init__(self, *, dataset: str = "digits", n: int = 32, T: int = 4, connect: str = "IAND") -> None:
        super().__init__()
        from spikelab import data
        from spikelab.analysis.fullspike import NETWORKS
        from spikelab.models import DSNN_CONNECTS

        self.n = check_int(n, "n", minimum=1)
        test = data.load(dataset, split="test", limit=self.n)
        self.x = torch.stack([test[i][0] for i in range(len(test))])  # [n, C, H, W]
        self.info = test.info
        self.dataset = dataset
        self.trained: Any = None  # a trained dsnn-small, once set
        self._label = "trained"
        self.rows: dict[str, list[dict]] = {}
        self.join = _dropdown("fs-join", "join g", list(DSNN_CONNECTS), connect)
        self.T = _slider(W.IntSlider, "fs-T", "T (steps)", min=1, max=8, value=T)
        self.view = _dropdown("fs-view", "per layer", list(NETWORKS), "FSNN")
        self.readout = _css(W.HTML(""), "fs-readout")
        bars, table = self._output("network-energy", "340px"), self._output("layer-ops", "300px")
        for w in (self.join, self.T):
            w.observe(lambda _c: self.recount(), "value")
        self.view.observe(lambda _c: self.redraw_layers(), "value")
        left = _controls("four networks", self.join, self.T, self.view, self.readout)
        self.widget = _css(W.HBox([left, W.VBox([self.message, bars, table],
                                                layout=W.Layout(flex="1", min_width="0"))]), "full-spike")
        self.recount()

    def set_model(self, model: Any, *, label: str = "trained") -> None:
        """Count ``model`` (a ``dsnn-small``, e.g. trained) as the FSNN and the DSNN, with its join and T."""
        if not hasattr(model, "pathway"):
            self.report(f"{type(model).__name__} is not a dual-stream network: nothing to compare", "info")
            return
        self.trained, self._label = model, label
        self.join.value, self.T.value = model.connect, model.T  # redraws if either changed
        self.recount()

    def follow(self, panel: Any) -> None:
        """Count every ``dsnn-*`` network that ``panel`` (a :class:`TrainingPanel`) finishes or stops training."""
        panel.on_finish.append(lambda p: None if p.job.model is None or not hasattr(p.job.model, "pathway")
                               else self.set_model(p.job.model, label=f"trained ({p.job.settings.model})"))

    @_guarded("counting the operations")
    def recount(self) -> None:
        from spikelab.analysis.fullspike import full_spike_networks, network_operations
        from spikelab.metrics import ops_totals
        from spikelab.viz.figures import energy_compare_figure

        trained = self.trained if self.trained is not None and self.trained.connect == self.join.value \
            and self.trained.T == self.T.value else None
        nets = full_spike_networks(num_classes=self.info.num_classes, in_channels=self.info.input_shape[0],
                                   T=self.T.value, connect=self.join.value, dsnn=trained)
        self.rows = network_operations(nets, self.x)
        totals = {name: ops_totals(rows) for name, rows in self.rows.items()}
        state = self._label if trained is not None else "untrained"
        fig = energy_compare_figure(totals, title=f"per {self.dataset} image, T = {self.T.value}, join "
                                                  f"{self.join.value} ({state} FSNN/DSNN)")
        fig.update_layout(height=340)
        self._draw("network-energy", fig)
        e = {k: v["energy_pj"] for k, v in totals.items()}
        self.readout.value = ("<br>".join(f"{k}: {v / 1e3:.3g} nJ, {totals[k]['macs'] / 1e3:.3g} k MACs"
                                          for k, v in e.items()))
        self.redraw_layers()
        self.clear_message()

    @_guarded("drawing the layers")
    def redraw_layers(self) -> None:
        from spikelab.viz.figures import ops_table_figure

        if self.view.value in self.rows:
            fig = ops_table_figure(self.rows[self.view.value], title=f"{self.view.value}: operations per layer")
            fig.update_layout(height=60 + 24 * (len(self.rows[self.view.value]) + 2))
            self._draw("layer-ops", fig)
