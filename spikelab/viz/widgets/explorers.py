"""The neuron explorer and the surrogate explorer."""
from __future__ import annotations

import html
import math

import ipywidgets as W

from spikelab import surrogate as _surrogate
from spikelab._checks import check_choice, check_int, check_range
from spikelab.analysis import gradient_flow
from spikelab.neurons import RESET_MODES, NeuronConfig, decay_from_tau, tau_from_decay
from spikelab.viz import _explore
from spikelab.viz.figures import gradient_heatmap, membrane_figure, surrogate_figure, surrogate_trace_figure
from spikelab.viz.widgets._base import (
    Panel, _controls, _css, _dropdown, _follow_family, _guarded, _slider, _surrogate_of, _width_slider,
)


class NeuronExplorer(Panel):
    """One LIF neuron driven by an input current; the membrane and spikes redraw as the controls move.

    Controls: the leak as ``decay`` per step or as time constant ``tau`` (``decay = exp(-1 / tau)``), threshold
    ``v_th``, reset mode, surrogate family and width, input current kind and amplitude, number of steps ``T``.

    The surrogate changes only the backward pass, so it leaves the membrane and the spikes alone; the plot below
    them (:func:`~spikelab.viz.figures.surrogate_trace_figure`) shows what it changes: ``σ′(h[t] − v_th)`` along
    the trace, the factor each step's spike passes back, and ``∂(spike count)/∂I[t]``, the gradient that reaches
    the input current.
    """

    def __init__(self, *, decay: float = 0.8, v_th: float = 1.0, reset: str = "hard", surrogate: str = "atan",
                 width: float | None = None, current: str = "constant", amplitude: float = 0.4,
                 T: int = 100) -> None:
        super().__init__()
        check_range(decay, "decay", 0.01, 0.99)
        check_range(v_th, "v_th", 0.1, 3.0)
        check_choice(reset, "reset", RESET_MODES)
        check_choice(surrogate, "surrogate", _surrogate.names())
        lo, hi = _explore.WIDTH_RANGES[surrogate]
        width = _explore.default_width(surrogate) if width is None else check_range(width, "width", lo, hi)
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
            "width": _width_slider("surrogate-width", surrogate, width),
            "current": _dropdown("current", "input current", list(_explore.CURRENT_KINDS), current),
            "amplitude": _slider(W.FloatSlider, "amplitude", "amplitude", min=-1.0, max=3.0, step=0.05,
                                 value=amplitude),
            "T": _slider(W.IntSlider, "steps", "time steps T", min=10, max=400, step=10, value=T),
        }
        c["tau"].layout.display = "none"
        self.readout = _css(W.HTML(), "readout")
        out, backward = self._output("membrane", "420px"), self._output("surrogate-trace", "300px")
        self.widget = _css(W.HBox([_controls("Neuron", *c.values()),
                                   W.VBox([self.readout, self.message, out, backward], layout=W.Layout(flex="1"))]),
                           "neuron-explorer")
        self._hold = False  # a family change moves the width too: one redraw, once both have moved
        c["surrogate"].observe(lambda _change: setattr(self, "_hold", True), "value")
        _follow_family(c["surrogate"], c["width"])
        c["leak"].observe(self._on_leak_mode, "value")
        c["decay"].observe(self._on_decay, "value")
        c["tau"].observe(self._on_tau, "value")
        for key in ("v_th", "reset", "current", "amplitude", "T", "width"):
            c[key].observe(lambda _change: None if self._hold else self.redraw(), "value")
        c["surrogate"].observe(self._on_family, "value")
        self.redraw()

    @property
    def config(self) -> NeuronConfig:
        """The neuron the controls describe."""
        c = self.controls
        return NeuronConfig(kind="lif", decay=float(c["decay"].value), v_th=float(c["v_th"].value),
                            reset=c["reset"].value, surrogate=_surrogate_of(c["surrogate"], c["width"]))

    def _on_family(self, _change: dict) -> None:
        # observers run in order: hold on, _follow_family moves the width, then this redraws once with both
        self._hold = False
        self.redraw()

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
        sg = _surrogate.get(cfg.surrogate)
        fig = surrogate_trace_figure(tr.h, sg, v_th=cfg.v_th, spikes=tr.spikes, input_grad=tr.grad,
                                     title="backward pass: what the surrogate lets through")
        fig.update_layout(height=300, margin=dict(l=60, r=20, t=70, b=40))
        self._draw("surrogate-trace", fig)
        T = tr.spikes.size
        self.readout.value = (
            f"decay = {cfg.decay:.3f} (tau = {tau_from_decay(cfg.decay):.2f} steps) &nbsp;|&nbsp; "
            f"<b>{tr.count}</b> spikes in {T} steps (rate {tr.count / T:.3f}) &nbsp;|&nbsp; "
            f"backward, {html.escape(repr(sg))}: "
            f"d(spike count)/dI summed over t = {tr.grad.sum():.3g}"
        )
        self.clear_message()


