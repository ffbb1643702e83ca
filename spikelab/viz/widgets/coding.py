"""The encoding explorer: one image turned into spikes by the direct, rate or latency code, as T and the gain move."""
from __future__ import annotations

from collections.abc import Mapping

import ipywidgets as W
import torch

from spikelab import encoding
from spikelab._checks import check_choice, check_int, check_range
from spikelab.viz.figures import encoding_figure, raster_figure, spike_count_figure
from spikelab.viz.widgets._base import Panel, _controls, _css, _dropdown, _guarded, _slider

CODES = ("direct", "rate", "latency")


class EncodingExplorer(Panel):
    """An image encoded over ``T`` steps: the spike raster of its pixels, and the spikes each pixel sent.

    Controls: the image, the code (``direct``: the value itself at every step, no spikes; ``rate``: Bernoulli spikes
    with probability ``gain * x``; ``latency``: one spike, earlier for brighter pixels), the number of time steps
    ``T``, the rate code's ``gain`` and its random seed. The readout gives the spikes sent and how far the decoded
    image (:func:`spikelab.encoding.decode_rate` / :func:`~spikelab.encoding.decode_latency`) is from the input.

    Args:
        images: ``{label: [H, W] image in [0, 1]}`` (e.g. :func:`spikelab.data.sample_images`).
        code, T, gain: the starting settings.
    """

    def __init__(self, images: Mapping[str, torch.Tensor], *, code: str = "rate", T: int = 16,
                 gain: float = 1.0) -> None:
        super().__init__()
        if not isinstance(images, Mapping) or not images:
            raise TypeError("images must be a non-empty dict {label: [H, W] tensor}")
        self.images = {}
        for label, img in images.items():
            if not isinstance(img, torch.Tensor) or img.dim() != 2:
                raise ValueError(f"images[{label!r}] must be a [H, W] tensor")
            self.images[str(label)] = img.detach().to(torch.float32)
        check_choice(code, "code", CODES)
        check_range(check_int(T, "T", minimum=1), "T", 1, 64)
        check_range(gain, "gain", 0.05, 1.0)
        self.spikes: torch.Tensor | None = None
        c = self.controls = {
            "image": _dropdown("image", "image", list(self.images), next(iter(self.images))),
            "code": _css(W.ToggleButtons(options=list(CODES), value=code, description="code",
                                         style={"description_width": "110px", "button_width": "70px"}), "code"),
            "T": _slider(W.IntSlider, "steps", "time steps T", min=1, max=64, value=T),
            "gain": _slider(W.FloatSlider, "gain", "rate gain", min=0.05, max=1.0, step=0.05, value=gain),
            "seed": _slider(W.IntSlider, "seed", "random seed", min=0, max=20, value=0),
        }
        self.readout = _css(W.HTML(), "readout")
        raster, counts = self._output("encoded", "360px"), self._output("counts", "320px")
        self.widget = _css(W.HBox([_controls("Encoding", *c.values(), self.readout),
                                   W.VBox([self.message, raster, counts], layout=W.Layout(flex="1"))]),
                           "encoding-explorer")
        for key in c:
            c[key].observe(lambda _change: self.redraw(), "value")
        self.redraw()

    def encode(self) -> torch.Tensor:
        """The chosen image encoded with the current settings: ``[T, H, W]``."""
        c = self.controls
        x, T = self.images[c["image"].value], int(c["T"].value)
        if c["code"].value == "direct":
            return encoding.direct(x, T).clone()
        if c["code"].value == "rate":
            gen = torch.Generator().manual_seed(int(c["seed"].value))
            return encoding.rate(x, T, gain=float(c["gain"].value), generator=gen)
        return encoding.latency(x, T)

    @_guarded("drawing the encoding")
    def redraw(self) -> None:
        """Encode the image and redraw the raster, the counts and the readout."""
        c = self.controls
        code, x = c["code"].value, self.images[c["image"].value]
        self.controls["gain"].disabled = code != "rate"
        s = self.spikes = self.encode()  # [T, H, W]
        T, n_pixels = s.shape[0], x.numel()
        if code == "direct":
            fig = encoding_figure(s, title="direct code: the pixel values, every step")
            counts_title = "input summed over the steps"
        else:
            fig = raster_figure(s.reshape(T, -1), y_title="input pixel",
                                title=f"{code} code: one row per pixel (row = y · width + x)")
            counts_title = "spikes sent per pixel"
        fig.update_layout(height=360)
        self._draw("encoded", fig)
        fig = spike_count_figure(x, s.sum(0), title=f"{c['image'].value}: {counts_title}")
        fig.layout.annotations[1].text = counts_title
        fig.update_layout(height=320)
        self._draw("counts", fig)
        if code == "direct":
            self.readout.value = (f"no spikes: {T} copies of {n_pixels} real values "
                                  "(the first layer multiplies them: MACs, not ACs)")
        else:
            decoded = (encoding.decode_rate(s, gain=float(c["gain"].value)) if code == "rate"
                       else encoding.decode_latency(s))
            err = float((decoded - x.to(torch.float64)).pow(2).mean().sqrt())
            n = int(s.sum())
            self.readout.value = (f"<b>{n}</b> spikes ({n / n_pixels:.2f} per pixel)<br>"
                                  f"decoded image: RMS error <b>{err:.3f}</b> (intensity, 0-1)")
        self.clear_message()
