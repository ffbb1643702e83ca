"""Lab 07's panel: the loss along a random direction for a network and for a copy with rescaled weights (the same
function), along filter-normalised or raw directions (Li et al. 2018)."""
from __future__ import annotations

import math
from typing import Any

import ipywidgets as W
import numpy as np
import torch

from spikelab._checks import check_int
from spikelab.viz.widgets._base import _STYLE, Panel, _controls, _css, _guarded, _slider


class LandscapeExplorer(Panel):
    """1-D loss landscapes ``L(theta + alpha d)`` (SDT loss, batch norm in eval mode) of a network and of its copy
    with every weight before a batch norm multiplied by ``scale`` (:func:`spikelab.analysis.invariance.
    rescale_before_norm`: the same function), along the same random draw, filter-normalised or raw.

    Filter-normalised, the two curves coincide whatever the scale; raw, the copy's rescaled layers move ``scale``
    times less per step, so its minimum looks flatter (scale > 1) or sharper (scale < 1). The
    network is a new ``model`` on ``dataset`` until :meth:`set_model` (or :meth:`follow` a training panel) gives a
    trained one. ``curves`` holds the last curves drawn, ``gap`` their largest difference.
    """

    def __init__(self, *, dataset: str = "digits", model: str = "conv-small", n: int = 128, points: int = 21,
                 seed: int = 0) -> None:
        super().__init__()
        from spikelab import data, models

        self.points = check_int(points, "points", minimum=3)
        self.seed = check_int(seed, "seed", minimum=0)
        test = data.load(dataset, split="test", limit=check_int(n, "n", minimum=1))
        x = torch.stack([test[i][0] for i in range(len(test))])
        y = torch.tensor([int(test[i][1]) for i in range(len(test))])
        self.batch = (x, y)
        info = test.info
        torch.manual_seed(seed)
        self.model = models.build(model, num_classes=info.num_classes, in_channels=info.input_shape[0], T=4,
                                  input_size=tuple(info.input_shape[-2:]))
        self.label = "untrained"
        self.curves: dict[str, np.ndarray] = {}
        self.gap: float | None = None
        self.scale = _slider(W.FloatLogSlider, "ls-scale", "weight scale c", base=2, min=-2, max=2, step=0.25,
                             value=2.0, readout_format=".3g")
        self.normalised = _css(W.Checkbox(value=True, description="filter-normalised direction", indent=False,
                                          style=_STYLE), "ls-normalised")
        self.reach = _slider(W.FloatSlider, "ls-reach", "alpha up to", min=0.25, max=2.0, step=0.25, value=1.0)
        self.readout = _css(W.HTML(""), "ls-readout")
        for w in (self.scale, self.normalised, self.reach):
            w.observe(lambda _c: self.redraw(), "value")
        out = self._output("landscape-scale", "340px")
        left = _controls("one function, two weight scales", self.scale, self.normalised, self.reach, self.readout)
        self.widget = _css(W.HBox([left, W.VBox([self.message, out], layout=W.Layout(flex="1", min_width="0"))]),
                           "landscape-explorer")
        self.redraw()

    def set_model(self, model: Any, *, label: str = "trained") -> None:
        """Draw the landscapes of ``model`` (a network with batch norm, on this panel's dataset)."""
        self.model, self.label = model, label
        self.redraw()

    def follow(self, panel: Any) -> None:
        """Draw the landscapes of every network ``panel`` (a :class:`TrainingPanel`) finishes or stops training."""
        panel.on_finish.append(lambda p: None if p.job.model is None else self.set_model(p.job.model))

    @_guarded("drawing the landscapes")
    def redraw(self) -> None:
        from spikelab.analysis import loss_landscape_1d, random_direction
        from spikelab.analysis.invariance import rescale_before_norm
        from spikelab.losses import sdt_loss
        from spikelab.viz.figures import landscape_1d_figure

        c, norm = float(self.scale.value), bool(self.normalised.value)
        alphas = np.linspace(-self.reach.value, self.reach.value, self.points)
        twin = rescale_before_norm(self.model, c)
        curves = {}
        for name, net in ((f"{self.label} network", self.model), (f"its weights x {c:.3g} (same function)", twin)):
            d = random_direction(net, seed=self.seed, filter_normalize=norm)
            curves[name] = loss_landscape_1d(net, sdt_loss, [self.batch], alphas, direction=d)
        self.curves = curves
        a, b = curves.values()
        self.gap = float(np.max(np.abs(a - b)))
        kind = "filter-normalised" if norm else "raw"
        fig = landscape_1d_figure(alphas, curves, title=f"SDT loss along one {kind} random direction")
        fig.update_layout(height=340)
        self._draw("landscape-scale", fig)
        same = self.gap < 1e-3 * max(1.0, float(np.max(np.abs(a))))
        if math.isclose(c, 1.0):
            verdict = "scale 1: the copy is the same network"
        elif same:
            verdict = "the two curves coincide: the direction follows the weights' scale"
        else:
            verdict = (f"the curves differ: the copy's rescaled layers move {c:.3g}x less per step, a "
                       f"{'flatter' if c > 1 else 'sharper'}-looking minimum of the same function")
        self.readout.value = f"largest gap between the curves: {self.gap:.3g}<br>{verdict}"
        self.clear_message()