class SurrogateExplorer(Panel):
    """A surrogate family and width: its primitive and derivative, and the gradient flow it gives.

    The gradient-flow heatmap is ``|| dL / ds_l[t] ||`` per layer ``l`` and step ``t`` of a deep spiking MLP at
    initialisation (:func:`spikelab.analysis.gradient_flow`), with or without batch norm on each layer's input
    current (the "batch norm" box); the readout says whether the gradient reaching the first layer is much
    smaller (vanishing) or larger (exploding) than at the last.
    """

    def __init__(self, *, family: str = "atan", width: float | None = None, depth: int = 8,
                 batch_norm: bool = True) -> None:
        super().__init__()
        check_choice(family, "family", _surrogate.names())
        lo, hi = _explore.WIDTH_RANGES[family]
        width = _explore.default_width(family) if width is None else check_range(width, "width", lo, hi)
        check_range(check_int(depth, "depth", minimum=2), "depth", 2, 16)
        if not isinstance(batch_norm, bool):
            raise TypeError(f"batch_norm must be a bool, got {type(batch_norm).__name__}")
        self.grad_norms = None
        self._hold = False
        c = self.controls = {
            "family": _dropdown("family", "surrogate", _surrogate.names(), family),
            "width": _slider(W.FloatLogSlider, "width", _surrogate.get(family).width_param, base=10,
                             min=math.log10(lo), max=math.log10(hi), step=0.02, value=width, readout_format=".3g"),
            "depth": _slider(W.IntSlider, "depth", "depth (layers)", min=2, max=16, value=depth),
            "batch_norm": _css(W.Checkbox(value=batch_norm, description="batch norm on input currents",
                                          indent=False), "bn"),
        }
        self.readout = _css(W.HTML(), "readout")
        curves, flow = self._output("surrogate-curves", "330px"), self._output("gradient-flow", "330px")
        self.widget = _css(W.HBox([_controls("Surrogate gradient", *c.values(), self.readout),
                                   W.VBox([self.message, curves, flow], layout=W.Layout(flex="1"))]),
                           "surrogate-explorer")
        c["family"].observe(self._on_family, "value")
        for key in ("width", "depth", "batch_norm"):
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
        bn = bool(self.controls["batch_norm"].value)
        g = self.grad_norms = gradient_flow(sg, depth=int(self.controls["depth"].value), batch_norm=bn)
        per_layer = (g ** 2).sum(axis=1) ** 0.5
        ratio = per_layer[0] / per_layer[-1] if per_layer[-1] > 0 else float("inf")
        verdict = "vanishing" if ratio < 0.1 else "exploding" if ratio > 10 else "roughly flat"
        fig = gradient_heatmap(g, layer_names=[f"layer {i + 1}" for i in range(g.shape[0])],
                               title="gradient norm per layer and step at initialisation"
                                     + ("" if bn else " (no batch norm)"))
        fig.update_layout(height=330, margin=dict(l=60, r=20, t=50, b=40))
        self._draw("gradient-flow", fig)
        self.readout.value = (f"gradient at layer 1 / at layer {g.shape[0]}: <b>{ratio:.3g}</b> "
                              f"(<b>{verdict}</b> with depth)")
        self.clear_message()
