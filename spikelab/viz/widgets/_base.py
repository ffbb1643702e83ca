"""Shared plumbing of the panels: the Panel base, the figure redraw, control factories, CSS classes."""
from __future__ import annotations

import functools
import html
from collections.abc import Callable
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go
import plotly.io as pio

CONTROL_WIDTH = "330px"
SMOKE_LIMIT = 128  # samples per split in smoke mode
FIRST_LAYER = "(first spiking layer)"
_STYLE = {"description_width": "110px"}


def show_figure(out: W.Output, fig: go.Figure) -> None:
    """Replace what ``out`` shows with ``fig`` as a plotly mime bundle, in one update (safe from any thread)."""
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
    bundle["text/plain"] = f"<plotly figure: {fig.layout.title.text or 'untitled'}>"
    out.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)


def plot(fig: go.Figure, *, name: str | None = None) -> W.Output:
    """``fig`` in an ``Output`` widget (class ``spikelab-figure``, and ``spikelab-<name>`` if named): how labs and
    dashboards show a figure.

    A bare figure as a cell's result breaks in Voila: after drawing it, plotly's renderer stores a PNG copy with
    ``model.setData``, which Voila's static output model lacks ("setData is not a function" page errors). In an
    ``Output`` widget the model is a real one, in JupyterLab and in Voila alike.
    """
    if not isinstance(fig, go.Figure):
        raise TypeError(f"fig must be a plotly go.Figure, got {type(fig).__name__}")
    out = _css(W.Output(layout=W.Layout(width="100%")), "figure")
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty str (a CSS class suffix), got {name!r}")
        out.add_class(f"spikelab-{name}")
    show_figure(out, fig)
    return out


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


def _width_slider(name: str, family: str, value: float | None = None) -> W.FloatLogSlider:
    """A log slider for surrogate ``family``'s width parameter over its range (:data:`WIDTH_RANGES`), labelled by
    the parameter's name (alpha, slope, gamma, width); ``value`` defaults to the family's own."""
    import math

    from spikelab import surrogate as _surrogate
    from spikelab.analysis.gradient_flow import WIDTH_RANGES

    sg = _surrogate.get(family)
    lo, hi = WIDTH_RANGES[sg.name]
    value = getattr(sg, sg.width_param) if value is None else value
    return _slider(W.FloatLogSlider, name, sg.width_param, base=10, min=math.log10(lo), max=math.log10(hi),
                   step=0.02, value=value, readout_format=".3g")


def _follow_family(family: W.Dropdown, width: W.FloatLogSlider) -> None:
    """When ``family`` changes, move ``width`` to the new family's parameter: its name, range and default."""
    import math

    from spikelab import surrogate as _surrogate
    from spikelab.analysis.gradient_flow import WIDTH_RANGES

    def on_family(change: dict) -> None:
        new = _surrogate.get(change["new"])
        lo, hi = WIDTH_RANGES[new.name]
        width.min, width.max = -20.0, 20.0  # widen first so that neither bound clips the value in between
        width.value = getattr(new, new.width_param)
        width.min, width.max, width.description = math.log10(lo), math.log10(hi), new.width_param

    family.observe(on_family, "value")


def _surrogate_of(family: W.Dropdown, width: W.FloatLogSlider) -> Any:
    """The surrogate object a family dropdown and its width slider describe."""
    from spikelab import surrogate as _surrogate

    name = family.value
    return _surrogate.get(name, **{_surrogate.get(name).width_param: float(width.value)})


def _hint_figure(text: str, *, height: int = 300, title: str | None = None) -> go.Figure:
    """An empty plot that says what will appear in it, and when (axes hidden: there is nothing to measure yet)."""
    from spikelab.viz._common import add_hint

    fig = go.Figure()
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=height, margin=dict(l=20, r=20, t=40 if title else 10, b=10), title_text=title,
                      plot_bgcolor="#f7f7f9")
    return add_hint(fig, text)

