"""The reproduction panel of labs 06 to 10: ``spikelab reproduce NAME`` run from the page, its table set beside the
one ``docs/RESULTS.md`` reports, and the figures its module draws."""
from __future__ import annotations

import html
import os
import time
from pathlib import Path
from typing import Any

import ipywidgets as W

from spikelab.viz._command import reproduce_command, reproduction_figures
from spikelab.viz._reproduction import PROGRESS_PREFIX, side_by_side, table_html
from spikelab.viz.widgets._base import _controls, _css, _dropdown, _hint_figure, _slider
from spikelab.viz.widgets.command import _CommandPanel

__all__ = ["ReproductionPanel"]

SIZE_ORDER = ("lab", "smoke", "full")  # how the size menu lists a reproduction's sizes


class ReproductionPanel(_CommandPanel):
    """Re-run reproduction ``name`` (``spikelab reproduce NAME --size SIZE [--seeds N]``, the command shown above
    its output) and set its table beside the one ``docs/RESULTS.md`` reports (:func:`spikelab.reproduce.reported`).

    The size menu offers the reproduction's sizes: ``lab`` (a few minutes on a laptop, where it has one),
    ``smoke`` (seconds: only shows that it runs) and ``full`` (what docs/RESULTS.md reports, 30 to 60 minutes on 2
    cores). ``size`` picks one (default: ``smoke`` if ``smoke``, else ``lab`` where there is one, else ``full``);
    ``seeds`` (0 or None: the reproduction's own) sets ``--seeds``. Start runs it in a child process, its table
    going to ``runs_dir/reproduce-SIZE/NAME/``; Stop ends it (no table is written). When it ends: our table, the
    two side by side, and the figures of its module (``figures(table)``; pick one in the menu).

    ``table`` is our last :class:`~spikelab.reproduce.Table`, ``figures_drawn`` its figures by name, ``status``
    says where the run is (``"done ..."`` once all is drawn); ``on_finish`` callables get the panel when a run
    ends. Raises ``ValueError`` for an unknown ``name`` or a size the reproduction does not have.
    """

    def __init__(self, name: str, *, runs_dir: str | os.PathLike = "runs", smoke: bool = False,
                 size: str | None = None, seeds: int | None = None) -> None:
        from spikelab import reproduce

        super().__init__("repro")
        self.rep = reproduce.get(name)
        self.name, self.runs_dir = self.rep.name, Path(runs_dir)
        self.reported = reproduce.reported(self.name)
        sizes = [s for s in SIZE_ORDER if s in self.rep.sizes]
        if size is None:
            size = "smoke" if smoke else ("lab" if "lab" in sizes else "full")
        if size not in sizes:
            raise ValueError(f"size must be one of {sizes} for {self.name}, got {size!r}")
        self.table: Any = None
        self.figures_drawn: dict[str, Any] = {}
        self._t0 = 0.0
        self.size = _dropdown("repro-size", "size", sizes, size)
        self.seeds = _slider(W.IntSlider, "repro-seeds", "seeds", min=0, max=5, value=0 if seeds is None else seeds,
                             tooltip="seeds per arm; 0: the reproduction's own number")
        self.figure = _dropdown("repro-figure-pick", "figure", [], None)
        self.status = _css(W.HTML("not started: press Start"), "repro-status")
        self.ours = _css(W.HTML("<i>your table appears here when the run ends</i>"), "repro-ours")
        self.compare = _css(W.HTML(""), "repro-compare")
        self.results = _css(W.HTML(self._reported_html()), "repro-reported")
        for w in (self.size, self.seeds):
            w.observe(lambda _c: self._show_command(), "value")
        self.figure.observe(lambda _c: self._show_figure(), "value")
        out = self._output("repro-figure", "380px")
        self._draw("repro-figure", _hint_figure("the reproduction's figures appear here when the run ends",
                                                height=300))
        head = W.HTML(f"<b>{html.escape(self.rep.title)}</b> ({html.escape(self.rep.paper)}; "
                      f"{html.escape(self.rep.spec)}). Sizes: <i>lab</i>, a few minutes on a laptop (where there "
                      "is one); <i>smoke</i>, seconds, only shows that it runs; <i>full</i>, what docs/RESULTS.md "
                      "reports (30 to 60 minutes on 2 cores).")
        controls = _controls("Reproduction", self.size, self.seeds, W.HBox([self.start_button, self.stop_button]),
                             self.status, self.figure)
        right = W.VBox([self.command, self.message, self.ours, self.compare, self.log],
                       layout=W.Layout(flex="1", min_width="0"))
        self.widget = _css(W.VBox([head, W.HBox([controls, right]), out, self.results]), f"repro-{self.name}")
        self._show_command()

    def _reported_html(self) -> str:
        if self.reported is None:
            return (f"<p class='spikelab-repro-missing'>docs/RESULTS.md reports no table for "
                    f"<code>{html.escape(self.name)}</code> yet (not measured at full size); compare with the "
                    "paper's numbers in the table's last column instead.</p>")
        return "<p>What docs/RESULTS.md reports (full size):</p>" + table_html(self.reported)

    @property
    def out(self) -> Path:
        """Where the run at the chosen size writes: ``runs_dir/reproduce-SIZE`` (its table in ``NAME/``)."""
        return self.runs_dir / f"reproduce-{self.size.value}"

    def argv(self) -> list[str]:
        return reproduce_command(self.name, size=self.size.value, seeds=self.seeds.value or None, out=self.out,
                                 progress=False)

    def _starting(self) -> None:
        self._t0 = time.monotonic()
        self.status.value = f"running at size {html.escape(self.size.value)}: starting (importing torch)"

    def _line(self, line: str) -> None:
        super()._line(line)
        if line.startswith(PROGRESS_PREFIX):  # the reproduction's own "[k/N  t s] ..." lines
            self.status.value = (f"running at size {html.escape(self.size.value)}, "
                                 f"{time.monotonic() - self._t0:.0f} s:<br><small>{html.escape(line[:160])}</small>")

    def _ended(self) -> str | None:
        from spikelab.reproduce import Table

        elapsed = time.monotonic() - self._t0
        if self.job.state != "done":
            self.status.value = f"{self.job.state} after {elapsed:.0f} s"
            return None
        self.table = table = Table.load(self.out / self.name)
        self.ours.value = table_html(table)
        self.compare.value = table_html(side_by_side(table, self.reported))
        self.figures_drawn = reproduction_figures(self.name, table)
        for fig in self.figures_drawn.values():
            fig.update_layout(width=None)  # the page's width
        self.figure.options = list(self.figures_drawn)
        self.figure.value = next(iter(self.figures_drawn), None)
        self._show_figure()
        self.status.value = f"done in {elapsed:.0f} s (size {html.escape(self.size.value)})"  # last: all is drawn
        return f"done: {self.name} at size {self.size.value}"

    def _show_figure(self) -> None:
        if self.figure.value in self.figures_drawn:
            self._draw("repro-figure", self.figures_drawn[self.figure.value])
